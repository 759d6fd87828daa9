//! pare patch: 3×3 stride-1 "same" convolutions by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray 2016), forward and both gradients (PARE-PATCH.md).
//!
//! A 2×2 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the 4×4 input tile `d` around it: 16
//! multiplications per tile, input and output channel where the direct convolution needs 36.
//! Over a chunk of samples that is 16 GEMMs, one per position ξ of the 4×4 transformed tile:
//!
//! - forward: `M_ξ (o × tiles) = U_ξ (o × c) · V_ξ (c × tiles)`, then `Aᵀ M A` per tile;
//! - input gradient: the forward of `dY` with the kernel flipped and its channels swapped (the
//!   input gradient of a stride-1 "same" 3×3 convolution is one);
//! - weight gradient: `dU_ξ (o × c) = Σ over tiles of (A dY Aᵀ)_ξ (o × tiles) · V_ξᵀ`, then
//!   `dW = Gᵀ dU G` (the transpose of the forward's linear map in `g`).
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

/// `U_ξ` for every ξ: `u[(ξ·o + oi)·c + ci] = (G g Gᵀ)_ξ` with `g = w[oi][ci]` (3×3).
#[inline(always)]
fn weight_transform_impl(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; 16 * o * c];
    let oc = o * c;
    for oi in 0..o {
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
                let r = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (j, v) in r.into_iter().enumerate() {
                    u[(i * 4 + j) * oc + oi * c + ci] = v;
                }
            }
        }
    }
    u
}

multiversion!(fn weight_transform => weight_transform_impl(w: &[f32], o: usize, c: usize) -> Vec<f32>);

/// Scratch floats [`input_transform`] needs: one plane with a zero border, the row pass of a
/// tile row and its even and odd columns.
fn scratch_len(s: &Same3x3) -> usize {
    let (th, tw) = s.tiles();
    let pw = 2 * tw + 2;
    (2 * th + 2) * pw + 4 * pw + 2 * (tw + 1)
}

/// `V_ξ` for the chunk's samples: `v[(ξ·c + ci)·ld + t] = (Bᵀ d B)_ξ` for tile `t` (samples
/// one after the other, tiles row by row) of channel `ci`. A tile row at a time: the row pass
/// `Bᵀ d` over whole padded rows, then the column pass over even and odd columns, each a
/// loop over the row's tiles that the compiler vectorises.
#[inline(always)]
fn input_transform_impl(v: &mut [f32], ld: usize, x: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]) {
    let (th, tw) = s.tiles();
    let (h, w) = (s.h, s.w);
    let (pw, half) = (2 * tw + 2, tw + 1);
    let cl = s.c * ld;
    let (pad, rest) = scratch.split_at_mut((2 * th + 2) * pw);
    let (t, eo) = rest.split_at_mut(4 * pw);
    let (e, o) = eo.split_at_mut(half);
    // Channel-major, then samples: each row of `v` is written front to back.
    for ci in 0..s.c {
        for b in 0..nb {
            let plane = &x[(b * s.c + ci) * h * w..][..h * w];
            // The plane at (1, 1) of a zero frame as large as the tiles read.
            pad[..pw].fill(0.0);
            for (r, row) in plane.chunks_exact(w).enumerate() {
                let dst = &mut pad[(r + 1) * pw..][..pw];
                dst[0] = 0.0;
                dst[1..=w].copy_from_slice(row);
                dst[w + 1..].fill(0.0);
            }
            pad[(h + 1) * pw..].fill(0.0);
            for ty in 0..th {
                let r = |k: usize| &pad[(2 * ty + k) * pw..][..pw];
                let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                // Bᵀ d: rows (d0 − d2, d1 + d2, d2 − d1, d1 − d3).
                let (t0, rest) = t.split_at_mut(pw);
                let (t1, rest) = rest.split_at_mut(pw);
                let (t2, t3) = rest.split_at_mut(pw);
                for x in 0..pw {
                    t0[x] = r0[x] - r2[x];
                    t1[x] = r1[x] + r2[x];
                    t2[x] = r2[x] - r1[x];
                    t3[x] = r1[x] - r3[x];
                }
                let at = ci * ld + b * th * tw + ty * tw;
                for i in 0..4 {
                    let ti = &t[i * pw..][..pw];
                    for k in 0..half {
                        e[k] = ti[2 * k];
                        o[k] = ti[2 * k + 1];
                    }
                    // Columns of tile tx: (e[tx], o[tx], e[tx+1], o[tx+1]); B on the right:
                    // (c0 − c2, c1 + c2, c2 − c1, c1 − c3).
                    let (e0, e1, o0, o1) = (&e[..tw], &e[1..=tw], &o[..tw], &o[1..=tw]);
                    let row = |j: usize| (i * 4 + j) * cl + at;
                    let d = &mut v[row(0)..][..tw];
                    d.iter_mut().zip(e0.iter().zip(e1)).for_each(|(d, (a, c))| *d = a - c);
                    let d = &mut v[row(1)..][..tw];
                    d.iter_mut().zip(o0.iter().zip(e1)).for_each(|(d, (b, c))| *d = b + c);
                    let d = &mut v[row(2)..][..tw];
                    d.iter_mut().zip(o0.iter().zip(e1)).for_each(|(d, (b, c))| *d = c - b);
                    let d = &mut v[row(3)..][..tw];
                    d.iter_mut().zip(o0.iter().zip(o1)).for_each(|(d, (b, dd))| *d = b - dd);
                }
            }
        }
    }
}

