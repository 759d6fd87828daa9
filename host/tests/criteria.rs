//! Criteria against independently computed values on a tiny network: L1 and BN scale by hand,
//! the Taylor criteria against central finite differences of the loss (a second way to get
//! Σ a·∂L/∂a), attribution's ordering on a channel that carries nothing.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use pare::channels::Groups;
use pare::data::{batch, load};
use pare::model::{weights, zoo, Net, Node};
use pare::prune::criteria::{
    gaussian_kl, group_scores, normalize, score, soft_threshold, spearman, variational_objective, Criterion,
    GroupReduce, IbaConfig, Normalize, ScoreConfig, SiteStats, SssConfig, VariationalConfig,
};
use pare::train::cross_entropy;

fn tiny(device: &Device) -> Net {
    device.seed(5);
    Net::init(&zoo::tiny(10), device).unwrap()
}

#[test]
fn l1_and_bn_scale_match_hand_values() {
    let device = Device::flex();
    let net = tiny(&device);
    let t = weights::to_tensors(&net);
    let calib = load("synthetic", "test").unwrap().take(8);
    let cfg = |c| ScoreConfig {
        criterion: c,
        calib: &calib,
        batch_size: 8,
        seed: 0,
        iba: IbaConfig::default(),
        sss: SssConfig::default(),
        variational: VariationalConfig::default(),
    };
    let l1 = score(&net, &cfg(Criterion::L1), &device);
    let (shape, w) = &t["conv2.weight"];
    let per = shape[1] * shape[2] * shape[3];
    for o in 0..shape[0] {
        let hand: f64 = w[o * per..(o + 1) * per].iter().map(|v| f64::from(v.abs())).sum();
        assert!((l1[&2][o] - hand).abs() < 1e-3 * hand.max(1.0), "filter {o}: {} vs {hand}", l1[&2][o]);
    }
    let bn = score(&net, &cfg(Criterion::BnScale), &device);
    assert!(bn[&0].iter().all(|&g| (g - 1.0).abs() < 1e-6), "fresh BN has γ = 1");
    // L2 normalisation: unit norm per layer.
    let n = normalize(&l1, Normalize::L2);
    for v in n.values() {
        assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn rms_normalisation_puts_layers_of_any_width_on_one_scale() {
    // By hand: [3, 4] has L2 norm 5 and RMS 5/√2; a flat layer scores 1/√n under L2, 1 under RMS.
    let scores: pare::prune::criteria::Scores =
        [(0, vec![3.0, 4.0]), (1, vec![2.0; 4]), (2, vec![2.0; 16]), (3, vec![0.0; 3])].into_iter().collect();
    let l2 = normalize(&scores, Normalize::L2);
    let rms = normalize(&scores, Normalize::Rms);
    let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(close(&l2[&0], &[0.6, 0.8]), "{:?}", l2[&0]);
    let r = 2f64.sqrt();
    assert!(close(&rms[&0], &[0.6 * r, 0.8 * r]), "{:?}", rms[&0]);
    assert!(close(&l2[&1], &[0.5; 4]) && close(&l2[&2], &[0.25; 16]));
    assert!(close(&rms[&1], &[1.0; 4]) && close(&rms[&2], &[1.0; 16]));
    // An all-zero layer stays zero under both.
    assert!(close(&l2[&3], &[0.0; 3]) && close(&rms[&3], &[0.0; 3]));
    assert!(close(&normalize(&scores, Normalize::None)[&0], &[3.0, 4.0]));
}

/// Σ_{n,h,w} a·∂L/∂a for channel c of node i, by central differences: scaling the channel's
/// activation by (1 + ε) changes L by ε·Σ a·∂L/∂a to first order.
fn directional(net: &Net, x: &Tensor<4>, y: &Tensor<1, burn::tensor::Int>, node: usize, c: usize, eps: f64) -> f64 {
    let loss = |e: f64| {
        let out = net.forward_hooked(x.clone(), &mut |i, t| {
            if i != node {
                return t;
            }
            let ch = t.dims()[1];
            let mut m = vec![1f32; ch];
            m[c] = (1.0 + e) as f32;
            t * Tensor::<4>::from_data(TensorData::new(m, [1, ch, 1, 1]), &x.device())
        });
        f64::from(cross_entropy(out, y.clone(), 0.0).into_scalar::<f32>())
    };
    (loss(eps) - loss(-eps)) / (2.0 * eps)
}

#[test]
fn taylor_criteria_match_finite_differences() {
    let device = Device::flex();
    let net = tiny(&device).valid();
    let calib = load("synthetic", "test").unwrap().take(16);
    let (x, y) =
        batch::<rand::rngs::StdRng>(&calib, &(0..16).collect::<Vec<_>>(), &net.arch.mean, &net.arch.std, None, &device);
    let cfg = ScoreConfig {
        criterion: Criterion::TaylorGuided,
        calib: &calib,
        batch_size: 16,
        seed: 0,
        iba: IbaConfig::default(),
        sss: SssConfig::default(),
        variational: VariationalConfig::default(),
    };
    let tg = score(&net, &cfg, &device);
    // Node 2 is conv2 (16×16 maps after the first pool), batch of 16.
    let hw = 16.0 * 16.0;
    for c in [0usize, 3, 7] {
        let fd = directional(&net, &x, &y, 2, c, 1e-2);
        let want = (fd / (16.0 * hw)).abs();
        let got = tg[&2][c];
        assert!((got - want).abs() <= 2e-3 * want.max(1e-6) + 1e-7, "channel {c}: {got} vs {want}");
    }
    // Taylor (2019) per sample: (Σ_hw a·∂L_n/∂a)², with L_n the sample's own loss.
    let cfg = ScoreConfig { criterion: Criterion::Taylor, batch_size: 4, ..cfg };
    let calib4 = calib.clone().take(4);
    let cfg = ScoreConfig { calib: &calib4, ..cfg };
    let t = score(&net, &cfg, &device);
    let c = 5;
    let mut want = 0.0;
    for n in 0..4 {
        let (xn, yn) = batch::<rand::rngs::StdRng>(&calib4, &[n], &net.arch.mean, &net.arch.std, None, &device);
        want += directional(&net, &xn, &yn, 2, c, 1e-2).powi(2);
    }
    want /= 4.0;
    assert!((t[&2][c] - want).abs() <= 5e-3 * want.max(1e-9) + 1e-9, "{} vs {want}", t[&2][c]);
}

#[test]
fn attribution_ranks_a_silenced_channel_lowest() {
    let device = Device::flex();
    let net = tiny(&device);
    // Silence channel 4 of conv1: zero filter and BN shift, so its map is constant zero.
    let mut t = weights::to_tensors(&net);
    let (shape, w) = t.get_mut("conv1.weight").unwrap();
    let per = shape[1] * shape[2] * shape[3];
    w[4 * per..5 * per].iter_mut().for_each(|v| *v = 0.0);
    t.get_mut("bn1.bias").unwrap().1[4] = 0.0;
    t.get_mut("bn1.running_mean").unwrap().1[4] = 0.0;
    let net = weights::from_tensors(&net.arch, &t, &device).unwrap();
    let calib = load("synthetic", "test").unwrap().take(16);
    let cfg = ScoreConfig {
        criterion: Criterion::Attribution,
        calib: &calib,
        batch_size: 16,
        seed: 0,
        iba: IbaConfig { steps: 5, ..IbaConfig::default() },
        sss: SssConfig::default(),
        variational: VariationalConfig::default(),
    };
    let s = score(&net, &cfg, &device);
    let conv1 = &s[&0];
    let min = conv1.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(conv1.iter().all(|v| v.is_finite() && *v >= 0.0), "{conv1:?}");
    assert_eq!(conv1[4], min, "a channel with no information must score lowest: {conv1:?}");
}

#[test]
fn group_scores_reduce_members_and_spearman_is_rank_correlation() {
    let arch = zoo::resnet8(10);
    let g = Groups::of(&arch).unwrap();
    let convs = arch.conv_nodes();
    let scores = convs
        .iter()
        .map(|&i| {
            let c = if let Node::Conv { out, .. } = &arch.nodes[i] { *out } else { 0 };
            // Member m of every space scores m + 1 on each channel.
            (i, vec![1.0 + g.spaces[g.node_space[i]].producers.iter().position(|&p| p == i).unwrap() as f64; c])
        })
        .collect();
    let (sum, mean, max) = (
        group_scores(&g, &scores, GroupReduce::Sum),
        group_scores(&g, &scores, GroupReduce::Mean),
        group_scores(&g, &scores, GroupReduce::Max),
    );
    for (s, space) in g.spaces.iter().enumerate() {
        // Members score 1, 2, …, m: sum m(m+1)/2, mean (m+1)/2, max m.
        let m = space.producers.len() as f64;
        assert!(sum[s].iter().all(|&v| v == m * (m + 1.0) / 2.0), "{:?}", sum[s]);
        assert!(mean[s].iter().all(|&v| m == 0.0 || v == (m + 1.0) / 2.0), "{:?}", mean[s]);
        assert!(max[s].iter().all(|&v| v == m), "{:?}", max[s]);
    }
    // resnet8 couples the stem with its first block through an add: a group of two.
    assert!(g.spaces.iter().any(|s| s.producers.len() >= 2));
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
}

#[test]
fn closed_form_capacity_gradient_matches_autodiff_and_scalar_capacity_the_tensor_form() {
    use burn::tensor::activation::sigmoid;
    use burn::tensor::Distribution;
    use pare::prune::criteria::{capacity, capacity_grad};
    // The capacity written as tensor operations, for autodiff to differentiate.
    let capacity_t = |r_hat: Tensor<4>, lambda: Tensor<4>| {
        let one_minus = lambda.clone().neg().add_scalar(1.0).clamp_min(1e-6);
        let mu_z = lambda * r_hat;
        one_minus.clone().log().neg() + (one_minus.powi_scalar(2) + mu_z.powi_scalar(2)).mul_scalar(0.5) - 0.5
    };
    let ad = Device::flex().autodiff();
    ad.seed(3);
    let alpha: Tensor<4> = Tensor::random([2, 3, 4, 4], Distribution::Uniform(-4.0, 6.0), &ad).require_grad();
    let r_hat: Tensor<4> = Tensor::random([2, 3, 4, 4], Distribution::Normal(0.0, 2.0), &ad);
    let cap = capacity_t(r_hat.clone(), sigmoid(alpha.clone()));
    let cap_values: Vec<f32> = cap.clone().inner().into_data().convert::<f32>().iter::<f32>().collect();
    let grads = cap.sum().backward();
    let vec = |t: Tensor<4>| t.into_data().convert::<f32>().iter::<f32>().collect::<Vec<_>>();
    let auto = vec(alpha.grad(&grads).unwrap());
    let (lambda, r_hat) = (vec(sigmoid(alpha.inner())), vec(r_hat.inner()));
    for (((a, l), r), c) in auto.iter().zip(&lambda).zip(&r_hat).zip(&cap_values) {
        // The scalar capacity the scores use equals the tensor form.
        let scalar = capacity(f64::from(*l), f64::from(*r));
        assert!((scalar - f64::from(*c)).abs() < 1e-4 * (1.0 + scalar.abs()), "capacity {scalar} vs {c}");
        let closed = capacity_grad(*l, *r);
        assert!((a - closed).abs() < 1e-4, "autodiff {a} vs closed form {closed} (λ {l}, r̂ {r})");
    }
}

#[test]
fn a_dead_unit_revived_by_upstream_noise_does_not_dominate() {
    // One site, 2 channels of 1×2 elements. Element 0 of channel 0 was never active on the
    // clean calibration pass (a ReLU output that is always 0: mean 0, std 0); in the noisy pass
    // upstream noise makes it 3.0. Channel 1 is an ordinary unit: mean 1, std 0.5.
    let iba = IbaConfig::default();
    let mean = vec![0.0, 1.0, 1.0, 1.0];
    let std = [0.0, 0.5, 0.5, 0.5];
    let active = [0.0, 0.9, 0.8, 1.0];
    let site = SiteStats::new(mean, &std, &active, &iba);
    assert_eq!(site.std[0], 0.01, "std floored at the authors' 0.01, not 1e-5");
    assert_eq!(site.active, vec![0.0, 1.0, 1.0, 1.0]);
    let r = [3.0f32, 1.5, 2.0, 0.0];
    let lambda = [0.9f32, 0.9, 0.9, 0.9];
    let bits = site.bits_per_channel(&r, &lambda, [1, 2, 1, 2]);
    // Hand-computed: capacity = −ln(1−λ) + ((1−λ)² + (λ r̂)²)/2 − 1/2 nats, /ln 2 for bits.
    let cap = |r_hat: f64| {
        let l = 0.9f64;
        (-(1.0 - l).ln() + 0.5 * ((1.0 - l).powi(2) + (l * r_hat).powi(2)) - 0.5) / std::f64::consts::LN_2
    };
    // Channel 0: the dead element adds nothing; its live neighbour r̂ = (1.5 − 1)/0.5 = 1.
    assert!((bits[0] - cap(1.0)).abs() < 1e-4, "{bits:?} vs {}", cap(1.0));
    // Channel 1: r̂ = 2 and r̂ = −2.
    assert!((bits[1] - 2.0 * cap(2.0)).abs() < 1e-4, "{bits:?} vs {}", 2.0 * cap(2.0));
    // Without the mask and with the old 1e-5 floor, the revived element alone would carry
    // (0.9 · 3/1e-5)²/2/ln 2 ≈ 5.3e10 bits and squash every other channel.
    assert!(bits[0] < bits[1]);
}

#[test]
fn stem_has_a_bottleneck_of_its_own() {
    use pare::prune::criteria::bottleneck_node;
    let net = pare::testing::random_net("resnet20", 1, &Device::flex());
    let convs = net.arch.conv_nodes();
    let sites: Vec<usize> = convs.iter().map(|&c| bottleneck_node(&net, c)).collect();
    let mut unique = sites.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), sites.len(), "no two convs share a bottleneck: {sites:?}");
    assert_eq!(sites[0], convs[0], "the stem (conv1) is scored at its own output");
}

