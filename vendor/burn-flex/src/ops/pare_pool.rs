//! pare patch: 2×2 max pooling with stride 2, no padding or dilation (a VGG's), forward with and
//! without indices and the backward pass, f32 (PARE-PATCH.md).
//!
//! The release pools through its generic 3-D kernel: per output element the window's valid
//! range by integer divisions, then a scalar loop, one rayon task per plane — 8 % of a VGG-16
//! training step. Here a window is four loads and three compares, a plane's rows at a time,
//! split between the workers; the backward pass writes every input gradient once (the windows
//! neither overlap nor leave gaps but the odd last row or column, which gets zeros) instead of
//! zeroing the input-sized gradient and scattering into it. Same results as the release: ties
//! keep the first element of the window (row-major), a NaN wins and the window's last NaN gives
//! the index, indices are positions in the input plane (`row · w + column`), i64.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::{DType, TensorMetadata};
use burn_std::{Bytes, Shape};

#[cfg(feature = "rayon")]
use rayon::prelude::*;

use super::pare_train::multiversion;
use crate::{FlexTensor, Layout};

/// Whether these parameters are the ones this file handles (`ceil_mode` matters only for odd
/// planes, which the caller's shape check leaves to the release then).
pub(crate) fn fits(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> bool {
    kernel == [2, 2] && stride == [2, 2] && padding == [0, 0] && dilation == [1, 1]
}

/// `[n, c, h, w]` of a contiguous f32 NCHW tensor whose pooled size does not depend on
/// `ceil_mode` (even sides, or `ceil_mode` off).
fn planes(x: &FlexTensor, ceil_mode: bool) -> Option<(usize, usize, usize, usize)> {
    let dims = x.shape();
    let d = dims.as_slice();
    let ok = x.dtype() == DType::F32
        && d.len() == 4
        && matches!(x.layout().contiguous_offsets(), Some((0, _)))
        && (!ceil_mode || (d[2] % 2 == 0 && d[3] % 2 == 0));
    ok.then(|| (d[0], d[1], d[2], d[3]))
}

/// The pooled output. `Err` hands the tensor back for the release's path.
pub(crate) fn max_pool2x2(x: FlexTensor, ceil_mode: bool) -> Result<FlexTensor, FlexTensor> {
    pool(x, ceil_mode, false).map(|(out, _)| out)
}

/// The pooled output and each maximum's position in its input plane. `Err` hands the tensor
/// back for the release's path.
pub(crate) fn max_pool2x2_with_indices(x: FlexTensor, ceil_mode: bool) -> Result<(FlexTensor, FlexTensor), FlexTensor> {
    pool(x, ceil_mode, true)
}

/// The pooled output and its indices (an empty tensor without `with_indices`).
fn pool(x: FlexTensor, ceil_mode: bool, with_indices: bool) -> Result<(FlexTensor, FlexTensor), FlexTensor> {
    let Some((n, c, h, w)) = planes(&x, ceil_mode) else { return Err(x) };
    let (planes_n, oh, ow) = (n * c, h / 2, w / 2);
    let xs: &[f32] = &x.storage::<f32>()[..planes_n * h * w];
    let per = oh * ow;
    let mut out = vec![0.0f32; planes_n * per];
    let mut idx = vec![0i64; if with_indices { planes_n * per } else { 0 }];
    let plane = |p: usize, o: &mut [f32], ix: Option<&mut [i64]>| pool_plane(&xs[p * h * w..][..h * w], w, o, ix);
    if per > 0 {
        #[cfg(feature = "rayon")]
        if with_indices {
            out.par_chunks_mut(per).zip(idx.par_chunks_mut(per)).enumerate().for_each(|(p, (o, ix))| plane(p, o, Some(ix)));
        } else {
            out.par_chunks_mut(per).enumerate().for_each(|(p, o)| plane(p, o, None));
        }
        #[cfg(not(feature = "rayon"))]
        if with_indices {
            out.chunks_mut(per).zip(idx.chunks_mut(per)).enumerate().for_each(|(p, (o, ix))| plane(p, o, Some(ix)));
        } else {
            out.chunks_mut(per).enumerate().for_each(|(p, o)| plane(p, o, None));
        }
    }
    let shape = Shape::new([n, c, oh, ow]);
    let ishape = if with_indices { shape.clone() } else { Shape::new([0]) };
    let indices = FlexTensor::new(Bytes::from_elems(idx), Layout::contiguous(ishape), DType::I64);
    Ok((FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(shape), DType::F32), indices))
}

