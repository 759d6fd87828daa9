//! Batches as tensors: normalisation per model, optional augmentation: at 32×32 and below the
//! CIFAR recipe (random crop with 4-pixel zero padding, horizontal flip); above it the ImageNet
//! one (random-resized crop of 25–100 % of the area at aspect 3/4–4/3, bilinear, and a flip).

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
        if h > 32 {
            if let Some(a) = augment.as_mut() {
                resized_crop(img, [c, h, w], mean, std, a.rng, &mut data);
                continue;
            }
        }
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

/// A random-resized crop of `img` (planar `[c][h][w]`) back to `h`×`w`, maybe flipped,
/// normalised, appended to `out`.
fn resized_crop<R: Rng>(img: &[u8], [c, h, w]: [usize; 3], mean: &[f32], std: &[f32], rng: &mut R, out: &mut Vec<f32>) {
    let area = rng.random_range(0.25f64..=1.0);
    let ratio = rng.random_range((0.75f64).ln()..=(4.0f64 / 3.0).ln()).exp();
    let cw = ((area * ratio).sqrt() * w as f64).clamp(1.0, w as f64);
    let ch = ((area / ratio).sqrt() * h as f64).clamp(1.0, h as f64);
    let x0 = rng.random_range(0.0..=(w as f64 - cw));
    let y0 = rng.random_range(0.0..=(h as f64 - ch));
    let flip = rng.random_bool(0.5);
    for k in 0..c {
        let plane = &img[k * h * w..(k + 1) * h * w];
        let (m, s) = (mean.get(k).copied().unwrap_or(0.0), std.get(k).copied().unwrap_or(1.0));
        for y in 0..h {
            let sy = (y0 + (y as f64 + 0.5) * ch / h as f64 - 0.5).clamp(0.0, (h - 1) as f64);
            let (y1, fy) = (sy.floor() as usize, sy.fract());
            let y2 = (y1 + 1).min(h - 1);
            for x in 0..w {
                let xo = if flip { w - 1 - x } else { x };
                let sx = (x0 + (xo as f64 + 0.5) * cw / w as f64 - 0.5).clamp(0.0, (w - 1) as f64);
                let (x1, fx) = (sx.floor() as usize, sx.fract());
                let x2 = (x1 + 1).min(w - 1);
                let v = |yy: usize, xx: usize| f64::from(plane[yy * w + xx]);
                let p = (1.0 - fy) * ((1.0 - fx) * v(y1, x1) + fx * v(y1, x2))
                    + fy * ((1.0 - fx) * v(y2, x1) + fx * v(y2, x2));
                out.push((p as f32 / 255.0 - m) / s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn resized_crops_interpolate_within_the_source_and_keep_flat_images_flat() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (h, w) = (40, 48);
        // Channel 0 flat at 200; channel 1 a left-to-right ramp 0..=235.
        let mut img = vec![200u8; h * w];
        img.extend((0..h * w).map(|i| (5 * (i % w)) as u8));
        for _ in 0..20 {
            let mut out = vec![];
            resized_crop(&img, [2, h, w], &[0.0, 0.0], &[1.0, 1.0], &mut rng, &mut out);
            assert_eq!(out.len(), 2 * h * w);
            assert!(out[..h * w].iter().all(|&v| (v - 200.0 / 255.0).abs() < 1e-6));
            // Bilinear samples of a ramp stay on it: within its range, and every row alike.
            let ramp = &out[h * w..];
            assert!(ramp.iter().all(|&v| (0.0..=235.0 / 255.0 + 1e-6).contains(&v)));
            assert!((0..h).all(|y| ramp[y * w..(y + 1) * w] == ramp[..w]));
        }
    }
}
