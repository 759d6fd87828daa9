//! pare patch: thin 3×3 stride-1 "same" convolutions as direct AVX-512 kernels, for the
//! forward pass and both gradients (PARE-PATCH.md).
//!
//! With 16–32 channels, im2col writes nine copies of the input for a GEMM whose every column
//! element feeds only 16–32 multiply-adds. Here the input plane is padded once to rows of
//! `w + 2` and the output is computed on that padded grid, flattened: output position `q`
//! reads input position `q + ky·(w + 2) + kx` for tap `(ky, kx)`, so every tap of a run of 16
//! positions is one contiguous load. A block of 8 output channels × 48 positions lives in 24
//! registers; per input channel and tap it costs 3 loads, 8 weight broadcasts and 24 FMAs
//! (6 × 64 and 5 × 80 where those blocks cover the padded grid with fewer vectors: `TILINGS`).
//! The two padding columns of each output row are computed and dropped. A last block of fewer
//! than 8 channels runs a kernel of that many (pruned layers have any width). The input gradient is
//! the same convolution of dY with the kernel flipped and its channels swapped.
//!
//! The weight gradient `dW[o][c][tap] = Σ_{samples, positions} dY[o][q] · x[c][q + tap]` runs
//! the other way round: vectorised over 16 output channels (dY transposed to position-major,
//! output channels innermost), one register per (input channel, tap) pair and block of 16
//! output channels, 27 (3 channels × 9 taps, or 9 taps × 3 blocks of 16 output channels) or 18
//! registers per block; per output position one dY load per block of 16 and one broadcast of
//! the input per (channel, tap), read from the padded plane at `(y + ky)·(w + 2) + x + kx`.
//! No column matrix, no horizontal sums, and only the valid positions. (A first version
//! vectorised over positions, 3 output channels × 9 taps with horizontal sums, measured slower
//! than im2col + GEMM: BENCHMARKS.md.)
//!
//! Only on x86-64 CPUs with AVX-512F (checked at run time); elsewhere the caller keeps im2col.

use alloc::vec;
use alloc::vec::Vec;

use super::pare_train::Same3x3;

/// Register blocks of the forward kernel, `(vectors of 16 positions, output channels)`: 3 × 8,
/// 4 × 6 or 5 × 5 accumulators (24–25 of the 32 registers, the rest for the input vectors and a
/// broadcast). Per shape the one that computes the fewest vectors of the padded grid: a CIFAR
/// ResNet's 32×32 planes have 68 vectors (4 × 17; 3-vector blocks computed 69), its 16×16
/// planes 18 (3 × 6), its 8×8 planes 5 (one 5-vector block; 3-vector blocks computed 6).
const TILINGS: [(usize, usize); 3] = [(3, 8), (4, 6), (5, 5)];

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
}

/// The forward kernel's blocking for one shape.
#[derive(Clone, Copy)]
struct Tiling {
    /// Vectors of 16 positions per block.
    v: usize,
    /// Output channels per block.
    ob: usize,
    /// Output positions on the padded grid, rounded up to whole blocks.
    qn: usize,
    /// Floats of one padded input plane: the frame, then slack for the last block's reads.
    plane: usize,
}

impl Tiling {
    fn of(s: &Same3x3) -> Self {
        let vectors = (s.h * s.pw()).div_ceil(16);
        let computed = |v: usize| vectors.div_ceil(v) * v;
        // The first of the fewest (3 × 8 on a tie: the most output channels per input load).
        let (v, ob) = TILINGS.into_iter().fold(TILINGS[0], |best, t| if computed(t.0) < computed(best.0) { t } else { best });
        let qn = 16 * computed(v);
        Tiling { v, ob, qn, plane: qn + 2 * s.pw() + 2 + 16 }
    }
}

