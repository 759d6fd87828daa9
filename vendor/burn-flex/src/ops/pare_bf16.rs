//! pare patch: mixed-precision GEMM for the training convolutions (PARE-PATCH.md). C (m×n) [+]=
//! A (m×k) · B (k×n) with bf16 products and f32 accumulation (AVX-512 BF16, `VDPBF16PS`): A and
//! B are rounded to bf16 (nearest even) as they are packed, two k-steps to a 32-bit lane. Off by
//! default; [`bf16_products`] turns it on where the CPU has AVX-512 BF16.

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;
use core::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// Turns bf16 products on (where the CPU has AVX-512 BF16) or off for the convolutions' GEMMs;
/// returns whether they are on.
pub fn bf16_products(on: bool) -> bool {
    let on = on && available();
    ON.store(on, Ordering::Relaxed);
    on
}

/// Whether the GEMMs use bf16 products now.
pub(super) fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

const MR: usize = 6;
const NB: usize = 4; // panels of 16 columns per micro-tile
const NR: usize = 16 * NB;

/// Round to bf16, nearest even (NaN kept quiet).
#[inline(always)]
fn bf(x: f32) -> u32 {
    let b = x.to_bits();
    if x.is_nan() {
        return (b >> 16) | 0x40;
    }
    (b + 0x7fff + ((b >> 16) & 1)) >> 16
}

/// One 32-bit lane of two k-steps: `lo` in the low half, `hi` (zero past the end of k) above.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pair(lo: f32, hi: Option<f32>) -> u32 {
    bf(lo) | (hi.map_or(0, bf) << 16)
}

/// `rows` vectors of `k` values (element `t` of vector `r` at `src[r * rs + t * ks]`) as bf16
/// pairs laid out like [`pack_k_contiguous`]'s: the general case, element by element.
#[cfg(target_arch = "x86_64")]
fn pack_strided(rows: usize, k: usize, src: &[f32], rs: usize, ks: usize, group: usize, out: &mut [u32]) {
    let kp = k.div_ceil(2);
    for r in 0..rows {
        let base = (r / group) * kp * group + r % group;
        for p in 0..kp {
            let at = |t: usize| src[r * rs + t * ks];
            out[base + p * group] = pair(at(2 * p), (2 * p + 1 < k).then(|| at(2 * p + 1)));
        }
    }
}

/// Whether this CPU runs the bf16 kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512bf16") && std::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// See the module doc. Operands by (row stride, column stride); `dst` row-major (n per row) or
/// column-major.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    dst_col_major: bool,
) {
    assert!(available());
    // A column-major C is the row-major Cᵀ = Bᵀ · Aᵀ: stores then run along rows, and the
    // transposed operands are the ones whose k runs are contiguous (Winograd's, the weight
    // gradient's).
    if dst_col_major {
        return gemm(n, m, k, dst, accumulate, rhs, rhs_cs, rhs_rs, lhs, lhs_cs, lhs_rs, false);
    }
    let kp = k.div_ceil(2);
    // B: panels of 16 columns, per k-pair 16 u32 (low half row 2p, high half row 2p+1).
    let panels = n.div_ceil(16);
    let mut bp = vec![0u32; panels * kp * 16];
    if rhs_cs == 1 {
        unsafe { pack_b_rows(k, n, rhs, rhs_rs, &mut bp) };
    } else if rhs_rs == 1 {
        // Columns of B contiguous along k: each column's k values become its pairs.
        unsafe { pack_k_contiguous(n, k, rhs, rhs_cs, 16, &mut bp) };
    } else {
        pack_strided(n, k, rhs, rhs_cs, rhs_rs, 16, &mut bp);
    }
    // A: row panels of MR, per k-pair MR u32.
    let rpan = m.div_ceil(MR);
    let mut ap = vec![0u32; rpan * kp * MR];
    if lhs_cs == 1 {
        unsafe { pack_k_contiguous(m, k, lhs, lhs_rs, MR, &mut ap) };
    } else {
        pack_strided(m, k, lhs, lhs_rs, lhs_cs, MR, &mut ap);
    }
    let mut tile = [0f32; MR * NR];
    for i in 0..rpan {
        let a = &ap[i * kp * MR..(i + 1) * kp * MR];
        for j0 in (0..panels).step_by(NB) {
            let np = NB.min(panels - j0);
            unsafe { micro(a, &bp[j0 * kp * 16..], kp, np, &mut tile) };
            let cols = (np * 16).min(n - j0 * 16);
            for r in 0..MR.min(m - i * MR) {
                let row = i * MR + r;
                let d = &mut dst[row * n + j0 * 16..][..cols];
                let t = &tile[r * NR..][..cols];
                if accumulate {
                    d.iter_mut().zip(t).for_each(|(d, t)| *d += t);
                } else {
                    d.copy_from_slice(t);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn micro(a: &[u32], b: &[u32], kp: usize, np: usize, tile: &mut [f32; MR * NR]) {
    // SAFETY: the callers pass slices that hold every index the loops reach (checked by
    // the packing sizes in `gemm`), and the target features are present (`available`).
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NB]; MR];
        let stride = kp * 16;
        for p in 0..kp {
            let mut bv = [_mm512_setzero_si512(); NB];
            for q in 0..NB {
                if q < np {
                    bv[q] = _mm512_loadu_si512(b.as_ptr().add(q * stride + p * 16) as *const _);
                }
            }
            for r in 0..MR {
                let av = _mm512_set1_epi32(*a.get_unchecked(p * MR + r) as i32);
                for q in 0..NB {
                    acc[r][q] = _mm512_dpbf16_ps(acc[r][q], std::mem::transmute(av), std::mem::transmute(bv[q]));
                }
            }
        }
        for r in 0..MR {
            for q in 0..NB {
                _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR + q * 16), acc[r][q]);
            }
        }
    }
}

