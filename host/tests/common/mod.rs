//! Helpers shared by the host tests.
#![allow(dead_code)]

/// `n` CIFAR records: label `i % 10`, pixels `(i + j) % 256`.
pub fn cifar_records(n: usize) -> Vec<u8> {
    let mut out = vec![];
    for i in 0..n {
        out.push((i % 10) as u8);
        out.extend((0..3072).map(|j| ((i + j) % 256) as u8));
    }
    out
}
