//! Residual add. int8 follows TFLite's reference `ADD`: both inputs are shifted left, rescaled
//! to a common scale, summed, and requantised to the output.

use crate::quant::multiply_by_quantized_multiplier as mul;
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
    for ((o, x), z) in y.iter_mut().zip(a).zip(b) {
        let xa = (i32::from(*x) - zp[0]) << shift;
        let xb = (i32::from(*z) - zp[1]) << shift;
        let sum = mul(xa, q.a_multiplier, q.a_shift).saturating_add(mul(xb, q.b_multiplier, q.b_shift));
        let out = mul(sum, q.out_multiplier, q.out_shift).saturating_add(zp[2]);
        *o = out.clamp(low, 127) as i8;
    }
}
