//! burn-flex's patched training kernels (vendor/burn-flex, PARE-PATCH.md) against plain f64
//! loops written here from the definitions: 2-D convolution forward, input and weight gradients
//! (through autodiff, on shapes with odd channel counts, stride 2, padding — symmetric and not —,
//! dilation, groups, 1×1 and "same" convolutions), and batch norm in training mode (output, batch statistics and the
//! gradients of input, γ and β) and inference mode, ReLU, its gradient and the element-wise add,
//! and 2×2 max pooling with stride 2 and its gradient.
//! Kernel outputs start as NaN here (`poison_outputs`), so an element a kernel leaves unwritten
//! fails the comparison instead of passing on memory that happened to hold zeros.

use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm, batch_norm_train, conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};

#[path = "common/conv_reference.rs"]
mod conv_reference;
use conv_reference::{host, random, reference, rel_diff, Case};

#[test]
fn convolution_and_its_gradients_match_the_definition() {
    let cases = [
        // 3×3, stride 1, pad 1: the ResNet body.
        Case { x: [3, 5, 7, 6], w: [7, 5, 3, 3], stride: [1, 1], pad: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 },
        // Stride 2 with padding, odd sizes.
        Case { x: [2, 3, 9, 8], w: [4, 3, 3, 3], stride: [2, 2], pad: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 },
        // 1×1 stride 1 (no im2col) and 1×1 stride 2 (a projection shortcut).
        Case { x: [2, 6, 5, 5], w: [3, 6, 1, 1], stride: [1, 1], pad: [(0, 0), (0, 0)], dilation: [1, 1], groups: 1 },
        Case { x: [2, 6, 5, 5], w: [3, 6, 1, 1], stride: [2, 2], pad: [(0, 0), (0, 0)], dilation: [1, 1], groups: 1 },
        // 7×7 stride 2 pad 3: an ImageNet stem.
        Case { x: [2, 3, 13, 11], w: [5, 3, 7, 7], stride: [2, 2], pad: [(3, 3), (3, 3)], dilation: [1, 1], groups: 1 },
        // Dilation, asymmetric padding, groups.
        Case { x: [2, 4, 8, 7], w: [6, 2, 3, 2], stride: [1, 2], pad: [(2, 0), (1, 2)], dilation: [2, 1], groups: 2 },
        // "Same" convolutions whose output rows are as long as the input's (one shifted copy per
        // column-matrix row): dilated, and an even kernel with asymmetric padding.
        Case { x: [2, 3, 7, 9], w: [4, 3, 3, 3], stride: [1, 1], pad: [(2, 2), (2, 2)], dilation: [2, 2], groups: 1 },
        Case { x: [3, 2, 5, 6], w: [3, 2, 2, 2], stride: [1, 1], pad: [(0, 1), (1, 0)], dilation: [1, 1], groups: 1 },
        // Depthwise.
        Case { x: [1, 3, 6, 6], w: [3, 1, 3, 3], stride: [1, 1], pad: [(1, 1), (1, 1)], dilation: [1, 1], groups: 3 },
        // 3×3 "same" with fewer channels (the direct AVX-512 kernel where the CPU has it):
        // output channels not a multiple of its 8, planes whose padded grid is not a multiple of
        // its 48 positions, a 1-pixel-wide plane.
        Case::same3x3([2, 16, 32, 32], [16, 16, 3, 3]),
        Case::same3x3([3, 17, 9, 5], [13, 17, 3, 3]),
        Case::same3x3([2, 3, 4, 1], [9, 3, 3, 3]),
        // … and with 64 (a ResNet's last stage, direct since Winograd starts at 128).
        Case::same3x3([2, 64, 8, 8], [64, 64, 3, 3]),
        // The direct weight gradient's other blocks: 17–32 output channels (2 vectors of 16, the
        // second part-filled), 33–48 (3), and input channels leaving 1 or 2 for the last block.
        Case::same3x3([2, 5, 6, 7], [20, 5, 3, 3]),
        Case::same3x3([3, 7, 5, 6], [40, 7, 3, 3]),
        Case::same3x3([2, 4, 3, 9], [50, 4, 3, 3]),
        // 3×3 "same" with at least 128 channels each side (Winograd F(2×2, 3×3)): odd and even
        // planes (a last tile hanging over), a 2×2 and a 1×1 plane, several samples per chunk,
        // a wide plane of several tile columns.
        Case::same3x3([3, 129, 7, 6], [128, 129, 3, 3]),
        Case::same3x3([2, 128, 5, 9], [134, 128, 3, 3]),
        Case::same3x3([5, 136, 2, 2], [128, 136, 3, 3]),
        Case::same3x3([7, 128, 1, 1], [128, 128, 3, 3]),
        Case::same3x3([9, 128, 8, 8], [144, 128, 3, 3]),
        Case::same3x3([2, 128, 16, 13], [128, 128, 3, 3]),
        Case::same3x3([2, 131, 9, 11], [129, 131, 3, 3]),
        Case::same3x3([3, 130, 4, 4], [131, 130, 3, 3]),
        // Those batches are small enough for Winograd's GEMMs to run once over the whole batch;
        // past 1,024 tiles (here 17 × 8 × 8) they run per chunk of samples.
        Case::same3x3([17, 128, 15, 16], [130, 128, 3, 3]),
    ];
    // Kernel outputs start as NaN, not uninitialised: an element a kernel fails to write shows.
    burn_flex::ops::poison_outputs(true);
    let ad = Device::flex().autodiff();
    for (i, c) in cases.iter().enumerate() {
        let seed = 10 * i as u64;
        let x = random(c.x.iter().product(), seed);
        let w = random(c.w.iter().product(), seed + 1);
        let options = ConvOptions::new_with_padding(c.stride, c.pad, c.dilation, c.groups);
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), c.x), &ad).require_grad();
        let wt = Tensor::<4>::from_data(TensorData::new(w.clone(), c.w), &ad).require_grad();
        let y = conv2d(xt.clone(), wt.clone(), None, options.clone());
        let [n, cout, oh, ow] = y.dims();
        // With a bias (inference's folded BatchNorm): the reference plus the channel's bias.
        let b = random(cout, seed + 3);
        let bt = Tensor::<1>::from_data(TensorData::new(b.clone(), [cout]), &ad);
        let yb = host(conv2d(xt.clone(), wt.clone(), Some(bt), options));
        let r = random(n * cout * oh * ow, seed + 2);
        let (ry, rdx, rdw, [roh, row]) = reference(c, &x, &w, &r);
        assert_eq!([oh, ow], [roh, row], "case {i}: output size");
        let rt = Tensor::<4>::from_data(TensorData::new(r, [n, cout, oh, ow]), &ad);
        let grads = (y.clone() * rt).sum().backward();
        let dx = host(xt.grad(&grads).unwrap());
        let dw = host(wt.grad(&grads).unwrap());
        let (ey, edx, edw) = (rel_diff(&host(y), &ry), rel_diff(&dx, &rdx), rel_diff(&dw, &rdw));
        let ryb: Vec<f64> = ry.iter().enumerate().map(|(j, v)| v + f64::from(b[(j / (oh * ow)) % cout])).collect();
        let eb = rel_diff(&yb, &ryb);
        eprintln!("case {i}: relative error y {ey:.1e}, dx {edx:.1e}, dw {edw:.1e}, y + bias {eb:.1e}");
        assert!(
            ey < 1e-5 && edx < 1e-5 && edw < 1e-5 && eb < 1e-5,
            "case {i}: y {ey:e}, dx {edx:e}, dw {edw:e}, y + bias {eb:e}"
        );
    }
}

