//! torchvision's resnet18/34/50/101 and vgg11_bn/vgg16_bn (random weights, random BatchNorm
//! statistics), exported by both of PyTorch's ONNX exporters at CIFAR size (32×32, 200 test
//! images) and ImageNet size (224×224, the first 20 of them enlarged 7× by repetition), imported
//! by pare and compared with onnxruntime on the same images: top-1 on all but at most one image
//! in 200, logits within 1e-4 of the largest. `bench/torchvision_onnx.py` exports and runs
//! onnxruntime; it needs PyTorch and torchvision, which `PARE_TORCH=1 scripts/setup` installs
//! into `$PARE_TORCH_VENV` (6.7 GB), so the test is ignored by default and `scripts/test` runs it
//! where that venv exists.

use burn::tensor::Device;
use std::path::PathBuf;
use std::process::Command;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `n` CIFAR-10 test images (exact ones), each pixel repeated `scale`× in both directions.
fn images(n: usize, scale: usize) -> pare::data::Dataset {
    let shared = pare_tests::shared("data/cifar10");
    let ds = pare::data::load(shared.join("data/cifar10").to_str().unwrap(), "test_lossless").unwrap().take(n);
    if scale == 1 {
        return ds;
    }
    let [c, h, w] = ds.shape;
    let (sh, sw) = (h * scale, w * scale);
    let mut out = Vec::with_capacity(ds.len() * c * sh * sw);
    for i in 0..ds.len() {
        let img = &ds.images[i * c * h * w..(i + 1) * c * h * w];
        for ch in 0..c {
            for y in 0..sh {
                for x in 0..sw {
                    out.push(img[ch * h * w + (y / scale) * w + x / scale]);
                }
            }
        }
    }
    pare::data::Dataset { images: out, shape: [c, sh, sw], ..ds }
}

fn check(size: usize, n: usize, scale: usize) -> Vec<String> {
    let ds = images(n, scale);
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("images.u8");
    let hwc: Vec<u8> = (0..ds.len()).flat_map(|i| ds.image_hwc(i)).collect();
    std::fs::write(&raw, hwc).unwrap();
    let python = pare::testing::venv_python("PARE_TORCH_VENV", "torch-venv");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/torchvision_onnx.py");
    let status = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .arg(&raw)
        .arg(n.to_string())
        .arg(size.to_string())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}; PARE_TORCH=1 scripts/setup installs PyTorch", python.display()));
    assert!(status.success(), "torchvision_onnx.py failed");
    let device = Device::flex();
    let mut report = vec![];
    let files = pare::testing::files_with_extension(dir.path(), "onnx");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut net = match pare::model::onnx::import_file(&path, &device) {
            Ok(net) => net,
            Err(e) => {
                report.push(format!("FAIL {name}: {e}"));
                continue;
            }
        };
        (net.arch.mean, net.arch.std) = (MEAN.to_vec(), STD.to_vec());
        let got = pare::train::logits(&net, &ds, 10, &device);
        let want: Vec<f32> = std::fs::read(format!("{}.ort.f32", path.display()))
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let k = want.len() / n;
        let (mut diff, mut scale_, mut same) = (0f64, 0f64, 0usize);
        for (g, w) in got.iter().zip(want.chunks(k)) {
            for (a, b) in g.iter().zip(w) {
                diff = diff.max(f64::from((a - b).abs()));
                scale_ = scale_.max(f64::from(b.abs()));
            }
            same += usize::from(pare::train::argmax(g) == pare::train::argmax(w));
        }
        let rel = diff / scale_.max(1e-6);
        let ok = rel < 1e-4 && n - same <= n.div_ceil(200);
        report.push(format!("{} {name}: top-1 {same}/{n}, logits within {rel:.1e}", if ok { "ok" } else { "FAIL" }));
    }
    for f in std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()) {
        if f.extension().is_some_and(|e| e == "failed") {
            let why = std::fs::read_to_string(&f).unwrap_or_default();
            report.push(format!("(PyTorch's exporter) {}: {}", f.display(), why.lines().next().unwrap_or("")));
        }
    }
    report
}

#[test]
#[ignore = "needs PyTorch and torchvision (PARE_TORCH=1 scripts/setup); scripts/test runs it where they exist"]
fn torchvision_models_from_both_exporters_agree_with_onnxruntime() {
    let mut report = check(32, 200, 1);
    report.extend(check(224, 20, 7));
    for line in &report {
        eprintln!("{line}");
    }
    let failed: Vec<&String> = report.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failed.is_empty(), "{} of the imports failed or disagree", failed.len());
}
