//! pare patch: the training ops burn-flex 0.22.1 leaves to burn's composites, and its forward
//! convolution, as single kernels (PARE-PATCH.md).
//!
//! - `batch_norm_train` / `batch_norm_train_backward` / `batch_norm`: per-channel statistics and
//!   the normalisation in two passes over NCHW memory (the statistics in one, about a shift),
//!   where the composite swaps dims (a copy), reduces, broadcasts and multiplies in ~15 tensor
//!   passes;
//! - `conv2d`: per chunk of samples, NCHW im2col and one GEMM `W · col`, where the release
//!   transposes to NHWC and hands GEMM a patch matrix it must repack element by element;
//! - `conv2d_weight_backward`: per chunk, im2col and one GEMM into the weight gradient
//!   (`dW += dY · colᵀ`), where the composite runs a convolution over the input with batch and
//!   channels swapped (two layout copies and a badly shaped convolution);
//! - `conv2d_x_backward`: per chunk, one GEMM (`dcol = Wᵀ · dY`) and col2im, where the
//!   composite runs a transposed convolution.
//!
//! 3×3 stride-1 "same" convolutions take other routes first: Winograd F(2×2, 3×3) from 64
//! channels (`pare_winograd`, all three passes), the direct AVX-512 kernel below that
//! (`pare_direct`, forward and input gradient, where the CPU has AVX-512F).
//!
//! f32 only (what pare trains in); other dtypes are computed in f32 and cast back. Chunks of
//! samples run in parallel under the `rayon` feature, each GEMM single-threaded.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::ops::ConvOptions;
use burn_backend::ops::conv::calculate_conv_output_size;
use burn_backend::{DType, TensorMetadata};
use burn_std::{Bytes, Shape};

#[cfg(feature = "rayon")]
use rayon::prelude::*;

use super::pare_direct;
use super::pare_winograd;
use crate::{FlexTensor, Layout};
use core::sync::atomic::{AtomicBool, Ordering};

/// `fn $name(args)` calling `$imp` (`#[inline(always)]`) compiled for AVX-512 when the CPU has
/// it (the crate is built for baseline x86-64, where these loops get 4-lane SSE).
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident => $imp:ident ($($a:ident : $t:ty),*) $(-> $r:ty)?) => {
        $(#[$m])*
        fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if std::is_x86_feature_detected!("avx512f") {
                #[target_feature(enable = "avx512f")]
                fn v4($($a: $t),*) $(-> $r)? {
                    $imp($($a),*)
                }
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { v4($($a),*) };
            }
            $imp($($a),*)
        }
    };
}
pub(super) use multiversion;

/// `t` as contiguous f32 (cast when it is another float dtype).
fn f32_of(t: FlexTensor) -> FlexTensor {
    let t = if t.dtype() == DType::F32 { t } else { cast(t, burn_std::FloatDType::F32) };
    t.into_contiguous()
}

/// `data` as a tensor of `shape` in `dtype` (cast from f32 when it is not f32).
fn tensor(data: Vec<f32>, shape: Shape, dtype: DType) -> FlexTensor {
    let t = FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape), DType::F32);
    match dtype {
        DType::F32 => t,
        DType::F64 => cast(t, burn_std::FloatDType::F64),
        DType::F16 => cast(t, burn_std::FloatDType::F16),
        DType::BF16 => cast(t, burn_std::FloatDType::BF16),
        _ => t,
    }
}

fn cast(t: FlexTensor, to: burn_std::FloatDType) -> FlexTensor {
    use burn_backend::ops::FloatTensorOps;
    crate::Flex::float_cast(t, to)
}

/// `f(i)` for `i` in `0..n`, in parallel under rayon.
fn map_range<R: Send, F: Fn(usize) -> R + Sync + Send>(n: usize, f: F) -> Vec<R> {
    #[cfg(feature = "rayon")]
    {
        (0..n).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "rayon"))]
    {
        (0..n).map(f).collect()
    }
}

/// `len` floats written by `f(i, chunk)` over chunks of `size`, in parallel under rayon.
fn chunks_filled<F: Fn(usize, &mut [f32]) + Sync + Send>(len: usize, size: usize, f: F) -> Vec<f32> {
    sample_chunks(len, size, 1, || (), |_, i, _, c| f(i, c))
}

/// Elements from which [`relu`] and [`relu_backward`] split their work between the workers.
const PAR_MIN: usize = 64 * 1024;
/// Elements per piece of a split element-wise op.
const PAR_PIECE: usize = 8 * 1024;

/// `f(piece of dst, same piece of src)` over two equally long slices, split between the
/// workers under rayon from [`PAR_MIN`] elements.
fn zip_pieces<F: Fn(&mut [f32], &[f32]) + Sync + Send>(dst: &mut [f32], src: &[f32], f: F) {
    #[cfg(feature = "rayon")]
    if dst.len() >= PAR_MIN {
        dst.par_chunks_mut(PAR_PIECE).zip(src.par_chunks(PAR_PIECE)).for_each(|(d, s)| f(d, s));
        return;
    }
    f(dst, src)
}

/// ReLU in place on a uniquely held, contiguous f32 tensor, split between the workers
/// (burn-flex's `unary_op` runs on the calling thread: 3 % of a pruned ResNet-56 training step
/// while the workers waited). NaN stays NaN, as in the release. `Err` hands any other tensor
/// back for the release's path.
pub(crate) fn relu(mut t: FlexTensor) -> Result<FlexTensor, FlexTensor> {
    let end = match t.layout().contiguous_offsets() {
        Some((0, end)) if t.dtype() == DType::F32 && t.is_unique() => end,
        // Held elsewhere too (autodiff keeps ReLU's input for its backward): a new tensor.
        Some((start, end)) if t.dtype() == DType::F32 => {
            let xs: &[f32] = &t.storage()[start..end];
            let out = chunks_filled(xs.len(), PAR_PIECE, |i, c| relu_copy(c, &xs[i * PAR_PIECE..]));
            return Ok(tensor(out, t.shape(), DType::F32));
        }
        _ => return Err(t),
    };
    let xs: &mut [f32] = &mut t.storage_mut()[..end];
    #[cfg(feature = "rayon")]
    if xs.len() >= PAR_MIN {
        xs.par_chunks_mut(PAR_PIECE).for_each(relu_piece);
        return Ok(t);
    }
    relu_piece(xs);
    Ok(t)
}

