//! Helpers shared by the host tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` beside the checkout, or `None` with a loud message.
pub fn shared(what: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if p.join(what).exists() {
        Some(p)
    } else {
        eprintln!("\n!!!!!!!! SKIPPED: ../shared/{what} is absent; this test needs the real data !!!!!!!!\n");
        None
    }
}

/// `n` CIFAR records: label `i % 10`, pixels `(i + j) % 256`.
pub fn cifar_records(n: usize) -> Vec<u8> {
    let mut out = vec![];
    for i in 0..n {
        out.push((i % 10) as u8);
        out.extend((0..3072).map(|j| ((i + j) % 256) as u8));
    }
    out
}