/// The capacity against hand-derived values, not against its own autodiff:
/// KL(N(λr̂, (1−λ)²) ‖ N(0, 1)) = −ln(1−λ) + ((1−λ)² + λ²r̂²)/2 − 1/2 nats.
/// λ = 0.5, r̂ = 1: ln 2 + (0.25 + 0.25)/2 − 0.5 = 0.693147 − 0.25 = 0.443147.
/// λ = 0, any r̂: the posterior is the prior, 0 nats. λ = 0.9, r̂ = 0: ln 10 + 0.005 − 0.5 = 1.807585.
#[test]
fn capacity_matches_hand_values() {
    use pare::prune::criteria::capacity;
    for (lambda, r_hat, nats) in [(0.5, 1.0, 0.443_147), (0.0, 3.0, 0.0), (0.9, 0.0, 1.807_585)] {
        let c = capacity(lambda, r_hat);
        assert!((c - nats).abs() < 1e-6, "capacity(λ {lambda}, r̂ {r_hat}) = {c}, by hand {nats}");
    }
}

/// SSS's proximal step by hand: each value moved 0.1 toward zero, stopping at zero.
#[test]
fn soft_threshold_matches_hand_values() {
    let device = Device::flex();
    let x = Tensor::<1>::from_data(TensorData::new(vec![-0.3f32, -0.05, 0.0, 0.04, 0.1, 0.25], [6]), &device);
    let got = soft_threshold(x, 0.1).into_data().try_to_vec::<f32>().unwrap();
    let want = [-0.2f32, 0.0, 0.0, 0.0, 0.0, 0.15];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-7, "{got:?} vs {want:?}");
    }
}

