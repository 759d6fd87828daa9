//! The exported model run by pare-device (the board's code, on the host) against burn's
//! forward pass, for every model family, pruned ones included.

use burn::tensor::Device;
use pare::data::load;
use pare::export::{export, Quant};
use pare_tests::{random_net, shared};

/// Max |device − burn| relative to the largest burn logit, over `n` images.
fn agreement(net: &pare::model::Net, quant: Quant, ds: &pare::data::Dataset) -> (f64, f64) {
    let device = Device::flex();
    let bytes = export(net, quant, Some(ds), None).unwrap();
    let em = pare::emulate::emulate(&bytes, ds).unwrap();
    let want = pare::train::logits(net, ds, 16, &device);
    let (mut diff, mut scale, mut same) = (0f64, 0f64, 0usize);
    for (a, b) in em.outputs.iter().zip(&want) {
        for (x, y) in a.iter().zip(b) {
            diff = diff.max(f64::from((x - y).abs()));
            scale = scale.max(f64::from(y.abs()));
        }
        same += usize::from(pare::train::argmax(a) == pare::train::argmax(b));
    }
    (diff / scale.max(1e-6), same as f64 / ds.len() as f64)
}

#[test]
fn f32_export_matches_burn_for_every_family() {
    let ds = load("synthetic", "test").unwrap().take(6);
    for name in ["tiny", "resnet8", "resnet20", "vgg16"] {
        let net = random_net(name, 1, &Device::flex());
        let (rel, _) = agreement(&net, Quant::F32, &ds);
        assert!(rel < 1e-4, "{name}: relative difference {rel}");
    }
}

#[test]
fn imagenet_layouts_at_64_match_burn() {
    // ResNet-18's ImageNet stem (7×7/2 conv, 3×3/2 max pool with padding 1) and ResNet-8 with
    // its average pool made global, at 64×64: the device's padded pool and large-kernel conv
    // against burn's.
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let ds = pare::data::Dataset {
        images: (0..3 * 64 * 64 * 3).map(|_| rng.random()).collect(),
        labels: vec![0; 3],
        shape: [3, 64, 64],
        classes: 102,
        source: "random 64×64".into(),
        class_names: vec![],
    };
    let device = Device::flex();
    for name in ["resnet18", "resnet8"] {
        device.seed(7);
        let arch = pare::model::zoo::for_input(name, 102, 64).unwrap();
        let net = pare::model::Net::init(&arch, &device).unwrap();
        let (rel, _) = agreement(&net, Quant::F32, &ds);
        assert!(rel < 1e-4, "{name} at 64×64: relative difference {rel}");
    }
}

#[test]
fn pruned_models_export_and_match_too() {
    let device = Device::flex();
    let ds = load("synthetic", "test").unwrap().take(4);
    for name in ["resnet20", "resnet8"] {
        let net = random_net(name, 2, &device);
        let groups = pare::prune::groups::Groups::of(&net.arch).unwrap();
        let mut keep = groups.keep_all();
        for s in groups.prunable(false) {
            let n = keep[s].len();
            keep[s] = (0..n).filter(|c| c % 3 != 1).collect();
        }
        let small = pare::prune::surgery::prune(&net, &groups, &keep, &device).unwrap();
        let (rel, _) = agreement(&small, Quant::F32, &ds);
        assert!(rel < 1e-4, "pruned {name}: relative difference {rel}");
    }
}

#[test]
fn int8_export_stays_close_to_f32() {
    let ds = load("synthetic", "test").unwrap().take(32);
    for name in ["tiny", "resnet8"] {
        let net = random_net(name, 3, &Device::flex());
        let (rel, same) = agreement(&net, Quant::Int8, &ds);
        assert!(rel < 0.1, "{name}: int8 relative difference {rel}");
        assert!(same >= 0.8, "{name}: int8 agrees with f32 on only {same} of top-1");
    }
}

