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

/// The ONNX conformance models (`scripts/onnx_conformance.py`, run by the onnx venv's Python,
/// `$PARE_ONNX_VENV`) written into `dir`; panics, saying `scripts/setup` installs the venv, where
/// it cannot run.
pub fn onnx_conformance_models(dir: &std::path::Path) -> Vec<PathBuf> {
    let python = venv_python("PARE_ONNX_VENV", "onnx-venv");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/onnx_conformance.py");
    let out = std::process::Command::new(&python).arg(script).arg(dir).output();
    let out = out.unwrap_or_else(|e| panic!("{}: {e}; scripts/setup installs the ONNX venv", python.display()));
    assert!(out.status.success(), "onnx_conformance.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    files_with_extension(dir, "onnx")
}
