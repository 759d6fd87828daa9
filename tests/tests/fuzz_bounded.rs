//! The fuzz targets' body, run boundedly on stable: mutated real model files (f32 and int8,
//! residual and shortcut ops included) and arbitrary inputs must never panic.

use burn::tensor::Device;
use pare::export::{export, Quant};
use pare_tests::random_net;
use rand::{Rng, SeedableRng};

#[test]
fn mutated_models_and_arbitrary_inputs_never_panic() {
    let device = Device::flex();
    let calib = pare::data::load("synthetic", "train").unwrap().take(16);
    let mut seeds = vec![];
    for (name, q) in [("tiny", Quant::F32), ("tiny", Quant::Int8), ("resnet8", Quant::Int8)] {
        seeds.push(export(&random_net(name, 9, &device), q, Some(&calib), None).unwrap());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let iterations = std::env::var("PARE_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for i in 0..iterations {
        let seed = &seeds[i % seeds.len()];
        let mut bytes = seed.clone();
        // Mutate the payload, then fix the CRC half of the time so decoding goes deep.
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(16..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = rng.random(),
                1 => bytes[at] ^= 1 << rng.random_range(0..8),
                _ => {
                    let end = (at + rng.random_range(1..8)).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        if i % 2 == 0 {
            bytes = pare_format::frame(&bytes[16..]);
        }
        let input: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
        pare_device::fuzzing::exercise(&bytes, &input);
    }
    // Valid seeds with arbitrary inputs run to completion.
    for s in &seeds {
        let input: Vec<u8> = (0..97).map(|_| rng.random()).collect();
        pare_device::fuzzing::exercise(s, &input);
    }
}
