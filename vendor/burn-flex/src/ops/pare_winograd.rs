//! pare patch: 3×3 stride-1 "same" convolutions by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray 2016), forward and both gradients (PARE-PATCH.md).
//!
//! A 2×2 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the 4×4 input tile `d` around it: 16
//! multiplications per tile, input and output channel where the direct convolution needs 36.
//! Over a chunk of samples that is 16 GEMMs, one per position ξ of the 4×4 transformed tile:
//!
//! - forward: `M_ξ (o × tiles) = U_ξ (o × c) · V_ξ (c × tiles)`, then `Aᵀ M A` per tile;
//! - input gradient: the forward of `dY` with the kernel flipped and its channels swapped (the
//!   input gradient of a stride-1 "same" 3×3 convolution is one), which reuses the forward's
//!   `U` with its positions permuted and each `U_ξ` transposed (`x_backward`);
//! - weight gradient: `dU_ξ (o × c) = Σ over tiles of (A dY Aᵀ)_ξ (o × tiles) · V_ξᵀ`, then
//!   `dW = Gᵀ dU G` (the transpose of the forward's linear map in `g`).
//!
//! The transforms run per tile, vectorised across 16 channels of a channels-last copy of each
//! sample; `V`, `M` and `A dY Aᵀ` are stored tile-major with the channels innermost. Small
//! batches of tiles run each GEMM once over the whole batch (`whole_batch`).
//!
//! The transforms' coefficients are 0, ±1 and ±½, so the results differ from the direct
//! convolution by rounding only (checked against f64 loops by `host/tests/flex_kernels.rs`).

use alloc::vec;
use alloc::vec::Vec;

use super::pare_train::{Same3x3, fixed_split_sum, multiversion, scratch, threads};

impl Same3x3 {
    /// Tile rows and columns (a 2×2 output tile each; an odd plane's last tile hangs over).
    fn tiles(&self) -> (usize, usize) {
        (self.h.div_ceil(2), self.w.div_ceil(2))
    }

    /// Samples per chunk: at least 256 tiles per GEMM, without leaving a thread idle.
    fn chunk(&self) -> usize {
        let (th, tw) = self.tiles();
        256usize.div_ceil((th * tw).max(1)).min(self.n.div_ceil(threads())).max(1)
    }
}

/// Channels per vector block of the transforms (one AVX-512 register of f32).
const L: usize = 16;

/// `K` values from `src[at..]` as an array (the transforms' vector of channels).
#[inline(always)]
fn load<const K: usize>(src: &[f32], at: usize) -> [f32; K] {
    let s = &src[at..at + K];
    core::array::from_fn(|l| s[l])
}

/// Lane-wise `f(a, b)`.
#[inline(always)]
fn zip2<const K: usize>(a: [f32; K], b: [f32; K], f: impl Fn(f32, f32) -> f32) -> [f32; K] {
    core::array::from_fn(|l| f(a[l], b[l]))
}

/// `U_ξ` for every ξ: `u[(ξ·o + oi)·c + ci] = (G g Gᵀ)_ξ` with `g = w[oi][ci]` (3×3), the
/// output channels split between the workers (each writes its rows of every `U_ξ`).
fn weight_transform(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    let mut u = scratch(16 * o * c);
    let per = o.div_ceil(threads()).max(1);
    let parts = split_by_chunks(&mut u, o * c, per * c, o.div_ceil(per));
    super::pare_train::for_each_part(parts, |k, mut rows| weight_rows(&mut rows, w, k * per, c));
    u
}

