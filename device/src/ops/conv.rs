//! 2-D convolution, NHWC activations and OHWI weights. The int8 kernel's inner product is
//! [`dot_i8`], the one function with a Cortex-M DSP (SMLAD) variant.

use super::simd;
use super::Window;
use pare_format::Table;

/// Int8 requantisation parameters of a conv or dense op (TFLite arithmetic).
pub struct Requant<'t, 'a> {
    pub bias: &'t Table<'a, i32>,
    pub multipliers: &'t Table<'a, i32>,
    pub shifts: &'t Table<'a, i8>,
    pub in_zp: i32,
    pub out_zp: i32,
}

/// One output channel's bias and requantisation, decoded from the op's tables.
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    pub bias: i32,
    pub multiplier: i32,
    pub shift: i32,
}

impl Requant<'_, '_> {
    /// The output channels in order; shorter than the tables say only if they are inconsistent
    /// (validation rules that out).
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        let (b, _) = self.bias.bytes().as_chunks::<4>();
        let (m, _) = self.multipliers.bytes().as_chunks::<4>();
        b.iter().zip(m).zip(self.shifts.bytes()).map(|((b, m), s)| Channel {
            bias: i32::from_le_bytes(*b),
            multiplier: i32::from_le_bytes(*m),
            shift: i32::from(*s as i8),
        })
    }

    /// The clamp of every output: `[out_zp, 127]` after ReLU, `[-128, 127]` otherwise.
    pub fn out(&self, relu: bool) -> Out {
        Out { zp: self.out_zp, low: if relu { self.out_zp.clamp(-128, 127) } else { -128 } }
    }
}

/// Output zero point and lower clamp of an op.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    zp: i32,
    low: i32,
}

impl Out {
    /// The int8 output of channel `c` for the dot product `dot` (bias added here).
    #[inline(always)]
    pub fn value(&self, c: &Channel, dot: i32) -> i8 {
        let y = crate::quant::requantize(dot.wrapping_add(c.bias), c.multiplier, c.shift).saturating_add(self.zp);
        y.max(self.low).min(127) as i8
    }
}

/// `Σ x·w` over little-endian f32 weight bytes.
pub fn dot_f32(x: &[f32], w: &[u8]) -> f32 {
    let (w, _) = w.as_chunks::<4>();
    x.iter().zip(w).map(|(a, b)| a * f32::from_le_bytes(*b)).sum()
}

/// `Σ (x + x_offset)·w` over int8 vectors (`x_offset` is minus the input zero point).
#[inline]
pub fn dot_i8(x: &[i8], w: &[i8], x_offset: i32) -> i32 {
    crate::ops::simd::dot_i8(x, w, x_offset)
}

/// f32 convolution; `None` only if slices disagree with the geometry.
pub fn conv_f32(
    g: &Window,
    x: &[f32],
    w: &Table<'_, f32>,
    bias: &Table<'_, f32>,
    relu: bool,
    y: &mut [f32],
) -> Option<()> {
    let wb = w.bytes();
    let row = g.kh.checked_mul(g.kw)?.checked_mul(g.ic)?.checked_mul(4)?;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let base = (oy * g.ow + ox) * g.oc;
            let out = y.get_mut(base..base + g.oc)?;
            for (o, acc) in out.iter_mut().enumerate() {
                let filter = wb.get(o * row..(o + 1) * row)?;
                let mut sum = bias.get(o as u32)?;
                for (ky, iy) in Window::taps(oy, g.sh, g.pt, g.kh, g.ih) {
                    for (kx, ix) in Window::taps(ox, g.sw, g.pl, g.kw, g.iw) {
                        let px = (iy * g.iw + ix) * g.ic;
                        let wo = (ky * g.kw + kx) * g.ic * 4;
                        sum += dot_f32(x.get(px..px + g.ic)?, filter.get(wo..wo + g.ic * 4)?);
                    }
                }
                *acc = if relu { sum.max(0.0) } else { sum };
            }
        }
    }
    Some(())
}

/// Receptive fields up to this many elements take the im2col + SMLAD path (two columns and their
/// interleaved copy live on the stack: `2 × SCRATCH` words); larger ones the direct path.
pub const SCRATCH: usize = 4608;