/// The weight gradient sums partial products over chunks of samples in parallel: the same
/// inputs must give the same gradient bit for bit (a seeded run must repeat).
#[test]
fn convolution_gradients_repeat_bit_for_bit() {
    burn_flex::ops::poison_outputs(true);
    let ad = Device::flex().autodiff();
    // The direct kernel where the CPU has it (else im2col + GEMM; also on a 2×2 plane),
    // Winograd (128 channels and more), im2col + GEMM (stride 2).
    for (xs, ws, stride) in [
        ([64, 16, 8, 8], [32, 16, 3, 3], 1),
        ([48, 128, 8, 8], [128, 128, 3, 3], 1),
        ([64, 16, 8, 8], [32, 16, 3, 3], 2),
        ([37, 24, 2, 2], [40, 24, 3, 3], 1),
    ] {
        repeats(&ad, xs, ws, stride);
    }
}

fn repeats(ad: &Device, xs: [usize; 4], ws: [usize; 4], stride: usize) {
    let x = random(xs.iter().product(), 7);
    let w = random(ws.iter().product(), 8);
    let run = || {
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), xs), ad).require_grad();
        let wt = Tensor::<4>::from_data(TensorData::new(w.clone(), ws), ad).require_grad();
        let y = conv2d(xt.clone(), wt.clone(), None, ConvOptions::new([stride; 2], [1, 1], [1, 1], 1));
        let grads = (y.clone() * y).sum().backward();
        (host(xt.grad(&grads).unwrap()), host(wt.grad(&grads).unwrap()))
    };
    let first = run();
    for _ in 0..5 {
        assert!(run() == first, "a repeated convolution backward gave different gradients");
    }
}

