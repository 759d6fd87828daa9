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

impl Requant<'_, '_> {
    /// Output value for accumulator `acc` of output channel `o`.
    pub fn apply(&self, o: u32, acc: i32, relu: bool) -> Option<i8> {
        let m = self.multipliers.get(o)?;
        let s = i32::from(self.shifts.get(o)?);
        let y = crate::quant::multiply_by_quantized_multiplier(acc, m, s).saturating_add(self.out_zp);
        let low = if relu { self.out_zp.max(-128) } else { -128 };
        Some(y.clamp(low, 127) as i8)
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
    let words = k.div_ceil(4) * 2;
    let (mut s0, mut s1, mut s2) = ([0u32; SCRATCH / 2], [0u32; SCRATCH / 2], [0u32; SCRATCH]);
    let (c0, c1, both) = (s0.get_mut(..words)?, s1.get_mut(..words)?, s2.get_mut(..2 * words)?);
    for oy in 0..g.oh {
        let mut ox = 0;
        while ox < g.ow {
            let pair = ox + 1 < g.ow;
            im2col(g, x, oy, ox, x_offset, c0)?;
            if pair {
                im2col(g, x, oy, ox + 1, x_offset, c1)?;
                simd::interleave(c0, c1, both);
            }
            let base = (oy * g.ow + ox) * g.oc;
            let mut filters = w.chunks_exact(k).enumerate();
            while let Some((o, fa)) = filters.next() {
                let bias_a = q.bias.get(o as u32)?;
                match (pair, filters.next()) {
                    (true, Some((ob, fb))) => {
                        let bias_b = q.bias.get(ob as u32)?;
                        let [a0, b0, a1, b1] = simd::dot_packed_2x2(both, fa, fb);
                        *y.get_mut(base + o)? = q.apply(o as u32, bias_a.wrapping_add(a0), relu)?;
                        *y.get_mut(base + ob)? = q.apply(ob as u32, bias_b.wrapping_add(b0), relu)?;
                        *y.get_mut(base + g.oc + o)? = q.apply(o as u32, bias_a.wrapping_add(a1), relu)?;
                        *y.get_mut(base + g.oc + ob)? = q.apply(ob as u32, bias_b.wrapping_add(b1), relu)?;
                    }
                    (_, other) => {
                        for (oo, f) in core::iter::once((o, fa)).chain(other) {
                            let b = q.bias.get(oo as u32)?;
                            *y.get_mut(base + oo)? =
                                q.apply(oo as u32, b.wrapping_add(simd::dot_packed(c0, f)), relu)?;
                            if pair {
                                let v = b.wrapping_add(simd::dot_packed(c1, f));
                                *y.get_mut(base + g.oc + oo)? = q.apply(oo as u32, v, relu)?;
                            }
                        }
                    }
                }
            }
            ox += if pair { 2 } else { 1 };
        }
    }
    Some(())
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
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let base = (oy * g.ow + ox) * g.oc;
            let out = y.get_mut(base..base + g.oc)?;
            for (o, val) in out.iter_mut().enumerate() {
                let filter = w.get(o * row..(o + 1) * row)?;
                let mut acc = q.bias.get(o as u32)?;
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
                *val = q.apply(o as u32, acc, relu)?;
            }
        }
    }
    Some(())
}