#[inline(always)]
fn relu_piece_impl(xs: &mut [f32]) {
    xs.iter_mut().for_each(|x| *x = relu1(*x));
}

multiversion!(fn relu_piece => relu_piece_impl(xs: &mut [f32]));

/// `dst = relu(src)` over `dst`'s length.
#[inline(always)]
fn relu_copy_impl(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &x)| *d = relu1(x));
}

multiversion!(fn relu_copy => relu_copy_impl(dst: &mut [f32], src: &[f32]));

/// `g = 0` where `o ≤ 0`.
#[inline(always)]
fn relu_grad_piece_impl(g: &mut [f32], o: &[f32]) {
    g.iter_mut().zip(o).for_each(|(g, &o)| *g = if o <= 0.0 { 0.0 } else { *g });
}

multiversion!(fn relu_grad_piece => relu_grad_piece_impl(g: &mut [f32], o: &[f32]));

/// `max(x, 0)`, NaN passing through (`x <= 0` is false for NaN). Written as a select, not a
/// conditional store, so that loops over it vectorise (a branch per element mispredicts on half
/// of them).
#[inline(always)]
fn relu1(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// ReLU's input gradient written into `grad` (uniquely held, contiguous, f32, the shape of a
/// contiguous `output`): zero where the output is ≤ 0, split between the workers. `Err` hands
/// the pair back for the release's path.
pub(crate) fn relu_backward(output: FlexTensor, mut grad: FlexTensor) -> Result<FlexTensor, (FlexTensor, FlexTensor)> {
    let fits = output.dtype() == DType::F32 && grad.dtype() == DType::F32 && grad.is_unique() && output.shape() == grad.shape();
    let (end, (os, oe)) = match (grad.layout().contiguous_offsets(), output.layout().contiguous_offsets()) {
        (Some((0, end)), Some(o)) if fits && o.1 - o.0 == end => (end, o),
        _ => return Err((output, grad)),
    };
    let out: &[f32] = &output.storage()[os..oe];
    let g: &mut [f32] = &mut grad.storage_mut()[..end];
    zip_pieces(g, out, relu_grad_piece);
    Ok(grad)
}

/// `[n, c, spatial]` of an NC… shape.
fn ncs(shape: &Shape) -> (usize, usize, usize) {
    let dims = shape.as_slice();
    let n = dims.first().copied().unwrap_or(1);
    let c = dims.get(1).copied().unwrap_or(1);
    let s = dims.iter().skip(2).product::<usize>();
    (n, c, s)
}

/// Σ (v − k) and Σ (v − k)² of a row in f32 lanes (16 independent accumulators, so the loop
/// vectorises), into f64 lanes ([`Lanes`]). This and the other row loops of batch norm and ReLU
/// below are compiled for AVX-512 too (`multiversion!`): the crate builds for baseline x86-64,
/// 4-lane SSE. The same operations in the same order either way, so the same bits.
#[inline(always)]
fn row_moments_impl(row: &[f32], k: f32, acc: &mut Lanes) {
    let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
    let chunks = row.chunks_exact(16);
    let (mut ra, mut rb) = (0.0f64, 0.0f64);
    for &v in chunks.remainder() {
        let d = f64::from(v - k);
        ra += d;
        rb += d * d;
    }
    for c in chunks {
        for i in 0..16 {
            let d = c[i] - k;
            a[i] += d;
            b[i] += d * d;
        }
    }
    acc.add(0, &a, ra);
    acc.add(1, &b, rb);
}

multiversion!(fn row_moments => row_moments_impl(row: &[f32], k: f32, acc: &mut Lanes));

/// Σ dy and Σ dy·(x − m) of two rows, in f32 lanes.
#[inline(always)]
fn row_dot_impl(dy: &[f32], x: &[f32], m: f32, acc: &mut Lanes) {
    let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
    let (dc, xc) = (dy.chunks_exact(16), x.chunks_exact(16));
    let (dr, xr) = (dc.remainder(), xc.remainder());
    for (d, x) in dc.zip(xc) {
        for i in 0..16 {
            a[i] += d[i];
            b[i] += d[i] * (x[i] - m);
        }
    }
    let (mut ra, mut rb) = (0.0f64, 0.0f64);
    for (&d, &x) in dr.iter().zip(xr) {
        ra += f64::from(d);
        rb += f64::from(d) * f64::from(x - m);
    }
    acc.add(0, &a, ra);
    acc.add(1, &b, rb);
}

multiversion!(fn row_dot => row_dot_impl(dy: &[f32], x: &[f32], m: f32, acc: &mut Lanes));

/// Two per-channel sums kept as 16 f64 lanes each while the rows of a channel are added in
/// (lane by lane, which vectorises: a row's f32 lanes were summed one after another in f64
/// before, 16 dependent adds per sum that cost more than the row itself on an 8×8 plane), then
/// added across the lanes once per channel. A fixed order: the same bits on every run.
struct Lanes([[f64; 16]; 2]);

impl Lanes {
    #[inline(always)]
    fn add(&mut self, k: usize, lanes: &[f32; 16], rest: f64) {
        for (a, &v) in self.0[k].iter_mut().zip(lanes) {
            *a += f64::from(v);
        }
        self.0[k][0] += rest;
    }
}

/// `dst = src·k + m`.
#[inline(always)]
fn scale_shift_impl(dst: &mut [f32], src: &[f32], k: f32, m: f32) {
    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v * k + m);
}

multiversion!(fn scale_shift => scale_shift_impl(dst: &mut [f32], src: &[f32], k: f32, m: f32));

