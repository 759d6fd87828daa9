//! A deterministic synthetic 10-class dataset of 32×32 RGB images, so every command works
//! without a download: class `k` is a pattern (`k % 5`: horizontal or vertical stripes,
//! checkerboard, disc, diagonal stripes) in a palette (`k / 5`: warm or cool), with random
//! phase, position, contrast and noise.

use super::{DataError, Dataset};
use rand::{Rng, SeedableRng};

/// Class `k`'s pattern and palette.
const NAMES: [&str; 10] = [
    "warm-hstripes",
    "warm-vstripes",
    "warm-checker",
    "warm-disc",
    "warm-diagonal",
    "cool-hstripes",
    "cool-vstripes",
    "cool-checker",
    "cool-disc",
    "cool-diagonal",
];

/// `train` (5,000 images) or `test` (1,000), identical on every machine.
pub fn synthetic(split: &str) -> Result<Dataset, DataError> {
    let (n, seed) = match split {
        "train" => (5000, 1),
        "test" => (1000, 2),
        other => return Err(DataError::UnknownSplit(other.into())),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut ds = Dataset {
        images: vec![],
        labels: vec![],
        shape: [3, 32, 32],
        classes: 10,
        source: format!("synthetic:{split}"),
        class_names: NAMES.iter().map(|s| s.to_string()).collect(),
    };
    for i in 0..n {
        let k = (i % 10) as u8;
        ds.labels.push(k);
        ds.images.extend(render(k, &mut rng));
    }
    Ok(ds)
}

fn render(k: u8, rng: &mut impl Rng) -> Vec<u8> {
    let pattern = k % 5;
    let palette: [[f32; 3]; 2] =
        if k < 5 { [[0.9, 0.5, 0.1], [0.3, 0.1, 0.05]] } else { [[0.1, 0.5, 0.9], [0.05, 0.2, 0.3]] };
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let freq: f32 = rng.random_range(0.5..0.8);
    let (cx, cy): (f32, f32) = (rng.random_range(10.0..22.0), rng.random_range(10.0..22.0));
    let contrast: f32 = rng.random_range(0.6..1.0);
    let mut img = vec![0u8; 3 * 32 * 32];
    for y in 0..32 {
        for x in 0..32 {
            let (fx, fy) = (x as f32, y as f32);
            let v = match pattern {
                0 => (fy * freq + phase).sin(),
                1 => (fx * freq + phase).sin(),
                2 => (fx * freq + phase).sin() * (fy * freq + phase).sin(),
                3 => {
                    if ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt() < 8.0 {
                        1.0
                    } else {
                        -1.0
                    }
                }
                _ => ((fx + fy) * freq * 0.7 + phase).sin(),
            };
            let t = 0.5 + 0.5 * v * contrast;
            for c in 0..3 {
                let base = palette[0][c] * t + palette[1][c] * (1.0 - t);
                let noise: f32 = rng.random_range(-0.08..0.08);
                img[c * 1024 + y * 32 + x] = ((base + noise).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    img
}
