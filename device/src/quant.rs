//! TFLite / CMSIS-NN fixed-point arithmetic, bit for bit. The host quantiser uses these same
//! functions, which is what makes host emulation and board agree exactly.

/// `round(a * b / 2^31)` with saturation, as gemmlowp's `SaturatingRoundingDoublingHighMul`.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Division by `2^exponent` rounding half away from zero, as gemmlowp's `RoundingDivideByPOT`.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `x * multiplier * 2^(shift - 31)` with TFLite rounding (`MultiplyByQuantizedMultiplier`).
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.clamp(0, 31);
    let right = (-shift).clamp(0, 31);
    let shifted = x.saturating_mul(1i32.wrapping_shl(left as u32));
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)
}

/// [`multiply_by_quantized_multiplier`] by one channel's fixed multiplier and shift, with what
/// depends on them alone computed once: the same value for every input (tested against it over
/// edge cases and random draws). The usual case, a multiplier below one (`shift <= 0`), skips the
/// left shift's saturating multiply and needs one SMLAL, a shift and a rounding step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requantizer {
    multiplier: i32,
    shift: i32,
    /// The fast path applies: `shift <= 0` and a multiplier other than `i32::MIN` (whose square
    /// is the one product gemmlowp saturates).
    fast: bool,
    right: u32,
    mask: i32,
    half: i32,
}

impl Requantizer {
    /// The all-zero requantiser ([`Default`]'s value, usable in constants).
    pub const ZERO: Self = Self { multiplier: 0, shift: 0, fast: false, right: 0, mask: 0, half: 0 };

    pub fn new(multiplier: i32, shift: i32) -> Self {
        let right = shift.clamp(-31, 0).unsigned_abs();
        let mask = ((1u32 << right) - 1) as i32;
        Self { multiplier, shift, fast: shift <= 0 && multiplier != i32::MIN, right, mask, half: mask >> 1 }
    }

    #[inline(always)]
    pub fn apply(&self, x: i32) -> i32 {
        if !self.fast {
            return multiply_by_quantized_multiplier(x, self.multiplier, self.shift);
        }
        self.apply_fast(x)
    }

    /// `(multiplier, right shift, rounding mask)` of a requantiser that [`Requantizer::is_fast`]:
    /// what a hand-written loop needs to compute [`Requantizer::apply_fast`].
    pub fn fast_parts(&self) -> Option<(i32, u32, i32)> {
        self.fast.then_some((self.multiplier, self.right, self.mask))
    }

    /// Whether [`Requantizer::apply_fast`] gives [`Requantizer::apply`]'s values: loops branch
    /// once on this and run the fast form alone.
    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// The parts of [`requantize_folded`] (`(multiplier, k, right − 1)`), which computes
    /// `apply_fast(x) + zp` with one rounding: for a fast requantiser whose multiplier is
    /// normalised (in [2^30, 2^31), as the exporter writes them), whose right shift is 1 to 22
    /// and an output zero point within ±255 (`None` otherwise: the callers keep the two-step form).
    ///
    /// Why one rounding suffices: with `v = x·m`, gemmlowp computes `h = ⌊(v + 2^30) / 2^31⌋`,
    /// then rounds `h / 2^r` half away from zero, i.e. `⌊(h + 2^(r−1) − [h < 0]) / 2^r⌋`; nested
    /// floors of integers merge, so the result is `⌊(v + 2^30 + 2^(30+r) − 2^31·[h < 0]) /
    /// 2^(31+r)⌋`. For `m ≥ 2^30`, `h < 0` exactly when `x < 0`, except `x = −1, m = 2^30` (then
    /// `h = 0`), where both corrections give 0. The zero point joins `k` as `zp · 2^(31+r)`; the sum
    /// stays below 2^63 for these ranges.
    pub fn folded_parts(&self, zp: i32) -> Option<(i32, i64, u32)> {
        let fits = self.fast && self.multiplier >= 1 << 30 && (1..=22).contains(&self.right) && zp.abs() <= 255;
        fits.then(|| {
            let r = self.right;
            let k = (1i64 << 30) + (1i64 << (30 + r)) + (i64::from(zp) << (31 + r));
            (self.multiplier, k, r - 1)
        })
    }