/// [`weight_transform`]'s rows from output channel `o0` on: `u[ξ][(oi − o0)·c + ci]`.
#[inline(always)]
fn weight_rows_impl(u: &mut [&mut [f32]], w: &[f32], o0: usize, c: usize) {
    let rows = u.first().map_or(0, |r| r.len() / c.max(1));
    // One output channel's 16 rows at a time in `tmp`, then copied out row by row.
    let mut tmp = vec![0.0f32; 16 * c];
    for r in 0..rows {
        let oi = o0 + r;
        for ci in 0..c {
            let g = &w[(oi * c + ci) * 9..][..9];
            // G g: 4×3, rows (g0, (g0+g1+g2)/2, (g0−g1+g2)/2, g2) over g's columns.
            let mut t = [0.0f32; 12];
            for j in 0..3 {
                let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
                t[j] = a;
                t[3 + j] = 0.5 * (a + b + d);
                t[6 + j] = 0.5 * (a - b + d);
                t[9 + j] = d;
            }
            // (G g) Gᵀ: 4×4.
            for i in 0..4 {
                let (a, b, d) = (t[i * 3], t[i * 3 + 1], t[i * 3 + 2]);
                let q = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (j, v) in q.into_iter().enumerate() {
                    tmp[(i * 4 + j) * c + ci] = v;
                }
            }
        }
        for (xi, row) in u.iter_mut().enumerate() {
            row[r * c..][..c].copy_from_slice(&tmp[xi * c..][..c]);
        }
    }
}

multiversion!(fn weight_rows => weight_rows_impl(u: &mut [&mut [f32]], w: &[f32], o0: usize, c: usize));

/// Scratch floats [`input_transform`] needs: one sample's channels-last planes inside a zero
/// frame as large as the tiles read.
fn scratch_len(s: &Same3x3) -> usize {
    let (th, tw) = s.tiles();
    (2 * th + 2) * (2 * tw + 2) * s.c
}

/// One sample's planes `x` (`c × h × w`) channels-last into `dst` at (`top`, `left`) of rows
/// `pw` pixels wide: `dst[((top + y)·pw + left + x)·c + ci]`. A block of channels at a time,
/// so each store run is a block's length.
#[inline(always)]
fn to_channels_last(dst: &mut [f32], x: &[f32], c: usize, h: usize, w: usize, pw: usize, top: usize, left: usize) {
    let hw = h * w;
    let run = |ci: usize, k: usize, dst: &mut [f32]| {
        for y in 0..h {
            for xx in 0..w {
                let p = y * w + xx;
                let d = &mut dst[((top + y) * pw + left + xx) * c + ci..][..k];
                for (l, d) in d.iter_mut().enumerate() {
                    *d = x[(ci + l) * hw + p];
                }
            }
        }
    };
    let full = c - c % L;
    for ci in (0..full).step_by(L) {
        run(ci, L, dst);
    }
    if full < c {
        run(full, c - full, dst);
    }
}

/// `V_ξ` for the chunk's samples, tile-major with the channels innermost:
/// `v[ξ][t·c + ci] = (Bᵀ d B)_ξ` for tile `t` (samples one after the other, tiles row by row)
/// of channel `ci`. A sample at a time: its planes channels-last inside a zero frame,
/// then each tile's 4×4 patch transformed vectorised across channels.
#[inline(always)]
fn input_transform_impl(v: &mut [&mut [f32]], x: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]) {
    let (th, tw) = s.tiles();
    let (c, pw) = (s.c, 2 * tw + 2);
    let xp = &mut scratch[..scratch_len(s)];
    // The frame (and an odd plane's overhang) is never written below: zero it all once.
    xp.fill(0.0);
    for b in 0..nb {
        to_channels_last(xp, &x[b * c * s.h * s.w..], c, s.h, s.w, pw, 1, 1);
        for ty in 0..th {
            for tx in 0..tw {
                let t = b * th * tw + ty * tw + tx;
                let base = (2 * ty * pw + 2 * tx) * c;
                let full = c - c % L;
                for ci in (0..full).step_by(L) {
                    input_tile::<L>(v, xp, base, pw, c, ci, t);
                }
                for ci in full..c {
                    input_tile::<1>(v, xp, base, pw, c, ci, t);
                }
            }
        }
    }
}