/// SSS end to end on the tiny network: one non-negative score per filter; with no penalty the
/// scales stay near their start (γ = 1 after a few small steps), with a penalty larger than any
/// scale every channel is driven to zero, and a moderate one orders channels by how much the
/// loss needs them (scores spread below 1).
#[test]
fn sss_scores_follow_the_penalty() {
    let device = Device::flex();
    let net = tiny(&device);
    let calib = load("synthetic", "test").unwrap().take(16);
    let cfg = |lambda: f64| ScoreConfig {
        criterion: Criterion::Sss,
        calib: &calib,
        batch_size: 8,
        seed: 0,
        iba: IbaConfig::default(),
        sss: SssConfig { steps: 4, lr: 0.01, lambda, momentum: 0.9 },
        variational: VariationalConfig::default(),
    };
    let free = score(&net, &cfg(0.0), &device);
    let crushed = score(&net, &cfg(1000.0), &device);
    for (i, cb) in net.arch.conv_nodes().iter().zip(&net.convs) {
        let n = cb.weight.dims()[0];
        assert_eq!(free[i].len(), n);
        assert!(free[i].iter().all(|&g| (g - 1.0).abs() < 0.1), "node {i}: {:?}", free[i]);
        assert!(crushed[i].iter().all(|&g| g == 0.0), "node {i}: {:?}", crushed[i]);
    }
}

