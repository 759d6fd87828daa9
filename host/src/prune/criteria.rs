//! Filter importance. Every criterion returns one score per output filter of every conv node
//! (keyed by node index); [`normalize`] and [`group_scores`] turn them into per-space scores.
//!
//! Scoring runs in inference mode (BatchNorm running statistics) on calibration images in
//! dataset order without augmentation; L is the batch-mean cross-entropy.

use crate::data::{batch, Dataset};
use crate::model::{Net, Node, Src};
use crate::prune::groups::Groups;
use crate::train::cross_entropy;
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Importance criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// Information Bottleneck Attribution (Schulz et al. 2020): bits per filter.
    Attribution,
    /// |mean over (n, h, w) of a·∂L/∂a| per batch, averaged (Molchanov et al. 2017).
    TaylorGuided,
    /// Per sample (Σ_hw a·∂L_n/∂a)², averaged (Molchanov et al. 2019).
    Taylor,
    /// Σ|W| of the filter (Li et al. 2017).
    L1,
    /// |γ| of the BatchNorm (network slimming).
    BnScale,
    /// Uniform random, seeded.
    Random,
    /// Variational channel saliency, after Zhao et al. 2019: a Gaussian gate per channel on
    /// each conv output, learned by reparameterised samples against a zero-mean Gaussian prior
    /// on the calibration set (weights fixed); a channel's score is its gate's signal-to-noise
    /// ratio μ²/σ², low for channels the loss lets the prior pull to zero.
    Variational,
    /// Sparse structure selection (Huang & Wang 2018): the BatchNorm scales trained with an L1
    /// penalty by proximal gradient (soft-thresholding after each step) on the calibration
    /// set; the scales' magnitudes afterwards, channels driven to zero scoring lowest.
    Sss,
}

impl Criterion {
    pub fn name(self) -> &'static str {
        match self {
            Criterion::Attribution => "attribution",
            Criterion::TaylorGuided => "taylor-guided",
            Criterion::Taylor => "taylor",
            Criterion::L1 => "l1",
            Criterion::BnScale => "bn-scale",
            Criterion::Random => "random",
            Criterion::Sss => "sss",
            Criterion::Variational => "variational",
        }
    }

    /// L2 normalisation per layer is the default for all but `taylor`, `sss` and `variational`.
    pub fn default_normalize(self) -> Normalize {
        // SSS thresholds its scales globally, as the method does; Taylor's scores are already
        // on one scale.
        if matches!(self, Criterion::Taylor | Criterion::Sss | Criterion::Variational) {
            Normalize::None
        } else {
            Normalize::L2
        }
    }
}

/// Per-layer normalisation before global ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// Unit L2 norm per layer (the paper's). A layer of n channels then scores about 1/√n per
    /// channel, so wide layers (ResNet-50's residual streams, 4× its internal layers) rank low.
    L2,
    /// Unit root-mean-square per layer (L2 norm / √n): the same order within a layer, one scale
    /// across layers of different widths.
    Rms,
    None,
}

/// How a channel space's score combines its producers' (normalised) scores. A residual
/// stream has 7–19 producers: with `sum` its channels outscore every single layer's and the
/// streams are never pruned; `mean` and `max` put them on one scale with internal layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupReduce {
    Sum,
    #[default]
    Mean,
    Max,
}

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

/// KL(N(μ, σ²) ‖ N(0, s²)) per element, σ = exp(ρ): `ln(s/σ) + (σ² + μ²) / (2s²) − 1/2`.
pub fn gaussian_kl(mu: Tensor<1>, rho: Tensor<1>, prior_std: f64) -> Tensor<1> {
    let var = rho.clone().mul_scalar(2.0).exp();
    rho.neg().add_scalar(prior_std.ln()) + (var + mu.powi_scalar(2)).div_scalar(2.0 * prior_std * prior_std) - 0.5
}

