//! What the criteria share: the model they score (autodiff, inference mode), the calibration
//! set in batches, the conv nodes in order, and tensors brought back to the host.

use crate::model::Net;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// A 1-D tensor's values, as `f64`.
pub(super) fn values(t: Tensor<1>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap_or_default()
}

/// The conv nodes of `net`, in order (one per entry of `net.convs`).
pub(super) fn conv_nodes(net: &Net) -> Vec<usize> {
    net.arch.conv_nodes()
}

/// Model on the autodiff device, BatchNorm in inference mode, parameters not tracked.
pub(super) fn scoring_model(net: &Net, device: &Device) -> (Net, Device) {
    let ad = device.clone().autodiff();
    (net.valid().to_device(&ad).freeze(), ad)
}

/// Indices `0..n` in batches of `size` (the calibration set in dataset order).
pub(super) fn batches(n: usize, size: usize) -> Vec<Vec<usize>> {
    (0..n).collect::<Vec<_>>().chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// A tensor's values on the host, as `f32`.
pub(super) fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()
}
