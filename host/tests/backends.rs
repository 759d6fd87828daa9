//! burn-wgpu and libtorch against burn-flex: the same weights and input give the same logits
//! (within 1e-4), and one training step gives the same loss and weights. On a machine without a
//! GPU wgpu runs on Mesa's lavapipe (`scripts/setup` installs it); without any adapter its tests
//! fail (`-- --skip wgpu_` leaves them out knowingly). In a build without the `gpu` feature they
//! are ignored, as the libtorch ones are in a build without `--features libtorch` (`scripts/test`
//! builds with it when `scripts/build-libtorch` has installed PyTorch): listed as ignored, with
//! the reason, never passed without running.

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use pare::model::weights;
use pare::testing::random_net;
use pare::train::cross_entropy;

/// The GPU device; panics, with the way out, where wgpu finds no adapter.
fn gpu() -> Device {
    pare::gpu::open().unwrap_or_else(|e| {
        panic!("{e}\n(`cargo test -- --skip wgpu_` leaves the GPU comparisons out on this machine)")
    })
}

/// libtorch's CPU device.
fn libtorch() -> Device {
    pare::libtorch::open().unwrap_or_else(|e| panic!("{e}"))
}

/// Largest |a − b| relative to the largest |a|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(f32::MIN_POSITIVE, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A batch of N(0, 1) images from a local generator: the backends' global RNG is shared by the
/// tests running beside this one, and a draw between seeding and sampling gave the two runs of
/// a comparison different inputs (flex 2.3973 vs wgpu 2.3802 loss once, libtorch once before).
fn input(batch: usize, seed: u64) -> TensorData {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = batch * 3 * 32 * 32;
    // Box–Muller from uniform pairs.
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    TensorData::new(v, [batch, 3, 32, 32])
}

/// The comparisons seed the backends' shared RNG (`random_net`): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
#[cfg_attr(not(feature = "gpu"), ignore = "pare is built without the gpu feature (burn-wgpu)")]
fn wgpu_forward_matches_flex_for_every_model_family() {
    forward_matches_flex(gpu(), "wgpu");
}

#[test]
#[cfg_attr(not(feature = "libtorch"), ignore = "needs pare built with --features libtorch (scripts/build-libtorch)")]
fn libtorch_forward_matches_flex_for_every_model_family() {
    forward_matches_flex(libtorch(), "libtorch");
}

#[test]
#[cfg_attr(not(feature = "gpu"), ignore = "pare is built without the gpu feature (burn-wgpu)")]
fn wgpu_training_step_matches_flex() {
    training_step_matches_flex(gpu(), "wgpu");
}

/// Covers libtorch's patched kernels (vendor/burn-tch): ATen's convolution and batch-norm
/// backward and `threshold_backward` for ReLU.
#[test]
#[cfg_attr(not(feature = "libtorch"), ignore = "needs pare built with --features libtorch (scripts/build-libtorch)")]
fn libtorch_training_step_matches_flex() {
    training_step_matches_flex(libtorch(), "libtorch");
}

/// An int8 export of a net held on libtorch is byte-identical to that of the same net on
/// burn-flex: calibration runs on burn-flex whatever device trained the net (before, a libtorch
/// net panicked there with "input tensor `weight` is on the wrong backend").
#[test]
#[cfg_attr(not(feature = "libtorch"), ignore = "needs pare built with --features libtorch (scripts/build-libtorch)")]
fn libtorch_net_exports_like_flex() {
    let torch = libtorch();
    let _one_at_a_time = serial();
    let on_flex = random_net("resnet8", 5, &Device::flex());
    let on_torch = weights::from_tensors(&on_flex.arch, &weights::to_tensors(&on_flex), &torch).unwrap();
    let calib = pare::data::load("synthetic", "test").unwrap().take(16);
    let export =
        |net: &pare::model::Net| pare::export::export(net, pare::export::Quant::Int8, Some(&calib), None).unwrap();
    assert!(export(&on_flex) == export(&on_torch), "the int8 model depends on the device the net was on");
}

fn forward_matches_flex(other: Device, label: &str) {
    let _one_at_a_time = serial();
    let flex = Device::flex();
    for (i, name) in ["tiny", "resnet8", "resnet20", "resnet18", "vgg16"].into_iter().enumerate() {
        let on_flex = random_net(name, 10 + i as u64, &flex).valid();
        // Loaded independently from the same tensors, not moved: the other copy has its own path.
        let on_other = weights::from_tensors(&on_flex.arch, &weights::to_tensors(&on_flex), &other).unwrap().valid();
        let x = input(4, i as u64);
        let a = on_flex.forward(Tensor::from_data(x.clone(), &flex)).into_data().try_to_vec::<f32>().unwrap();
        let b = on_other.forward(Tensor::from_data(x, &other)).into_data().try_to_vec::<f32>().unwrap();
        let d = rel_diff(&a, &b);
        eprintln!("{name}: flex vs {label} logits, max relative difference {d:.2e}");
        assert!(d <= 1e-4, "{name}: {label} logits differ from flex by {d:e} (relative)");
    }
}

fn training_step_matches_flex(other: Device, label: &str) {
    let _one_at_a_time = serial();
    let start = random_net("resnet8", 3, &Device::flex());
    let start_tensors = weights::to_tensors(&start);
    let before: Vec<f32> = start_tensors.values().flat_map(|(_, v)| v.iter().copied()).collect();
    let mut runs = Vec::new();
    for device in [Device::flex(), other] {
        let ad = device.autodiff();
        let net = weights::from_tensors(&start.arch, &start_tensors, &ad).unwrap();
        let x = Tensor::<4>::from_data(input(8, 1), &ad);
        let y = Tensor::<1, Int>::from_data(TensorData::new((0..8i64).map(|i| i % 10).collect(), [8]), &ad);
        let loss = cross_entropy(net.forward(x), y, 0.0);
        let loss_value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let net = SgdConfig::new().init().step(0.1, net, grads);
        // Input seed 1 agrees within 7.5e-6. An input can put a ReLU input within rounding of
        // zero, where the backends' masks differ and the update differs by 0.5 % upstream
        // (seen with seed 7 of the earlier generator; every node's gradient downstream of it
        // agreed to 1e-7, and isolated add/ReLU/pool/BatchNorm backward passes agree exactly).
        // The update itself (gradient step and BatchNorm statistics), so a wrong gradient cannot
        // hide behind the unchanged bulk of the weights.
        let delta: Vec<f32> =
            weights::to_tensors(&net).into_values().flat_map(|(_, v)| v).zip(&before).map(|(a, b)| a - b).collect();
        runs.push((loss_value, delta));
    }
    let ((l_flex, d_flex), (l_other, d_other)) = (&runs[0], &runs[1]);
    let d = rel_diff(d_flex, d_other);
    eprintln!("training step: loss flex {l_flex} {label} {l_other}; update max relative difference {d:.2e}");
    assert!((l_flex - l_other).abs() <= 1e-4 * l_flex.abs().max(1.0), "loss {l_flex} vs {l_other}");
    assert!(d <= 1e-4, "the {label} update differs from flex's by {d:e} (relative)");
}