#[test]
fn batch_norm_training_and_inference_match_the_definition() {
    burn_flex::ops::poison_outputs(true);
    let (n, c, h, w) = (3, 5, 4, 7);
    let s = h * w;
    let x = random(n * c * s, 1).iter().enumerate().map(|(i, v)| v * 3.0 + (i / s % c) as f32).collect::<Vec<_>>();
    let gamma = random(c, 2);
    let beta = random(c, 3);
    let r = random(n * c * s, 4);
    let eps = 1e-5;
    // Reference, per channel over batch and space.
    let at = |b: usize, ch: usize, k: usize| (b * c + ch) * s + k;
    let count = (n * s) as f64;
    let mut mean = vec![0.0f64; c];
    let mut var = vec![0.0f64; c];
    let (mut y, mut dx) = (vec![0.0f64; x.len()], vec![0.0f64; x.len()]);
    let (mut dgamma, mut dbeta) = (vec![0.0f64; c], vec![0.0f64; c]);
    for ch in 0..c {
        let vals: Vec<f64> =
            (0..n).flat_map(|b| (0..s).map(move |k| (b, k))).map(|(b, k)| f64::from(x[at(b, ch, k)])).collect();
        mean[ch] = vals.iter().sum::<f64>() / count;
        var[ch] = vals.iter().map(|v| (v - mean[ch]).powi(2)).sum::<f64>() / count;
        let sd = (var[ch] + eps).sqrt();
        // L = Σ r·y, y = γ·x̂ + β: dβ = Σ r, dγ = Σ r·x̂, dx = γ/σ·(r − mean(r) − x̂·mean(r·x̂)).
        let (mut sr, mut srx) = (0.0, 0.0);
        for b in 0..n {
            for k in 0..s {
                let i = at(b, ch, k);
                let xh = (f64::from(x[i]) - mean[ch]) / sd;
                y[i] = f64::from(gamma[ch]) * xh + f64::from(beta[ch]);
                sr += f64::from(r[i]);
                srx += f64::from(r[i]) * xh;
            }
        }
        dbeta[ch] = sr;
        dgamma[ch] = srx;
        for b in 0..n {
            for k in 0..s {
                let i = at(b, ch, k);
                let xh = (f64::from(x[i]) - mean[ch]) / sd;
                dx[i] = f64::from(gamma[ch]) / sd * (f64::from(r[i]) - sr / count - xh * srx / count);
            }
        }
    }
    let ad = Device::flex().autodiff();
    let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [n, c, h, w]), &ad).require_grad();
    let gt = Tensor::<1>::from_data(TensorData::new(gamma.clone(), [c]), &ad).require_grad();
    let bt = Tensor::<1>::from_data(TensorData::new(beta.clone(), [c]), &ad).require_grad();
    let out = batch_norm_train(xt.clone(), gt.clone(), bt.clone(), eps);
    let rt = Tensor::<4>::from_data(TensorData::new(r, [n, c, h, w]), &ad);
    let grads = (out.output.clone() * rt).sum().backward();
    let checks = [
        ("output", rel_diff(&host(out.output), &y)),
        ("mean", rel_diff(&host(out.mean), &mean)),
        ("variance", rel_diff(&host(out.variance), &var)),
        ("dx", rel_diff(&host(xt.grad(&grads).unwrap()), &dx)),
        ("dgamma", rel_diff(&host(gt.grad(&grads).unwrap()), &dgamma)),
        ("dbeta", rel_diff(&host(bt.grad(&grads).unwrap()), &dbeta)),
    ];
    for (what, e) in checks {
        eprintln!("batch norm {what}: relative error {e:.1e}");
        assert!(e < 1e-5, "batch norm {what}: relative error {e:e}");
    }
    // Inference mode with given statistics.
    let flex = Device::flex();
    let stats: (Vec<f32>, Vec<f32>) =
        (mean.iter().map(|&v| v as f32 + 0.25).collect(), var.iter().map(|&v| v as f32 * 2.0).collect());
    let t1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [c]), &flex);
    let yi = batch_norm(
        Tensor::<4>::from_data(TensorData::new(x.clone(), [n, c, h, w]), &flex),
        t1(&gamma),
        t1(&beta),
        t1(&stats.0),
        t1(&stats.1),
        eps,
    );
    let want: Vec<f64> = (0..x.len())
        .map(|i| {
            let ch = i / s % c;
            (f64::from(x[i]) - f64::from(stats.0[ch])) / (f64::from(stats.1[ch]) + eps).sqrt() * f64::from(gamma[ch])
                + f64::from(beta[ch])
        })
        .collect();
    let e = rel_diff(&host(yi), &want);
    eprintln!("batch norm inference: relative error {e:.1e}");
    assert!(e < 1e-5, "batch norm inference: relative error {e:e}");
}