/// The variational objective for one batch: cross-entropy of the network with every conv
/// output's channels multiplied by `μ + σ·ε` (`eps[k]`, one draw per channel of the k-th conv),
/// plus the gates' KL to the prior divided by the number of training samples `n`.
#[allow(clippy::too_many_arguments)]
pub fn variational_objective(
    net: &Net,
    x: Tensor<4>,
    y: Tensor<1, burn::tensor::Int>,
    mu: &[Tensor<1>],
    rho: &[Tensor<1>],
    eps: &[Tensor<1>],
    n: usize,
    prior_std: f64,
) -> Tensor<1> {
    let convs = conv_nodes(net);
    let logits = net.forward_hooked(x, &mut |i, t| match convs.iter().position(|&c| c == i) {
        Some(k) => {
            let gate = mu[k].clone() + rho[k].clone().exp() * eps[k].clone();
            let c = gate.dims()[0];
            t * gate.reshape([1, c, 1, 1])
        }
        None => t,
    });
    let kl = mu.iter().zip(rho).map(|(m, r)| gaussian_kl(m.clone(), r.clone(), prior_std).sum()).reduce(|a, b| a + b);
    let ce = cross_entropy(logits, y, 0.0).reshape([1]);
    match kl {
        Some(kl) => ce + kl.div_scalar(n.max(1) as f64),
        None => ce,
    }
}

/// Variational settings: steps of gradient descent on the gates (each step clipped to ±0.1),
/// learning rate, the
/// prior's standard deviation, the gates' initial σ.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VariationalConfig {
    pub steps: usize,
    pub lr: f64,
    pub prior_std: f64,
    pub init_std: f64,
}

impl Default for VariationalConfig {
    fn default() -> Self {
        Self { steps: 200, lr: 0.05, prior_std: 0.1, init_std: 0.1 }
    }
}

/// The proximal operator of `threshold · ‖x‖₁`: each value moved `threshold` toward zero,
/// stopping at zero (`sign(x) · max(|x| − threshold, 0)`).
pub fn soft_threshold<const D: usize>(x: Tensor<D>, threshold: f64) -> Tensor<D> {
    x.clone() - x.clamp(-threshold, threshold)
}

impl Default for IbaConfig {
    fn default() -> Self {
        Self { steps: 10, lr: 1.0, beta: 10.0, per_layer: false, min_std: 0.01, active_threshold: 0.01 }
    }
}

/// The criteria's own settings, one value for `score`, `prune` and `pipeline` (and recorded in
/// a prune run's state, so `--resume` scores as the run began).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ScorerSettings {
    pub iba: IbaConfig,
    pub sss: SssConfig,
    pub variational: VariationalConfig,
}

/// Scoring inputs.
pub struct ScoreConfig<'a> {
    pub criterion: Criterion,
    pub calib: &'a Dataset,
    pub batch_size: usize,
    pub seed: u64,
    pub iba: IbaConfig,
    pub sss: SssConfig,
    pub variational: VariationalConfig,
}

/// Raw scores: conv node index → one score per filter.
pub type Scores = BTreeMap<usize, Vec<f64>>;

fn values(t: Tensor<1>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap_or_default()
}

fn conv_nodes(net: &Net) -> Vec<usize> {
    net.arch.conv_nodes()
}

/// Scores every filter of every conv node.
pub fn score(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
    match cfg.criterion {
        Criterion::L1 => conv_nodes(net)
            .into_iter()
            .zip(&net.convs)
            .map(|(i, cb)| (i, values(cb.weight.val().abs().sum_dim(1).sum_dim(2).sum_dim(3).flatten(0, 3))))
            .collect(),
        Criterion::BnScale => {
            conv_nodes(net).into_iter().zip(&net.convs).map(|(i, cb)| (i, values(cb.bn.gamma.val().abs()))).collect()
        }
        Criterion::Random => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
            conv_nodes(net)
                .into_iter()
                .zip(&net.convs)
                .map(|(i, cb)| (i, (0..cb.weight.dims()[0]).map(|_| rng.random::<f64>()).collect()))
                .collect()
        }
        Criterion::TaylorGuided | Criterion::Taylor => taylor(net, cfg, device),
        Criterion::Attribution => attribution(net, cfg, device),
        Criterion::Sss => sss(net, cfg, device),
        Criterion::Variational => variational(net, cfg, device),
    }
}

