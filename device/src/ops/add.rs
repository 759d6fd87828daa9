//! Residual add. int8 follows TFLite's reference `ADD`: both inputs are shifted left, rescaled
//! to a common scale, summed, and requantised to the output.

use super::simd;
use crate::quant::{multiply_by_quantized_multiplier as mul, requantize_folded, Requantizer};
use pare_format::AddQuant;

pub fn add_f32(a: &[f32], b: &[f32], relu: bool, y: &mut [f32]) {
    for ((o, x), z) in y.iter_mut().zip(a).zip(b) {
        let s = x + z;
        *o = if relu { s.max(0.0) } else { s };
    }
}

/// `zp` holds the zero points of `a`, `b` and the output.
pub fn add_i8(a: &[i8], b: &[i8], q: &AddQuant, zp: [i32; 3], relu: bool, y: &mut [i8]) {
    let low = if relu { zp[2].max(-128) } else { -128 };
    let shift = q.left_shift.clamp(0, 20) as u32;
    // An input's rescaled value depends on its byte alone: two 256-entry tables, computed once
    // per op, replace two of the three requantisations per element (bit-identical results).
    let mut ta = [0i32; 256];
    let mut tb = [0i32; 256];
    for (v, (ea, eb)) in (-128i32..=127).zip(ta.iter_mut().zip(tb.iter_mut())) {
        *ea = mul((v - zp[0]) << shift, q.a_multiplier, q.a_shift);
        *eb = mul((v - zp[1]) << shift, q.b_multiplier, q.b_shift);
    }
    // -128..=127 to 0..=255: the byte with its sign bit flipped.
    let index = |v: i8| usize::from(v as u8 ^ 0x80);
    let s = Requantizer::new(q.out_multiplier, q.out_shift);
    let (zp, fast) = (zp[2], s.is_fast());
    // The exporter's adds: rescaled inputs far below 2^29 together, so the sum is taken doubled
    // and requantised in 32-bit steps ([`requantize_doubled`], an assembly loop on DSP cores).
    let largest = |t: &[i32; 256]| t.iter().map(|v| u64::from(v.unsigned_abs())).max().unwrap_or(0);
    if let Some(parts) = s.doubled_parts(zp).filter(|_| largest(&ta) + largest(&tb) < 1 << 29) {
        for v in ta.iter_mut().chain(tb.iter_mut()) {
            *v *= 2;
        }
        simd::add_doubled(a, b, &ta, &tb, parts, low, y);
        return;
    }
    let sums = a.iter().zip(b).map(|(x, z)| {
        let xa = ta.get(index(*x)).copied().unwrap_or(0);
        let xb = tb.get(index(*z)).copied().unwrap_or(0);
        xa.saturating_add(xb)
    });
    // The exporter's requantisers take the single-rounding form, the output zero point folded in.
    if let Some((m, k, sh)) = s.folded_parts(zp) {
        for (o, sum) in y.iter_mut().zip(sums) {
            *o = requantize_folded(sum, m, k, sh).clamp(-128, 127).max(low) as i8;
        }
        return;
    }
    for (o, sum) in y.iter_mut().zip(sums) {
        let r = if fast { s.apply_fast(sum) } else { s.apply(sum) };
        *o = r.saturating_add(zp).clamp(-128, 127).max(low) as i8;
    }
}
