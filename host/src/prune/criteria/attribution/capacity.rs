//! The bottleneck's capacity term: the information (KL to the noise prior) one element lets
//! through, its gradient in closed form, and the fused Adam step on α that uses it.

use super::site::SiteStats;

/// IBA capacity of one element, in nats: KL(N(λr̂, (1−λ)²) ‖ N(0, 1)) with r̂ = (R − μ)/σ
/// (1 − λ floored at 1e-6).
pub fn capacity(lambda: f64, r_hat: f64) -> f64 {
    let om = (1.0 - lambda).max(1e-6);
    -om.ln() + 0.5 * (om * om + (lambda * r_hat).powi(2)) - 0.5
}

/// One bottleneck's α (per element of `[n, c, h, w]`) with its Adam moments.
pub(super) struct AlphaState {
    pub(super) dims: [usize; 4],
    pub(super) alpha: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl AlphaState {
    pub(super) fn new(dims: [usize; 4]) -> Self {
        let n = dims.iter().product();
        Self { dims, alpha: vec![5.0; n], m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// One Adam step (β1 0.9, β2 0.999, ε 1e-8) on `g_ce + weight · ∂capacity/∂α`, in a single
    /// pass per element (two threads): the ~25 separate tensor passes this replaces dominated
    /// the scoring time. `site` is per `(c, h, w)`, `t` counts from 1.
    pub(super) fn step(&mut self, g_ce: &[f32], r: &[f32], site: &SiteStats, weight: f32, lr: f32, t: usize) {
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