    /// The parts of [`requantize_doubled`] (`(multiplier, c, right)`), which computes what
    /// [`requantize_folded`] does from the doubled input `2x`, for `|x| < 2^29`, in 32-bit steps
    /// (one SMMLAR on DSP cores): offered exactly where [`Requantizer::folded_parts`] is.
    ///
    /// Why: doubling numerator and denominator of the folded form, `⌊(2x·m + 2^31 + 2^(31+r) −
    /// 2^32·[x < 0]) / 2^(32+r)⌋`; the last two terms are multiples of 2^32, so with nested floors
    /// it is `⌊(⌊(2x·m + 2^31) / 2^32⌋ + 2^(r−1) − [x < 0]) / 2^r⌋`, and the zero point joins
    /// the constant as `zp · 2^r`: `c = 2^(r−1) + zp · 2^r`. `⌊(2x·m + 2^31) / 2^32⌋` is SMMULR of
    /// `2x` and `m`; `2x` fits 32 bits for `|x| < 2^30`, and `c` plus it stays below 2^31.
    pub fn doubled_parts(&self, zp: i32) -> Option<(i32, i32, u32)> {
        let (m, _, sh) = self.folded_parts(zp)?;
        let r = sh + 1;
        Some((m, (1 << (r - 1)) + (zp << r), r))
    }

    /// [`Requantizer::apply`] for a requantiser that [`Requantizer::is_fast`] (other values
    /// otherwise).
    #[inline(always)]
    pub fn apply_fast(&self, x: i32) -> i32 {
        requantize_fast(x, self.multiplier, self.right, self.mask, self.half)
    }
}

/// The fast form's arithmetic ([`Requantizer::apply_fast`]; the device's assembly loop spells
/// out the same steps): `x · multiplier · 2^(−31 − right)` rounded as gemmlowp does, `mask` =
/// 2^right − 1, `half` = mask / 2.
#[inline(always)]
pub fn requantize_fast(x: i32, multiplier: i32, right: u32, mask: i32, half: i32) -> i32 {
    // gemmlowp's (x·m + nudge) / 2^31 truncated toward zero, with nudge 2^30 or 1 − 2^30 by the
    // product's sign, is floor((x·m + 2^30) / 2^31) for either sign (for x·m < 0, truncating v
    // is flooring v + 2^31 − 1 = x·m + 2^30).
    let high = ((i64::from(x) * i64::from(multiplier) + (1 << 30)) >> 31) as i32;
    // gemmlowp's RoundingDivideByPOT.
    let threshold = half + i32::from(high < 0);
    (high >> right) + i32::from((high & mask) > threshold)
}

/// `apply_fast(x) + zp` in one rounding step, from [`Requantizer::folded_parts`] `(m, k, sh)`:
/// `(x·m + k − 2^31·[x < 0]) >> (32 + sh)` (the device's assembly loop: one SMLAL onto `k`
/// adjusted by the sign, then the high word shifted right by `sh`).
#[inline(always)]
pub fn requantize_folded(x: i32, m: i32, k: i64, sh: u32) -> i32 {
    let sign = i64::from(x >> 31) << 31;
    ((i64::from(x) * i64::from(m) + k + sign) >> (32 + sh)) as i32
}

/// [`requantize_folded`]`(x, …)` from `x2 = 2x` and [`Requantizer::doubled_parts`] `(m, c, r)`,
/// for `|x| < 2^29`: `(c + ⌊(x2·m + 2^31) / 2^32⌋ + [x2 < 0 ? −1 : 0]) >> r` (the device's
/// assembly loop: SMMLAR, an add of the sign, one shift).
#[inline(always)]
pub fn requantize_doubled(x2: i32, m: i32, c: i32, r: u32) -> i32 {
    let high = ((i64::from(x2) * i64::from(m) + (1 << 31)) >> 32) as i32;
    c.wrapping_add(high).wrapping_add(x2 >> 31) >> r
}

/// TFLite's ADD parameters for input scales `a`, `b` and output scale `y`: both inputs rescaled
/// to twice the larger input scale with 20 extra bits, the sum requantised to the output (one
/// home for the exporter and for hand-built models such as the fuzz seeds).
pub fn add_quant(a: f32, b: f32, y: f32) -> pare_format::AddQuant {
    let left_shift = 20;
    let twice_max = 2.0 * f64::from(a.max(b));
    let (am, ash) = quantize_multiplier(f64::from(a) / twice_max);
    let (bm, bsh) = quantize_multiplier(f64::from(b) / twice_max);
    let (om, osh) = quantize_multiplier(twice_max / ((1u64 << left_shift) as f64 * f64::from(y)));
    pare_format::AddQuant {
        left_shift,
        a_multiplier: am,
        a_shift: ash,
        b_multiplier: bm,
        b_shift: bsh,
        out_multiplier: om,
        out_shift: osh,
    }
}