/// `Bᵀ d B` of tile `t` for channels `ci..ci + K`: the 4×4 patch at `base` of `xp`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn input_tile<const K: usize>(v: &mut [&mut [f32]], xp: &[f32], base: usize, pw: usize, c: usize, ci: usize, t: usize) {
    let d = |r: usize, q: usize| load::<K>(xp, base + (r * pw + q) * c + ci);
    // Bᵀ d: rows (d0 − d2, d1 + d2, d2 − d1, d1 − d3), per column q.
    let mut rows = [[[0.0f32; K]; 4]; 4];
    for q in 0..4 {
        let (d0, d1, d2, d3) = (d(0, q), d(1, q), d(2, q), d(3, q));
        rows[0][q] = zip2(d0, d2, |a, b| a - b);
        rows[1][q] = zip2(d1, d2, |a, b| a + b);
        rows[2][q] = zip2(d2, d1, |a, b| a - b);
        rows[3][q] = zip2(d1, d3, |a, b| a - b);
    }
    // … then B on the right: columns (c0 − c2, c1 + c2, c2 − c1, c1 − c3).
    for (i, [c0, c1, c2, c3]) in rows.into_iter().enumerate() {
        let r = [zip2(c0, c2, |a, b| a - b), zip2(c1, c2, |a, b| a + b), zip2(c2, c1, |a, b| a - b), zip2(c1, c3, |a, b| a - b)];
        for (j, val) in r.into_iter().enumerate() {
            v[i * 4 + j][t * c + ci..][..K].copy_from_slice(&val);
        }
    }
}

multiversion!(fn input_transform => input_transform_impl(v: &mut [&mut [f32]], x: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]));

/// `Aᵀ M A` per tile into the chunk's NCHW output (plus the bias), dropping an odd plane's
/// overhang: `m[(ξ·ld + t0 + t)·o + oi]` (the GEMM's column-major output) for the chunk's
/// tile `t`. Vectorised across output channels; each output value is stored into its plane.
#[inline(always)]
fn output_transform_impl(out: &mut [f32], m: &[f32], ld: usize, t0: usize, nb: usize, s: &Same3x3, bias: Option<&[f32]>) {
    let (th, tw) = s.tiles();
    let o = s.o;
    for b in 0..nb {
        for ty in 0..th {
            for tx in 0..tw {
                let t = t0 + b * th * tw + ty * tw + tx;
                let full = o - o % L;
                for oi in (0..full).step_by(L) {
                    output_tile::<L>(out, m, ld, s, bias, b, ty, tx, t, oi);
                }
                for oi in full..o {
                    output_tile::<1>(out, m, ld, s, bias, b, ty, tx, t, oi);
                }
            }
        }
    }
}

/// [`output_transform`] of tile `t` (sample `b`, tile row `ty`, column `tx`) for output
/// channels `oi..oi + K`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn output_tile<const K: usize>(out: &mut [f32], m: &[f32], ld: usize, s: &Same3x3, bias: Option<&[f32]>, b: usize, ty: usize, tx: usize, t: usize, oi: usize) {
    let (o, h, w) = (s.o, s.h, s.w);
    let q = |xi: usize| load::<K>(m, (xi * ld + t) * o + oi);
    let bv: [f32; K] = bias.map_or([0.0; K], |bs| load::<K>(bs, oi));
    // Aᵀ M: rows (m0 + m1 + m2, m1 − m2 − m3), per column j; then A on the right.
    let mut rows = [[[0.0f32; K]; 4]; 2];
    for j in 0..4 {
        let (m0, m1, m2, m3) = (q(j), q(4 + j), q(8 + j), q(12 + j));
        rows[0][j] = core::array::from_fn(|l| m0[l] + m1[l] + m2[l]);
        rows[1][j] = core::array::from_fn(|l| m1[l] - m2[l] - m3[l]);
    }
    for (i, [a, bb, cc, d]) in rows.into_iter().enumerate() {
        let y = 2 * ty + i;
        if y >= h {
            break;
        }
        let vals = [core::array::from_fn::<f32, K, _>(|l| a[l] + bb[l] + cc[l] + bv[l]), core::array::from_fn(|l| bb[l] - cc[l] - d[l] + bv[l])];
        for (k, val) in vals.iter().enumerate() {
            let x = 2 * tx + k;
            if x >= w {
                break;
            }
            for (l, val) in val.iter().enumerate() {
                out[((b * o + oi + l) * h + y) * w + x] = *val;
            }
        }
    }
}

