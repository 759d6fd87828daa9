//! The 2-D convolution by its definition in f64 (output, input and weight gradients) and the
//! helpers that compare burn-flex's kernels with it: shared by `flex_kernels.rs` and
//! `flex_bf16.rs`.
#![allow(dead_code)]

use burn::tensor::Tensor;
use rand::{Rng, SeedableRng};

pub fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Largest |a − b| relative to the largest |b|.
pub fn rel_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((f64::from(*x) - y).abs())) / scale
}

/// One convolution case: input `[n, cin, h, w]`, weight `[cout, cin/groups, kh, kw]`.
pub struct Case {
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub stride: [usize; 2],
    /// (begin, end) per spatial dimension.
    pub pad: [(usize, usize); 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Case {
    /// A 3×3, stride-1, padding-1 convolution (the shapes Winograd and the direct kernel take).
    pub fn same3x3(x: [usize; 4], w: [usize; 4]) -> Self {
        Case { x, w, stride: [1, 1], pad: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 }
    }
}

/// y, dL/dx and dL/dw of L = Σ y·r, by the definition, in f64.
pub fn reference(c: &Case, x: &[f32], w: &[f32], r: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>, [usize; 2]) {
    let [n, cin, h, wd] = c.x;
    let [cout, cg, kh, kw] = c.w;
    let og = cout / c.groups;
    let oh = (h + c.pad[0].0 + c.pad[0].1 - c.dilation[0] * (kh - 1) - 1) / c.stride[0] + 1;
    let ow = (wd + c.pad[1].0 + c.pad[1].1 - c.dilation[1] * (kw - 1) - 1) / c.stride[1] + 1;
    let mut y = vec![0.0f64; n * cout * oh * ow];
    let mut dx = vec![0.0f64; x.len()];
    let mut dw = vec![0.0f64; w.len()];
    for b in 0..n {
        for o in 0..cout {
            let grp = o / og;
            for i in 0..oh {
                for j in 0..ow {
                    let yi = ((b * cout + o) * oh + i) * ow + j;
                    for ci in 0..cg {
                        let cin_i = grp * cg + ci;
                        for a in 0..kh {
                            for e in 0..kw {
                                let ih = (i * c.stride[0] + a * c.dilation[0]) as isize - c.pad[0].0 as isize;
                                let iw = (j * c.stride[1] + e * c.dilation[1]) as isize - c.pad[1].0 as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                                    continue;
                                }
                                let xi = ((b * cin + cin_i) * h + ih as usize) * wd + iw as usize;
                                let wi = ((o * cg + ci) * kh + a) * kw + e;
                                y[yi] += f64::from(x[xi]) * f64::from(w[wi]);
                                dx[xi] += f64::from(w[wi]) * f64::from(r[yi]);
                                dw[wi] += f64::from(x[xi]) * f64::from(r[yi]);
                            }
                        }
                    }
                }
            }
        }
    }
    (y, dx, dw, [oh, ow])
}