/// `dst = dy·k + x·a + b`.
#[inline(always)]
fn bn_dx_row_impl(dst: &mut [f32], x: &[f32], dy: &[f32], k: f32, a: f32, b: f32) {
    for ((d, &xv), &g) in dst.iter_mut().zip(x).zip(dy) {
        *d = g * k + xv * a + b;
    }
}

multiversion!(fn bn_dx_row => bn_dx_row_impl(dst: &mut [f32], x: &[f32], dy: &[f32], k: f32, a: f32, b: f32));

/// Per channel of NC… `x`: Σ f(x) over batch and space, in f64.
fn channel_sums<F: Fn(usize, usize, &mut Lanes) + Sync + Send>(n: usize, c: usize, f: F) -> Vec<[f64; 2]> {
    map_range(c, |ch| {
        let mut acc = Lanes([[0.0; 16]; 2]);
        for b in 0..n {
            f(b, ch, &mut acc);
        }
        acc.0.map(|l| l.iter().sum())
    })
}

/// Training-mode batch norm: output, batch mean and biased variance per channel.
pub(crate) fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dtype = x.dtype();
    let shape = x.shape();
    let (n, c, s) = ncs(&shape);
    let x = f32_of(x);
    let xs: &[f32] = x.storage();
    let count = (n * s).max(1) as f64;
    // One pass: Σ (x − k) and Σ (x − k)² about a value of the channel, k = its first element
    // (shifted so that the difference of the two moments does not cancel: |mean − k| is of the
    // order of the channel's spread, not of its mean).
    let shift: Vec<f32> = (0..c).map(|ch| xs.get(ch * s).copied().unwrap_or(0.0)).collect();
    let sums = channel_sums(n, c, |b, ch, acc| row_moments(&xs[(b * c + ch) * s..(b * c + ch + 1) * s], shift[ch], acc));
    let mean: Vec<f64> = sums.iter().zip(&shift).map(|(v, &k)| f64::from(k) + v[0] / count).collect();
    let var: Vec<f64> = sums.iter().map(|v| (v[1] / count - (v[0] / count).powi(2)).max(0.0)).collect();
    let out = normalize(xs, &gamma, &beta, &mean, &var, epsilon, (n, c, s));
    let mean32 = mean.iter().map(|&v| v as f32).collect();
    let var32 = var.iter().map(|&v| v as f32).collect();
    (
        tensor(out, shape, dtype),
        tensor(mean32, Shape::new([c]), dtype),
        tensor(var32, Shape::new([c]), dtype),
    )
}

/// `(x − mean)·γ/√(var + ε) + β` per channel.
fn normalize(
    xs: &[f32],
    gamma: &FlexTensor,
    beta: &FlexTensor,
    mean: &[f64],
    var: &[f64],
    epsilon: f64,
    (n, c, s): (usize, usize, usize),
) -> Vec<f32> {
    let g = f32_of(gamma.clone());
    let bt = f32_of(beta.clone());
    let (g, bt): (&[f32], &[f32]) = (g.storage(), bt.storage());
    let scale: Vec<f32> = (0..c).map(|ch| (f64::from(g[ch]) / (var[ch] + epsilon).sqrt()) as f32).collect();
    let shift: Vec<f32> = (0..c).map(|ch| (f64::from(bt[ch]) - mean[ch] * f64::from(scale[ch])) as f32).collect();
    chunks_filled(n * c * s, c * s, |b, chunk| {
        for ch in 0..c {
            let src = &xs[(b * c + ch) * s..(b * c + ch + 1) * s];
            let dst = &mut chunk[ch * s..(ch + 1) * s];
            scale_shift(dst, src, scale[ch], shift[ch]);
        }
    })
}

/// Inference-mode batch norm with given statistics.
pub(crate) fn batch_norm(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let dtype = x.dtype();
    let shape = x.shape();
    let dims = ncs(&shape);
    let x = f32_of(x);
    let (m, v) = (f32_of(mean), f32_of(variance));
    let mean: Vec<f64> = m.storage::<f32>().iter().map(|&v| f64::from(v)).collect();
    let var: Vec<f64> = v.storage::<f32>().iter().map(|&v| f64::from(v)).collect();
    let out = normalize(x.storage(), &gamma, &beta, &mean, &var, epsilon, dims);
    tensor(out, shape, dtype)
}

/// Gradients of [`batch_norm_train`]: input, γ, β.
pub(crate) fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dtype = x.dtype();
    let shape = x.shape();
    let (n, c, s) = ncs(&shape);
    let (x, dy) = (f32_of(x), f32_of(output_grad));
    let (g, m, v) = (f32_of(gamma), f32_of(mean), f32_of(variance));
    let (xs, dys): (&[f32], &[f32]) = (x.storage(), dy.storage());
    let (g, m, v): (&[f32], &[f32], &[f32]) = (g.storage(), m.storage(), v.storage());
    let inv_std: Vec<f64> = v.iter().map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt()).collect();
    // Σ dy and Σ dy·x̂ per channel.
    let sums: Vec<[f64; 2]> = channel_sums(n, c, |b, ch, acc| {
        let at = (b * c + ch) * s..(b * c + ch + 1) * s;
        row_dot(&dys[at.clone()], &xs[at], m[ch], acc);
    })
    .into_iter()
    .zip(&inv_std)
    .map(|([d, dx], is)| [d, dx * is])
    .collect();
    let count = (n * s).max(1) as f64;
    // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)), as dy·k + x·a + b per channel.
    let coef: Vec<[f32; 3]> = (0..c)
        .map(|ch| {
            let k = f64::from(g[ch]) * inv_std[ch];
            let (mdy, mdyx) = (sums[ch][0] / count, sums[ch][1] / count);
            let mu = f64::from(m[ch]);
            let a = -k * mdyx * inv_std[ch];
            let b = -k * mdy - a * mu;
            [k as f32, a as f32, b as f32]
        })
        .collect();
    let dx = chunks_filled(n * c * s, c * s, |b, chunk| {
        for ch in 0..c {
            let at = (b * c + ch) * s..(b * c + ch + 1) * s;
            let [k, a, bb] = coef[ch];
            bn_dx_row(&mut chunk[ch * s..(ch + 1) * s], &xs[at.clone()], &dys[at], k, a, bb);
        }
    });
    let gamma_grad = sums.iter().map(|v| v[1] as f32).collect();
    let beta_grad = sums.iter().map(|v| v[0] as f32).collect();
    (
        tensor(dx, shape, dtype),
        tensor(gamma_grad, Shape::new([c]), dtype),
        tensor(beta_grad, Shape::new([c]), dtype),
    )
}

