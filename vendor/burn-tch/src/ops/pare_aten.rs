//! pare patch: ATen's convolution and batch-norm backward kernels (`src/pare_aten.cpp`), the
//! ones PyTorch's autograd runs, in place of burn's composites (a transposed convolution for the
//! input gradient, a batch-as-channels convolution for the weight gradient, element-wise
//! batch-norm gradients).

use burn_backend::ops::ConvOptions;
use std::os::raw::{c_char, c_int};
use torch_sys::C_tensor;

unsafe extern "C" {
    fn pare_convolution_backward(
        grad: *mut C_tensor,
        input: *mut C_tensor,
        weight: *mut C_tensor,
        stride: *const i64,
        padding: *const i64,
        dilation: *const i64,
        ndim: i64,
        groups: i64,
        need_input: c_int,
        need_weight: c_int,
        input_grad: *mut *mut C_tensor,
        weight_grad: *mut *mut C_tensor,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    fn pare_batch_norm_backward(
        grad: *mut C_tensor,
        input: *mut C_tensor,
        weight: *mut C_tensor,
        save_mean: *mut C_tensor,
        save_invstd: *mut C_tensor,
        eps: f64,
        input_grad: *mut *mut C_tensor,
        weight_grad: *mut *mut C_tensor,
        bias_grad: *mut *mut C_tensor,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
}

fn check(rc: c_int, err: &[c_char; 512], what: &str) {
    if rc != 0 {
        // SAFETY: the C++ side always NUL-terminates `err` within its length.
        let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        panic!("{what}: {}", msg.to_string_lossy());
    }
}

/// Which gradient of a convolution to compute.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ConvGrad {
    Input,
    Weight,
}

/// One gradient of a symmetric-padding convolution, from ATen's `convolution_backward`.
pub fn convolution_backward<const N: usize>(
    grad: &tch::Tensor,
    input: &tch::Tensor,
    weight: &tch::Tensor,
    options: &ConvOptions<N>,
    which: ConvGrad,
) -> tch::Tensor {
    let stride = options.stride.map(|v| v as i64);
    let padding = options.padding_begin().map(|v| v as i64);
    let dilation = options.dilation.map(|v| v as i64);
    let mut out_input: *mut C_tensor = std::ptr::null_mut();
    let mut out_weight: *mut C_tensor = std::ptr::null_mut();
    let mut err = [0 as c_char; 512];
    // SAFETY: the tensors are live for the call and only read; the outputs are fresh heap
    // tensors that the returned `tch::Tensor` owns.
    let rc = unsafe {
        pare_convolution_backward(
            grad.as_ptr() as *mut C_tensor,
            input.as_ptr() as *mut C_tensor,
            weight.as_ptr() as *mut C_tensor,
            stride.as_ptr(),
            padding.as_ptr(),
            dilation.as_ptr(),
            N as i64,
            options.groups as i64,
            (which == ConvGrad::Input) as c_int,
            (which == ConvGrad::Weight) as c_int,
            &mut out_input,
            &mut out_weight,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    check(rc, &err, "aten::convolution_backward");
    let ptr = match which {
        ConvGrad::Input => out_input,
        ConvGrad::Weight => out_weight,
    };
    // SAFETY: a new tensor from the C++ side on success.
    unsafe { tch::Tensor::from_ptr(ptr) }
}

/// Input, weight and bias gradients of training-mode batch norm, from ATen's
/// `native_batch_norm_backward`.
pub fn batch_norm_backward(
    grad: &tch::Tensor,
    input: &tch::Tensor,
    weight: &tch::Tensor,
    save_mean: &tch::Tensor,
    save_invstd: &tch::Tensor,
    eps: f64,
) -> (tch::Tensor, tch::Tensor, tch::Tensor) {
    let mut gi: *mut C_tensor = std::ptr::null_mut();
    let mut gw: *mut C_tensor = std::ptr::null_mut();
    let mut gb: *mut C_tensor = std::ptr::null_mut();
    let mut err = [0 as c_char; 512];
    // SAFETY: as in `convolution_backward`.
    let rc = unsafe {
        pare_batch_norm_backward(
            grad.as_ptr() as *mut C_tensor,
            input.as_ptr() as *mut C_tensor,
            weight.as_ptr() as *mut C_tensor,
            save_mean.as_ptr() as *mut C_tensor,
            save_invstd.as_ptr() as *mut C_tensor,
            eps,
            &mut gi,
            &mut gw,
            &mut gb,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    check(rc, &err, "aten::native_batch_norm_backward");
    // SAFETY: three new tensors from the C++ side on success.
    unsafe { (tch::Tensor::from_ptr(gi), tch::Tensor::from_ptr(gw), tch::Tensor::from_ptr(gb)) }
}