/// int8 convolution with per-channel requantisation.
pub fn conv_i8(g: &Window, x: &[i8], w: &[i8], q: &Requant<'_, '_>, relu: bool, y: &mut [i8]) -> Option<()> {
    let k = g.kh.checked_mul(g.kw)?.checked_mul(g.ic)?;
    if k > SCRATCH {
        return conv_i8_direct(g, x, w, q, relu, y);
    }
    let x_offset = q.in_zp.checked_neg()?;
    let out = q.out(relu);
    let filters = w.get(..k.checked_mul(g.oc)?)?;
    let words = k.div_ceil(4) * 2;
    let (mut s0, mut s1, mut s2) = ([0u32; SCRATCH / 2], [0u32; SCRATCH / 2], [0u32; SCRATCH]);
    let (c0, c1, both) = (s0.get_mut(..words)?, s1.get_mut(..words)?, s2.get_mut(..2 * words)?);
    for oy in 0..g.oh {
        let mut ox = 0;
        while ox < g.ow {
            let base = (oy * g.ow + ox) * g.oc;
            if ox + 1 < g.ow {
                im2col(g, x, oy, ox, x_offset, c0)?;
                im2col(g, x, oy, ox + 1, x_offset, c1)?;
                simd::interleave(c0, c1, both);
                let (ya, yb) = y.get_mut(base..base + 2 * g.oc)?.split_at_mut(g.oc);
                pixel_pair(both, c0, c1, filters, k, q, &out, ya, yb);
                ox += 2;
            } else {
                im2col(g, x, oy, ox, x_offset, c0)?;
                pixel(c0, filters, k, q, &out, y.get_mut(base..base + g.oc)?);
                ox += 1;
            }
        }
    }
    Some(())
}

/// Every output channel of two neighbouring pixels: filters two at a time against the
/// interleaved columns (`both`), a last odd filter against each column (`c0`, `c1`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pixel_pair(
    both: &[u32],
    c0: &[u32],
    c1: &[u32],
    filters: &[i8],
    k: usize,
    q: &Requant<'_, '_>,
    out: &Out,
    ya: &mut [i8],
    yb: &mut [i8],
) {
    let mut f = filters.chunks_exact(k);
    let mut ch = q.channels();
    let mut ys = ya.iter_mut().zip(yb.iter_mut());
    while let (Some(fa), Some(ca), Some((ya0, yb0))) = (f.next(), ch.next(), ys.next()) {
        match (f.next(), ch.next(), ys.next()) {
            (Some(fb), Some(cb), Some((ya1, yb1))) => {
                let [a0, b0, a1, b1] = simd::dot_packed_2x2(both, fa, fb);
                *ya0 = out.value(&ca, a0);
                *ya1 = out.value(&cb, b0);
                *yb0 = out.value(&ca, a1);
                *yb1 = out.value(&cb, b1);
            }
            _ => {
                *ya0 = out.value(&ca, simd::dot_packed(c0, fa));
                *yb0 = out.value(&ca, simd::dot_packed(c1, fa));
            }
        }
    }
}

/// Every output channel of one pixel (the last of an odd row).
#[inline(always)]
fn pixel(col: &[u32], filters: &[i8], k: usize, q: &Requant<'_, '_>, out: &Out, y: &mut [i8]) {
    for ((f, c), v) in filters.chunks_exact(k).zip(q.channels()).zip(y.iter_mut()) {
        *v = out.value(&c, simd::dot_packed(col, f));
    }
}

/// im2col of output pixel `(oy, ox)`: the receptive field in filter order (ky, kx, c), packed
/// for [`simd::dot_packed`]; padded taps are zero, which is what (zero point − zero point)
/// contributes.
fn im2col(g: &Window, x: &[i8], oy: usize, ox: usize, x_offset: i32, col: &mut [u32]) -> Option<()> {
    col.fill(0);
    for (ky, iy) in Window::taps(oy, g.sh, g.pt, g.kh, g.ih) {
        let mut taps = Window::taps(ox, g.sw, g.pl, g.kw, g.iw);
        let Some((kx, ix)) = taps.next() else { continue };
        let n = 1 + taps.count();
        let px = (iy * g.iw + ix) * g.ic;
        simd::pack_into(col, (ky * g.kw + kx) * g.ic, x.get(px..px + n * g.ic)?, x_offset);
    }
    Some(())
}

/// int8 convolution without scratch: the reference structure, for very large receptive fields.
pub fn conv_i8_direct(g: &Window, x: &[i8], w: &[i8], q: &Requant<'_, '_>, relu: bool, y: &mut [i8]) -> Option<()> {
    let row = g.kh.checked_mul(g.kw)?.checked_mul(g.ic)?;
    let x_offset = q.in_zp.checked_neg()?;
    let requant = q.out(relu);
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let base = (oy * g.ow + ox) * g.oc;
            let out = y.get_mut(base..base + g.oc)?;
            for ((o, val), c) in out.iter_mut().enumerate().zip(q.channels()) {
                let filter = w.get(o * row..(o + 1) * row)?;
                let mut acc = 0i32;
                for (ky, iy) in Window::taps(oy, g.sh, g.pt, g.kh, g.ih) {
                    let kx0 = Window::taps(ox, g.sw, g.pl, g.kw, g.iw).next();
                    // In-bounds taps of a row are contiguous in both input and filter.
                    let Some((kx, ix)) = kx0 else { continue };
                    let n = Window::taps(ox, g.sw, g.pl, g.kw, g.iw).count();
                    let px = (iy * g.iw + ix) * g.ic;
                    let wo = (ky * g.kw + kx) * g.ic;
                    let len = n * g.ic;
                    acc = acc.wrapping_add(dot_i8(x.get(px..px + len)?, filter.get(wo..wo + len)?, x_offset));
                }
                *val = requant.value(&c, acc);
            }
        }
    }
    Some(())
}