multiversion!(fn output_transform => output_transform_impl(out: &mut [f32], m: &[f32], ld: usize, t0: usize, nb: usize, s: &Same3x3, bias: Option<&[f32]>));

/// Scratch floats [`grad_transform`] needs: one sample's gradient channels-last, the planes
/// rounded up to whole tiles.
fn grad_scratch_len(s: &Same3x3) -> usize {
    let (th, tw) = s.tiles();
    4 * th * tw * s.o
}

/// `(A dY Aᵀ)_ξ` for the chunk's samples, tile-major for the weight-gradient GEMM:
/// `e[ξ][t·o + oi]`; gradient outside the plane (an odd plane's overhang) is zero. A
/// sample at a time: its gradient channels-last, then each tile vectorised across channels.
#[inline(always)]
fn grad_transform_impl(e: &mut [&mut [f32]], dy: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]) {
    let (th, tw) = s.tiles();
    let (o, pw) = (s.o, 2 * tw);
    let gp = &mut scratch[..grad_scratch_len(s)];
    // An odd plane's overhang is never written below: zero it all once.
    if s.h % 2 == 1 || s.w % 2 == 1 {
        gp.fill(0.0);
    }
    for b in 0..nb {
        to_channels_last(gp, &dy[b * o * s.h * s.w..], o, s.h, s.w, pw, 0, 0);
        for ty in 0..th {
            for tx in 0..tw {
                let t = b * th * tw + ty * tw + tx;
                let base = (2 * ty * pw + 2 * tx) * o;
                let full = o - o % L;
                for oi in (0..full).step_by(L) {
                    grad_tile::<L>(e, gp, base, pw, o, oi, t);
                }
                for oi in full..o {
                    grad_tile::<1>(e, gp, base, pw, o, oi, t);
                }
            }
        }
    }
}

/// `A g Aᵀ` of tile `t` for output channels `oi..oi + K`: the 2×2 gradient at `base` of `gp`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn grad_tile<const K: usize>(e: &mut [&mut [f32]], gp: &[f32], base: usize, pw: usize, o: usize, oi: usize, t: usize) {
    let g = |r: usize, q: usize| load::<K>(gp, base + (r * pw + q) * o + oi);
    let (g00, g01, g10, g11) = (g(0, 0), g(0, 1), g(1, 0), g(1, 1));
    let neg = |a: [f32; K]| a.map(|x| -x);
    // A g Aᵀ: rows (r0, r0 + r1, r0 − r1, −r1), columns (c0, c0 + c1, c0 − c1, −c1).
    let rows = [
        [g00, g01],
        [zip2(g00, g10, |a, b| a + b), zip2(g01, g11, |a, b| a + b)],
        [zip2(g00, g10, |a, b| a - b), zip2(g01, g11, |a, b| a - b)],
        [neg(g10), neg(g11)],
    ];
    for (i, [a, bb]) in rows.into_iter().enumerate() {
        let q = [a, zip2(a, bb, |x, y| x + y), zip2(a, bb, |x, y| x - y), neg(bb)];
        for (j, val) in q.into_iter().enumerate() {
            e[i * 4 + j][t * o + oi..][..K].copy_from_slice(&val);
        }
    }
}

multiversion!(fn grad_transform => grad_transform_impl(e: &mut [&mut [f32]], dy: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]));

/// `dW[oi][ci] = Gᵀ dU G` (3×3) from `dU_ξ` accumulated column-major: `du[(ξ·c + ci)·o + oi]`.
/// An input channel at a time, vectorised over the output channels (contiguous in `du`).
fn weight_grad_transform(du: &[f32], o: usize, c: usize) -> Vec<f32> {
    let per = o.div_ceil(threads()).max(1);
    super::pare_train::sample_chunks(o * c * 9, c * 9, per, || (), |_, o0, n, dw| weight_grad_rows(dw, du, o, c, o0, n))
}