multiversion!(fn input_transform => input_transform_impl(v: &mut [f32], ld: usize, x: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]));

/// `Aᵀ M A` per tile into the chunk's NCHW output (plus the bias), dropping an odd plane's
/// overhang: `m[(ξ·o + oi)·ld + t]`. A tile row at a time, vectorised over its tiles.
#[inline(always)]
fn output_transform_impl(out: &mut [f32], m: &[f32], ld: usize, nb: usize, s: &Same3x3, bias: Option<&[f32]>, scratch: &mut [f32]) {
    let (th, tw) = s.tiles();
    let (h, w) = (s.h, s.w);
    let ol = s.o * ld;
    let sr = &mut scratch[..8 * tw];
    // Channel-major, then samples: each row of `m` is read front to back.
    for oi in 0..s.o {
        for b in 0..nb {
            let plane = &mut out[(b * s.o + oi) * h * w..][..h * w];
            let bv = bias.map_or(0.0, |bs| bs[oi]);
            for ty in 0..th {
                let at = oi * ld + b * th * tw + ty * tw;
                let q = |xi: usize| &m[xi * ol + at..][..tw];
                // Aᵀ M: rows (m0 + m1 + m2, m1 − m2 − m3), per column j.
                for j in 0..4 {
                    let (m0, m1, m2, m3) = (q(j), q(4 + j), q(8 + j), q(12 + j));
                    let (s0, s1) = sr.split_at_mut(4 * tw);
                    let (s0, s1) = (&mut s0[j * tw..][..tw], &mut s1[j * tw..][..tw]);
                    for x in 0..tw {
                        s0[x] = m0[x] + m1[x] + m2[x];
                        s1[x] = m1[x] - m2[x] - m3[x];
                    }
                }
                for i in 0..2 {
                    let y = 2 * ty + i;
                    if y >= h {
                        break;
                    }
                    let c = |j: usize| &sr[(i * 4 + j) * tw..][..tw];
                    let (a, bb, cc, d) = (c(0), c(1), c(2), c(3));
                    let row = &mut plane[y * w..][..w];
                    for (x, pair) in row.chunks_exact_mut(2).enumerate() {
                        pair[0] = a[x] + bb[x] + cc[x] + bv;
                        pair[1] = bb[x] - cc[x] - d[x] + bv;
                    }
                    if w % 2 == 1 {
                        let x = w / 2;
                        row[w - 1] = a[x] + bb[x] + cc[x] + bv;
                    }
                }
            }
        }
    }
}

multiversion!(fn output_transform => output_transform_impl(out: &mut [f32], m: &[f32], ld: usize, nb: usize, s: &Same3x3, bias: Option<&[f32]>, scratch: &mut [f32]));

