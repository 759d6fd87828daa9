//! pare patch: thin 3×3 stride-1 "same" convolutions as a direct AVX-512 kernel, for the
//! forward pass and the input gradient (PARE-PATCH.md).
//!
//! With 16–32 channels, im2col writes nine copies of the input for a GEMM whose every column
//! element feeds only 16–32 multiply-adds. Here the input plane is padded once to rows of
//! `w + 2` and the output is computed on that padded grid, flattened: output position `q`
//! reads input position `q + ky·(w + 2) + kx` for tap `(ky, kx)`, so every tap of a run of 16
//! positions is one contiguous load. A block of 8 output channels × 48 positions lives in 24
//! registers; per input channel and tap it costs 3 loads, 8 weight broadcasts and 24 FMAs.
//! The two padding columns of each output row are computed and dropped. A last block of fewer
//! than 8 channels runs a kernel of that many (pruned layers have any width). The input gradient is
//! the same convolution of dY with the kernel flipped and its channels swapped. (A direct
//! weight gradient, dY on the grid against the nine shifted input runs, measured slower than
//! im2col + GEMM and was dropped: BENCHMARKS.md.)
//!
//! Only on x86-64 CPUs with AVX-512F (checked at run time); elsewhere the caller keeps im2col.

use alloc::vec;
use alloc::vec::Vec;

use super::pare_train::Same3x3;

/// Output channels per register block.
const OB: usize = 8;
/// Positions per register block (3 vectors of 16).
const QB: usize = 48;

/// Whether this CPU runs the kernel.
pub(super) fn available() -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    false
}

impl Same3x3 {
    /// Padded row length.
    fn pw(&self) -> usize {
        self.w + 2
    }

    /// Output positions on the padded grid, rounded up to whole blocks.
    fn qn(&self) -> usize {
        (self.h * self.pw()).div_ceil(QB) * QB
    }

    /// Floats of one padded input plane: the frame, then slack for the last block's reads.
    fn plane(&self) -> usize {
        self.qn() + 2 * self.pw() + 2 + 16
    }
}

/// Weights regrouped per block of `OB` output channels: `[block][c][tap][OB]` (zero for the
/// channels past `o` in the last block), so a block's broadcasts read memory in order.
fn pack_weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    let blocks = o.div_ceil(OB);
    let mut p = vec![0.0f32; blocks * c * 9 * OB];
    for oi in 0..o {
        let (b, lane) = (oi / OB, oi % OB);
        for ci in 0..c {
            for t in 0..9 {
                p[((b * c + ci) * 9 + t) * OB + lane] = w[(oi * c + ci) * 9 + t];
            }
        }
    }
    p
}

/// The forward convolution: `x` (n × c × h × w), `w` (o × c × 3 × 3), padding 1, stride 1.
/// `None` when the CPU lacks AVX-512F.
pub(crate) fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &Same3x3) -> Option<Vec<f32>> {
    if !available() {
        return None;
    }
    let packed = pack_weights(w, s.o, s.c);
    let per_out = s.o * s.h * s.w;
    let init = || (vec![0.0f32; s.c * s.plane()], vec![0.0f32; OB * s.qn()]);
    let out = super::pare_train::sample_chunks(s.n * per_out, per_out, 1, init, |(xp, op), first, _, on| {
        let xs = &x[first * s.c * s.h * s.w..][..s.c * s.h * s.w];
        pad(xp, xs, s);
        for b in 0..s.o.div_ceil(OB) {
            let wb = &packed[b * s.c * 9 * OB..][..s.c * 9 * OB];
            run_block(op, xp, wb, s, OB.min(s.o - b * OB));
            // Keep the valid columns of the padded grid; add the bias.
            for lane in 0..OB.min(s.o - b * OB) {
                let oi = b * OB + lane;
                let bv = bias.map_or(0.0, |bs| bs[oi]);
                let src = &op[lane * s.qn()..];
                let dst = &mut on[oi * s.h * s.w..][..s.h * s.w];
                for (y, row) in dst.chunks_exact_mut(s.w).enumerate() {
                    let r = &src[y * s.pw()..][..s.w];
                    row.iter_mut().zip(r).for_each(|(d, &v)| *d = v + bv);
                }
            }
        }
    });
    Some(out)
}

/// The input gradient: the forward of `dy` with the kernel flipped and its channels swapped.
pub(crate) fn x_backward(dy: &[f32], w: &[f32], s: &Same3x3) -> Option<Vec<f32>> {
    let (t, wt) = s.input_gradient(w);
    forward(dy, &wt, None, &t)
}