/// [`weight_grad_transform`] for output channels `o0..o0 + n` into their rows of `dW`.
#[inline(always)]
fn weight_grad_rows_impl(dw: &mut [f32], du: &[f32], o: usize, c: usize, o0: usize, n: usize) {
    let oc = o * c;
    let mut t = vec![0.0f32; 12 * n];
    let mut g = vec![0.0f32; 9 * n];
    for ci in 0..c {
        let q = |xi: usize| &du[xi * oc + ci * o + o0..][..n];
        // Gᵀ m: rows (m0 + (m1 + m2)/2, (m1 − m2)/2, (m1 + m2)/2 + m3), per column j.
        for j in 0..4 {
            let (m0, m1, m2, m3) = (q(j), q(4 + j), q(8 + j), q(12 + j));
            let (t0, rest) = t.split_at_mut(4 * n);
            let (t1, t2) = rest.split_at_mut(4 * n);
            let (t0, t1, t2) = (&mut t0[j * n..][..n], &mut t1[j * n..][..n], &mut t2[j * n..][..n]);
            for x in 0..n {
                let (a, b) = (0.5 * (m1[x] + m2[x]), 0.5 * (m1[x] - m2[x]));
                t0[x] = m0[x] + a;
                t1[x] = b;
                t2[x] = a + m3[x];
            }
        }
        // … then G on the right, the same combination of the four columns.
        for i in 0..3 {
            let r = |j: usize| &t[(i * 4 + j) * n..][..n];
            let (m0, m1, m2, m3) = (r(0), r(1), r(2), r(3));
            let (g0, rest) = g[i * 3 * n..][..3 * n].split_at_mut(n);
            let (g1, g2) = rest.split_at_mut(n);
            for x in 0..n {
                let (a, b) = (0.5 * (m1[x] + m2[x]), 0.5 * (m1[x] - m2[x]));
                g0[x] = m0[x] + a;
                g1[x] = b;
                g2[x] = a + m3[x];
            }
        }
        for r in 0..n {
            let dst = &mut dw[(r * c + ci) * 9..][..9];
            for (k, d) in dst.iter_mut().enumerate() {
                *d = g[k * n + r];
            }
        }
    }
}

multiversion!(fn weight_grad_rows => weight_grad_rows_impl(dw: &mut [f32], du: &[f32], o: usize, c: usize, o0: usize, n: usize));

/// The forward convolution: `x` (n × c × h × w), `w` (o × c × 3 × 3), padding 1, stride 1.
pub(crate) fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &Same3x3) -> Vec<f32> {
    let u = weight_transform(w, s.o, s.c);
    // U_ξ as a row-major o × c operand.
    convolve(x, &u, |xi| xi, (s.c, 1), bias, s)
}

/// The input gradient: the forward of `dy` with the kernel flipped and its channels swapped.
/// Flipping `g` reverses G's columns, and `G J = P G` for the permutation `P` that swaps the
/// first and last rows, so `G flip(g) Gᵀ = P (G g Gᵀ) Pᵀ`: the forward's `U` with its positions
/// permuted, each `U_ξ` read transposed (a column-major `c × o` operand) for the swap.
pub(crate) fn x_backward(dy: &[f32], w: &[f32], s: &Same3x3) -> Vec<f32> {
    const P: [usize; 4] = [3, 1, 2, 0];
    let u = weight_transform(w, s.o, s.c);
    let t = Same3x3 { c: s.o, o: s.c, ..*s };
    convolve(dy, &u, |xi| P[xi / 4] * 4 + P[xi % 4], (1, s.c), None, &t)
}

/// `buf` as its 16 blocks of `each` floats, one per position ξ.
fn by_position(buf: &mut [f32], each: usize) -> Vec<&mut [f32]> {
    buf.chunks_mut(each.max(1)).take(16).collect()
}

