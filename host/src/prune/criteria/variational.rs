//! Variational channel saliency, after Zhao et al. 2019: a Gaussian gate per channel on each
//! conv output, learned by reparameterised samples against a zero-mean Gaussian prior on the
//! calibration set (weights fixed); a channel's score is its gate's signal-to-noise ratio.

use super::support::{batches, conv_nodes, scoring_model, values};
use super::{ScoreConfig, Scores};
use crate::data::batch;
use crate::model::Net;
use crate::train::cross_entropy;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};

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

/// Variational scores: gates `N(μ, σ²)` (μ = 1, σ = `init_std` at first) on every conv's output
/// channels, the network's weights fixed, trained for `steps` batches of the calibration set on
/// [`variational_objective`] (one reparameterised draw per step); scores μ²/σ².
pub(super) fn variational(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
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
