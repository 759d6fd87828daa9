//! Taylor criteria: the first-order change of the loss when a filter's activation `a` is
//! removed, from `a·∂L/∂a` on the calibration set. `taylor-guided` (Molchanov et al. 2017)
//! takes |mean over (n, h, w)| per batch; `taylor` (Molchanov et al. 2019) the per-sample
//! square (Σ_hw a·∂L_n/∂a)².

use super::support::{batches, conv_nodes, scoring_model, values};
use super::{Criterion, ScoreConfig, Scores};
use crate::data::batch;
use crate::model::Net;
use crate::train::cross_entropy;
use burn::tensor::{Device, Tensor};

/// Taylor scores of every filter, averaged over batches (`taylor-guided`) or samples (`taylor`).
pub(super) fn taylor(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
    let (model, ad) = scoring_model(net, device);
    let convs = conv_nodes(net);
    let mut sums: Scores = convs.iter().map(|&i| (i, vec![])).collect();
    let all = batches(cfg.calib.len(), cfg.batch_size);
    let bar = crate::progress::steps(all.len() as u64, "scoring");
    let mut count = 0usize;
    for idx in &all {
        let (x, y) = batch::<rand::rngs::StdRng>(cfg.calib, idx, &model.arch.mean, &model.arch.std, None, &ad);
        let mut taps: Vec<(usize, Tensor<4>, Tensor<4>)> = vec![];
        let logits = model.forward_hooked(x, &mut |i, t| {
            if sums.contains_key(&i) {
                let probe = Tensor::zeros(t.dims(), &ad).require_grad();
                taps.push((i, t.clone().detach(), probe.clone()));
                t + probe
            } else {
                t
            }
        });
        let loss = cross_entropy(logits, y, 0.0);
        let grads = loss.backward();
        let n = idx.len();
        for (i, a, probe) in taps {
            let Some(g) = probe.grad(&grads) else { continue };
            let a = a.inner();
            let prod = a * g; // a·∂L/∂a, [n, c, h, w]
            let s = match cfg.criterion {
                // Per batch: |mean over (n, h, w)|.
                Criterion::TaylorGuided => values(prod.mean_dim(0).mean_dim(2).mean_dim(3).flatten(0, 3).abs()),
                // Per sample: (Σ_hw a·∂L_n/∂a)², with ∂L_n/∂a = n·∂L/∂a; summed here, averaged below.
                _ => values(prod.sum_dim(2).sum_dim(3).mul_scalar(n as f64).powi_scalar(2).sum_dim(0).flatten(0, 3)),
            };
            let acc = sums.get_mut(&i).expect("tap of a conv node");
            if acc.is_empty() {
                *acc = vec![0.0; s.len()];
            }
            acc.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
        }
        count += if cfg.criterion == Criterion::TaylorGuided { 1 } else { n };
        bar.inc(1);
    }
    bar.finish_and_clear();
    for v in sums.values_mut() {
        v.iter_mut().for_each(|x| *x /= count.max(1) as f64);
    }
    sums
}
