//! Batches as tensors: normalisation per model, optional augmentation (random crop with 4-pixel
//! zero padding and horizontal flip, the standard CIFAR recipe).

use super::Dataset;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;

/// Training-time augmentation.
pub struct Augment<'r, R: Rng> {
    pub rng: &'r mut R,
}

/// `(images [n, c, h, w] normalised, labels [n])` for `indices`.
pub fn batch<R: Rng>(
    ds: &Dataset,
    indices: &[usize],
    mean: &[f32],
    std: &[f32],
    mut augment: Option<Augment<'_, R>>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let [c, h, w] = ds.shape;
    let mut data = Vec::with_capacity(indices.len() * c * h * w);
    for &i in indices {
        let img = ds.image(i);
        let (dx, dy, flip) = match augment.as_mut() {
            Some(a) => (a.rng.random_range(-4i32..=4), a.rng.random_range(-4i32..=4), a.rng.random_bool(0.5)),
            None => (0, 0, false),
        };
        for ch in 0..c {
            let (m, s) = (mean.get(ch).copied().unwrap_or(0.0), std.get(ch).copied().unwrap_or(1.0));
            for y in 0..h as i32 {
                for x in 0..w as i32 {
                    let sx = if flip { w as i32 - 1 - x } else { x } + dx;
                    let sy = y + dy;
                    // Zero padding is applied to pixels (value 0), before normalisation.
                    let p = if sx < 0 || sy < 0 || sx >= w as i32 || sy >= h as i32 {
                        0.0
                    } else {
                        img[ch * h * w + sy as usize * w + sx as usize] as f32
                    };
                    data.push((p / 255.0 - m) / s);
                }
            }
        }
    }
    let n = indices.len();
    let x = Tensor::from_data(TensorData::new(data, [n, c, h, w]), device);
    let labels: Vec<i64> = indices.iter().map(|&i| i64::from(ds.labels[i])).collect();
    let y = Tensor::from_data(TensorData::new(labels, [n]), device);
    (x, y)
}
