//! The libtorch CPU device (burn-tch, PyTorch's own kernels), in a pare built with
//! `--features libtorch`: the fast CPU training path (BENCHMARKS.md, "Training throughput vs
//! PyTorch"). burn-tch comes patched from `vendor/burn-tch` (ATen's convolution and batch-norm
//! backward kernels).

use burn::tensor::Device;

/// Why the libtorch device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LibtorchError {
    #[error(
        "this pare was built without libtorch; build it with `--features libtorch` (see README, \
         \"Faster CPU training with libtorch\") or use `--device flex`"
    )]
    NotBuilt,
}

/// Whether this build has the libtorch backend.
pub const BUILT: bool = cfg!(feature = "libtorch");

/// Opens libtorch's CPU device.
#[cfg(feature = "libtorch")]
pub fn open() -> Result<Device, LibtorchError> {
    // burn-tch is deprecated upstream in favour of CubeCL's CPU backend, which needs an LLVM
    // download at build time; it stays the fast CPU path here until that builds offline.
    #[allow(deprecated)]
    Ok(Device::libtorch())
}

#[cfg(not(feature = "libtorch"))]
pub fn open() -> Result<Device, LibtorchError> {
    Err(LibtorchError::NotBuilt)
}
