//! The GPU device (burn-wgpu), opened eagerly so that a machine without a usable adapter gets a
//! clear error instead of a panic in the middle of a run.

use burn::tensor::Device;

/// Why `--device gpu` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("this pare was built without the `gpu` feature (burn-wgpu); rebuild with default features")]
    NotBuilt,
    #[error(
        "no usable GPU adapter: {0}\n  wgpu found no Vulkan/Metal/DX12 device. On Linux without a GPU, install Mesa's \
         software driver (`apt-get install mesa-vulkan-drivers`, lavapipe) or use `--device cpu`."
    )]
    NoAdapter(String),
}

/// Mesa's window-system layer complains on stderr ("XDG_RUNTIME_DIR is invalid") when this is
/// unset, as on headless machines and CI; nothing of ours draws windows, so any existing
/// directory quiets it. Call while the process has one thread.
pub fn quiet_window_system() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}

/// Opens burn-wgpu's default adapter (`CUBECL_WGPU_DEFAULT_DEVICE` overrides wgpu's choice) and
/// runs one tiny kernel on it.
#[cfg(feature = "gpu")]
pub fn open() -> Result<Device, GpuError> {
    use burn::tensor::Tensor;
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    // wgpu reports a missing adapter by panicking on first use; keep that panic's message
    // for the error and off the terminal.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| Tensor::<1>::ones([4], &device).sum().into_scalar::<f32>());
    std::panic::set_hook(hook);
    match probe {
        Ok(4.0) => {
            if let Some(id) = device.identity() {
                crate::say!("device: burn-wgpu on {}", id.name);
            }
            Ok(device)
        }
        Ok(v) => Err(GpuError::NoAdapter(format!("a probe kernel summed four ones to {v}"))),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "wgpu panicked while opening the adapter".into());
            Err(GpuError::NoAdapter(msg))
        }
    }
}

#[cfg(not(feature = "gpu"))]
pub fn open() -> Result<Device, GpuError> {
    Err(GpuError::NotBuilt)
}