/// Weights regrouped per block of `ob` output channels: `[block][c][tap][ob]` (zero for the
/// channels past `o` in the last block), so a block's broadcasts read memory in order.
fn pack_weights(w: &[f32], o: usize, c: usize, ob: usize) -> Vec<f32> {
    let blocks = o.div_ceil(ob);
    let mut p = vec![0.0f32; blocks * c * 9 * ob];
    for oi in 0..o {
        let (b, lane) = (oi / ob, oi % ob);
        for ci in 0..c {
            for t in 0..9 {
                p[((b * c + ci) * 9 + t) * ob + lane] = w[(oi * c + ci) * 9 + t];
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
    let t = Tiling::of(s);
    let ob = t.ob;
    let packed = pack_weights(w, s.o, s.c, ob);
    let per_out = s.o * s.h * s.w;
    let init = || (super::pare_train::scratch(s.c * t.plane), super::pare_train::scratch(ob * t.qn));
    let out = super::pare_train::sample_chunks(s.n * per_out, per_out, 1, init, |(xp, op), first, _, on| {
        let xs = &x[first * s.c * s.h * s.w..][..s.c * s.h * s.w];
        pad_planes(xp, xs, s, t.plane);
        for b in 0..s.o.div_ceil(ob) {
            let wb = &packed[b * s.c * 9 * ob..][..s.c * 9 * ob];
            let lanes = ob.min(s.o - b * ob);
            run_block(op, xp, wb, s, &t, lanes);
            // Keep the valid columns of the padded grid; add the bias.
            for lane in 0..lanes {
                let oi = b * ob + lane;
                let bv = bias.map_or(0.0, |bs| bs[oi]);
                let src = &op[lane * t.qn..];
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

/// Each of a sample's `c` planes at offset `pw + 1` of a frame of `plane` (≥ `(h + 2)·pw`)
/// floats, zero around it: only the frame is written with zeros (filling the whole frame first
/// was a memset as large as the input, on every call).
fn pad_planes(xp: &mut [f32], x: &[f32], s: &Same3x3, plane: usize) {
    let (pw, w) = (s.pw(), s.w);
    for ci in 0..s.c {
        let dst = &mut xp[ci * plane..][..plane];
        dst[..pw + 1].fill(0.0);
        for (y, row) in x[ci * s.h * w..][..s.h * w].chunks_exact(w).enumerate() {
            let at = (y + 1) * pw + 1;
            dst[at..][..w].copy_from_slice(row);
            // This row's right border and the next row's left one.
            dst[at + w..][..2].fill(0.0);
        }
        dst[(s.h + 1) * pw + 1..].fill(0.0);
    }
}

/// The weight gradient `dW (o × c × 3 × 3)` of the forward above for input `x` and output
/// gradient `dy` (n × o × h × w): per sample, dY transposed to `[position][output channel]`
/// (rows padded with zeros to a multiple of 16) and the input padded, then the kernel
/// (module doc) per block of output and input channels. Samples split between the workers in a
/// fixed split, partial sums added in a fixed order: the same bits on every run. `None` when
/// the CPU lacks AVX-512F.
pub(crate) fn weight_backward(x: &[f32], dy: &[f32], s: &Same3x3) -> Option<Vec<f32>> {
    if !available() {
        return None;
    }
    let (c, o, hw) = (s.c, s.o, s.h * s.w);
    let op = o.div_ceil(16) * 16;
    let plane = (s.h + 2) * s.pw();
    let size = 9 * c * op;
    let acc = super::pare_train::fixed_split_sum(s.n, size, |range| {
        // dyt's lanes past `o` are read (their products dropped): zeros, not scratch.
        let (mut acc, mut xp, mut dyt) = (vec![0.0f32; size], super::pare_train::scratch(c * plane), vec![0.0f32; hw * op]);
        for b in range {
            pad_planes(&mut xp, &x[b * c * hw..][..c * hw], s, plane);
            let dyb = &dy[b * o * hw..][..o * hw];
            // Eight positions at a time: eight rows of dyt filled front to back.
            for q0 in (0..hw).step_by(8) {
                let q1 = (q0 + 8).min(hw);
                for (oi, src) in dyb.chunks_exact(hw).enumerate() {
                    for q in q0..q1 {
                        dyt[q * op + oi] = src[q];
                    }
                }
            }
            wgrad_sample(&mut acc, &xp, &dyt, s, op, plane);
        }
        acc
    });
    // acc[(ci·9 + tap)·op + oi] → dW[(oi·c + ci)·9 + tap].
    let mut dw = vec![0.0f32; o * c * 9];
    for (k, col) in acc.chunks_exact(op).enumerate() {
        for (oi, &v) in col[..o].iter().enumerate() {
            dw[oi * c * 9 + k] = v;
        }
    }
    Some(dw)
}

/// One sample's contribution to `acc[(ci·9 + tap)·op + oi]`: blocks of 3 vectors of output
/// channels × 1 input channel (27 registers), the last 1–2 vectors × 3 or 1 input channels.
fn wgrad_sample(acc: &mut [f32], xp: &[f32], dyt: &[f32], s: &Same3x3, op: usize, plane: usize) {
    let (c, h, w, pw) = (s.c, s.h, s.w, s.pw());
    assert!(op % 16 == 0 && acc.len() >= 9 * c * op && xp.len() >= c * plane && dyt.len() >= h * w * op);
    // The largest input read, (ci, y + 2, x + 2) for ci < c, y < h, x < w, is inside the frame.
    assert!((h + 1) * pw + w + 1 < plane);
    let vectors = op / 16;
    let mut v0 = 0;
    while v0 < vectors {
        let r = (vectors - v0).min(3);
        let step = if r == 1 { 3 } else { 1 };
        let mut ci = 0;
        while ci < c {
            let cc = (c - ci).min(step);
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: AVX-512F present (`weight_backward` checked it); the asserts above bound
            // every pointer: accumulators `((ci + i)·9 + tap)·op + 16·(v0 + j) + lane` with
            // ci + i < c and v0 + j < vectors, dY `q·op + 16·(v0 + j) + lane` with q < h·w,
            // inputs `(ci + i)·plane + (y + ky)·pw + x + kx` ≤ (c − 1)·plane + (h + 1)·pw + w + 1.
            unsafe {
                let a = acc.as_mut_ptr().add(ci * 9 * op + 16 * v0);
                let xs = xp.as_ptr().add(ci * plane);
                let d = dyt.as_ptr().add(16 * v0);
                match (r, cc) {
                    (3, _) => avx512::wgrad::<3, 1>(a, xs, d, op, h, w, pw, plane),
                    (2, _) => avx512::wgrad::<2, 1>(a, xs, d, op, h, w, pw, plane),
                    (_, 3) => avx512::wgrad::<1, 3>(a, xs, d, op, h, w, pw, plane),
                    (_, 2) => avx512::wgrad::<1, 2>(a, xs, d, op, h, w, pw, plane),
                    _ => avx512::wgrad::<1, 1>(a, xs, d, op, h, w, pw, plane),
                }
            }
            ci += cc;
        }
        v0 += r;
    }
}

/// `op[lane · qn + q] = Σ_{ci, tap} wb[(ci·9 + tap)·ob + lane] · xp[ci·plane + q + off(tap)]`
/// for every position `q < qn` of the padded grid and the block's first `lanes` (1–`ob`)
/// output channels: a last block of fewer channels (pruned layers have any width) computes only
/// those.
fn run_block(op: &mut [f32], xp: &[f32], wb: &[f32], s: &Same3x3, t: &Tiling, lanes: usize) {
    let (qn, plane, pw, ob) = (t.qn, t.plane, s.pw(), t.ob);
    assert!((1..=ob).contains(&lanes) && qn % (16 * t.v) == 0 && qn >= 16 * t.v);
    assert!(op.len() >= lanes * qn && xp.len() >= s.c * plane && wb.len() >= s.c * 9 * ob);
    // The largest read: the last block's last vector at the largest tap offset.
    assert!(qn + 2 * pw + 2 <= plane);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    // SAFETY: the CPU has AVX-512F (`forward` checked it), and the asserts above bound every
    // pointer the kernel forms: outputs `lane·qn + q` with lane < lanes and q < qn, inputs
    // `ci·plane + q + off` with q + off + 16 ≤ qn + 2·pw + 2, weights `(ci·9 + tap)·ob + lane`
    // < c·9·ob.
    unsafe {
        let (op, xp, wb, c) = (op.as_mut_ptr(), xp.as_ptr(), wb.as_ptr(), s.c);
        macro_rules! dispatch {
            ($($v:literal => [$($l:literal)*]),*) => {
                match (t.v, lanes) {
                    $($(($v, $l) => avx512::block::<$l, $v>(op, xp, wb, c, ob, qn, plane, pw),)*)*
                    _ => unreachable!("no kernel for {} vectors × {} channels", t.v, lanes),
                }
            };
        }
        dispatch!(3 => [1 2 3 4 5 6 7 8], 4 => [1 2 3 4 5 6], 5 => [1 2 3 4 5]);
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx512 {
    use core::arch::x86_64::*;

    /// See `run_block`: the block's first `L` output channels over blocks of `V` vectors of 16
    /// positions. Safety: AVX-512F present; pointers valid for the ranges given there.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block<const L: usize, const V: usize>(
        op: *mut f32,
        xp: *const f32,
        wb: *const f32,
        c: usize,
        ob: usize,
        qn: usize,
        plane: usize,
        pw: usize,
    ) {
        let offs = [0, 1, 2, pw, pw + 1, pw + 2, 2 * pw, 2 * pw + 1, 2 * pw + 2];
        let mut q = 0;
        while q < qn {
            let mut acc = [[_mm512_setzero_ps(); V]; L];
            for ci in 0..c {
                // SAFETY (all pointer arithmetic below): within the bounds `run_block` asserts.
                let xc = unsafe { xp.add(ci * plane + q) };
                let wc = unsafe { wb.add(ci * 9 * ob) };
                for (t, &off) in offs.iter().enumerate() {
                    let p = unsafe { xc.add(off) };
                    let mut xv = [_mm512_setzero_ps(); V];
                    for (k, v) in xv.iter_mut().enumerate() {
                        *v = unsafe { _mm512_loadu_ps(p.add(16 * k)) };
                    }
                    let wt = unsafe { wc.add(t * ob) };
                    for (lane, a) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(unsafe { *wt.add(lane) });
                        for (k, ak) in a.iter_mut().enumerate() {
                            *ak = _mm512_fmadd_ps(wv, xv[k], *ak);
                        }
                    }
                }
            }
            for (lane, a) in acc.iter().enumerate() {
                let dst = unsafe { op.add(lane * qn + q) };
                for (k, ak) in a.iter().enumerate() {
                    unsafe { _mm512_storeu_ps(dst.add(16 * k), *ak) };
                }
            }
            q += 16 * V;
        }
    }

    /// See `wgrad_sample`: `R` vectors of 16 output channels × `C` input channels × 9 taps of
    /// accumulators, loaded from and stored back to `acc`. Safety: AVX-512F present; pointers
    /// valid for the ranges given there.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn wgrad<const R: usize, const C: usize>(
        acc: *mut f32,
        xp: *const f32,
        dyt: *const f32,
        op: usize,
        h: usize,
        w: usize,
        pw: usize,
        plane: usize,
    ) {
        // SAFETY (all pointer arithmetic below): within the bounds `wgrad_sample` asserts.
        let mut a = [[[_mm512_setzero_ps(); R]; 9]; C];
        for (i, ai) in a.iter_mut().enumerate() {
            for (t, at) in ai.iter_mut().enumerate() {
                for (j, v) in at.iter_mut().enumerate() {
                    *v = unsafe { _mm512_loadu_ps(acc.add((i * 9 + t) * op + 16 * j)) };
                }
            }
        }
        for y in 0..h {
            let mut rows = [[xp; 3]; C];
            for (i, ri) in rows.iter_mut().enumerate() {
                for (ky, r) in ri.iter_mut().enumerate() {
                    *r = unsafe { xp.add(i * plane + (y + ky) * pw) };
                }
            }
            let drow = unsafe { dyt.add(y * w * op) };
            for x in 0..w {
                let mut d = [_mm512_setzero_ps(); R];
                for (j, dj) in d.iter_mut().enumerate() {
                    *dj = unsafe { _mm512_loadu_ps(drow.add(x * op + 16 * j)) };
                }
                for (i, ai) in a.iter_mut().enumerate() {
                    for ky in 0..3 {
                        let p = unsafe { rows[i][ky].add(x) };
                        for kx in 0..3 {
                            let v = _mm512_set1_ps(unsafe { *p.add(kx) });
                            for (j, ac) in ai[ky * 3 + kx].iter_mut().enumerate() {
                                *ac = _mm512_fmadd_ps(d[j], v, *ac);
                            }
                        }
                    }
                }
            }
        }
        for (i, ai) in a.iter().enumerate() {
            for (t, at) in ai.iter().enumerate() {
                for (j, v) in at.iter().enumerate() {
                    unsafe { _mm512_storeu_ps(acc.add((i * 9 + t) * op + 16 * j), *v) };
                }
            }
        }
    }
}
