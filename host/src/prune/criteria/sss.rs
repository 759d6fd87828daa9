//! Sparse structure selection (Huang & Wang 2018): the BatchNorm scales trained with an L1
//! penalty by proximal gradient on the calibration set; channels driven to zero score lowest.

use super::support::{batches, conv_nodes, values};
use super::{ScoreConfig, Scores};
use crate::data::batch;
use crate::model::Net;
use crate::train::cross_entropy;
use burn::tensor::{Device, Tensor};

/// SSS settings: proximal-gradient steps on the calibration set (cycled), learning rate, L1
/// weight on the BatchNorm scales, momentum of the (accelerated) update.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SssConfig {
    pub steps: usize,
    pub lr: f64,
    pub lambda: f64,
    pub momentum: f64,
}

impl Default for SssConfig {
    fn default() -> Self {
        Self { steps: 200, lr: 0.01, lambda: 0.1, momentum: 0.9 }
    }
}

/// The proximal operator of `threshold · ‖x‖₁`: each value moved `threshold` toward zero,
/// stopping at zero (`sign(x) · max(|x| − threshold, 0)`).
pub fn soft_threshold<const D: usize>(x: Tensor<D>, threshold: f64) -> Tensor<D> {
    x.clone() - x.clamp(-threshold, threshold)
}

/// SSS scores: a copy of the network trained on the calibration set for `cfg.sss.steps` SGD
/// steps (all weights, momentum), after each of which every BatchNorm scale takes the proximal
/// step of the L1 penalty ([`soft_threshold`] by `lr · λ`); the scales' magnitudes are the
/// scores. The network itself is not changed: the schedule fine-tunes what it keeps.
pub(super) fn sss(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, SgdConfig};
    let s = cfg.sss;
    let ad = device.clone().autodiff();
    let tensors = crate::model::weights::to_tensors(net);
    let Ok(mut model) = crate::model::weights::from_tensors(&net.arch, &tensors, &ad) else {
        return Scores::new();
    };
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: s.momentum, dampening: 0.0, nesterov: true }))
        .init();
    let all = batches(cfg.calib.len(), cfg.batch_size);
    let bar = crate::progress::steps(s.steps as u64, "sparsifying (sss)");
    for idx in all.iter().cycle().take(if all.is_empty() { 0 } else { s.steps }) {
        let (x, y) = batch::<rand::rngs::StdRng>(cfg.calib, idx, &model.arch.mean, &model.arch.std, None, &ad);
        let loss = cross_entropy(model.forward(x), y, 0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(s.lr, model, grads);
        let threshold = s.lr * s.lambda;
        for cb in &mut model.convs {
            cb.bn.gamma =
                cb.bn.gamma.clone().map(|g| Tensor::from_inner(soft_threshold(g.inner(), threshold)).require_grad());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    conv_nodes(net).into_iter().zip(&model.convs).map(|(i, cb)| (i, values(cb.bn.gamma.val().abs().inner()))).collect()
}