/// `(A dY Aᵀ)_ξ` for the chunk's samples, tile-major for the weight-gradient GEMM:
/// `e[(ξ·ld + t)·o + oi]`; gradient outside the plane (an odd plane's overhang) is zero. A
/// tile row of every channel at a time: computed vectorised over the row's tiles, then stored
/// with the channels innermost (each store run contiguous).
fn grad_scratch_len(s: &Same3x3) -> usize {
    let tw = s.tiles().1;
    4 * tw + 16 * tw * s.o
}

#[inline(always)]
fn grad_transform_impl(e: &mut [f32], ld: usize, dy: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]) {
    let (th, tw) = s.tiles();
    let (h, w) = (s.h, s.w);
    let o = s.o;
    let (cols, sr) = scratch.split_at_mut(4 * tw);
    let sr = &mut sr[..16 * tw * o];
    for b in 0..nb {
        for ty in 0..th {
            for oi in 0..o {
                let plane = &dy[(b * o + oi) * h * w..][..h * w];
                // Even and odd columns of the tile row's two rows (zero past the plane).
                for (k, y) in [2 * ty, 2 * ty + 1].into_iter().enumerate() {
                    let (ev, od) = cols[2 * k * tw..][..2 * tw].split_at_mut(tw);
                    if y < h {
                        let row = &plane[y * w..][..w];
                        for x in 0..tw {
                            ev[x] = row[2 * x];
                            od[x] = if 2 * x + 1 < w { row[2 * x + 1] } else { 0.0 };
                        }
                    } else {
                        ev.fill(0.0);
                        od.fill(0.0);
                    }
                }
                let (g00, g01, g10, g11) = (&cols[..tw], &cols[tw..2 * tw], &cols[2 * tw..3 * tw], &cols[3 * tw..]);
                // A g Aᵀ: rows (r0, r0 + r1, r0 − r1, −r1), columns (c0, c0 + c1, c0 − c1, −c1);
                // into sr[(ξ·tw + tx)·o + oi].
                let so = &mut sr[..];
                for x in 0..tw {
                    let rows = [
                        [g00[x], g01[x]],
                        [g00[x] + g10[x], g01[x] + g11[x]],
                        [g00[x] - g10[x], g01[x] - g11[x]],
                        [-g10[x], -g11[x]],
                    ];
                    for (i, [a, bb]) in rows.into_iter().enumerate() {
                        let q = [a, a + bb, a - bb, -bb];
                        for (j, val) in q.into_iter().enumerate() {
                            so[((i * 4 + j) * tw + x) * o + oi] = val;
                        }
                    }
                }
            }
            let t0 = b * th * tw + ty * tw;
            for xi in 0..16 {
                e[(xi * ld + t0) * o..][..tw * o].copy_from_slice(&sr[xi * tw * o..][..tw * o]);
            }
        }
    }
}

multiversion!(fn grad_transform => grad_transform_impl(e: &mut [f32], ld: usize, dy: &[f32], nb: usize, s: &Same3x3, scratch: &mut [f32]));