/// Whether the 16 GEMMs run once over the whole batch, split between the workers by position
/// ξ, rather than once per chunk of samples: where the planes are small, a chunk has few tiles
/// and each of its GEMMs packs the whole `U_ξ` (or `dY`'s transform) for little work.
fn whole_batch(s: &Same3x3) -> bool {
    let (th, tw) = s.tiles();
    s.n * th * tw <= super::pare_train::thresholds().winograd_batch_tiles
}

/// The transforms of [`whole_batch`]: `v` and `e` (`16 × tiles × channels`, by position) filled
/// in parallel over chunks of samples, `fill(v's parts, e's parts, first sample, samples,
/// scratch)` on each chunk's share of every position.
fn fill_by_chunks<F>(v: &mut [f32], vc: usize, e: &mut [f32], ec: usize, s: &Same3x3, fill: F)
where
    F: Fn(&mut [&mut [f32]], &mut [&mut [f32]], usize, usize, &mut [f32]) + Sync + Send,
{
    let (th, tw) = s.tiles();
    let (tiles, nb) = (s.n * th * tw, s.chunk());
    let chunks = s.n.div_ceil(nb);
    let split = |buf, per| split_by_chunks(buf, tiles * per, nb * th * tw * per, chunks);
    let jobs: Vec<(usize, (Vec<&mut [f32]>, Vec<&mut [f32]>))> = split(v, vc).into_iter().zip(split(e, ec)).enumerate().collect();
    let len = scratch_len(s).max(grad_scratch_len(s));
    let run = |pad: &mut Vec<f32>, (k, (mut vs, mut es)): (usize, (Vec<&mut [f32]>, Vec<&mut [f32]>))| {
        fill(&mut vs, &mut es, k * nb, nb.min(s.n - k * nb), pad);
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        jobs.into_par_iter().for_each_init(|| scratch(len), run);
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut pad = scratch(len);
        jobs.into_iter().for_each(|j| run(&mut pad, j));
    }
}

/// Chunk `k`'s share of each position ξ: `parts[k][ξ]` is `buf[ξ·per_position..]`'s `k`-th
/// run of `per_chunk` floats (the last may be shorter).
fn split_by_chunks(buf: &mut [f32], per_position: usize, per_chunk: usize, chunks: usize) -> Vec<Vec<&mut [f32]>> {
    let mut parts: Vec<Vec<&mut [f32]>> = (0..chunks).map(|_| Vec::with_capacity(16)).collect();
    if per_chunk > 0 {
        for block in buf.chunks_mut(per_position).take(16) {
            for (k, part) in block.chunks_mut(per_chunk).enumerate() {
                parts[k].push(part);
            }
        }
    }
    parts
}

