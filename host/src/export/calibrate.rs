//! Activation ranges for int8: min and max of every node output over calibration images.

use crate::data::{batch, Dataset};
use crate::model::Net;
use burn::module::Module;
use burn::tensor::Device;

/// `(min, max)` of the input and of every node output.
#[derive(Debug, Clone)]
pub struct Ranges {
    pub input: (f32, f32),
    pub nodes: Vec<(f32, f32)>,
}

pub fn calibrate(net: &Net, ds: &Dataset, device: &Device) -> Ranges {
    let net = net.valid();
    let mut nodes = vec![(f32::INFINITY, f32::NEG_INFINITY); net.arch.nodes.len()];
    let mut input = (f32::INFINITY, f32::NEG_INFINITY);
    let order: Vec<usize> = (0..ds.len()).collect();
    for idx in order.chunks(64) {
        let (x, _) = batch::<rand::rngs::StdRng>(ds, idx, &net.arch.mean, &net.arch.std, None, device);
        input.0 = input.0.min(x.clone().min().into_scalar::<f32>());
        input.1 = input.1.max(x.clone().max().into_scalar::<f32>());
        net.forward_hooked(x, &mut |i, t| {
            let r = &mut nodes[i];
            r.0 = r.0.min(t.clone().min().into_scalar::<f32>());
            r.1 = r.1.max(t.clone().max().into_scalar::<f32>());
            t
        });
    }
    Ranges { input, nodes }
}
