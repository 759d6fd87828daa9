//! The int8 inner product. Portable code everywhere; the Cortex-M DSP variant (SMLAD, two
//! 16-bit multiply-accumulates per instruction) replaces it on targets with the extension.

/// `Σ (x[i] + x_offset) · w[i]`.
#[inline]
pub fn dot_i8(x: &[i8], w: &[i8], x_offset: i32) -> i32 {
    dot_i8_portable(x, w, x_offset)
}

/// Plain reference, also used on the host.
#[inline]
pub fn dot_i8_portable(x: &[i8], w: &[i8], x_offset: i32) -> i32 {
    let mut acc = 0i32;
    for (a, b) in x.iter().zip(w) {
        acc = acc.wrapping_add((i32::from(*a) + x_offset).wrapping_mul(i32::from(*b)));
    }
    acc
}