/// The geometry of one 2-D convolution, from its input, weight and output-gradient shapes.
#[derive(Clone, Copy)]
struct Geometry {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Geometry {
    fn of(x: &Shape, weight: &Shape, dy: &Shape, options: &ConvOptions<2>) -> Self {
        let (x, wt, dy) = (x.as_slice(), weight.as_slice(), dy.as_slice());
        let begin = options.padding_begin();
        Self {
            n: x[0],
            cin: x[1],
            h: x[2],
            w: x[3],
            cout: wt[0],
            kh: wt[2],
            kw: wt[3],
            oh: dy[2],
            ow: dy[3],
            stride: options.stride,
            pad: begin,
            dilation: options.dilation,
            groups: options.groups.max(1),
        }
    }
    /// For the forward pass: the output size from the input, kernel and (symmetric) padding.
    fn forward(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> Self {
        let (xd, wd) = (x.as_slice(), weight.as_slice());
        let [ph, pw] = options.padding_begin();
        let oh = calculate_conv_output_size(wd[2], options.stride[0], ph, options.dilation[0], xd[2]);
        let ow = calculate_conv_output_size(wd[3], options.stride[1], pw, options.dilation[1], xd[3]);
        Self::of(x, weight, &Shape::new([xd[0], wd[0], oh, ow]), options)
    }
    /// Input channels per group.
    fn cg(&self) -> usize {
        self.cin / self.groups
    }
    /// Output channels per group.
    fn og(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of a group's column matrix: cg·kh·kw.
    fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    /// Output positions.
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1×1 convolution that reads the input as it is (no im2col needed).
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0] && self.oh == self.h && self.ow == self.w
    }
    /// Input row `ih` for output row `o` and kernel row `k` (None in the padding).
    fn ih(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.stride[0] + k * self.dilation[0]).checked_sub(self.pad[0]).filter(|&i| i < self.h)
    }
}

/// A 3×3, stride-1, padding-1 convolution without groups or dilation, whose output planes are
/// its input's: `n` samples, `c` input and `o` output channels, `h × w` planes. Winograd
/// (`pare_winograd`) and the direct kernel (`pare_direct`) take these.
#[derive(Clone, Copy, Debug)]
pub(super) struct Same3x3 {
    pub n: usize,
    pub c: usize,
    pub o: usize,
    pub h: usize,
    pub w: usize,
}

impl Same3x3 {
    fn of(g: &Geometry) -> Option<Self> {
        let fits = g.kh == 3
            && g.kw == 3
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.pad == [1, 1]
            && g.groups == 1
            && g.oh == g.h
            && g.ow == g.w;
        fits.then_some(Self { n: g.n, c: g.cin, o: g.cout, h: g.h, w: g.w })
    }

    /// The input gradient's convolution: the same one of dY with the kernel flipped and its
    /// channels swapped (`o × c × 3 × 3` weights in, `c × o × 3 × 3` out).
    pub(super) fn input_gradient(&self, w: &[f32]) -> (Self, Vec<f32>) {
        let mut wt = vec![0.0f32; self.o * self.c * 9];
        for oi in 0..self.o {
            for ci in 0..self.c {
                for k in 0..9 {
                    wt[(ci * self.o + oi) * 9 + 8 - k] = w[(oi * self.c + ci) * 9 + k];
                }
            }
        }
        (Self { c: self.o, o: self.c, ..*self }, wt)
    }
}

/// Where a 3×3 "same" convolution goes: Winograd from [`winograd_min`] channels on either
/// side, the direct kernel below that on CPUs that run it (`PARE_DIRECT=0` turns it off,
/// `PARE_DIRECT=no-weight-grad` leaves the weight gradient to im2col + GEMM, for comparisons),
/// else im2col + GEMM (neither).
enum Route {
    Winograd(Same3x3),
    Direct(Same3x3),
}

fn route(g: &Geometry) -> Option<Route> {
    let s = Same3x3::of(g)?;
    let t = thresholds();
    if s.c.min(s.o) >= t.winograd_min {
        Some(Route::Winograd(s))
    } else {
        (t.direct && pare_direct::available()).then_some(Route::Direct(s))
    }
}

/// The routing settings, read from the environment once.
#[derive(Clone, Copy)]
pub(super) struct Thresholds {
    /// The fewest input and output channels for Winograd: 128 (measured, BENCHMARKS.md: against
    /// the direct kernel, 64-channel layers lose with it — ResNet-56 trains 10 % faster without,
    /// VGG-16 8 % — and against im2col + GEMM wider ones win: VGG-16 trains 14 % faster);
    /// `PARE_WINOGRAD_MIN` overrides it (a huge value turns Winograd off, for comparisons).
    winograd_min: usize,
    /// The most tiles (samples × 2×2 output tiles per plane) for which Winograd runs its 16
    /// GEMMs once over the whole batch, split by position between the workers, instead of once
    /// per chunk of samples: 1,024 (measured 2026-11-28, BENCHMARKS.md: VGG-16 trains ~9 %
    /// faster with 256 or 1,024 than without, 4 % with 4,096); `PARE_WINOGRAD_BATCH_TILES`
    /// overrides it (0 turns it off).
    pub(super) winograd_batch_tiles: usize,
    /// The direct kernel, unless `PARE_DIRECT=0`.
    direct: bool,
    /// … for the weight gradient too, unless `PARE_DIRECT=0` or `no-weight-grad`.
    direct_weight_grad: bool,
}

