//! What turns compute into recovered accuracy after pruning, against independently computed
//! values: the distillation loss (a hand computation in Python's float64, numbers below),
//! BatchNorm re-estimation (a direct convolution and its mean/variance written out here), the
//! budget (steps counted), a last iteration that lands on its target, and a recovery that ends
//! on a second split (the BatchNorm statistics it leaves, computed the same independent way).

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use pare::model::{weights, Node};
use pare::prune::schedule::{run, Budget, Polish, PruneConfig, RunData, StepSize, Target};
use pare::testing::random_net;
use pare::train::{distillation_loss, recalibrate_batchnorm, Mix, Schedule, TrainConfig};
use rand::SeedableRng;
use std::sync::atomic::AtomicBool;

#[test]
fn distillation_loss_matches_a_hand_computation() {
    let device = Device::flex();
    let s: Tensor<2> = Tensor::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 0.5, -1.0, 2.0], [2, 3]), &device);
    let t: Tensor<2> = Tensor::from_data(TensorData::new(vec![3.0f32, 1.0, 0.0, 0.0, 0.0, 4.0], [2, 3]), &device);
    let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
    // Python, float64: KL(batch mean) 0.310248923355, CE 1.324458630551;
    // 0.75 · 2² · KL + 0.25 · CE = 1.261861427703.
    let got = distillation_loss(s.clone(), t.clone(), y.clone(), 2.0, 0.75).into_scalar::<f32>();
    assert!((f64::from(got) - 1.261_861_427_7).abs() < 1e-5, "{got}");
    // Weight 1: the soft term alone, 4 · KL.
    let soft = distillation_loss(s.clone(), t, y.clone(), 2.0, 1.0).into_scalar::<f32>();
    assert!((f64::from(soft) - 4.0 * 0.310_248_923_355).abs() < 1e-5, "{soft}");
    // A teacher equal to the student leaves only the label term: (1 − w) · CE.
    let same = distillation_loss(s.clone(), s, y, 3.0, 0.5).into_scalar::<f32>();
    assert!((f64::from(same) - 0.5 * 1.324_458_630_551).abs() < 1e-5, "{same}");
}

#[test]
fn mixup_blends_images_and_labels_as_computed_by_hand() {
    let device = Device::flex();
    let mix = Mix { partner: vec![1, 0], lambda: vec![0.75, 1.0] };
    // Logits as above; sample 0 is 3/4 its own label 0 and 1/4 its partner's label 2, sample 1
    // unmixed. Python, float64: (−(0.75·log p₀[0] + 0.25·log p₀[2]) − log p₁[2]) / 2 =
    // 1.074458630551.
    let s: Tensor<2> = Tensor::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 0.5, -1.0, 2.0], [2, 3]), &device);
    let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
    let got = mix.cross_entropy(s, y).into_scalar::<f32>();
    assert!((f64::from(got) - 1.074_458_630_551).abs() < 1e-5, "{got}");
    // Images: 0.75·x₀ + 0.25·x₁ and x₁ itself.
    let x: Tensor<4> = Tensor::from_data(TensorData::new(vec![4.0f32, 8.0, 0.0, -4.0], [2, 1, 1, 2]), &device);
    let got = mix.images(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(got, vec![3.0, 5.0, 0.0, -4.0]);
    // Draws: a permutation, λ in [0.5, 1], and p = 0 mixes nothing.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let m = Mix::draw(64, 1.0, &mut rng);
    let mut sorted = m.partner.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..64).collect::<Vec<_>>());
    assert!(m.lambda.iter().all(|&l| (0.5..=1.0).contains(&l)) && m.lambda.iter().any(|&l| l < 0.99));
    assert!(Mix::draw(64, 0.0, &mut rng).lambda.iter().all(|&l| l == 1.0));
}

/// The first conv's pre-BatchNorm outputs, per channel, straight from the weights and pixels.
fn first_conv_outputs(
    net: &pare::model::Net,
    ds: &pare::data::Dataset,
    images: std::ops::Range<usize>,
) -> Vec<Vec<f64>> {
    let Node::Conv { name, out, kernel, stride, padding, .. } = &net.arch.nodes[0] else { panic!("conv first") };
    let t = weights::to_tensors(net);
    let w = &t[&format!("{name}.weight")].1;
    let [c, h, wd] = ds.shape;
    let (k, s, p) = (*kernel as i64, *stride as i64, *padding as i64);
    let (oh, ow) = ((h as i64 + 2 * p - k) / s + 1, (wd as i64 + 2 * p - k) / s + 1);
    let mut outs = vec![vec![]; *out];
    for i in images {
        let img = ds.image(i);
        for (o, acc) in outs.iter_mut().enumerate() {
            for y in 0..oh {
                for x in 0..ow {
                    let mut v = 0.0f64;
                    for ch in 0..c {
                        let (m, sd) = (f64::from(net.arch.mean[ch]), f64::from(net.arch.std[ch]));
                        for dy in 0..k {
                            for dx in 0..k {
                                let (iy, ix) = (y * s + dy - p, x * s + dx - p);
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                    continue;
                                }
                                let px = f64::from(img[ch * h * wd + iy as usize * wd + ix as usize]) / 255.0;
                                let wv =
                                    f64::from(w[((o * c + ch) * k as usize + dy as usize) * k as usize + dx as usize]);
                                v += wv * (px - m) / sd;
                            }
                        }
                    }
                    acc.push(v);
                }
            }
        }
    }
    outs
}