/// `dW[oi][ci] = Gᵀ dU G` (3×3) from `dU_ξ` accumulated column-major: `du[(ξ·c + ci)·o + oi]`.
/// An input channel at a time, vectorised over the output channels (contiguous in `du`).
#[inline(always)]
fn weight_grad_transform_impl(du: &[f32], o: usize, c: usize) -> Vec<f32> {
    let mut dw = vec![0.0f32; o * c * 9];
    let oc = o * c;
    let mut t = vec![0.0f32; 12 * o];
    let mut g = vec![0.0f32; 9 * o];
    for ci in 0..c {
        let q = |xi: usize| &du[xi * oc + ci * o..][..o];
        // Gᵀ m: rows (m0 + (m1 + m2)/2, (m1 − m2)/2, (m1 + m2)/2 + m3), per column j.
        for j in 0..4 {
            let (m0, m1, m2, m3) = (q(j), q(4 + j), q(8 + j), q(12 + j));
            let (t0, rest) = t.split_at_mut(4 * o);
            let (t1, t2) = rest.split_at_mut(4 * o);
            let (t0, t1, t2) = (&mut t0[j * o..][..o], &mut t1[j * o..][..o], &mut t2[j * o..][..o]);
            for x in 0..o {
                let (a, b) = (0.5 * (m1[x] + m2[x]), 0.5 * (m1[x] - m2[x]));
                t0[x] = m0[x] + a;
                t1[x] = b;
                t2[x] = a + m3[x];
            }
        }
        // … then G on the right, the same combination of the four columns.
        for i in 0..3 {
            let r = |j: usize| &t[(i * 4 + j) * o..][..o];
            let (m0, m1, m2, m3) = (r(0), r(1), r(2), r(3));
            let (g0, rest) = g[i * 3 * o..][..3 * o].split_at_mut(o);
            let (g1, g2) = rest.split_at_mut(o);
            for x in 0..o {
                let (a, b) = (0.5 * (m1[x] + m2[x]), 0.5 * (m1[x] - m2[x]));
                g0[x] = m0[x] + a;
                g1[x] = b;
                g2[x] = a + m3[x];
            }
        }
        for oi in 0..o {
            let dst = &mut dw[(oi * c + ci) * 9..][..9];
            for (k, d) in dst.iter_mut().enumerate() {
                *d = g[k * o + oi];
            }
        }
    }
    dw
}

multiversion!(fn weight_grad_transform => weight_grad_transform_impl(du: &[f32], o: usize, c: usize) -> Vec<f32>);

/// The forward convolution: `x` (n × c × h × w), `w` (o × c × 3 × 3), padding 1, stride 1.
pub(crate) fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &Same3x3) -> Vec<f32> {
    let u = weight_transform(w, s.o, s.c);
    let (th, tw) = s.tiles();
    let nb = s.chunk();
    let per_out = s.o * s.h * s.w;
    let pad_len = scratch_len(s).max(8 * tw);
    let init = || (scratch(16 * s.c * nb * th * tw), scratch(16 * s.o * nb * th * tw), scratch(pad_len));
    super::pare_train::sample_chunks(s.n * per_out, per_out, nb, init, |(v, m, pad), first, nbc, on| {
        let ld = nbc * th * tw;
        input_transform(v, ld, &x[first * s.c * s.h * s.w..], nbc, s, pad);
        for xi in 0..16 {
            let uxi = &u[xi * s.o * s.c..][..s.o * s.c];
            let vxi = &v[xi * s.c * ld..][..s.c * ld];
            let mxi = &mut m[xi * s.o * ld..][..s.o * ld];
            super::pare_train::gemm(s.o, ld, s.c, mxi, false, uxi, s.c, 1, vxi, ld, 1, false);
        }
        output_transform(on, m, ld, nbc, s, bias, pad);
    })
}

/// The input gradient: the forward of `dy` with the kernel flipped and its channels swapped.
pub(crate) fn x_backward(dy: &[f32], w: &[f32], s: &Same3x3) -> Vec<f32> {
    let (t, wt) = s.input_gradient(w);
    forward(dy, &wt, None, &t)
}

/// The weight gradient, summed over a fixed split of the chunks in a fixed order (the same bits
/// on every run).
pub(crate) fn weight_backward(x: &[f32], dy: &[f32], s: &Same3x3) -> Vec<f32> {
    let (th, tw) = s.tiles();
    let nb = s.chunk();
    let chunks = s.n.div_ceil(nb);
    let size = 16 * s.o * s.c;
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
            input_transform(&mut v, ld, &x[first * s.c * s.h * s.w..], nbc, s, &mut pad);
            grad_transform(&mut e, ld, &dy[first * s.o * s.h * s.w..], nbc, s, &mut pad);
            for xi in 0..16 {
                let exi = &e[xi * ld * s.o..][..ld * s.o];
                let vxi = &v[xi * s.c * ld..][..s.c * ld];
                let dxi = &mut du[xi * s.o * s.c..][..s.o * s.c];
                super::pare_train::gemm(s.o, s.c, ld, dxi, true, exi, 1, s.o, vxi, 1, ld, true);
            }
        }
        du
    });
    weight_grad_transform(&du, s.o, s.c)
}