#[test]
fn pretrained_resnet20_f32_matches_burn_within_1e4() {
    let shared = shared("models/resnet-cifar10");
    let device = Device::flex();
    let arch = pare::model::zoo::resnet_cifar(20, 10);
    let net =
        pare::model::weights::load_weights(&arch, &shared.join("models/resnet-cifar10/resnet20.safetensors"), &device)
            .unwrap();
    let ds = pare::data::load_cifar(&shared.join("data/cifar10"), "test_lossless").unwrap().take(20);
    let bytes = export(&net, Quant::F32, None, None).unwrap();
    let em = pare::emulate::emulate(&bytes, &ds).unwrap();
    let want = pare::train::logits(&net, &ds, 20, &device);
    for (a, b) in em.outputs.iter().zip(&want) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}

/// A Python with PyTorch and `modules` for the PyTorch-exported models: `$PARE_PYTHON`, else
/// `$PARE_TORCH_VENV/bin/python` (the benchmarks' venv, `$PARE_CACHE/torch-venv` by default). The tests that need it are ignored
/// by default; run with `--ignored` where it exists, and they fail, saying what is missing,
/// where it does not.
fn torch_python(modules: &str) -> std::path::PathBuf {
    let python = std::env::var_os("PARE_PYTHON")
        .map_or_else(|| pare::testing::venv_python("PARE_TORCH_VENV", "torch-venv"), std::path::PathBuf::from);
    let ok = std::process::Command::new(&python).args(["-c", &format!("import {modules}")]).output();
    assert!(
        ok.as_ref().is_ok_and(|o| o.status.success()),
        "\n\n!!!!!!!! {} cannot import {modules} ({}): set PARE_PYTHON to a Python that can (pip install torch onnx \
         safetensors) !!!!!!!!\n",
        python.display(),
        ok.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).trim().to_string())
    );
    python
}