/// `Aᵀ [U_ξ · V_ξ] A` over chunks of samples: `x` (n × c × h × w) into n × o × h × w, with
/// `U_ξ` the `o × c` block `pos(ξ)` of `u`, read with the strides `(rows, columns)`.
fn convolve(x: &[f32], u: &[f32], pos: impl Fn(usize) -> usize + Sync + Send, (rs, cs): (usize, usize), bias: Option<&[f32]>, s: &Same3x3) -> Vec<f32> {
    let (th, tw) = s.tiles();
    let nb = s.chunk();
    let per_out = s.o * s.h * s.w;
    let per_in = s.c * s.h * s.w;
    if whole_batch(s) {
        let ld = s.n * th * tw;
        let mut v = scratch(16 * s.c * ld);
        fill_by_chunks(&mut v, s.c, &mut [], 0, s, |vs, _, first, nbc, pad| input_transform(vs, &x[first * per_in..], nbc, s, pad));
        let mut m = scratch(16 * s.o * ld);
        super::pare_train::for_each_part(by_position(&mut m, s.o * ld), |xi, mxi| {
            let uxi = &u[pos(xi) * s.o * s.c..][..s.o * s.c];
            let vxi = &v[xi * s.c * ld..][..s.c * ld];
            super::pare_train::gemm(s.o, ld, s.c, mxi, false, uxi, rs, cs, vxi, 1, s.c, true);
        });
        return super::pare_train::sample_chunks(s.n * per_out, per_out, nb, || (), |_, first, nbc, on| {
            output_transform(on, &m, ld, first * th * tw, nbc, s, bias);
        });
    }
    let init = || (scratch(16 * s.c * nb * th * tw), scratch(16 * s.o * nb * th * tw), scratch(scratch_len(s)));
    super::pare_train::sample_chunks(s.n * per_out, per_out, nb, init, |(v, m, pad), first, nbc, on| {
        let ld = nbc * th * tw;
        input_transform(&mut by_position(v, s.c * ld), &x[first * per_in..], nbc, s, pad);
        for xi in 0..16 {
            let uxi = &u[pos(xi) * s.o * s.c..][..s.o * s.c];
            let vxi = &v[xi * s.c * ld..][..s.c * ld];
            let mxi = &mut m[xi * s.o * ld..][..s.o * ld];
            super::pare_train::gemm(s.o, ld, s.c, mxi, false, uxi, rs, cs, vxi, 1, s.c, true);
        }
        output_transform(on, m, ld, 0, nbc, s, bias);
    })
}

/// The weight gradient, summed over a fixed split of the chunks in a fixed order (the same bits
/// on every run); over the whole batch at once where [`whole_batch`] says so.
pub(crate) fn weight_backward(x: &[f32], dy: &[f32], s: &Same3x3) -> Vec<f32> {
    let (th, tw) = s.tiles();
    let nb = s.chunk();
    let size = 16 * s.o * s.c;
    let (per_in, per_out) = (s.c * s.h * s.w, s.o * s.h * s.w);
    if whole_batch(s) {
        let ld = s.n * th * tw;
        let (mut v, mut e) = (scratch(16 * s.c * ld), scratch(16 * s.o * ld));
        fill_by_chunks(&mut v, s.c, &mut e, s.o, s, |vs, es, first, nbc, pad| {
            input_transform(vs, &x[first * per_in..], nbc, s, pad);
            grad_transform(es, &dy[first * per_out..], nbc, s, pad);
        });
        let mut du = scratch(size);
        super::pare_train::for_each_part(by_position(&mut du, s.o * s.c), |xi, dxi| {
            let exi = &e[xi * ld * s.o..][..ld * s.o];
            let vxi = &v[xi * s.c * ld..][..s.c * ld];
            super::pare_train::gemm(s.o, s.c, ld, dxi, false, exi, 1, s.o, vxi, s.c, 1, true);
        });
        return weight_grad_transform(&du, s.o, s.c);
    }
    let chunks = s.n.div_ceil(nb);
    let pad_len = scratch_len(s).max(grad_scratch_len(s));
    let du = fixed_split_sum(chunks, size, |range| {
        let mut du = vec![0.0f32; size];
        let mut v = scratch(16 * s.c * nb * th * tw);
        let mut e = scratch(16 * s.o * nb * th * tw);
        let mut pad = scratch(pad_len);
        for ch in range {
            let first = ch * nb;
            let nbc = nb.min(s.n - first);
            let ld = nbc * th * tw;
            input_transform(&mut by_position(&mut v, s.c * ld), &x[first * per_in..], nbc, s, &mut pad);
            grad_transform(&mut by_position(&mut e, s.o * ld), &dy[first * per_out..], nbc, s, &mut pad);
            for xi in 0..16 {
                let exi = &e[xi * ld * s.o..][..ld * s.o];
                let vxi = &v[xi * s.c * ld..][..s.c * ld];
                let dxi = &mut du[xi * s.o * s.c..][..s.o * s.c];
                super::pare_train::gemm(s.o, s.c, ld, dxi, true, exi, 1, s.o, vxi, s.c, 1, true);
            }
        }
        du
    });
    weight_grad_transform(&du, s.o, s.c)
}