/// One plane (`w` wide) pooled into `o` (and its indices into `ix`).
#[inline(always)]
fn pool_plane_impl(x: &[f32], w: usize, o: &mut [f32], mut ix: Option<&mut [i64]>) {
    let ow = w / 2;
    for (oy, orow) in o.chunks_exact_mut(ow.max(1)).enumerate() {
        let (r0, r1) = (&x[2 * oy * w..][..w], &x[(2 * oy + 1) * w..][..w]);
        let base = 2 * oy * w;
        for (ox, ov) in orow.iter_mut().enumerate() {
            let cand = [r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]];
            let (mut m, mut k) = (cand[0], 0);
            for (j, &v) in cand.iter().enumerate().skip(1) {
                if v > m || v.is_nan() {
                    (m, k) = (v, j);
                }
            }
            *ov = m;
            if let Some(ix) = ix.as_deref_mut() {
                ix[oy * ow + ox] = (base + (k / 2) * w + 2 * ox + k % 2) as i64;
            }
        }
    }
}

multiversion!(fn pool_plane => pool_plane_impl(x: &[f32], w: usize, o: &mut [f32], ix: Option<&mut [i64]>));

/// The input gradient (the shape of `x`, `n × c × h × w`) of [`max_pool2x2`] from the output
/// gradient and the indices. `Err` hands them back for the release's path (another dtype, a
/// layout not contiguous, or an index outside its window).
pub(crate) fn max_pool2x2_backward(x_shape: &Shape, grad: FlexTensor, indices: FlexTensor) -> Result<FlexTensor, (FlexTensor, FlexTensor)> {
    let d = x_shape.as_slice();
    let contiguous = |t: &FlexTensor| matches!(t.layout().contiguous_offsets(), Some((0, _)));
    if d.len() != 4 || grad.dtype() != DType::F32 || !contiguous(&grad) || !contiguous(&indices) {
        return Err((grad, indices));
    }
    let (planes_n, h, w) = (d[0] * d[1], d[2], d[3]);
    let (oh, ow) = (h / 2, w / 2);
    let gd = grad.shape();
    if gd.as_slice() != [d[0], d[1], oh, ow] {
        return Err((grad, indices));
    }
    let widened: Vec<i64>;
    let ix: &[i64] = match indices.dtype() {
        DType::I64 => &indices.storage::<i64>()[..planes_n * oh * ow],
        DType::I32 => {
            widened = indices.storage::<i32>()[..planes_n * oh * ow].iter().map(|&v| i64::from(v)).collect();
            &widened
        }
        _ => return Err((grad, indices)),
    };
    let gs: &[f32] = &grad.storage::<f32>()[..planes_n * oh * ow];
    let (per_in, per_out) = (h * w, oh * ow);
    let mut dx = vec![0.0f32; planes_n * per_in];
    let bad = core::sync::atomic::AtomicBool::new(false);
    let plane = |p: usize, dxp: &mut [f32]| {
        if !unpool_plane(&gs[p * per_out..][..per_out], &ix[p * per_out..][..per_out], w, dxp) {
            bad.store(true, core::sync::atomic::Ordering::Relaxed);
        }
    };
    if per_in > 0 {
        #[cfg(feature = "rayon")]
        dx.par_chunks_mut(per_in).enumerate().for_each(|(p, dxp)| plane(p, dxp));
        #[cfg(not(feature = "rayon"))]
        dx.chunks_mut(per_in).enumerate().for_each(|(p, dxp)| plane(p, dxp));
    }
    if bad.into_inner() {
        return Err((grad, indices));
    }
    Ok(FlexTensor::new(Bytes::from_elems(dx), Layout::contiguous(x_shape.clone()), DType::F32))
}

/// One plane's input gradient (`w` wide) from its output gradient and indices: each window's
/// four elements written (the gradient where the index points, zero elsewhere), the odd last
/// row and column zero. `false` when an index lies outside its window.
#[inline(always)]
fn unpool_plane_impl(g: &[f32], ix: &[i64], w: usize, dx: &mut [f32]) -> bool {
    let h = dx.len() / w.max(1);
    let (oh, ow) = (h / 2, w / 2);
    let mut ok = true;
    for oy in 0..oh {
        let base = 2 * oy * w;
        let (r0, rest) = dx[base..].split_at_mut(w);
        let r1 = &mut rest[..w];
        for ox in 0..ow {
            let (gv, at) = (g[oy * ow + ox], ix[oy * ow + ox]);
            let k = [base + 2 * ox, base + 2 * ox + 1, base + w + 2 * ox, base + w + 2 * ox + 1];
            let hit: [bool; 4] = core::array::from_fn(|j| at == k[j] as i64);
            ok &= hit.iter().any(|&b| b);
            r0[2 * ox] = if hit[0] { gv } else { 0.0 };
            r0[2 * ox + 1] = if hit[1] { gv } else { 0.0 };
            r1[2 * ox] = if hit[2] { gv } else { 0.0 };
            r1[2 * ox + 1] = if hit[3] { gv } else { 0.0 };
        }
        if w % 2 == 1 {
            r0[w - 1] = 0.0;
            r1[w - 1] = 0.0;
        }
    }
    if h % 2 == 1 {
        dx[(h - 1) * w..].fill(0.0);
    }
    ok
}

multiversion!(fn unpool_plane => unpool_plane_impl(g: &[f32], ix: &[i64], w: usize, dx: &mut [f32]) -> bool);