/// B with adjacent columns (row stride `rs`): two rows at a time, 16 columns at a time, rounded
/// and interleaved in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn pack_b_rows(k: usize, n: usize, b: &[f32], rs: usize, out: &mut [u32]) {
    // SAFETY: the callers pass slices that hold every index the loops reach (checked by
    // the packing sizes in `gemm`), and the target features are present (`available`).
    unsafe {
        let kp = k.div_ceil(2);
        let idx: [i16; 32] = std::array::from_fn(|i| if i % 2 == 0 { (i / 2) as i16 } else { 16 + (i / 2) as i16 });
        let idx = _mm512_loadu_si512(idx.as_ptr() as *const _);
        let full = n / 16;
        for p in 0..kp {
            let lo_row = b.as_ptr().add(2 * p * rs);
            let hi_ok = 2 * p + 1 < k;
            let hi_row = b.as_ptr().add((2 * p + 1).min(k - 1) * rs);
            for j in 0..full {
                let lo = _mm512_loadu_ps(lo_row.add(j * 16));
                let hi = if hi_ok { _mm512_loadu_ps(hi_row.add(j * 16)) } else { _mm512_setzero_ps() };
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                let v = _mm512_permutexvar_epi16(idx, v);
                _mm512_storeu_si512(out.as_mut_ptr().add((j * kp + p) * 16) as *mut _, v);
            }
            if full * 16 < n {
                let j = full;
                for c in 0..16 {
                    let col = j * 16 + c;
                    out[(j * kp + p) * 16 + c] =
                        if col >= n { 0 } else { pair(*lo_row.add(col), hi_ok.then(|| *hi_row.add(col))) };
                }
            }
        }
    }
}

/// `rows` vectors of `k` contiguous values (vector `r` at `src[r * stride..]`) rounded to bf16
/// pairs and laid out as `out[((r / group) * kp + p) * group + r % group]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn pack_k_contiguous(rows: usize, k: usize, src: &[f32], stride: usize, group: usize, out: &mut [u32]) {
    // SAFETY: the callers pass slices that hold every index the loops reach (checked by
    // the packing sizes in `gemm`), and the target features are present (`available`).
    unsafe {
        let kp = k.div_ceil(2);
        let mut tmp = vec![0u32; kp + 8];
        for r in 0..rows {
            let row = src.as_ptr().add(r * stride);
            let full = k / 32;
            for c in 0..full {
                let lo = _mm512_loadu_ps(row.add(c * 32));
                let hi = _mm512_loadu_ps(row.add(c * 32 + 16));
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(tmp.as_mut_ptr().add(c * 16) as *mut _, v);
            }
            for p in full * 16..kp {
                tmp[p] = pair(*row.add(2 * p), (2 * p + 1 < k).then(|| *row.add(2 * p + 1)));
            }
            let base = (r / group) * kp * group + r % group;
            for p in 0..kp {
                *out.get_unchecked_mut(base + p * group) = tmp[p];
            }
        }
    }
}