/// Model on the autodiff device, BatchNorm in inference mode, parameters not tracked.
fn scoring_model(net: &Net, device: &Device) -> (Net, Device) {
    let ad = device.clone().autodiff();
    (net.valid().to_device(&ad).freeze(), ad)
}

fn batches(n: usize, size: usize) -> Vec<Vec<usize>> {
    (0..n).collect::<Vec<_>>().chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// SSS scores: a copy of the network trained on the calibration set for `cfg.sss.steps` SGD
/// steps (all weights, momentum), after each of which every BatchNorm scale takes the proximal
/// step of the L1 penalty ([`soft_threshold`] by `lr · λ`); the scales' magnitudes are the
/// scores. The network itself is not changed: the schedule fine-tunes what it keeps.
fn sss(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
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

/// Variational scores: gates `N(μ, σ²)` (μ = 1, σ = `init_std` at first) on every conv's output
/// channels, the network's weights fixed, trained for `steps` batches of the calibration set on
/// [`variational_objective`] (one reparameterised draw per step); scores μ²/σ².
fn variational(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
    let v = cfg.variational;
    let (model, ad) = scoring_model(net, device);
    let convs = conv_nodes(net);
    let widths: Vec<usize> = net.convs.iter().map(|cb| cb.weight.dims()[0]).collect();
    let leaf = |vals: Vec<f32>| Tensor::<1>::from_data(TensorData::new(vals.clone(), [vals.len()]), &ad).require_grad();
    let mut mu: Vec<Tensor<1>> = widths.iter().map(|&c| leaf(vec![1.0; c])).collect();
    let mut rho: Vec<Tensor<1>> = widths.iter().map(|&c| leaf(vec![v.init_std.ln() as f32; c])).collect();
    let all = batches(cfg.calib.len(), cfg.batch_size);
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let bar = crate::progress::steps(v.steps as u64, "variational gates");
    for idx in all.iter().cycle().take(if all.is_empty() { 0 } else { v.steps }) {
        let (x, y) = batch::<rand::rngs::StdRng>(cfg.calib, idx, &model.arch.mean, &model.arch.std, None, &ad);
        let eps: Vec<Tensor<1>> = widths
            .iter()
            .map(|&c| {
                let draws: Vec<f32> = (0..c).map(|_| standard_normal(&mut rng)).collect();
                Tensor::<1>::from_data(TensorData::new(draws, [c]), &ad)
            })
            .collect();
        let loss = variational_objective(&model, x, y, &mu, &rho, &eps, cfg.calib.len(), v.prior_std);
        let grads = loss.backward();
        // Gradient steps clipped to ±0.1 per element: a strong prior (small σ) gives the KL
        // term gradients of hundreds, which unclipped steps turn into NaN.
        let step = |t: &Tensor<1>| match t.grad(&grads) {
            Some(g) => Tensor::<1>::from_inner(t.clone().inner() - g.mul_scalar(v.lr).clamp(-0.1, 0.1)).require_grad(),
            None => t.clone(),
        };
        mu = mu.iter().map(step).collect();
        rho = rho.iter().map(step).collect();
        bar.inc(1);
    }
    bar.finish_and_clear();
    convs
        .into_iter()
        .zip(mu.iter().zip(&rho))
        .map(|(i, (m, r))| {
            let (m, r) = (values(m.clone().inner()), values(r.clone().inner()));
            (i, m.iter().zip(&r).map(|(m, r)| m * m / (2.0 * r).exp()).collect())
        })
        .collect()
}

/// A standard normal draw (Box–Muller), from the criterion's own seeded generator.
fn standard_normal(rng: &mut rand::rngs::StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn taylor(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
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
fn activation_stats(
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

/// IBA capacity of one element, in nats: KL(N(λr̂, (1−λ)²) ‖ N(0, 1)) with r̂ = (R − μ)/σ
/// (1 − λ floored at 1e-6).
pub fn capacity(lambda: f64, r_hat: f64) -> f64 {
    let om = (1.0 - lambda).max(1e-6);
    -om.ln() + 0.5 * (om * om + (lambda * r_hat).powi(2)) - 0.5
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()
}

/// One bottleneck's α (per element of `[n, c, h, w]`) with its Adam moments.
struct AlphaState {
    dims: [usize; 4],
    alpha: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl AlphaState {
    fn new(dims: [usize; 4]) -> Self {
        let n = dims.iter().product();
        Self { dims, alpha: vec![5.0; n], m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// One Adam step (β1 0.9, β2 0.999, ε 1e-8) on `g_ce + weight · ∂capacity/∂α`, in a single
    /// pass per element (two threads): the ~25 separate tensor passes this replaces dominated
    /// the scoring time. `site` is per `(c, h, w)`, `t` counts from 1.
    fn step(&mut self, g_ce: &[f32], r: &[f32], site: &SiteStats, weight: f32, lr: f32, t: usize) {
        let (mean, std, active) = (&site.mean, &site.std, &site.active);
        let chw = mean.len().max(1);
        let (c1, c2) = (1.0 - 0.9f32.powi(t as i32), 1.0 - 0.999f32.powi(t as i32));
        let work = |a: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], r: &[f32], offset: usize| {
            for (k, (((a, m), v), (g, r))) in a.iter_mut().zip(m).zip(v).zip(g.iter().zip(r)).enumerate() {
                let e = (offset + k) % chw;
                let lambda = 1.0 / (1.0 + (-*a).exp());
                let g = g + weight * active[e] * capacity_grad(lambda, (r - mean[e]) / std[e]);
                *m = 0.9 * *m + 0.1 * g;
                *v = 0.999 * *v + 0.001 * g * g;
                *a -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
            }
        };
        let half = self.alpha.len() / 2;
        let (a0, a1) = self.alpha.split_at_mut(half);
        let (m0, m1) = self.m.split_at_mut(half);
        let (v0, v1) = self.v.split_at_mut(half);
        std::thread::scope(|s| {
            s.spawn(|| work(a0, m0, v0, &g_ce[..half], &r[..half], 0));
            work(a1, m1, v1, &g_ce[half..], &r[half..], half);
        });
    }
}

/// ∂capacity/∂α for one element, with λ = sigmoid(α):
/// (1/(1−λ) − (1−λ) + λr̂²)·λ(1−λ) = λ − λ(1−λ)² + λ²(1−λ)r̂². Elementwise, so the optimiser
/// needs no autodiff graph for the capacity term.
pub fn capacity_grad(lambda: f32, r_hat: f32) -> f32 {
    let om = 1.0 - lambda;
    lambda - lambda * om * om + lambda * lambda * om * r_hat * r_hat
}

fn attribution(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
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

/// Divides each layer's scores by their L2 norm or root-mean-square (or leaves them).
pub fn normalize(scores: &Scores, how: Normalize) -> Scores {
    scores
        .iter()
        .map(|(i, v)| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let by = match how {
                Normalize::L2 => norm,
                Normalize::Rms => norm / (v.len().max(1) as f64).sqrt(),
                Normalize::None => 1.0,
            };
            let v = if by > 0.0 { v.iter().map(|x| x / by).collect() } else { v.clone() };
            (*i, v)
        })
        .collect()
}

/// Score of each channel of each space: its producers' (normalised) scores combined by
/// `reduce`.
pub fn group_scores(groups: &Groups, scores: &Scores, reduce: GroupReduce) -> Vec<Vec<f64>> {
    groups
        .spaces
        .iter()
        .map(|s| {
            let members: Vec<&Vec<f64>> = s.producers.iter().filter_map(|p| scores.get(p)).collect();
            (0..s.channels)
                .map(|c| {
                    let vals = members.iter().filter_map(|m| m.get(c).copied());
                    match reduce {
                        GroupReduce::Sum => vals.sum(),
                        GroupReduce::Mean => vals.sum::<f64>() / members.len().max(1) as f64,
                        GroupReduce::Max => vals.fold(0.0, f64::max),
                    }
                })
                .collect()
        })
        .collect()
}

/// Spearman rank correlation of two equally long score lists.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        for (rank, &i) in idx.iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    if n < 2.0 {
        return 1.0;
    }
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}