/// Splits a positive real multiplier into a Q31 multiplier and a power-of-two shift, as
/// TFLite's `QuantizeMultiplier`: `real ≈ multiplier * 2^(shift - 31)`.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real <= 0.0 || !real.is_finite() {
        return (0, 0);
    }
    // frexp: real = q * 2^shift with q in [0.5, 1).
    let mut shift = 0i32;
    let mut q = real;
    while q >= 1.0 {
        q /= 2.0;
        shift += 1;
    }
    while q < 0.5 {
        q *= 2.0;
        shift -= 1;
    }
    let mut q_fixed = round_half_away(q * (1u64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    if shift > 30 {
        return (i32::MAX, 30);
    }
    (q_fixed as i32, shift)
}

/// `f64::round` is not in `core`; half away from zero like C's `round`.
fn round_half_away(x: f64) -> f64 {
    let t = x as i64 as f64;
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

/// Quantises a real value to int8 with `round(x / scale) + zero_point`, saturating.
pub fn quantize_f32(x: f32, scale: f32, zero_point: i32) -> i8 {
    let q = round_half_away(f64::from(x) / f64::from(scale));
    let q = if q.is_nan() { 0.0 } else { q.clamp(-1.0e9, 1.0e9) } as i32;
    q.saturating_add(zero_point).clamp(-128, 127) as i8
}

/// The real value of an int8 element.
pub fn dequantize(q: i8, scale: f32, zero_point: i32) -> f32 {
    scale * (i32::from(q) - zero_point) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_mul_matches_hand_values() {
        // 2^30 * 2^30 / 2^31 = 2^29
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // 3 * 2^30 / 2^31 = 1.5 → 2 (round half up for positive)
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        // -3 * 2^30 / 2^31 = -1.5 → -1: gemmlowp's nudge for negative products is 1 − 2^30,
        // so (−3·2^30 + 1 − 2^30) / 2^31 = −2 + 2^−31, truncated toward zero.
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
    }

    #[test]
    fn divide_by_pot_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    /// The next xorshift state in `r`, and from it an accumulator of any size and a multiplier
    /// in [2^30, 2^31).
    fn draw(r: &mut u64) -> (i32, i32) {
        *r ^= *r << 13;
        *r ^= *r >> 7;
        *r ^= *r << 17;
        ((*r as i32) >> (*r >> 59), (1 << 30) | ((*r >> 32) as i32 & 0x3FFF_FFFF))
    }

    #[test]
    fn requantizer_equals_the_reference_everywhere_tried() {
        let edges = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30) - 1,
            -(1 << 30),
            -65537,
            -256,
            -3,
            -2,
            -1,
            0,
            1,
            2,
            3,
            255,
            65536,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
        ];
        let mults = [i32::MIN, -1, 0, 1, 1 << 30, (1 << 30) + 12345, 1_518_500_250, i32::MAX];
        for &x in &edges {
            for &m in &mults {
                for s in -40..=3 {
                    assert_eq!(
                        Requantizer::new(m, s).apply(x),
                        multiply_by_quantized_multiplier(x, m, s),
                        "{x} {m} {s}"
                    );
                }
            }
        }
        // A xorshift stream: accumulators of every size, multipliers in [2^30, 2^31), all shifts.
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            let (x, m) = draw(&mut r);
            let s = -(((r >> 40) % 33) as i32);
            assert_eq!(Requantizer::new(m, s).apply(x), multiply_by_quantized_multiplier(x, m, s), "{x} {m} {s}");
        }
    }

    #[test]
    fn one_rounding_equals_gemmlowps_two_plus_the_zero_point() {
        // Against gemmlowp's reference (`multiply_by_quantized_multiplier`) plus the zero point,
        // for every right shift the form takes, edge accumulators and multipliers (2^30 itself:
        // x = −1 is the case where the sign of x and of the rounded product differ) and zero
        // points at its limits; then a xorshift stream.
        let edges =
            [i32::MIN, i32::MIN + 1, -(1 << 30) - 1, -(1 << 30), -65537, -3, -2, -1, 0, 1, 2, 3, 65536, i32::MAX];
        let mults = [1 << 30, (1 << 30) + 1, (1 << 30) + 12345, 1_518_500_250, i32::MAX];
        for r in 1..=22u32 {
            for &m in &mults {
                for zp in [-255, -128, -1, 0, 1, 127, 255] {
                    let q = Requantizer::new(m, -(r as i32));
                    let parts = q.folded_parts(zp);
                    assert!(parts.is_some(), "m {m} r {r} zp {zp} is in range");
                    let Some((mm, k, sh)) = parts else { continue };
                    let half = 1i32 << (r - 1);
                    let xs = edges.iter().copied().chain([half, half - 1, half + 1, -half, -half - 1, -half + 1]);
                    for x in xs.chain((-40..40).map(|i| i * (1 << r.min(25)) / 3)) {
                        let want = multiply_by_quantized_multiplier(x, m, -(r as i32)) + zp;
                        assert_eq!(requantize_folded(x, mm, k, sh), want, "x {x} m {m} r {r} zp {zp}");
                    }
                }
            }
        }
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200_000 {
            let (x, m) = draw(&mut r);
            let s = -(1 + ((r >> 40) % 22) as i32);
            let zp = ((r >> 45) % 511) as i32 - 255;
            let parts = Requantizer::new(m, s).folded_parts(zp);
            assert!(parts.is_some(), "m {m} s {s} zp {zp} is in range");
            let Some((mm, k, sh)) = parts else { continue };
            assert_eq!(
                requantize_folded(x, mm, k, sh),
                multiply_by_quantized_multiplier(x, m, s) + zp,
                "{x} {m} {s} {zp}"
            );
        }
        // Outside its ranges the form is not offered.
        assert!(Requantizer::new((1 << 30) - 1, -5).folded_parts(0).is_none());
        assert!(Requantizer::new(1 << 30, 0).folded_parts(0).is_none());
        assert!(Requantizer::new(1 << 30, -23).folded_parts(0).is_none());
        assert!(Requantizer::new(1 << 30, -5).folded_parts(256).is_none());
        assert!(Requantizer::new(1 << 30, 1).folded_parts(0).is_none());
    }

    #[test]
    fn doubled_form_equals_gemmlowps_two_roundings_plus_the_zero_point() {
        // Against gemmlowp's reference plus the zero point (not against the folded form it is
        // derived from), for every right shift, accumulators up to the form's bound |x| < 2^29,
        // edge multipliers and zero points; then a xorshift stream.
        let bound = (1 << 29) - 1;
        let edges = [-bound, -(1 << 28), -65537, -3, -2, -1, 0, 1, 2, 3, 65536, 1 << 28, bound];
        let mults = [1 << 30, (1 << 30) + 1, (1 << 30) + 12345, 1_518_500_250, i32::MAX];
        for r in 1..=22u32 {
            for &m in &mults {
                for zp in [-255, -128, -1, 0, 1, 127, 255] {
                    let parts = Requantizer::new(m, -(r as i32)).doubled_parts(zp);
                    assert!(parts.is_some(), "m {m} r {r} zp {zp} is in range");
                    let Some((mm, c, rr)) = parts else { continue };
                    let half = 1i32 << (r - 1);
                    let xs = edges.iter().copied().chain([half, half - 1, half + 1, -half, -half - 1, -half + 1]);
                    for x in xs.chain((-40..40).map(|i| i * (1 << r.min(25)) / 3)) {
                        let want = multiply_by_quantized_multiplier(x, m, -(r as i32)) + zp;
                        assert_eq!(requantize_doubled(2 * x, mm, c, rr), want, "x {x} m {m} r {r} zp {zp}");
                    }
                }
            }
        }
        let mut r = 0x3C6E_F372_FE94_F82Bu64;
        for _ in 0..200_000 {
            let (x, m) = draw(&mut r);
            let x = x % (1 << 29);
            let s = -(1 + ((r >> 40) % 22) as i32);
            let zp = ((r >> 45) % 511) as i32 - 255;
            let parts = Requantizer::new(m, s).doubled_parts(zp);
            assert!(parts.is_some(), "m {m} s {s} zp {zp} is in range");
            let Some((mm, c, rr)) = parts else { continue };
            assert_eq!(
                requantize_doubled(2 * x, mm, c, rr),
                multiply_by_quantized_multiplier(x, m, s) + zp,
                "{x} {m} {s} {zp}"
            );
        }
        assert!(Requantizer::new(1 << 30, -5).doubled_parts(256).is_none());
        assert!(Requantizer::new(1 << 30, -23).doubled_parts(0).is_none());
    }

    #[test]
    fn quantized_multiplier_reproduces_the_real_factor() {
        for real in [0.0003_f64, 0.0078125, 0.33, 0.5, 0.999_999, 1.0, 1.7, 123.4] {
            let (m, s) = quantize_multiplier(real);
            let back = f64::from(m) * 2f64.powi(s - 31);
            assert!((back - real).abs() / real < 1e-9, "{real}: {m} {s} → {back}");
            // And applying it to an integer rounds like the real product.
            for x in [-1000, -7, 0, 5, 999, 12345] {
                let got = multiply_by_quantized_multiplier(x, m, s);
                let want = (f64::from(x) * real).round();
                assert!((f64::from(got) - want).abs() <= 1.0, "{x} * {real}: {got} vs {want}");
            }
        }
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
    }
}
