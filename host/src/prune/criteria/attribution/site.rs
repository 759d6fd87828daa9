//! The statistics of one bottleneck site over the calibration set: per-element mean, standard
//! deviation (floored) and which elements are active, and the bits a channel lets through.

use super::capacity::capacity;
use super::IbaConfig;
use crate::data::batch;
use crate::model::Net;
use crate::prune::criteria::support::batches;
use crate::prune::criteria::ScoreConfig;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use std::collections::BTreeMap;

/// Per-element statistics of one bottleneck site over the calibration set, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteStats {
    pub mean: Vec<f32>,
    /// Standard deviation, floored at [`IbaConfig::min_std`].
    pub std: Vec<f32>,
    /// 1 where the element is active (non-zero in more than the threshold's share of
    /// samples), 0 where it is not: such elements get no capacity.
    pub active: Vec<f32>,
}

impl SiteStats {
    /// From raw per-element mean, std and active fraction.
    pub fn new(mean: Vec<f32>, std: &[f32], active_fraction: &[f32], iba: &IbaConfig) -> Self {
        Self {
            mean,
            std: std.iter().map(|s| s.max(iba.min_std as f32)).collect(),
            active: active_fraction
                .iter()
                .map(|&f| if f64::from(f) > iba.active_threshold { 1.0 } else { 0.0 })
                .collect(),
        }
    }

    /// Bits per channel of one sample batch's `r` (`[n, c, h, w]`, flattened) under the
    /// bottleneck `lambda` (same layout), summed over samples and positions.
    pub fn bits_per_channel(&self, r: &[f32], lambda: &[f32], dims: [usize; 4]) -> Vec<f64> {
        let [_, c, h, w] = dims;
        let chw = (c * h * w).max(1);
        let mut out = vec![0.0; c];
        for (k, (&r, &l)) in r.iter().zip(lambda).enumerate() {
            let e = k % chw;
            if self.active[e] == 0.0 {
                continue;
            }
            let r_hat = f64::from((r - self.mean[e]) / self.std[e]);
            out[e / (h * w).max(1)] += capacity(f64::from(l), r_hat) / std::f64::consts::LN_2;
        }
        out
    }
}

/// Per-element mean, std and active fraction of node outputs over the calibration set
/// (Welford/Chan).
pub(super) fn activation_stats(
    net: &Net,
    nodes: &[usize],
    cfg: &ScoreConfig<'_>,
    device: &Device,
) -> BTreeMap<usize, (Tensor<3>, Tensor<3>, Tensor<3>)> {
    let model = net.valid();
    let mut acc: BTreeMap<usize, (f64, Tensor<3>, Tensor<3>)> = BTreeMap::new();
    let mut active: BTreeMap<usize, Tensor<3>> = BTreeMap::new();
    for idx in batches(cfg.calib.len(), cfg.batch_size) {
        let (x, _) = batch::<rand::rngs::StdRng>(cfg.calib, &idx, &model.arch.mean, &model.arch.std, None, device);
        model.forward_hooked(x, &mut |i, t| {
            if nodes.contains(&i) {
                let nb = t.dims()[0] as f64;
                let on: Tensor<3> = t.clone().abs().greater_elem(0.0).float().sum_dim(0).squeeze_dim(0);
                let on = match active.remove(&i) {
                    Some(prev) => prev + on,
                    None => on,
                };
                active.insert(i, on);
                let mb: Tensor<3> = t.clone().mean_dim(0).squeeze_dim(0);
                let m2b: Tensor<3> = (t.clone() - mb.clone().unsqueeze_dim(0)).powi_scalar(2).sum_dim(0).squeeze_dim(0);
                let entry = acc.remove(&i);
                let next = match entry {
                    None => (nb, mb, m2b),
                    Some((na, ma, m2a)) => {
                        let tot = na + nb;
                        let delta = mb - ma.clone();
                        let mean = ma + delta.clone().mul_scalar(nb / tot);
                        let m2 = m2a + m2b + delta.powi_scalar(2).mul_scalar(na * nb / tot);
                        (tot, mean, m2)
                    }
                };
                acc.insert(i, next);
            }
            t
        });
    }
    acc.into_iter()
        .filter_map(|(i, (n, mean, m2))| {
            let on = active.remove(&i)?.div_scalar(n.max(1.0));
            Some((i, (mean, m2.div_scalar(n.max(1.0)).sqrt(), on)))
        })
        .collect()
}