pub(super) fn thresholds() -> Thresholds {
    let read = || Thresholds {
        #[cfg(feature = "std")]
        winograd_min: std::env::var("PARE_WINOGRAD_MIN").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        #[cfg(not(feature = "std"))]
        winograd_min: 128,
        #[cfg(feature = "std")]
        winograd_batch_tiles: std::env::var("PARE_WINOGRAD_BATCH_TILES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        #[cfg(not(feature = "std"))]
        winograd_batch_tiles: 1024,
        #[cfg(feature = "std")]
        direct: !std::env::var("PARE_DIRECT").is_ok_and(|v| v == "0"),
        #[cfg(not(feature = "std"))]
        direct: true,
        #[cfg(feature = "std")]
        direct_weight_grad: !std::env::var("PARE_DIRECT").is_ok_and(|v| v == "0" || v == "no-weight-grad"),
        #[cfg(not(feature = "std"))]
        direct_weight_grad: true,
    };
    #[cfg(feature = "std")]
    {
        static ONCE: std::sync::OnceLock<Thresholds> = std::sync::OnceLock::new();
        *ONCE.get_or_init(read)
    }
    #[cfg(not(feature = "std"))]
    read()
}

/// `f(k, parts[k])` for every part, in parallel under rayon.
pub(super) fn for_each_part<T: Send, F: Fn(usize, T) + Sync + Send>(parts: Vec<T>, f: F) {
    #[cfg(feature = "rayon")]
    parts.into_par_iter().enumerate().for_each(|(k, p)| f(k, p));
    #[cfg(not(feature = "rayon"))]
    parts.into_iter().enumerate().for_each(|(k, p)| f(k, p));
}

/// Threads the chunks are spread over.
pub(super) fn threads() -> usize {
    #[cfg(feature = "rayon")]
    return rayon::current_num_threads().max(1);
    #[cfg(not(feature = "rayon"))]
    1
}

/// `Σ run(range)` over a fixed split of `0..chunks` between the workers (each `run` returns a
/// partial sum of `size` values), added in worker order: the same bits on every run, where
/// rayon's adaptive splitting would vary the order of the sums.
pub(super) fn fixed_split_sum<F>(chunks: usize, size: usize, run: F) -> Vec<f32>
where
    F: Fn(core::ops::Range<usize>) -> Vec<f32> + Sync + Send,
{
    let workers = threads().clamp(1, chunks.max(1));
    let per = chunks.div_ceil(workers);
    let parts: Vec<Vec<f32>> = map_range(workers, |t| run(t * per..((t + 1) * per).min(chunks)));
    let mut sum = vec![0.0f32; size];
    for part in &parts {
        sum.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    sum
}

/// Output columns `[lo, hi)` whose input column `q·s + kd − p` lies in `0..inp`.
fn valid(out: usize, inp: usize, s: usize, kd: usize, p: usize) -> (usize, usize) {
    let s = s.max(1);
    let lo = if p > kd { (p - kd).div_ceil(s) } else { 0 }.min(out);
    let hi = if inp + p > kd { (inp + p - kd).div_ceil(s) } else { 0 }.min(out);
    (lo, hi.max(lo))
}

/// A stride-1 convolution whose output rows are as long as its input rows ("same" padding):
/// each column-matrix row is then the input plane shifted by a constant, so im2col is one copy
/// per row (and col2im one add) instead of a copy per output row.
struct Flat;

impl Flat {
    fn of(g: &Geometry) -> Option<Self> {
        (g.stride == [1, 1] && g.ow == g.w).then_some(Flat)
    }

    /// For kernel position (a, bk): the flat output range `t0..t1` that reads inside the plane,
    /// the shift from output to input index, the valid columns `lo..hi` and rows `o_lo..o_hi`.
    fn at(&self, g: &Geometry, a: usize, bk: usize) -> (usize, usize, isize, usize, usize, usize, usize) {
        let (lo, hi) = valid(g.ow, g.w, 1, bk * g.dilation[1], g.pad[1]);
        let (o_lo, o_hi) = valid(g.oh, g.h, 1, a * g.dilation[0], g.pad[0]);
        let s1 = (bk * g.dilation[1]) as isize - g.pad[1] as isize;
        let shift = ((a * g.dilation[0]) as isize - g.pad[0] as isize) * g.w as isize + s1;
        // The whole valid rows, less the elements whose shifted index leaves the plane.
        let t0 = o_lo * g.w + lo.min(if s1 < 0 { (-s1) as usize } else { 0 });
        let t1 = (o_hi * g.w).saturating_sub(if s1 > 0 { s1 as usize } else { 0 }).max(t0);
        (t0, t1, shift, lo, hi, o_lo, o_hi)
    }
}

/// Column matrix (k × p, rows `ld` apart) of one sample's group: `col[(c,kh,kw), (oh,ow)]`.
fn im2col(col: &mut [f32], ld: usize, x: &[f32], g: &Geometry) {
    let (p, hw, sw) = (g.p(), g.h * g.w, g.stride[1]);
    if let Some(flat) = Flat::of(g) {
        for c in 0..g.cg() {
            let xc = &x[c * hw..][..hw];
            for a in 0..g.kh {
                for bk in 0..g.kw {
                    let row = &mut col[((c * g.kh + a) * g.kw + bk) * ld..][..p];
                    let (t0, t1, shift, lo, hi, o_lo, o_hi) = flat.at(g, a, bk);
                    row[..o_lo * g.w].fill(0.0);
                    row[o_hi * g.w..].fill(0.0);
                    if t1 > t0 {
                        row[t0..t1].copy_from_slice(&xc[(t0 as isize + shift) as usize..][..t1 - t0]);
                    }
                    for o in o_lo..o_hi {
                        row[o * g.w..o * g.w + lo].fill(0.0);
                        row[o * g.w + hi..(o + 1) * g.w].fill(0.0);
                    }
                }
            }
        }
        return;
    }
    for c in 0..g.cg() {
        for a in 0..g.kh {
            for bk in 0..g.kw {
                let kd = bk * g.dilation[1];
                let (lo, hi) = valid(g.ow, g.w, sw, kd, g.pad[1]);
                let first = (lo * sw + kd).saturating_sub(g.pad[1]);
                let row = &mut col[((c * g.kh + a) * g.kw + bk) * ld..][..p];
                for o in 0..g.oh {
                    let dst = &mut row[o * g.ow..(o + 1) * g.ow];
                    let Some(ih) = g.ih(o, a) else {
                        dst.fill(0.0);
                        continue;
                    };
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if hi == lo {
                        continue;
                    }
                    let src = &x[c * hw + ih * g.w + first..];
                    if sw == 1 {
                        dst[lo..hi].copy_from_slice(&src[..hi - lo]);
                    } else {
                        dst[lo..hi].iter_mut().zip(src.iter().step_by(sw)).for_each(|(d, &v)| *d = v);
                    }
                }
            }
        }
    }
}

/// Adds a column matrix (rows `ld` apart) back into one sample's group of the input gradient.
fn col2im(dx: &mut [f32], col: &[f32], ld: usize, g: &Geometry) {
    let (p, hw, sw) = (g.p(), g.h * g.w, g.stride[1]);
    if let Some(flat) = Flat::of(g) {
        for c in 0..g.cg() {
            let dxc = &mut dx[c * hw..][..hw];
            for a in 0..g.kh {
                for bk in 0..g.kw {
                    let row = &col[((c * g.kh + a) * g.kw + bk) * ld..][..p];
                    let (t0, t1, shift, lo, hi, o_lo, o_hi) = flat.at(g, a, bk);
                    if t1 <= t0 {
                        continue;
                    }
                    if lo == 0 && hi == g.w {
                        let dst = &mut dxc[(t0 as isize + shift) as usize..][..t1 - t0];
                        dst.iter_mut().zip(&row[t0..t1]).for_each(|(d, &v)| *d += v);
                    } else {
                        // Row by row: the columns outside lo..hi would land on the neighbouring
                        // input row.
                        for o in o_lo..o_hi {
                            let (r0, r1) = (o * g.w + lo, o * g.w + hi);
                            let dst = &mut dxc[(r0 as isize + shift) as usize..][..r1 - r0];
                            dst.iter_mut().zip(&row[r0..r1]).for_each(|(d, &v)| *d += v);
                        }
                    }
                }
            }
        }
        return;
    }
    for c in 0..g.cg() {
        for a in 0..g.kh {
            for bk in 0..g.kw {
                let kd = bk * g.dilation[1];
                let (lo, hi) = valid(g.ow, g.w, sw, kd, g.pad[1]);
                let first = (lo * sw + kd).saturating_sub(g.pad[1]);
                let row = &col[((c * g.kh + a) * g.kw + bk) * ld..][..p];
                for o in 0..g.oh {
                    let Some(ih) = g.ih(o, a).filter(|_| hi > lo) else { continue };
                    let src = &row[o * g.ow + lo..o * g.ow + hi];
                    let dst = &mut dx[c * hw + ih * g.w + first..];
                    if sw == 1 {
                        dst[..hi - lo].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                    } else {
                        dst.iter_mut().step_by(sw).zip(src).for_each(|(d, &v)| *d += v);
                    }
                }
            }
        }
    }
}

/// `dst (m×n, row-major or column-major) = [dst +] lhs · rhs`, operands by (row stride, column
/// stride). gemm computes a row-major product transposed; it reads a left operand (after that
/// transposition) as it is when its rows are adjacent, and packs it element by element otherwise.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    dst_col_major: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: every index the strides reach lies inside the slices: dst is m×n (row- or
    // column-major), lhs reaches (m−1)·lhs_rs + (k−1)·lhs_cs and rhs (k−1)·rhs_rs +
    // (n−1)·rhs_cs (asserted: a wrong stride must not read out of bounds).
    assert!(dst.len() >= m * n);
    assert!(lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // bf16 products where turned on and the product is large enough to repay the packing.
    #[cfg(target_arch = "x86_64")]
    if k >= 32 && m * n >= 2048 && super::pare_bf16::enabled() {
        return super::pare_bf16::gemm(m, n, k, dst, accumulate, lhs, lhs_rs, lhs_cs, rhs, rhs_rs, rhs_cs, dst_col_major);
    }
    let (dst_cs, dst_rs) = if dst_col_major { (m, 1) } else { (1, n) };
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Samples per GEMM: enough that a GEMM sees at least 256 output positions (the deep layers
/// of a CIFAR VGG have 4), without leaving a thread idle.
fn chunk_of(g: &Geometry) -> usize {
    256usize.div_ceil(g.p().max(1)).min(g.n.div_ceil(threads())).max(1)
}

/// `len` floats (`per` per sample) computed by `f(scratch, first sample, samples, chunk)` over
/// chunks of `nb` samples, in parallel under rayon with a scratch value per worker. `f` must
/// write every element of its chunk before reading any: the output is not zeroed (zeroing it
/// was a pass over memory as large as the output that the kernels then overwrite — on the
/// calling thread until commit c65942d, a serial memset while the workers waited, 8 % of a pruned
/// ResNet-56 step; per worker since, still 4–8 % of a training step's samples, BENCHMARKS.md).
/// Kernels that add into their output use [`sample_chunks_zeroed`]. With [`poison_outputs`] on
/// (the kernel tests), chunks start as NaN, so that an element a kernel leaves unwritten shows.
pub(super) fn sample_chunks<S, I, F>(len: usize, per: usize, nb: usize, init: I, f: F) -> Vec<f32>
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, usize, &mut [f32]) + Sync + Send,
{
    chunks_of_samples(len, per, nb, POISON.load(Ordering::Relaxed).then_some(f32::NAN), init, f)
}

/// [`sample_chunks`] with each chunk zeroed (by the worker that fills it) before `f` runs.
pub(super) fn sample_chunks_zeroed<S, I, F>(len: usize, per: usize, nb: usize, init: I, f: F) -> Vec<f32>
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, usize, &mut [f32]) + Sync + Send,
{
    chunks_of_samples(len, per, nb, Some(0.0), init, f)
}

/// Kernel outputs start as NaN instead of uninitialised while this is on: for tests, which then
/// see any element a kernel fails to write. Off by default.
static POISON: AtomicBool = AtomicBool::new(false);

/// Turns [`POISON`] on or off (the kernel tests turn it on).
pub fn poison_outputs(on: bool) {
    POISON.store(on, Ordering::Relaxed);
}

/// A kernel's scratch buffer of `len` floats, not zeroed: every kernel that takes one writes
/// each element before it reads it (the Winograd and GEMM work buffers, padded planes; zeroing
/// them was a memset of up to tens of MB per call, with the kernel's first-touch page faults).
/// NaN-filled while [`POISON`] is on, so that a kernel test sees a read before a write.
pub(super) fn scratch(len: usize) -> Vec<f32> {
    if POISON.load(Ordering::Relaxed) {
        return vec![f32::NAN; len];
    }
    let mut v: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: f32 has no invalid bit patterns, and the callers write every element before
    // reading it (the contract above; the kernel tests check it with `poison_outputs`).
    unsafe { v.set_len(len) };
    v
}

fn chunks_of_samples<S, I, F>(len: usize, per: usize, nb: usize, fill: Option<f32>, init: I, f: F) -> Vec<f32>
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, usize, &mut [f32]) + Sync + Send,
{
    use core::mem::MaybeUninit;
    let size = (per * nb).max(1);
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let run = |st: &mut S, i: usize, c: &mut [MaybeUninit<f32>]| {
        if let Some(v) = fill {
            c.fill(MaybeUninit::new(v));
        }
        // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and `f` writes every element of
        // the chunk before it reads any (the contract of `sample_chunks`; with `fill` the
        // elements are initialised already). No value is read uninitialised: f32 has no
        // invalid bit patterns, and every element is written before the vector's length
        // covers it below.
        let c = unsafe { &mut *(c as *mut [MaybeUninit<f32>] as *mut [f32]) };
        f(st, i * nb, c.len() / per.max(1), c)
    };
    let spare = &mut out.spare_capacity_mut()[..len];
    #[cfg(feature = "rayon")]
    spare.par_chunks_mut(size).enumerate().for_each_init(init, |st, (i, c)| run(st, i, c));
    #[cfg(not(feature = "rayon"))]
    {
        let mut st = init();
        spare.chunks_mut(size).enumerate().for_each(|(i, c)| run(&mut st, i, c));
    }
    // SAFETY: the chunks cover `0..len`, and each element was written in `run` (by `f`, or by
    // the fill).
    unsafe { out.set_len(len) };
    out
}

/// `dst (rows × b·cols) ← src`: samples `b` of `src`'s `[n, rows, cols]` side by side.
fn gather(dst: &mut [f32], src: &[f32], first: usize, nb: usize, rows: usize, cols: usize, stride: usize, offset: usize) {
    let ld = nb * cols;
    for b in 0..nb {
        let base = (first + b) * stride + offset;
        for r in 0..rows {
            dst[r * ld + b * cols..][..cols].copy_from_slice(&src[base + r * cols..][..cols]);
        }
    }
}

/// A 2-D convolution (symmetric padding: the caller pads asymmetric inputs first), NCHW: per
/// chunk of samples and group `out_g (og × nb·p) = W_g (og × k) · col (k × nb·p)` — GEMM reads
/// the column matrix without packing it (a row-major patch matrix, as the release builds, is
/// packed element by element). One sample at a time (nb = 1) writes the NCHW output in place.
pub(crate) fn conv2d(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    let dtype = x.dtype();
    let g = Geometry::forward(&x.shape(), &weight.shape(), options);
    let (x, w) = (f32_of(x), f32_of(weight));
    let bias = bias.map(f32_of);
    let (xs, ws): (&[f32], &[f32]) = (x.storage(), w.storage());
    let bs: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let routed = match route(&g) {
        Some(Route::Winograd(s)) => Some(pare_winograd::forward(xs, ws, bs, &s)),
        Some(Route::Direct(s)) => pare_direct::forward(xs, ws, bs, &s),
        None => None,
    };
    if let Some(out) = routed {
        return tensor(out, Shape::new([g.n, g.cout, g.oh, g.ow]), dtype);
    }
    let (k, p, og, cg) = (g.k(), g.p(), g.og(), g.cg());
    let nb = chunk_of(&g);
    let per_out = g.cout * p;
    let init = || (scratch(k * nb * p), scratch(if nb > 1 { og * nb * p } else { 0 }));
    let out = sample_chunks(g.n * per_out, per_out, nb, init, |(col, tmp), first, nbc, on| {
        let ld = nbc * p;
        for grp in 0..g.groups {
            let wg = &ws[grp * og * k..][..og * k];
            let colm: &[f32] = if nbc == 1 && g.pointwise() {
                &xs[(first * g.cin + grp * cg) * g.h * g.w..][..cg * g.h * g.w]
            } else {
                for b in 0..nbc {
                    let xg = &xs[((first + b) * g.cin + grp * cg) * g.h * g.w..][..cg * g.h * g.w];
                    im2col(&mut col[b * p..], ld, xg, &g);
                }
                &col[..k * ld]
            };
            if nbc == 1 {
                gemm(og, p, k, &mut on[grp * og * p..][..og * p], false, wg, k, 1, colm, p, 1, false);
            } else {
                gemm(og, ld, k, &mut tmp[..og * ld], false, wg, k, 1, colm, ld, 1, false);
                for b in 0..nbc {
                    for o in 0..og {
                        on[b * per_out + (grp * og + o) * p..][..p].copy_from_slice(&tmp[o * ld + b * p..][..p]);
                    }
                }
            }
        }
        if let Some(bs) = bs {
            for (i, row) in on.chunks_mut(p.max(1)).enumerate() {
                let v = bs[i % g.cout];
                row.iter_mut().for_each(|r| *r += v);
            }
        }
    });
    tensor(out, Shape::new([g.n, g.cout, g.oh, g.ow]), dtype)
}

/// `dst (cols × rows) = srcᵀ` for row-major `src (rows × cols)`, in 8×8 tiles.
fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    for r0 in (0..rows).step_by(8) {
        for c0 in (0..cols).step_by(8) {
            for r in r0..(r0 + 8).min(rows) {
                for c in c0..(c0 + 8).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// Weight gradient of a 2-D convolution: Σ over chunks of samples of `dY_g · colᵀ` per group,
/// accumulated column-major (as dWᵀ, transposed once at the end) from dY_g transposed (og·p
/// values per sample) and col as im2col writes it: gemm then reads both operands without
/// packing. (Row-major, it would transpose the product and gather col, 9× dY's size for a
/// 3×3 kernel, element by element.)
pub(crate) fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (dtype, wshape) = (weight.dtype(), weight.shape());
    let g = Geometry::of(&x.shape(), &wshape, &output_grad.shape(), options);
    let (x, dy) = (f32_of(x), f32_of(output_grad));
    let (xs, dys): (&[f32], &[f32]) = (x.storage(), dy.storage());
    let routed = match route(&g) {
        Some(Route::Winograd(s)) => Some(pare_winograd::weight_backward(xs, dys, &s)),
        Some(Route::Direct(s)) if thresholds().direct_weight_grad => pare_direct::weight_backward(xs, dys, &s),
        Some(Route::Direct(_)) => None,
        None => None,
    };
    if let Some(dw) = routed {
        return tensor(dw, wshape, dtype);
    }
    let (k, p, og, cg) = (g.k(), g.p(), g.og(), g.cg());
    let nb = chunk_of(&g);
    let chunks = g.n.div_ceil(nb);
    let size = g.cout * k;
    // Each chunk adds to its worker's dWᵀ (per group: k × og, row-major), summed below.
    let partial = |first: usize, acc: &mut [f32], col: &mut [f32], dyt: &mut [f32]| {
        let nbc = nb.min(g.n - first);
        let ld = nbc * p;
        for grp in 0..g.groups {
            for b in 0..nbc {
                let xg = &xs[((first + b) * g.cin + grp * cg) * g.h * g.w..][..cg * g.h * g.w];
                im2col(&mut col[b * p..], ld, xg, &g);
                // dYᵀ rows b·p.. of this sample: (p × og).
                let dyg = &dys[((first + b) * g.cout + grp * og) * p..][..og * p];
                transpose(&mut dyt[b * p * og..][..p * og], dyg, og, p);
            }
            // dW_g (og × k, column-major) += dY_g (og × nb·p) · colᵀ (nb·p × k).
            let accg = &mut acc[grp * og * k..][..og * k];
            gemm(og, k, ld, accg, true, &dyt[..ld * og], 1, og, &col[..k * ld], 1, ld, true);
        }
    };
    let dwt = fixed_split_sum(chunks, size, |range| {
        let (mut acc, mut col, mut dyt) = (vec![0.0f32; size], scratch(k * nb * p), scratch(og * nb * p));
        range.for_each(|c| partial(c * nb, &mut acc, &mut col, &mut dyt));
        acc
    });
    // Per group, dWᵀ (k × og) → dW (og × k).
    let mut dw = vec![0.0f32; size];
    for grp in 0..g.groups {
        transpose(&mut dw[grp * og * k..][..og * k], &dwt[grp * og * k..][..og * k], k, og);
    }
    tensor(dw, wshape, dtype)
}

/// Input gradient of a 2-D convolution: per chunk of samples and group, `col2im(W_gᵀ · dY_g)`.
pub(crate) fn conv2d_x_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (dtype, xshape) = (x.dtype(), x.shape());
    let g = Geometry::of(&xshape, &weight.shape(), &output_grad.shape(), options);
    let (w, dy) = (f32_of(weight), f32_of(output_grad));
    let (ws, dys): (&[f32], &[f32]) = (w.storage(), dy.storage());
    let routed = match route(&g) {
        Some(Route::Winograd(s)) => Some(pare_winograd::x_backward(dys, ws, &s)),
        Some(Route::Direct(s)) => pare_direct::x_backward(dys, ws, &s),
        None => None,
    };
    if let Some(dx) = routed {
        return tensor(dx, xshape, dtype);
    }
    let (k, p, og, cg) = (g.k(), g.p(), g.og(), g.cg());
    let nb = chunk_of(&g);
    let per_x = g.cin * g.h * g.w;
    let init = || (scratch(k * nb * p), scratch(og * nb * p));
    // col2im adds into the chunk (the 1×1 path overwrites it).
    let dx = sample_chunks_zeroed(g.n * per_x, per_x, nb, init, |(col, dyc), first, nbc, dxc| {
        let ld = nbc * p;
        for grp in 0..g.groups {
            let wg = &ws[grp * og * k..][..og * k];
            let dyg: &[f32] = if nbc == 1 {
                &dys[(first * g.cout + grp * og) * p..][..og * p]
            } else {
                gather(dyc, dys, first, nbc, og, p, g.cout * p, grp * og * p);
                &dyc[..og * ld]
            };
            // dcol (k × nb·p) = W_gᵀ (k × og) · dY_g (og × nb·p).
            if nbc == 1 && g.pointwise() {
                gemm(k, p, og, &mut dxc[grp * cg * g.h * g.w..][..cg * g.h * g.w], false, wg, 1, k, dyg, p, 1, false);
                continue;
            }
            gemm(k, ld, og, &mut col[..k * ld], false, wg, 1, k, dyg, ld, 1, false);
            for b in 0..nbc {
                col2im(&mut dxc[b * per_x + grp * cg * g.h * g.w..][..cg * g.h * g.w], &col[b * p..], ld, &g);
            }
        }
    });
    tensor(dx, xshape, dtype)
}
