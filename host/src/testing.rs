//! Helpers shared by the test suites (host and end-to-end); not part of the stable API.

use crate::model::{weights, zoo, Net};
use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// `../shared/<what>` beside the checkout, or `None` after a loud skip message.
pub fn shared(what: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if p.join(what).exists() {
        Some(p)
    } else {
        eprintln!("\n!!!!!!!! SKIPPED: ../shared/{what} is absent; this test needs the real data !!!!!!!!\n");
        None
    }
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