/// ReLU and its gradient (the patch splits both between the workers from 64 Ki elements, in
/// place when the input is held only by the caller) and the element-wise add (split from 64 Ki
/// elements), against `max(0, x)`, `r·[x > 0]` and `a + b` computed here, on tensors above and
/// below the split, with zeros of both signs and NaN: NaN passes through ReLU, as in PyTorch.
#[test]
fn relu_its_gradient_and_add_match_the_definition() {
    burn_flex::ops::poison_outputs(true);
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    for (k, shape) in [[2, 3, 128, 128], [1, 2, 7, 5]].into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let mut x = random(n, 40 + k as u64);
        x[0] = 0.0;
        x[1] = -0.0;
        x[2] = f32::NAN;
        x[n - 1] = -1.0;
        let r = random(n, 50 + k as u64);
        let max0 = |v: f32| if v.is_nan() || v > 0.0 { v } else { 0.0 };
        let same = |a: &[f32], b: &[f32]| {
            a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        };
        // Autodiff keeps ReLU's input for the backward pass: the copying path.
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &ad).require_grad();
        let y = relu(xt.clone());
        let rt = Tensor::<4>::from_data(TensorData::new(r.clone(), shape), &ad);
        let grads = (y.clone() * rt).sum().backward();
        let want_y: Vec<f32> = x.iter().map(|&v| max0(v)).collect();
        // d(Σ r·relu(x))/dx: r where x > 0 and where x is NaN (the mask keeps NaN), else 0.
        let want_dx: Vec<f32> = x.iter().zip(&r).map(|(&v, &g)| if v > 0.0 || v.is_nan() { g } else { 0.0 }).collect();
        assert!(same(&host(y), &want_y), "shape {shape:?}: relu under autodiff");
        assert!(same(&host(xt.grad(&grads).unwrap()), &want_dx), "shape {shape:?}: relu's gradient");
        // A tensor only the caller holds: in place.
        let yp = host(relu(Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &plain)));
        assert!(same(&yp, &want_y), "shape {shape:?}: relu in place");
        let a = Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &plain);
        let b = Tensor::<4>::from_data(TensorData::new(r.clone(), shape), &plain);
        let want_sum: Vec<f32> = x.iter().zip(&r).map(|(p, q)| p + q).collect();
        assert!(same(&host(a + b), &want_sum), "shape {shape:?}: add");
    }
}

/// 2×2 max pooling with stride 2 (VGG's), under autodiff (with indices) and plain, and its
/// gradient, against the definition: the window's first maximum in row-major order, a NaN
/// winning (the window's last NaN), an odd last row or column dropped and given no gradient.
#[test]
fn max_pooling_and_its_gradient_match_the_definition() {
    burn_flex::ops::poison_outputs(true);
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    for (k, shape) in [[2, 3, 6, 8], [1, 2, 5, 7], [3, 1, 2, 2]].into_iter().enumerate() {
        let [n, c, h, w] = shape;
        let mut x = random(n * c * h * w, 60 + k as u64);
        // A tie in the first window (the first element wins), two NaNs in the second.
        x[w] = x[0] + 1.0;
        x[w + 1] = x[w];
        if w >= 4 {
            x[2] = f32::NAN;
            x[w + 3] = f32::NAN;
        }
        let (oh, ow) = (h / 2, w / 2);
        let r = random(n * c * oh * ow, 70 + k as u64);
        let (mut want_y, mut want_dx) = (vec![0.0f32; n * c * oh * ow], vec![0.0f32; x.len()]);
        for p in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best: Option<(f32, usize)> = None;
                    for dy in 0..2 {
                        for dx in 0..2 {
                            let i = p * h * w + (2 * oy + dy) * w + 2 * ox + dx;
                            let v = x[i];
                            best = match best {
                                Some((m, _)) if !(v > m || v.is_nan()) => best,
                                _ => Some((v, i)),
                            };
                        }
                    }
                    let (m, i) = best.unwrap();
                    let o = (p * oh + oy) * ow + ox;
                    want_y[o] = m;
                    want_dx[i] += r[o];
                }
            }
        }
        let same = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        };
        let opts = MaxPoolOptions::new([2, 2]);
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &ad).require_grad();
        let y = max_pool2d(xt.clone(), opts.clone());
        let rt = Tensor::<4>::from_data(TensorData::new(r.clone(), [n, c, oh, ow]), &ad);
        let grads = (y.clone() * rt).sum().backward();
        assert!(same(&host(y), &want_y), "shape {shape:?}: max pooling under autodiff");
        assert!(same(&host(xt.grad(&grads).unwrap()), &want_dx), "shape {shape:?}: max pooling's gradient");
        let yp = host(max_pool2d(Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &plain), opts));
        assert!(same(&yp, &want_y), "shape {shape:?}: max pooling");
    }
}