/// One sample's planes into `xp`: each at offset `pw + 1` of a zeroed frame of `plane()` floats.
fn pad(xp: &mut [f32], x: &[f32], s: &Same3x3) {
    let (pw, plane) = (s.pw(), s.plane());
    for ci in 0..s.c {
        let dst = &mut xp[ci * plane..][..plane];
        dst.fill(0.0);
        for (y, row) in x[ci * s.h * s.w..][..s.h * s.w].chunks_exact(s.w).enumerate() {
            dst[(y + 1) * pw + 1..][..s.w].copy_from_slice(row);
        }
    }
}

/// `op[lane · qn + q] = Σ_{ci, tap} wb[(ci·9 + tap)·OB + lane] · xp[ci·plane + q + off(tap)]`
/// for every position `q < qn` of the padded grid and the block's first `lanes` (1–8) output
/// channels: a last block of fewer than 8 channels (pruned layers have any width) computes only
/// those, not 8.
fn run_block(op: &mut [f32], xp: &[f32], wb: &[f32], s: &Same3x3, lanes: usize) {
    let (qn, plane, pw) = (s.qn(), s.plane(), s.pw());
    assert!(op.len() >= OB * qn && xp.len() >= s.c * plane && wb.len() >= s.c * 9 * OB);
    // The largest read: the last block's last vector at the largest tap offset.
    assert!(qn - QB + 32 + 16 + 2 * pw + 2 <= plane);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    // SAFETY: the CPU has AVX-512F (`forward` checked it), and the asserts above bound every
    // pointer the kernel forms: outputs `lane·qn + q` with q < qn, inputs `ci·plane + q + off`
    // with q + off + 16 ≤ plane, weights `(ci·9 + tap)·OB + lane` < c·9·OB.
    unsafe {
        let (op, xp, wb, c) = (op.as_mut_ptr(), xp.as_ptr(), wb.as_ptr(), s.c);
        match lanes {
            1 => avx512::block::<1>(op, xp, wb, c, qn, plane, pw),
            2 => avx512::block::<2>(op, xp, wb, c, qn, plane, pw),
            3 => avx512::block::<3>(op, xp, wb, c, qn, plane, pw),
            4 => avx512::block::<4>(op, xp, wb, c, qn, plane, pw),
            5 => avx512::block::<5>(op, xp, wb, c, qn, plane, pw),
            6 => avx512::block::<6>(op, xp, wb, c, qn, plane, pw),
            7 => avx512::block::<7>(op, xp, wb, c, qn, plane, pw),
            _ => avx512::block::<OB>(op, xp, wb, c, qn, plane, pw),
        }
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx512 {
    use super::{OB, QB};
    use core::arch::x86_64::*;

    /// See `run_block`: the block's first `L` (≤ `OB`) output channels. Safety: AVX-512F
    /// present; pointers valid for the ranges given there.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block<const L: usize>(
        op: *mut f32,
        xp: *const f32,
        wb: *const f32,
        c: usize,
        qn: usize,
        plane: usize,
        pw: usize,
    ) {
        let offs = [0, 1, 2, pw, pw + 1, pw + 2, 2 * pw, 2 * pw + 1, 2 * pw + 2];
        let mut q = 0;
        while q < qn {
            let mut acc = [[_mm512_setzero_ps(); 3]; L];
            for ci in 0..c {
                // SAFETY (all pointer arithmetic below): within the bounds `run_block` asserts.
                let xc = unsafe { xp.add(ci * plane + q) };
                let wc = unsafe { wb.add(ci * 9 * OB) };
                for (t, &off) in offs.iter().enumerate() {
                    let p = unsafe { xc.add(off) };
                    let (x0, x1, x2) =
                        unsafe { (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)), _mm512_loadu_ps(p.add(32))) };
                    let wt = unsafe { wc.add(t * OB) };
                    for (lane, a) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(unsafe { *wt.add(lane) });
                        a[0] = _mm512_fmadd_ps(wv, x0, a[0]);
                        a[1] = _mm512_fmadd_ps(wv, x1, a[1]);
                        a[2] = _mm512_fmadd_ps(wv, x2, a[2]);
                    }
                }
            }
            for (lane, a) in acc.iter().enumerate() {
                let dst = unsafe { op.add(lane * qn + q) };
                unsafe {
                    _mm512_storeu_ps(dst, a[0]);
                    _mm512_storeu_ps(dst.add(16), a[1]);
                    _mm512_storeu_ps(dst.add(32), a[2]);
                }
            }
            q += QB;
        }
    }
}
