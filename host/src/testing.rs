//! Helpers shared by the test suites (host and end-to-end); not part of the stable API.

use crate::model::{weights, zoo, Net};
use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// The `../shared` folder beside the checkout (real CIFAR-10, Flowers-102 and pretrained
/// models), after checking that `../shared/<what>` is there. Panics, naming what is missing, when
/// it is not: a test that needs the real data fails without it rather than passing unchecked.
pub fn shared(what: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(
        p.join(what).exists(),
        "\n\n!!!!!!!! ../shared/{what} is missing ({}): this test needs the real data. The shared folder \
         (data/cifar10, data/flowers102-64, models/resnet-cifar10) must sit beside the checkout, as \
         ../shared from the repository root. !!!!!!!!\n",
        p.join(what).display()
    );
    p
}

/// A zoo model with seeded random weights and non-trivial BatchNorm statistics (fresh BN would
/// hide mistakes in folding and channel slicing).
pub fn random_net(name: &str, seed: u64, device: &Device) -> Net {
    device.seed(seed);
    let arch = zoo::by_name(name, 10).expect("zoo model");
    let net = Net::init(&arch, device).expect("init");
    let mut t = weights::to_tensors(&net);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (k, (_, v)) in t.iter_mut() {
        if k.contains("running_var") {
            v.iter_mut().for_each(|x| *x = rng.random_range(0.5..2.0));
        } else if k.contains("running_mean") || (k.contains("bn") && k.ends_with("bias")) {
            v.iter_mut().for_each(|x| *x = rng.random_range(-0.2..0.2));
        }
    }
    weights::from_tensors(&arch, &t, device).expect("from tensors")
}

/// The Python of a venv the scripts set up: `$VAR`, else `$PARE_CACHE/<default>` (`$PARE_CACHE`
/// defaulting to `~/.cache/pare`), as `scripts/env` sets them.
pub fn venv_python(var: &str, default: &str) -> PathBuf {
    let venv = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("PARE_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME or PARE_CACHE is set")).join(".cache/pare")
        });
        cache.join(default)
    });
    venv.join("bin/python")
}

/// Files with extension `ext` in `dir`, sorted.
pub fn files_with_extension(dir: &std::path::Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a readable folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The onnx venv's Python (`$PARE_ONNX_VENV`), checked: panics, saying `scripts/setup` installs
/// it, where it is missing or cannot import onnx, onnxruntime and numpy. ONNX checks are never
/// left out quietly.
pub fn onnx_python() -> PathBuf {
    let python = venv_python("PARE_ONNX_VENV", "onnx-venv");
    let ok = std::process::Command::new(&python).args(["-c", "import onnx, onnxruntime, numpy"]).output();
    assert!(
        ok.as_ref().is_ok_and(|o| o.status.success()),
        "\n\n!!!!!!!! {} cannot import onnx, onnxruntime and numpy ({}): run scripts/setup (it installs them \
         into $PARE_ONNX_VENV), or point PARE_ONNX_VENV at a venv that has them !!!!!!!!\n",
        python.display(),
        ok.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).trim().to_string())
    );
    python
}

/// The ONNX conformance models (`scripts/onnx_conformance.py`, run by [`onnx_python`]) written
/// into `dir` with their inputs, onnxruntime's outputs and `cases.json`; the models, sorted.
pub fn onnx_conformance_models(dir: &std::path::Path) -> Vec<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/onnx_conformance.py");
    let out = std::process::Command::new(onnx_python()).arg(script).arg(dir).output().expect("run onnx_conformance.py");
    assert!(
        out.status.success(),
        "scripts/onnx_conformance.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    files_with_extension(dir, "onnx")
}