#[test]
fn batchnorm_reestimation_matches_an_independent_mean_and_variance() {
    let ad = Device::flex().autodiff();
    let ds = pare::data::load("synthetic", "train").unwrap().take(24);
    let net = random_net("tiny", 5, &ad);
    let net = recalibrate_batchnorm(net, &ds, 3, 8, &ad);
    // Three batches of 8.
    assert_first_batchnorm_estimated_on(&net.valid(), &ds, 3, 8);
}

/// Asserts that `net`'s first BatchNorm holds the statistics of the first `batches` batches of
/// `size` images of `ds`, in order: the average of the batches' means and of their unbiased
/// variances (PyTorch's momentum=None), from `net`'s first conv by a direct convolution.
fn assert_first_batchnorm_estimated_on(net: &pare::model::Net, ds: &pare::data::Dataset, batches: usize, size: usize) {
    let t = weights::to_tensors(net);
    let (mean, var) = (&t["bn1.running_mean"].1, &t["bn1.running_var"].1);
    let outputs: Vec<Vec<Vec<f64>>> =
        (0..batches).map(|b| first_conv_outputs(net, ds, b * size..(b + 1) * size)).collect();
    let k = batches as f64;
    for ch in 0..mean.len() {
        let (mut m_avg, mut v_avg) = (0.0, 0.0);
        for b in &outputs {
            let v = &b[ch];
            let n = v.len() as f64;
            let m = v.iter().sum::<f64>() / n;
            m_avg += m / k;
            v_avg += v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / k;
        }
        assert!(
            (f64::from(mean[ch]) - m_avg).abs() < 1e-4 * (1.0 + m_avg.abs()),
            "channel {ch}: mean {} vs {m_avg}",
            mean[ch]
        );
        assert!((f64::from(var[ch]) - v_avg).abs() < 1e-3 * (1.0 + v_avg), "channel {ch}: var {} vs {v_avg}", var[ch]);
    }
}

#[test]
fn budget_parses_units() {
    assert_eq!("2000".parse::<Budget>(), Ok(Budget::Steps(2000)));
    assert_eq!("600s".parse::<Budget>(), Ok(Budget::Seconds(600.0)));
    assert_eq!("10m".parse::<Budget>(), Ok(Budget::Seconds(600.0)));
    assert_eq!("1.5h".parse::<Budget>(), Ok(Budget::Seconds(5400.0)));
    assert_eq!("5ep".parse::<Budget>(), Ok(Budget::Epochs(5.0)));
    assert_eq!(Budget::Epochs(2.5).resolve(40), Budget::Steps(100));
    for bad in ["", "0", "-3m", "ten", "5x", "nanm"] {
        assert!(bad.parse::<Budget>().is_err(), "{bad}");
    }
}

fn small_run(cfg: &PruneConfig) -> pare::prune::schedule::RunState {
    small_run_polished(cfg, None).1
}

fn small_run_polished(
    cfg: &PruneConfig,
    polish: Option<&pare::data::Dataset>,
) -> (pare::model::Net, pare::prune::schedule::RunState) {
    let device = Device::flex();
    let train = pare::data::load("synthetic", "train").unwrap().take(256);
    let calib = train.clone().take(32);
    let eval = pare::data::load("synthetic", "test").unwrap().take(64);
    let data = RunData { train: &train, calib: &calib, eval: &eval, polish };
    let out = tempfile::tempdir().unwrap();
    let net = random_net("tiny", 1, &device);
    run(Some(net), cfg, &data, out.path(), false, &device, &AtomicBool::new(false)).unwrap()
}

