//! Fully connected layer, `[out][in]` weights.

use super::conv::{dot_f32, dot_i8, Requant};
use pare_format::Table;

pub fn dense_f32(x: &[f32], w: &Table<'_, f32>, bias: &Table<'_, f32>, relu: bool, y: &mut [f32]) -> Option<()> {
    let row = x.len().checked_mul(4)?;
    for (o, out) in y.iter_mut().enumerate() {
        let sum = bias.get(o as u32)? + dot_f32(x, w.bytes().get(o * row..(o + 1) * row)?);
        *out = if relu { sum.max(0.0) } else { sum };
    }
    Some(())
}

pub fn dense_i8(x: &[i8], w: &[i8], q: &Requant<'_, '_>, relu: bool, y: &mut [i8]) -> Option<()> {
    let n = x.len();
    let x_offset = q.in_zp.checked_neg()?;
    let requant = q.out(relu);
    for ((o, out), c) in y.iter_mut().enumerate().zip(q.channels()) {
        *out = requant.value(&c, dot_i8(x, w.get(o * n..(o + 1) * n)?, x_offset));
    }
    Some(())
}