/// Runs `net`'s ONNX export in onnxruntime on random images and compares with pare's logits.
fn ort_check(python: &std::path::Path, net: &pare::model::Net, label: &str) {
    use rand::{Rng, SeedableRng};
    let device = Device::flex();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/onnx_check.py");
    let dir = tempfile::tempdir().unwrap();
    let [c, h, w] = [net.arch.input.c, net.arch.input.h, net.arch.input.w];
    let n = 6;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let ds = pare::data::Dataset {
        images: (0..n * c * h * w).map(|_| rng.random()).collect(),
        labels: vec![0; n],
        shape: [c, h, w],
        classes: 10,
        source: "random".into(),
        class_names: vec![],
    };
    let idx: Vec<usize> = (0..n).collect();
    let (x, _) = pare::data::batch::<rand::rngs::StdRng>(&ds, &idx, &net.arch.mean, &net.arch.std, None, &device);
    let xs: Vec<f32> = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let want = pare::train::logits(net, &ds, n, &device);
    let k = want[0].len();
    let (mf, xf, yf) = (dir.path().join("m.onnx"), dir.path().join("x.f32"), dir.path().join("y.f32"));
    std::fs::write(&mf, pare::export::onnx::export_onnx(net).unwrap()).unwrap();
    std::fs::write(&xf, xs.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    std::fs::write(&yf, want.concat().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let dims = [n, c, h, w, k].map(|d| d.to_string());
    let out = std::process::Command::new(python).arg(&script).args([&mf, &xf, &yf]).args(&dims).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{label}: {text}");
    let rel: f64 = text.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("max_rel");
    eprintln!("{label}: onnxruntime vs pare {text}");
    assert!(rel < 1e-5, "{label}: relative difference {rel}");
    assert!(text.contains(&format!("argmax_agree {n}/{n}")), "{label}: {text}");
}

/// Models with every node kind: max pools (tiny), an average pool (resnet8), option-A channel
/// placements with dropped channels (a pruned resnet20), a padded pool and a 7×7/2 stem
/// (resnet18 at 64).
fn every_kind() -> Vec<(&'static str, pare::model::Net)> {
    let device = Device::flex();
    let r20 = random_net("resnet20", 5, &device);
    let groups = pare::prune::groups::Groups::of(&r20.arch).unwrap();
    let mut keep = groups.keep_all();
    for s in groups.prunable(false) {
        keep[s] = (0..keep[s].len()).filter(|c| c % 3 != 1).collect();
    }
    let pruned = pare::prune::surgery::prune(&r20, &groups, &keep, &device).unwrap();
    device.seed(11);
    let r18 = pare::model::Net::init(&pare::model::zoo::for_input("resnet18", 102, 64).unwrap(), &device).unwrap();
    vec![
        ("tiny", random_net("tiny", 3, &device)),
        ("resnet8", random_net("resnet8", 4, &device)),
        ("pruned resnet20", pruned),
        ("resnet18@64", r18),
    ]
}

#[test]
fn onnx_export_runs_in_onnxruntime_with_pares_logits() {
    let python = pare::testing::onnx_python();
    for (label, net) in every_kind() {
        ort_check(&python, &net, label);
    }
}

#[test]
fn onnx_round_trip_imports_the_same_model_and_prunes_on() {
    let device = Device::flex();
    for (label, net) in every_kind() {
        let bytes = pare::export::onnx::export_onnx(&net).unwrap();
        let back = pare::model::onnx::import(&bytes, &device).unwrap();
        // The same graph, names and normalisation (labels are not in ONNX).
        assert_eq!(
            (&back.arch.nodes, back.arch.input, &back.arch.mean, &back.arch.std),
            (&net.arch.nodes, net.arch.input, &net.arch.mean, &net.arch.std),
            "{label}"
        );
        let ds = load("synthetic", "test").unwrap().take(4);
        if net.arch.input.h == 32 {
            let (a, b) = (pare::train::logits(&net, &ds, 4, &device), pare::train::logits(&back, &ds, 4, &device));
            assert_eq!(a, b, "{label}: the imported weights are the exported ones");
        }
    }
    // Import → prune → export ONNX → onnxruntime agrees with pare.
    let python = pare::testing::onnx_python();
    let (_, r8) = every_kind().swap_remove(1);
    let imported = pare::model::onnx::import(&pare::export::onnx::export_onnx(&r8).unwrap(), &device).unwrap();
    let groups = pare::prune::groups::Groups::of(&imported.arch).unwrap();
    let mut keep = groups.keep_all();
    for s in groups.prunable(false) {
        keep[s] = (0..keep[s].len()).filter(|c| c % 2 == 0).collect();
    }
    let pruned = pare::prune::surgery::prune(&imported, &groups, &keep, &device).unwrap();
    ort_check(&python, &pruned, "imported resnet8, pruned");
}

#[test]
fn onnx_import_refuses_an_unsupported_op_by_name_and_position() {
    // tiny's export with its first Relu turned into a Tanh (same length, so the protobuf stays
    // valid): refused, naming the op, the node and its index.
    let net = random_net("tiny", 3, &Device::flex());
    let mut bytes = pare::export::onnx::export_onnx(&net).unwrap();
    let op = [0x22u8, 4, b'R', b'e', b'l', b'u'];
    let at = bytes.windows(6).position(|w| w == op).unwrap();
    bytes[at + 2..at + 6].copy_from_slice(b"Tanh");
    let e = pare::model::onnx::import_arch(&bytes).unwrap_err().to_string();
    assert!(e.contains("Tanh") && e.contains("conv1.relu") && e.contains("node 2"), "{e}");
    // Not ONNX at all.
    assert!(pare::model::onnx::import_arch(b"\xff\xff\xff").is_err());
}

#[test]
#[ignore = "needs a Python with torch, onnx and safetensors (PARE_PYTHON or $PARE_CACHE/torch-venv): run with --ignored"]
fn pytorch_exported_resnet20_imports_to_the_builtin_models_logits() {
    // The pretrained ResNet-20 exported by PyTorch's own exporter, with and without constant
    // folding (BatchNorm folded into conv biases; the option-A pads computed by integer
    // subgraphs), imports to logits within 1e-4 of pare's built-in resnet20 on 50 CIFAR images.
    let shared = shared("models/resnet-cifar10");
    let python = torch_python("torch, onnx, safetensors");
    let device = Device::flex();
    let weights = shared.join("models/resnet-cifar10/resnet20.safetensors");
    let builtin =
        pare::model::weights::load_weights(&pare::model::zoo::resnet_cifar(20, 10), &weights, &device).unwrap();
    let ds = load(shared.join("data/cifar10").to_str().unwrap(), "test_lossless").unwrap().take(50);
    let want = pare::train::logits(&builtin, &ds, 50, &device);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/onnx_from_pytorch.py");
    let dir = tempfile::tempdir().unwrap();
    for mode in ["fold", "nofold"] {
        let onnx = dir.path().join(format!("r20-{mode}.onnx"));
        let out = std::process::Command::new(&python).arg(&script).arg(&onnx).arg(mode).arg(&weights).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut net = pare::model::onnx::import(&std::fs::read(&onnx).unwrap(), &device).unwrap();
        // The README's normalisation (ImageNet statistics), as a user passes --mean/--std.
        net.arch.mean = vec![0.485, 0.456, 0.406];
        net.arch.std = vec![0.229, 0.224, 0.225];
        let got = pare::train::logits(&net, &ds, 50, &device);
        let (mut diff, mut scale) = (0f32, 0f32);
        for (a, b) in got.iter().zip(&want) {
            for (x, y) in a.iter().zip(b) {
                diff = diff.max((x - y).abs());
                scale = scale.max(y.abs());
            }
        }
        eprintln!("PyTorch export ({mode}) imported: max |Δlogit| {diff:.2e} of {scale:.2}");
        assert!(diff <= 1e-4 * scale.max(1.0), "{mode}: logits differ by {diff}");
    }
}

#[test]
#[ignore = "needs a Python with torch and onnx (PARE_PYTHON or $PARE_CACHE/torch-venv): run with --ignored"]
fn keras_style_resnet8_from_pytorch_matches_onnxruntime() {
    // MLPerf Tiny's ResNet-8 as Keras builds it, in PyTorch with random weights: F.pad(x,
    // (0, 1, 0, 1)) before each stride-2 conv (asymmetric padding), 1×1 stride-2 shortcuts with
    // bias and no BatchNorm, raw 0..255 inputs (--mean 0 --std 1/255). Exported with and without
    // constant folding; pare's logits against onnxruntime's on 50 CIFAR images.
    let shared = shared("data/cifar10");
    let ort = pare::testing::onnx_python();
    let torch = torch_python("torch, onnx");
    let device = Device::flex();
    let ds = load(shared.join("data/cifar10").to_str().unwrap(), "test_lossless").unwrap().take(50);
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench");
    for mode in ["fold", "nofold"] {
        let onnx = dir.path().join(format!("k8-{mode}.onnx"));
        let out = std::process::Command::new(&torch)
            .arg(root.join("onnx_keras_resnet8.py"))
            .arg(&onnx)
            .arg(mode)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut net = pare::model::onnx::import(&std::fs::read(&onnx).unwrap(), &device).unwrap();
        net.arch.mean = vec![0.0; 3];
        net.arch.std = vec![1.0 / 255.0; 3];
        // Asymmetric padding came through: the stride-2 3×3 convs pad 0 top/left, 1 bottom/right.
        let asym = net.arch.nodes.iter().filter(|n| n.conv_pads() == Some([0, 0, 1, 1])).count();
        assert_eq!(asym, 2, "{mode}");
        let want = pare::train::logits(&net, &ds, 50, &device);
        let (xf, yf) = (dir.path().join("x.f32"), dir.path().join("y.f32"));
        let raw: Vec<u8> = ds.images.iter().flat_map(|&p| f32::from(p).to_le_bytes()).collect();
        std::fs::write(&xf, raw).unwrap();
        std::fs::write(&yf, want.concat().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        let out = std::process::Command::new(&ort)
            .arg(root.join("onnx_check.py"))
            .args([&onnx, &xf, &yf])
            .args(["50", "3", "32", "32", "10"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: {text}");
        let rel: f64 = text.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("max_rel");
        eprintln!("Keras-style ResNet-8 ({mode}): onnxruntime vs pare {text}");
        assert!(rel < 1e-4, "{mode}: relative difference {rel}");
    }
}