#[test]
fn a_schedule_span_continues_one_cosine() {
    let cfg = TrainConfig { lr: 0.01, schedule: Schedule::Cosine, ..TrainConfig::default() };
    // The whole cosine: 0.01 · (1 + cos(π t)) / 2.
    assert!((cfg.lr_at(0.0) - 0.01).abs() < 1e-15);
    assert!((cfg.lr_at(0.5) - 0.005).abs() < 1e-15);
    // Its last fifth: half-way through it is the cosine at 0.9, 0.01 · (1 + cos 0.9π) / 2 =
    // 0.01 · (1 − 0.951056516295) / 2 = 0.000244717418524.
    let tail = TrainConfig { span: (0.8, 1.0), ..cfg.clone() };
    assert!((tail.lr_at(0.5) - 0.000_244_717_418_524).abs() < 1e-12, "{}", tail.lr_at(0.5));
    // Its first four fifths end where the tail starts: 0.01 · (1 + cos 0.8π) / 2 = 0.000954915028.
    let head = TrainConfig { span: (0.0, 0.8), ..cfg };
    assert!((head.lr_at(1.0) - 0.000_954_915_028_125).abs() < 1e-12);
    assert!((tail.lr_at(0.0) - head.lr_at(1.0)).abs() < 1e-15);
}

#[test]
fn the_recovery_ends_on_the_polish_split() {
    let cfg = PruneConfig {
        criterion: pare::prune::criteria::Criterion::L1,
        step: StepSize::Fraction(0.2),
        target: Target { kept_ratio: Some(0.6), ..Target::default() },
        calib_samples: 32,
        batch_size: 32,
        budget: Some(Budget::Steps(40)),
        iteration_share: 0.25,
        polish: Polish { share: 0.25, bn_batches: 2 },
        ..PruneConfig::default()
    };
    // A split unlike the training one: its images set the BatchNorm statistics at the end.
    let polish = pare::data::load("synthetic", "test").unwrap().take(96);
    let (net, state) = small_run_polished(&cfg, Some(&polish));
    let steps: Vec<usize> = state.history.iter().map(|h| h.steps).collect();
    // The budget as without polish (10 after the first removal, the recovery's 30 in all:
    // 22 on the training split, the last quarter, 8, on the polish split).
    assert_eq!(steps, vec![0, 10, 30]);
    // Re-estimated at the end on the polish split's first two batches of 32, from the final
    // weights.
    assert_first_batchnorm_estimated_on(&net, &polish, 2, 32);
}

#[test]
fn a_step_budget_is_spent_and_not_exceeded() {
    let cfg = PruneConfig {
        criterion: pare::prune::criteria::Criterion::L1,
        step: StepSize::Fraction(0.2),
        target: Target { kept_ratio: Some(0.6), ..Target::default() },
        calib_samples: 32,
        batch_size: 32,
        budget: Some(Budget::Steps(40)),
        iteration_share: 0.25,
        ..PruneConfig::default()
    };
    let state = small_run(&cfg);
    let steps: Vec<usize> = state.history.iter().map(|h| h.steps).collect();
    let total: usize = steps.iter().sum();
    // 40 · 0.25 = 10 after the first removal; the second meets the target, so its fine-tune is
    // the recovery and takes the remaining 30.
    assert!((36..=44).contains(&total), "within 10 % of 40: {steps:?}");
    assert_eq!(steps, vec![0, 10, 30]);
    let last = state.history.last().unwrap();
    assert!(last.recovery && last.removed > 0, "the last removal's fine-tune is the recovery");

    // Without a budget: --finetune-steps per removal, then a recovery row of --final-steps.
    let cfg = PruneConfig { budget: None, finetune_steps: 3, final_steps: 5, ..cfg };
    let state = small_run(&cfg);
    let steps: Vec<usize> = state.history.iter().map(|h| h.steps).collect();
    assert_eq!(steps, vec![0, 3, 3, 5]);
    let last = state.history.last().unwrap();
    assert!(last.recovery && last.removed == 0, "a recovery row of its own");
}

#[test]
fn the_last_iteration_lands_on_a_macs_target() {
    let cfg = PruneConfig {
        criterion: pare::prune::criteria::Criterion::L1,
        step: StepSize::Fraction(0.6),
        target: Target { flops_reduction: Some(0.3), ..Target::default() },
        calib_samples: 32,
        batch_size: 32,
        finetune_steps: 2,
        distill: None,
        ..PruneConfig::default()
    };
    let state = small_run(&cfg);
    let (first, last) = (&state.history[0], state.history.last().unwrap());
    let reduction = 1.0 - last.macs as f64 / first.macs as f64;
    // A 60 % step would remove far more; the landing removes just enough (one tiny-CNN channel
    // is at most ~5 % of its MACs).
    assert_eq!(state.history.len(), 2, "one iteration reaches it");
    assert!((0.3..0.36).contains(&reduction), "MACs reduction {reduction}");
    // The floor holds: no layer below 1/8 of its width.
    for ((_, c0), (_, c)) in first.channels.iter().zip(&last.channels) {
        assert!(*c >= c0.div_ceil(8), "{c} of {c0}");
    }
}
