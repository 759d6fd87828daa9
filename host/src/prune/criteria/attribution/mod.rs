//! Information Bottleneck Attribution (Schulz et al. 2020): a bottleneck on every conv's
//! output site mixes the activation with noise, `Z = λR + (1 − λ)ε`, and is optimised to keep
//! the loss low while letting through as little information as it can; a filter's score is the
//! information (bits) its channel lets through.
//!
//! The per-element statistics of each site are in `site.rs`; the capacity term and its fused
//! Adam step in `capacity.rs`.

mod capacity;
mod site;

pub use capacity::{capacity, capacity_grad};
pub use site::SiteStats;

use super::support::{batches, conv_nodes, host, scoring_model};
use super::{ScoreConfig, Scores};
use crate::data::batch;
use crate::model::{Net, Node, Src};
use crate::train::cross_entropy;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use capacity::AlphaState;
use site::activation_stats;
use std::collections::BTreeMap;

/// Information Bottleneck settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IbaConfig {
    pub steps: usize,
    pub lr: f64,
    pub beta: f64,
    /// One bottleneck at a time (faithful) instead of all at once (fast).
    pub per_layer: bool,
    /// Floor of the per-element standard deviation (as the IBA authors' code, 0.01): an element
    /// that barely varies on clean data must not turn noise into thousands of bits.
    pub min_std: f64,
    /// Elements non-zero in at most this fraction of the calibration samples carry no
    /// capacity (the authors' active-neuron mask, 0.01).
    pub active_threshold: f64,
}

impl Default for IbaConfig {
    fn default() -> Self {
        Self { steps: 10, lr: 1.0, beta: 10.0, per_layer: false, min_std: 0.01, active_threshold: 0.01 }
    }
}

/// Where a conv's bottleneck sits: the residual add whose branch it ends (operand `a`, the
/// branch, in every zoo family), else its own output. A conv that feeds an add only as the
/// shortcut (a ResNet stem, a projection) keeps its own site, so no two convs share one.
pub fn bottleneck_node(net: &Net, conv: usize) -> usize {
    for (j, node) in net.arch.nodes.iter().enumerate() {
        match node {
            Node::Add { a, .. } if *a == Src::Node(conv) => return j,
            Node::Conv { .. }
            | Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. }
            | Node::Dense { .. } => {}
        }
    }
    conv
}

/// Attribution scores: bits per filter, averaged over the calibration samples.
pub(super) fn attribution(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
    let convs = conv_nodes(net);
    let positions: BTreeMap<usize, usize> = convs.iter().map(|&c| (c, bottleneck_node(net, c))).collect();
    let mut places: Vec<usize> = positions.values().copied().collect();
    places.sort_unstable();
    places.dedup();
    let stats = activation_stats(net, &places, cfg, device);
    let stats_host: BTreeMap<usize, SiteStats> = stats
        .iter()
        .map(|(i, (m, s, on))| (*i, SiteStats::new(host(m.clone()), &host(s.clone()), &host(on.clone()), &cfg.iba)))
        .collect();
    let (model, ad) = scoring_model(net, device);
    let plain = ad.clone().inner();
    let min_std = cfg.iba.min_std;
    let stats: BTreeMap<usize, (Tensor<3>, Tensor<3>)> =
        stats.into_iter().map(|(i, (m, s, _))| (i, (m.to_device(&ad), s.clamp_min(min_std).to_device(&ad)))).collect();
    // Runs of bottlenecks optimised together: all at once, or one at a time.
    let runs: Vec<Vec<usize>> =
        if cfg.iba.per_layer { places.iter().map(|&p| vec![p]).collect() } else { vec![places.clone()] };
    let all = batches(cfg.calib.len(), cfg.batch_size);
    let mut bits: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    ad.seed(cfg.seed);
    let bar = crate::progress::steps((runs.len() * all.len()) as u64, "attribution");
    for run in &runs {
        for idx in &all {
            let (x, y) = batch::<rand::rngs::StdRng>(cfg.calib, idx, &model.arch.mean, &model.arch.std, None, &ad);
            // α and its Adam moments per site, on the host: the update is one fused pass.
            let mut states: BTreeMap<usize, AlphaState> = BTreeMap::new();
            let mut alphas: BTreeMap<usize, Tensor<4>> = BTreeMap::new();
            for step in 0..=cfg.iba.steps {
                let last = step == cfg.iba.steps;
                // Each site's R (plain, detached): the capacity term needs it, not its graph.
                let mut taps: Vec<(usize, Tensor<4>)> = vec![];
                let logits = model.forward_hooked(x.clone(), &mut |i, r| {
                    if !run.contains(&i) {
                        return r;
                    }
                    let (mean, std) = &stats[&i];
                    let st = states.entry(i).or_insert_with(|| AlphaState::new(r.dims()));
                    let alpha: Tensor<4> =
                        Tensor::from_data(TensorData::new(st.alpha.clone(), st.dims), &ad).require_grad();
                    alphas.insert(i, alpha.clone());
                    let lambda = sigmoid(alpha);
                    // ε ~ N(μ, σ²) needs no gradient: drawn and scaled on the plain device.
                    let eps = Tensor::random(r.dims(), Distribution::Normal(0.0, 1.0), &plain)
                        * std.clone().inner().unsqueeze_dim(0)
                        + mean.clone().inner().unsqueeze_dim(0);
                    let eps = Tensor::from_inner(eps);
                    taps.push((i, r.clone().detach().inner()));
                    // Z = λR + (1 − λ)ε, written as ε + λ(R − ε).
                    eps.clone() + lambda * (r - eps)
                });
                if last {
                    for (i, r) in taps {
                        let dims = r.dims();
                        let lambda = host(sigmoid(alphas[&i].clone().inner()));
                        // Bits per channel, summed over H×W, summed over samples (averaged below).
                        let per = stats_host[&i].bits_per_channel(&host(r), &lambda, dims);
                        let acc = bits.entry(i).or_insert_with(|| vec![0.0; per.len()]);
                        acc.iter_mut().zip(&per).for_each(|(a, b)| *a += b);
                    }
                    break;
                }
                // L = CE + β · Σ over sites of mean(capacity): every site feels the same
                // information pressure as alone (per-layer mode). CE through autodiff, the
                // capacity term's gradient in closed form, fused with Adam (see `AlphaState`).
                let grads = cross_entropy(logits, y.clone(), 0.0).backward();
                for (i, r) in taps {
                    let (Some(alpha), Some(st)) = (alphas.get(&i), states.get_mut(&i)) else { continue };
                    let Some(g) = alpha.grad(&grads) else { continue };
                    let weight = cfg.iba.beta / st.alpha.len() as f64;
                    st.step(&host(g.inner()), &host(r), &stats_host[&i], weight as f32, cfg.iba.lr as f32, step + 1);
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let n = cfg.calib.len().max(1) as f64;
    convs
        .iter()
        .map(|c| {
            let v = bits.get(&positions[c]).cloned().unwrap_or_default();
            (*c, v.into_iter().map(|b| b / n).collect())
        })
        .collect()
}