/// The KL term by hand: KL(N(1, 0.5²) ‖ N(0, 1)) = ln 2 + (0.25 + 1)/2 − 1/2 = 0.818147.
#[test]
fn gaussian_kl_matches_hand_value() {
    let device = Device::flex();
    let t = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
    let kl = gaussian_kl(t(1.0), t(0.5f32.ln()), 1.0).into_scalar::<f32>();
    assert!((f64::from(kl) - (2f64.ln() + 0.625 - 0.5)).abs() < 1e-6, "{kl}");
}

/// The variational objective's gradient (autodiff) against central finite differences, for
/// gate means and log-deviations of two layers.
#[test]
fn variational_gradient_matches_finite_differences() {
    let device = Device::flex();
    let net = tiny(&device);
    let ad = device.clone().autodiff();
    let model = weights::from_tensors(&net.arch, &weights::to_tensors(&net), &ad).unwrap();
    let calib = load("synthetic", "test").unwrap().take(4);
    let (x, y) = batch::<rand::rngs::StdRng>(&calib, &[0, 1, 2, 3], &net.arch.mean, &net.arch.std, None, &ad);
    let widths: Vec<usize> = net.convs.iter().map(|cb| cb.weight.dims()[0]).collect();
    let vecf = |c: usize, f: &dyn Fn(usize) -> f32| (0..c).map(f).collect::<Vec<f32>>();
    let mk = |v: Vec<f32>, grad: bool| {
        let t = Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &ad);
        if grad {
            t.require_grad()
        } else {
            t
        }
    };
    let mu0: Vec<Vec<f32>> = widths.iter().map(|&c| vecf(c, &|i| 0.8 + 0.05 * i as f32)).collect();
    let rho0: Vec<Vec<f32>> = widths.iter().map(|&c| vecf(c, &|i| -1.5 + 0.1 * i as f32)).collect();
    let eps: Vec<Tensor<1>> =
        widths.iter().map(|&c| mk(vecf(c, &|i| ((i * 7 % 5) as f32 - 2.0) * 0.4), false)).collect();
    let objective = |mu: &[Vec<f32>], rho: &[Vec<f32>], grad: bool| {
        let m: Vec<Tensor<1>> = mu.iter().map(|v| mk(v.clone(), grad)).collect();
        let r: Vec<Tensor<1>> = rho.iter().map(|v| mk(v.clone(), grad)).collect();
        let j = variational_objective(&model, x.clone(), y.clone(), &m, &r, &eps, 100, 0.2);
        (j, m, r)
    };
    let (j, m, r) = objective(&mu0, &rho0, true);
    let grads = j.backward();
    let value = |mu: &[Vec<f32>], rho: &[Vec<f32>]| f64::from(objective(mu, rho, false).0.into_scalar::<f32>());
    for (layer, ch) in [(0usize, 1usize), (1, 0)] {
        let g_mu = f64::from(m[layer].grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap()[ch]);
        let g_rho = f64::from(r[layer].grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap()[ch]);
        let h = 1e-2f32;
        let shifted = |which: u8, d: f32| {
            let (mut mu, mut rho) = (mu0.clone(), rho0.clone());
            if which == 0 {
                mu[layer][ch] += d
            } else {
                rho[layer][ch] += d
            }
            value(&mu, &rho)
        };
        let fd_mu = (shifted(0, h) - shifted(0, -h)) / (2.0 * f64::from(h));
        let fd_rho = (shifted(1, h) - shifted(1, -h)) / (2.0 * f64::from(h));
        assert!((g_mu - fd_mu).abs() < 2e-2 * fd_mu.abs().max(1e-2), "layer {layer} ch {ch}: dJ/dμ {g_mu} vs {fd_mu}");
        assert!(
            (g_rho - fd_rho).abs() < 2e-2 * fd_rho.abs().max(1e-2),
            "layer {layer} ch {ch}: dJ/dρ {g_rho} vs {fd_rho}"
        );
    }
}

/// Variational scores end to end: one finite, non-negative signal-to-noise ratio per filter, and
/// a strong prior (tiny prior σ) pulls every gate's ratio below its starting value (μ = 1,
/// σ = 0.1: 100).
#[test]
fn variational_scores_shrink_under_a_strong_prior() {
    let device = Device::flex();
    let net = tiny(&device);
    let calib = load("synthetic", "test").unwrap().take(16);
    let cfg = ScoreConfig {
        criterion: Criterion::Variational,
        calib: &calib,
        batch_size: 8,
        seed: 0,
        iba: IbaConfig::default(),
        sss: SssConfig::default(),
        variational: VariationalConfig { steps: 6, lr: 0.05, prior_std: 0.01, init_std: 0.1 },
    };
    let s = score(&net, &cfg, &device);
    for (i, cb) in net.arch.conv_nodes().iter().zip(&net.convs) {
        assert_eq!(s[i].len(), cb.weight.dims()[0]);
        assert!(s[i].iter().all(|&v| v.is_finite() && (0.0..100.0).contains(&v)), "node {i}: {:?}", s[i]);
    }
}
