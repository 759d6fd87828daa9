//! The int8 inner product, CMSIS-NN style. Activations are widened into 16-bit lanes with the
//! input offset applied (im2col'ed per output pixel, or once per input row into slot rows),
//! packed in the order `(x0, x2), (x1, x3)`, so four int8 weights need one word load and two
//! SXTB16 to line up with two SMLAD (two 16-bit multiply-accumulates each). On Cortex-M with the
//! DSP extension these are single instructions through inline `asm!`; elsewhere [`sxtb16`] and
//! [`smlad`] emulate them bit for bit, and the board check compares the two paths' raw outputs
//! byte for byte.
#![allow(unsafe_code)]

use crate::quant::Requantizer;
#[cfg(not(pare_dsp))]
use crate::quant::{requantize_doubled, requantize_fast, requantize_folded};

/// Dual sign-extend: bytes 0 and 2 of `x` to the two 16-bit halves.
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    #[cfg(pare_dsp)]
    {
        let r: u32;
        // SAFETY: SXTB16 only reads and writes the named registers; no memory, no flags.
        unsafe {
            core::arch::asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }
    #[cfg(not(pare_dsp))]
    {
        let lo = i16::from(x as u8 as i8) as u16 as u32;
        let hi = i16::from((x >> 16) as u8 as i8) as u16 as u32;
        lo | (hi << 16)
    }
}

/// [`sxtb16`] of `x` rotated right by 8: bytes 1 and 3 (one instruction on DSP targets).
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(pare_dsp)]
    {
        let r: u32;
        // SAFETY: SXTB16 with rotation only reads and writes the named registers.
        unsafe {
            core::arch::asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }
    #[cfg(not(pare_dsp))]
    {
        sxtb16(x.rotate_right(8))
    }
}

/// `acc + a.lo·b.lo + a.hi·b.hi` over signed 16-bit halves (SMLAD).
#[inline(always)]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(pare_dsp)]
    {
        let r: i32;
        // SAFETY: SMLAD only reads and writes the named registers; it may set the Q flag, which
        // nothing here reads, so `preserves_flags` is not claimed.
        unsafe {
            core::arch::asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack))
        };
        r
    }
    #[cfg(not(pare_dsp))]
    {
        let p0 = i32::from(a as u16 as i16) * i32::from(b as u16 as i16);
        let p1 = i32::from((a >> 16) as u16 as i16) * i32::from((b >> 16) as u16 as i16);
        acc.wrapping_add(p0).wrapping_add(p1)
    }
}

/// `(a.lo + sext(b.byte0), a.hi + sext(b.byte2))` in 16-bit lanes (SXTAB16).
#[inline(always)]
pub fn sxtab16(a: u32, b: u32) -> u32 {
    #[cfg(pare_dsp)]
    {
        let r: u32;
        // SAFETY: SXTAB16 only reads and writes the named registers; no memory, no flags.
        unsafe {
            core::arch::asm!("sxtab16 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }
    #[cfg(not(pare_dsp))]
    {
        let e = sxtb16(b);
        let lo = (a as u16).wrapping_add(e as u16) as u32;
        let hi = ((a >> 16) as u16).wrapping_add((e >> 16) as u16) as u32;
        lo | (hi << 16)
    }
}

/// `sxtab16(a, b.rotate_right(8))`: bytes 1 and 3 of `b` added to `a`'s halves (one
/// instruction on DSP targets).
#[inline(always)]
pub fn sxtab16_ror8(a: u32, b: u32) -> u32 {
    #[cfg(pare_dsp)]
    {
        let r: u32;
        // SAFETY: SXTAB16 with rotation only reads and writes the named registers.
        unsafe {
            core::arch::asm!("sxtab16 {r}, {a}, {b}, ror #8", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }
    #[cfg(not(pare_dsp))]
    {
        sxtab16(a, b.rotate_right(8))
    }
}

/// Packs `x + x_offset` (int8 values) into reordered 16-bit pairs: for each group of four
/// elements, words `(x0, x2)` and `(x1, x3)`. `col` must hold `len.div_ceil(4) * 2` words; the
/// tail of the last group is zero.
pub fn pack_into(col: &mut [u32], start: usize, x: &[i8], x_offset: i32) {
    pack_groups::<2>(col, start, x, x_offset, 0);
}

/// [`pack_into`] into pixel `lane`'s words (0 or 1) of an interleaved pair column
/// ([`interleave`]'s layout): element `e` of the receptive field goes to group `e / 4`'s words
/// `4 · (e / 4) + 2 · lane + {0, 1}`; the other pixel's words are left as they are.
pub fn pack_into_lane(col: &mut [u32], start: usize, x: &[i8], x_offset: i32, lane: usize) {
    pack_groups::<4>(col, start, x, x_offset, lane);
}

/// [`pack_into`] and [`pack_into_lane`]: `GS` words per group of four elements, this pixel's
/// two at `2 · lane`. Up to three elements to reach a group boundary, then whole groups, then
/// the tail.
#[inline(always)]
fn pack_groups<const GS: usize>(col: &mut [u32], start: usize, x: &[i8], x_offset: i32, lane: usize) {
    let head = ((4 - start % 4) % 4).min(x.len());
    let (first, rest) = x.split_at(head);
    pack_scalar::<GS>(col, start, first, x_offset, lane);
    let start = start + head;
    let bytes: &[u8] = bytemuck::cast_slice(rest);
    let (quads, _) = bytes.as_chunks::<4>();
    let off = (x_offset as u16 as u32) | ((x_offset as u16 as u32) << 16);
    let g0 = start / 4;
    if let Some(dst) = col.get_mut(g0 * GS..(g0 + quads.len()) * GS) {
        let (groups, _) = dst.as_chunks_mut::<GS>();
        for (p, q) in groups.iter_mut().zip(quads) {
            let w = u32::from_le_bytes(*q);
            let (l0, l1) = p.split_at_mut(2);
            if let [a, b, ..] = if lane == 0 { l0 } else { l1 } {
                *a = sxtab16(off, w);
                *b = sxtab16_ror8(off, w);
            }
        }
    }
    let done = quads.len() * 4;
    pack_scalar::<GS>(col, start + done, rest.get(done..).unwrap_or(&[]), x_offset, lane);
}

/// Packs `rows` rows of `quads · 4` int8 values, row `r` starting at `x[start + r · stride]`,
/// into pixel `lane`'s words of an interleaved pair column ([`interleave`]'s layout, four words
/// per group: row `r` from group `r · (quads + gap)`, so `gap` groups are left between rows) with
/// the offset added, as [`pack_into_lane`] does for a group-aligned start. Returns `false`,
/// packing nothing, if the rows or the words do not fit the slices. Hand-written on DSP targets
/// (one call for a receptive field: LDR, two SXTAB16, STRD per four values, the store skipping
/// the other pixel's words).
#[allow(clippy::too_many_arguments)]
pub fn pack_rows(
    col: &mut [u32],
    x: &[i8],
    start: usize,
    stride: usize,
    rows: usize,
    quads: usize,
    gap: usize,
    x_offset: i32,
    lane: usize,
) -> bool {
    if rows == 0 || quads == 0 {
        return lane < 2;
    }
    RowPacker::new(x.len(), stride, rows, quads, gap, x_offset).is_some_and(|p| p.pack(col, x, start, lane))
}

/// [`pack_rows`] for one geometry, checked once: a convolution packs every interior pixel's
/// receptive field with the same rows, quads and strides, so a call only checks where it starts.
#[derive(Debug, Clone, Copy)]
pub struct RowPacker {
    len: usize,
    stride: usize,
    rows: usize,
    quads: usize,
    gap: usize,
    x_offset: i32,
    /// Largest start whose last row ends inside the input.
    last: usize,
    /// Column words the rows reach.
    words: usize,
}

impl RowPacker {
    /// `rows ≥ 1` rows of `quads ≥ 1` quads, `stride ≥ 4·quads` apart in an input of `len` bytes,
    /// `gap` groups apart in the column; `None` if they do not fit.
    pub fn new(len: usize, stride: usize, rows: usize, quads: usize, gap: usize, x_offset: i32) -> Option<Self> {
        if rows == 0 || quads == 0 || stride < quads * 4 {
            return None;
        }
        let span = (rows - 1).checked_mul(stride)?.checked_add(quads * 4)?;
        let groups = (rows - 1).checked_mul(quads + gap)?.checked_add(quads)?;
        Some(Self {
            len,
            stride,
            rows,
            quads,
            gap,
            x_offset,
            last: len.checked_sub(span)?,
            words: groups.checked_mul(4)?,
        })
    }

    /// Packs the rows from `x[start]` into `lane` of `col`; `false`, packing nothing, where they
    /// do not fit (another input length, a start past [`RowPacker::last`], a short column).
    #[inline(always)]
    pub fn pack(&self, col: &mut [u32], x: &[i8], start: usize, lane: usize) -> bool {
        if x.len() != self.len || start > self.last || col.len() < self.words || lane > 1 {
            return false;
        }
        pack_rows_unchecked(col, x, start, self.stride, self.rows, self.quads, self.gap, self.x_offset, lane);
        true
    }
}

#[cfg(pare_dsp)]
#[allow(clippy::too_many_arguments)]
fn pack_rows_unchecked(
    col: &mut [u32],
    x: &[i8],
    start: usize,
    stride: usize,
    rows: usize,
    quads: usize,
    gap: usize,
    x_offset: i32,
    lane: usize,
) {
    let off = (x_offset as u16 as u32) | ((x_offset as u16 as u32) << 16);
    let skip = stride - quads * 4;
    let dskip = gap * 16;
    // SAFETY: `RowPacker::pack` checked that the rows' groups fit `col` (the last store ends at word
    // ((rows − 1)·(quads + gap) + quads)·4 − 4 + 2·lane + 2 with `lane` 0 or 1) and that every
    // row's quads·4 bytes lie in `x` from `start`; unaligned word loads are allowed on ARMv7E-M
    // and ARMv8-M Mainline; no stack.
    unsafe {
        let (mut s, mut d, mut r) = (x.as_ptr().add(start), col.as_mut_ptr().add(2 * lane), rows);
        core::arch::asm!(
            "3:",
            "mov {n}, {q}",
            "2:",
            "ldr {w}, [{s}], #4",
            "sxtab16 {a}, {off}, {w}",
            "sxtab16 {b}, {off}, {w}, ror #8",
            "strd {a}, {b}, [{d}], #16",
            "subs {n}, {n}, #1",
            "bne 2b",
            "add {s}, {s}, {skip}",
            "add {d}, {d}, {dskip}",
            "subs {r}, {r}, #1",
            "bne 3b",
            s = inout(reg) s,
            d = inout(reg) d,
            r = inout(reg) r,
            q = in(reg) quads,
            skip = in(reg) skip,
            dskip = in(reg) dskip,
            off = in(reg) off,
            n = out(reg) _,
            w = out(reg) _,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack)
        );
        let _ = (s, d, r);
    }
}

/// [`pack_rows`], portable: [`pack_into_lane`] row by row (group-aligned starts), the same words.
#[cfg(not(pare_dsp))]
#[allow(clippy::too_many_arguments)]
fn pack_rows_unchecked(
    col: &mut [u32],
    x: &[i8],
    start: usize,
    stride: usize,
    rows: usize,
    quads: usize,
    gap: usize,
    x_offset: i32,
    lane: usize,
) {
    for r in 0..rows {
        let at = start + r * stride;
        if let Some(row) = x.get(at..at + quads * 4) {
            pack_into_lane(col, r * (quads + gap) * 4, row, x_offset, lane);
        }
    }
}

/// Zeroes pixel `lane`'s words of an interleaved pair column.
pub fn zero_lane(col: &mut [u32], lane: usize) {
    let (groups, _) = col.as_chunks_mut::<4>();
    for p in groups {
        let (l0, l1) = p.split_at_mut(2);
        (if lane == 0 { l0 } else { l1 }).fill(0);
    }
}

/// Element by element (unaligned starts and tails), `GS` words per group, this pixel's at
/// `2 · lane` ([`pack_groups`]).
fn pack_scalar<const GS: usize>(col: &mut [u32], start: usize, x: &[i8], x_offset: i32, lane: usize) {
    for (i, v) in x.iter().enumerate() {
        let e = start + i;
        let word = (e / 4) * GS + 2 * lane + (e % 2);
        let half = (e % 4) / 2;
        let val = (i32::from(*v) + x_offset) as i16 as u16 as u32;
        if let Some(w) = col.get_mut(word) {
            *w = (*w & !(0xFFFF << (16 * half))) | (val << (16 * half));
        }
    }
}

/// `Σ col[e]·w[e]` for `e < w.len()`, with `col` packed by [`pack_into`] (zeros past the end).
#[inline]
pub fn dot_packed(col: &[u32], w: &[i8]) -> i32 {
    let mut acc = 0i32;
    let bytes: &[u8] = bytemuck::cast_slice(w);
    let (quads, tail) = bytes.as_chunks::<4>();
    let (pairs, _) = col.as_chunks::<2>();
    for (q, p) in quads.iter().zip(pairs) {
        let word = u32::from_le_bytes(*q);
        acc = smlad(p[0], sxtb16(word), acc);
        acc = smlad(p[1], sxtb16_ror8(word), acc);
    }
    if !tail.is_empty() {
        let mut last = [0u8; 4];
        for (d, s) in last.iter_mut().zip(tail) {
            *d = *s;
        }
        if let Some(p) = pairs.get(quads.len()) {
            let word = u32::from_le_bytes(last);
            acc = smlad(p[0], sxtb16(word), acc);
            acc = smlad(p[1], sxtb16(word.rotate_right(8)), acc);
        }
    }
    acc
}

/// The last, partial group of four weights, zero-padded, as one word.
#[inline]
fn tail_word(tail: &[u8]) -> u32 {
    let mut last = [0u8; 4];
    for (d, s) in last.iter_mut().zip(tail) {
        *d = *s;
    }
    u32::from_le_bytes(last)
}

/// Interleaves two packed columns group by group (`[c0 pair, c1 pair]` per four elements), the
/// layout [`dot_packed_2x2`] reads with one pointer.
pub fn interleave(c0: &[u32], c1: &[u32], out: &mut [u32]) {
    let (p0, _) = c0.as_chunks::<2>();
    let (p1, _) = c1.as_chunks::<2>();
    let (o, _) = out.as_chunks_mut::<4>();
    for ((o, a), b) in o.iter_mut().zip(p0).zip(p1) {
        *o = [a[0], a[1], b[0], b[1]];
    }
}

/// Two interleaved columns (two output pixels, see [`interleave`]) against two filters (two
/// output channels) in one pass, so every load and weight expansion serves two
/// multiply-accumulates: `[c0·w0, c0·w1, c1·w0, c1·w1]`.
#[inline]
pub fn dot_packed_2x2(cols: &[u32], w0: &[i8], w1: &[i8]) -> [i32; 4] {
    let (b0, b1): (&[u8], &[u8]) = (bytemuck::cast_slice(w0), bytemuck::cast_slice(w1));
    let (q0, t0) = b0.as_chunks::<4>();
    let (q1, t1) = b1.as_chunks::<4>();
    let (groups, _) = cols.as_chunks::<4>();
    let mut acc = [0i32; 4];
    let step = |x: &[u32; 4], wa: u32, wb: u32, acc: &mut [i32; 4]| {
        let (a02, a13, b02, b13) = (sxtb16(wa), sxtb16_ror8(wa), sxtb16(wb), sxtb16_ror8(wb));
        acc[0] = smlad(x[1], a13, smlad(x[0], a02, acc[0]));
        acc[1] = smlad(x[1], b13, smlad(x[0], b02, acc[1]));
        acc[2] = smlad(x[3], a13, smlad(x[2], a02, acc[2]));
        acc[3] = smlad(x[3], b13, smlad(x[2], b02, acc[3]));
    };
    for ((a, b), x) in q0.iter().zip(q1).zip(groups) {
        step(x, u32::from_le_bytes(*a), u32::from_le_bytes(*b), &mut acc);
    }
    if !t0.is_empty() {
        if let Some(x) = groups.get(q0.len()) {
            step(x, tail_word(t0), tail_word(t1), &mut acc);
        }
    }
    acc
}

/// Two filters widened to 16-bit lanes in the packed order, interleaved per group of four
/// elements as `[a (0,2), a (1,3), b (0,2), b (1,3)]`, the layout [`mac_rows`] reads. A partial
/// last group is zero-padded; `out` holds `4 · len.div_ceil(4)` words.
pub fn widen_pair(a: &[i8], b: &[i8], out: &mut [u32]) {
    let (ba, bb): (&[u8], &[u8]) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
    let (qa, ta) = ba.as_chunks::<4>();
    let (qb, tb) = bb.as_chunks::<4>();
    let (o, _) = out.as_chunks_mut::<4>();
    let whole = qa.len().min(qb.len()).min(o.len());
    widen_groups(ba, bb, o, whole);
    let mut o = o.iter_mut().skip(whole);
    if !ta.is_empty() {
        if let Some(d) = o.next() {
            *d = widen(tail_word(ta), tail_word(tb));
        }
    }
}

/// One group of [`widen_pair`]: a word of each filter, widened in the packed order.
#[inline(always)]
fn widen(x: u32, y: u32) -> [u32; 4] {
    [sxtb16(x), sxtb16_ror8(x), sxtb16(y), sxtb16_ror8(y)]
}

/// The whole groups of [`widen_pair`]: `n` words of `a` and of `b` (at least `4n` bytes each) to
/// `out[..n]`. Hand-written on DSP targets (two loads, four SXTB16, one STM per group: nine
/// instructions where the compiler's loop took twelve).
#[cfg(pare_dsp)]
fn widen_groups(a: &[u8], b: &[u8], out: &mut [[u32; 4]], n: usize) {
    if n == 0 || a.len() < 4 * n || b.len() < 4 * n || out.len() < n {
        return;
    }
    let (mut pa, mut pb, mut po, mut n) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), n);
    // SAFETY: reads 4n bytes from each input and writes n groups of four words, all within the
    // slices (checked above); unaligned word loads are allowed on ARMv7E-M; no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {x}, [{pa}], #4",
            "ldr {y}, [{pb}], #4",
            "sxtb16 r2, {x}",
            "sxtb16 r3, {x}, ror #8",
            "sxtb16 r4, {y}",
            "sxtb16 r5, {y}, ror #8",
            "stm {po}!, {{r2, r3, r4, r5}}",
            "subs {n}, {n}, #1",
            "bne 2b",
            pa = inout(reg) pa,
            pb = inout(reg) pb,
            po = inout(reg) po,
            n = inout(reg) n,
            x = out(reg) _,
            y = out(reg) _,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            options(nostack)
        );
    }
    let _ = (pa, pb, po, n);
}

/// [`widen_groups`], portable.
#[cfg(not(pare_dsp))]
fn widen_groups(a: &[u8], b: &[u8], out: &mut [[u32; 4]], n: usize) {
    let (qa, _) = a.as_chunks::<4>();
    let (qb, _) = b.as_chunks::<4>();
    for ((x, y), d) in qa.iter().zip(qb).zip(out.iter_mut()).take(n) {
        *d = widen(u32::from_le_bytes(*x), u32::from_le_bytes(*y));
    }
}

/// One group of four elements of [`mac_rows`]'s loop: both pixels' packed words by one LDM
/// (r2–r5), then the two filters' four widened words, eight SMLAD.
#[cfg(pare_dsp)]
macro_rules! mac_group {
    () => {
        concat!(
            "ldm {c}!, {{r2, r3, r4, r5}}\n",
            "ldr {v}, [{w}], #4\n",
            "smlad {a0}, r2, {v}, {a0}\n",
            "smlad {a1}, r4, {v}, {a1}\n",
            "ldr {v}, [{w}], #4\n",
            "smlad {a0}, r3, {v}, {a0}\n",
            "smlad {a1}, r5, {v}, {a1}\n",
            "ldr {v}, [{w}], #4\n",
            "smlad {b0}, r2, {v}, {b0}\n",
            "smlad {b1}, r4, {v}, {b1}\n",
            "ldr {v}, [{w}], #4\n",
            "smlad {b0}, r3, {v}, {b0}\n",
            "smlad {b1}, r5, {v}, {b1}",
        )
    };
}

/// Words past the weight stream that [`mac_rows`]'s assembly loop keeps its state in (the
/// accumulator pointers, pairs left, the stream's length, the biases, the group count): all twelve
/// allocatable registers are taken by the multiply loop.
pub const MAC_STATE: usize = 8;

/// Where [`mac_rows`] finds a pixel pair's kernel rows: `kh` runs of `groups` groups, `zrow`
/// words apart (one slot row each), successive pairs `step` words apart.
#[derive(Debug, Clone, Copy)]
pub struct RowsGeometry {
    pub groups: usize,
    pub kh: usize,
    pub zrow: usize,
    pub step: usize,
}

/// Pixel pairs against two widened filters ([`widen_pair`]), sums starting from the filters'
/// biases `bias = [a, b]`: pair `j`'s sums go to `acc_a[2j], acc_a[2j + 1]` (filter a, both
/// pixels) and `acc_b[2j], acc_b[2j + 1]`. Pair `j`'s kernel row `ky` is the `4 · groups` words of
/// `rows` from `j · step + ky · zrow` — slot rows (`conv_rows`), or with `kh = 1` and `step = 4 ·
/// groups` the blocked kernel's packed columns back to back — and `wide` the weight stream: per
/// kernel row its `4 · groups` widened words and two words (the byte jump to the next row's run,
/// or after the last row to the next pair's first; the next row's group count, 0 after the last),
/// then [`MAC_STATE`] spare words. Per group of four elements: one LDM of the two pixels' words,
/// four weight loads, eight SMLAD (hand-written on DSP targets, two groups per iteration, and the
/// loop over the pairs too). As many pairs as the accumulator slices hold; `false`, computing
/// nothing, if the slices are too short for them.
pub fn mac_rows(
    rows: &[u32],
    wide: &mut [u32],
    geo: RowsGeometry,
    bias: [i32; 2],
    acc_a: &mut [i32],
    acc_b: &mut [i32],
) -> bool {
    let RowsGeometry { groups, kh, zrow, step } = geo;
    let pairs = acc_a.len().min(acc_b.len()) / 2;
    let stream = kh * (4 * groups + 2);
    let reach = (kh.saturating_sub(1) * zrow).saturating_add(pairs.saturating_sub(1) * step) + 4 * groups;
    if groups == 0 || kh == 0 || pairs == 0 || wide.len() < stream + MAC_STATE || rows.len() < reach {
        return false;
    }
    mac_rows_checked(rows, wide, geo, bias, acc_a, acc_b, pairs);
    true
}

#[cfg(pare_dsp)]
#[allow(clippy::too_many_arguments)]
fn mac_rows_checked(
    rows: &[u32],
    wide: &mut [u32],
    geo: RowsGeometry,
    bias: [i32; 2],
    acc_a: &mut [i32],
    acc_b: &mut [i32],
    pairs: usize,
) {
    let stream = geo.kh * (4 * geo.groups + 2);
    let state = [
        acc_a.as_mut_ptr() as usize as u32,
        acc_b.as_mut_ptr() as usize as u32,
        pairs as u32,
        (stream * 4) as u32,
        bias[0] as u32,
        bias[1] as u32,
        geo.groups as u32,
        0,
    ];
    if let Some(st) = wide.get_mut(stream..stream + MAC_STATE) {
        st.copy_from_slice(&state);
    } else {
        return;
    }
    let [mut a0, mut b0] = bias;
    let (mut a1, mut b1) = (a0, b0);
    let (mut c, mut w, mut n) = (rows.as_ptr(), wide.as_mut_ptr(), geo.groups);
    // SAFETY: `mac_rows` checked that every pair's `kh` runs lie in `rows` and that `wide` holds
    // the stream and the state; the stream's jump words (written by the caller from the same
    // geometry) move `c` from one run to the next and on to the next pair; each accumulator slice
    // holds 2·pairs values; no stack.
    unsafe {
        core::arch::asm!(
            "6:",
            "8:",
            // n = groups / 2; an odd group first.
            "lsrs {n}, {n}, #1",
            "bcc 3f",
            mac_group!(),
            "3:",
            "cmp {n}, #0",
            "beq 4f",
            "5:",
            mac_group!(),
            mac_group!(),
            "subs {n}, {n}, #1",
            "bne 5b",
            "4:",
            // The row's jump and the next row's groups (0 after the last row).
            "ldrd {v}, {n}, [{w}], #8",
            "add {c}, {c}, {v}",
            "cmp {n}, #0",
            "bne 8b",
            "ldm {w}, {{r2, r3, r4, r5}}",
            "strd {a0}, {a1}, [r2], #8",
            "strd {b0}, {b1}, [r3], #8",
            "subs r4, r4, #1",
            "stm {w}, {{r2, r3, r4}}",
            "beq 7f",
            "ldrd {a0}, {b0}, [{w}, #16]",
            "ldr {n}, [{w}, #24]",
            "sub {w}, {w}, r5",
            "mov {a1}, {a0}",
            "mov {b1}, {b0}",
            "b 6b",
            "7:",
            c = inout(reg) c,
            w = inout(reg) w,
            n = inout(reg) n,
            v = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            b0 = inout(reg) b0,
            b1 = inout(reg) b1,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            options(nostack)
        );
    }
    let _ = (c, w, n, a0, a1, b0, b1);
}

/// [`mac_rows`], portable (host emulation): the same sums (wrapping, so in any order) from the
/// geometry instead of the stream's jump words.
#[cfg(not(pare_dsp))]
#[allow(clippy::too_many_arguments)]
fn mac_rows_checked(
    rows: &[u32],
    wide: &mut [u32],
    geo: RowsGeometry,
    bias: [i32; 2],
    acc_a: &mut [i32],
    acc_b: &mut [i32],
    pairs: usize,
) {
    let run = 4 * geo.groups;
    let (pa, _) = acc_a.as_chunks_mut::<2>();
    let (pb, _) = acc_b.as_chunks_mut::<2>();
    for (j, (a, b)) in pa.iter_mut().zip(pb.iter_mut()).take(pairs).enumerate() {
        let [mut a0, mut b0] = bias;
        let (mut a1, mut b1) = (a0, b0);
        for ky in 0..geo.kh {
            let at = j * geo.step + ky * geo.zrow;
            let (Some(col), Some(wr)) = (rows.get(at..at + run), wide.get(ky * (run + 2)..ky * (run + 2) + run)) else {
                return;
            };
            let (c, _) = col.as_chunks::<4>();
            let (v, _) = wr.as_chunks::<4>();
            for (x, v) in c.iter().zip(v) {
                a0 = smlad(x[1], v[1], smlad(x[0], v[0], a0));
                a1 = smlad(x[3], v[1], smlad(x[2], v[0], a1));
                b0 = smlad(x[1], v[3], smlad(x[0], v[2], b0));
                b1 = smlad(x[3], v[3], smlad(x[2], v[2], b1));
            }
        }
        *a = [a0, a1];
        *b = [b0, b1];
    }
}

/// Zeroes pixel `lane`'s words of groups `g0..g1` (those inside `col`) of an interleaved pair
/// column or slot row.
pub fn zero_slots(col: &mut [u32], g0: usize, g1: usize, lane: usize) {
    let end = (4 * g1).min(col.len());
    let Some(words) = col.get_mut((4 * g0).min(end)..end) else { return };
    let (groups, _) = words.as_chunks_mut::<4>();
    for p in groups {
        let (l0, l1) = p.split_at_mut(2);
        (if lane == 0 { l0 } else { l1 }).fill(0);
    }
}

/// `out[i · stride] = clamp(scale(acc[i]) + zp, -128, 127) ∨ low` for every `i` that fits both
/// slices: one output channel of a block (outputs are NHWC, `stride` = channels). Exported
/// requantisers take the single-rounding form ([`Requantizer::folded_parts`], 15 instructions
/// per output on DSP targets), other fast ones the two-step form ([`Requantizer::apply_fast`],
/// 23 where the compiler's loop took 34), the rest [`Requantizer::apply`].
pub fn requant_strided(acc: &[i32], scale: &Requantizer, zp: i32, low: i32, out: &mut [i8], stride: usize) {
    let n = acc.len().min(out.len().div_ceil(stride.max(1)));
    if n == 0 {
        return;
    }
    if let Some(parts) = scale.folded_parts(zp) {
        return requant_folded(acc, parts, low, out, stride, n);
    }
    match scale.fast_parts() {
        Some(parts) => requant_fast(acc, parts, zp, low, out, stride, n),
        _ => {
            for (d, v) in out.iter_mut().step_by(stride.max(1)).zip(acc) {
                *d = scale.apply(*v).saturating_add(zp).clamp(-128, 127).max(low) as i8;
            }
        }
    }
}

#[cfg(pare_dsp)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn requant_fast(
    acc: &[i32],
    (m, right, mask): (i32, u32, i32),
    zp: i32,
    low: i32,
    out: &mut [i8],
    stride: usize,
    n: usize,
) {
    let (mut a, mut d, mut n) = (acc.as_ptr(), out.as_mut_ptr(), n);
    // SAFETY: `n ≥ 1` values are read from `acc` (n ≤ acc.len()) and written to `out` at
    // `i · stride` for i < n, all below out.len() (n ≤ ceil(len / stride)); no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {x}, [{a}], #4",
            "mov {lo}, #0x40000000",
            "mov {hi}, #0",
            "smlal {lo}, {hi}, {x}, {m}",
            // high = (x·m + 2^30) >> 31
            "lsr {x}, {lo}, #31",
            "orr {x}, {x}, {hi}, lsl #1",
            // gemmlowp's rounding divide by 2^right: remainder > mask/2 + (high < 0)
            "and {lo}, {x}, {mask}",
            "lsr {hi}, {mask}, #1",
            "add {hi}, {hi}, {x}, lsr #31",
            "asr {x}, {x}, {right}",
            "cmp {lo}, {hi}",
            "it gt",
            "addgt {x}, {x}, #1",
            "qadd {x}, {x}, {zp}",
            "ssat {x}, #8, {x}",
            "cmp {x}, {low}",
            "it lt",
            "movlt {x}, {low}",
            "strb {x}, [{d}]",
            "add {d}, {d}, {stride}",
            "subs {n}, {n}, #1",
            "bne 2b",
            a = inout(reg) a,
            d = inout(reg) d,
            n = inout(reg) n,
            stride = in(reg) stride,
            m = in(reg) m,
            mask = in(reg) mask,
            right = in(reg) right,
            zp = in(reg) zp,
            low = in(reg) low,
            x = out(reg) _,
            lo = out(reg) _,
            hi = out(reg) _,
            options(nostack)
        );
    }
    let _ = (a, d, n);
}

/// One output of the single-rounding requantisation in [`requant_folded`]'s loops: the
/// accumulator in register `$x` (loaded here unless `loaded`), the sign-adjusted constant into a
/// register pair, SMLAL, the high word shifted, SSAT, the byte stored `stride` on.
#[cfg(pare_dsp)]
macro_rules! requant_one {
    ($x:ident) => {
        concat!("ldr {", stringify!($x), "}, [{a}], #4\n", requant_one!($x, loaded))
    };
    ($x:ident, loaded) => {
        concat!(
            "asr {hi}, {",
            stringify!($x),
            "}, #31\n",
            "lsl {lo}, {hi}, #31\n",
            "adds {lo}, {lo}, {klo}\n",
            "adc {hi}, {hi}, {khi}\n",
            "smlal {lo}, {hi}, {",
            stringify!($x),
            "}, {m}\n",
            "asr {",
            stringify!($x),
            "}, {hi}, {sh}\n",
            "ssat {",
            stringify!($x),
            "}, #8, {",
            stringify!($x),
            "}\n",
            "strb {",
            stringify!($x),
            "}, [{d}]\n",
            "add {d}, {d}, {stride}",
        )
    };
}

/// [`requant_strided`]'s single-rounding form ([`Requantizer::folded_parts`]: exported
/// requantisers), hand-written: 15 instructions per output (the two-step form's loop takes 23):
/// the sign-adjusted constant into a register pair, one SMLAL, the high word shifted, SSAT and
/// the lower clamp; 12 where SSAT's bound is the clamp.
#[cfg(pare_dsp)]
#[inline(always)]
fn requant_folded(acc: &[i32], (m, k, sh): (i32, i64, u32), low: i32, out: &mut [i8], stride: usize, n: usize) {
    let (klo, khi) = (k as u32, (k >> 32) as u32);
    let (mut a, mut d, mut n) = (acc.as_ptr(), out.as_mut_ptr(), n);
    if low <= -128 {
        // SSAT's lower bound is the clamp (no ReLU, or a ReLU whose zero point is −128, as the
        // exporter writes them): two outputs per iteration from one LDRD, 10.5 instructions per
        // output.
        // SAFETY: as below (the pairs read 2·⌊n/2⌋ values after an odd first one, n in all).
        unsafe {
            core::arch::asm!(
                "lsrs {n}, {n}, #1",
                "bcc 3f",
                requant_one!(x0),
                "3:",
                "cmp {n}, #0",
                "beq 4f",
                "2:",
                "ldrd {x0}, {x1}, [{a}], #8",
                requant_one!(x0, loaded),
                requant_one!(x1, loaded),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                a = inout(reg) a,
                d = inout(reg) d,
                n = inout(reg) n,
                stride = in(reg) stride,
                m = in(reg) m,
                klo = in(reg) klo,
                khi = in(reg) khi,
                sh = in(reg) sh,
                x0 = out(reg) _,
                x1 = out(reg) _,
                lo = out(reg) _,
                hi = out(reg) _,
                options(nostack)
            );
        }
        let _ = (a, d, n);
        return;
    }
    // SAFETY: `n ≥ 1` values are read from `acc` (n ≤ acc.len()) and written to `out` at
    // `i · stride` for i < n, all below out.len() (n ≤ ceil(len / stride)); no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {x}, [{a}], #4",
            // (lo, hi) = k − 2^31·[x < 0], then + x·m.
            "asr {hi}, {x}, #31",
            "lsl {lo}, {hi}, #31",
            "adds {lo}, {lo}, {klo}",
            "adc {hi}, {hi}, {khi}",
            "smlal {lo}, {hi}, {x}, {m}",
            "asr {x}, {hi}, {sh}",
            "ssat {x}, #8, {x}",
            "cmp {x}, {low}",
            "it lt",
            "movlt {x}, {low}",
            "strb {x}, [{d}]",
            "add {d}, {d}, {stride}",
            "subs {n}, {n}, #1",
            "bne 2b",
            a = inout(reg) a,
            d = inout(reg) d,
            n = inout(reg) n,
            stride = in(reg) stride,
            m = in(reg) m,
            klo = in(reg) klo,
            khi = in(reg) khi,
            sh = in(reg) sh,
            low = in(reg) low,
            x = out(reg) _,
            lo = out(reg) _,
            hi = out(reg) _,
            options(nostack)
        );
    }
    let _ = (a, d, n);
}

/// [`requant_strided`]'s single-rounding form, portable (host emulation):
/// [`requantize_folded`], the arithmetic the assembly loop spells out.
#[cfg(not(pare_dsp))]
#[inline(always)]
fn requant_folded(acc: &[i32], (m, k, sh): (i32, i64, u32), low: i32, out: &mut [i8], stride: usize, n: usize) {
    for (d, v) in out.iter_mut().step_by(stride.max(1)).zip(acc).take(n) {
        *d = requantize_folded(*v, m, k, sh).clamp(-128, 127).max(low) as i8;
    }
}

/// [`requant_strided`]'s fast form, portable (host emulation): [`requantize_fast`], the
/// arithmetic the assembly loop spells out.
#[cfg(not(pare_dsp))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn requant_fast(
    acc: &[i32],
    (m, right, mask): (i32, u32, i32),
    zp: i32,
    low: i32,
    out: &mut [i8],
    stride: usize,
    n: usize,
) {
    for (d, v) in out.iter_mut().step_by(stride.max(1)).zip(acc).take(n) {
        *d = requantize_fast(*v, m, right, mask, mask >> 1).saturating_add(zp).clamp(-128, 127).max(low) as i8;
    }
}

/// Residual add of int8 tensors through per-byte tables of doubled rescaled inputs (`ta`, `tb`,
/// indexed by the byte with its sign bit flipped; every `|ta| + |tb| < 2^30`) and
/// [`Requantizer::doubled_parts`] `(m, c, r)`: `y[i] = clamp(requantize_doubled(ta[a[i]] +
/// tb[b[i]]), -128, 127) ∨ low`, over the shortest of the three slices. Hand-written on DSP
/// targets: two LDRSB, two table loads, ADD, SMMLAR, the sign added, a shift, SSAT and the lower
/// clamp (15 instructions per element; the compiler's loop over the two-step form took 36).
pub fn add_doubled(
    a: &[i8],
    b: &[i8],
    ta: &[i32; 256],
    tb: &[i32; 256],
    parts: (i32, i32, u32),
    low: i32,
    y: &mut [i8],
) {
    let n = a.len().min(b.len()).min(y.len());
    if n == 0 {
        return;
    }
    add_doubled_n(a, b, ta, tb, parts, low, y, n);
}

#[cfg(pare_dsp)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn add_doubled_n(
    a: &[i8],
    b: &[i8],
    ta: &[i32; 256],
    tb: &[i32; 256],
    (m, c, r): (i32, i32, u32),
    low: i32,
    y: &mut [i8],
    n: usize,
) {
    let (mut pa, mut pb, mut d, mut n) = (a.as_ptr(), b.as_ptr(), y.as_mut_ptr(), n);
    // SAFETY: `n ≥ 1` bytes are read from `a` and `b` and written to `y`, all at least `n` long;
    // a table is read at its middle entry plus a sign-extended byte (−128..=127 words), inside
    // its 256 entries; no stack.
    unsafe {
        let (t0, t1) = (ta.as_ptr().add(128), tb.as_ptr().add(128));
        core::arch::asm!(
            "2:",
            "ldrsb {xa}, [{pa}], #1",
            "ldrsb {xb}, [{pb}], #1",
            "ldr {xa}, [{t0}, {xa}, lsl #2]",
            "ldr {xb}, [{t1}, {xb}, lsl #2]",
            "add {xa}, {xa}, {xb}",
            // c + ⌊(2x·m + 2^31) / 2^32⌋, minus one for a negative sum, shifted right by r.
            "smmlar {xb}, {xa}, {m}, {c}",
            "add {xb}, {xb}, {xa}, asr #31",
            "asr {xb}, {xb}, {r}",
            "ssat {xb}, #8, {xb}",
            "cmp {xb}, {low}",
            "it lt",
            "movlt {xb}, {low}",
            "strb {xb}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 2b",
            pa = inout(reg) pa,
            pb = inout(reg) pb,
            d = inout(reg) d,
            n = inout(reg) n,
            t0 = in(reg) t0,
            t1 = in(reg) t1,
            m = in(reg) m,
            c = in(reg) c,
            r = in(reg) r,
            low = in(reg) low,
            xa = out(reg) _,
            xb = out(reg) _,
            options(nostack)
        );
    }
    let _ = (pa, pb, d, n);
}

/// [`add_doubled`], portable (host emulation): the arithmetic the assembly loop spells out.
#[cfg(not(pare_dsp))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn add_doubled_n(
    a: &[i8],
    b: &[i8],
    ta: &[i32; 256],
    tb: &[i32; 256],
    (m, c, r): (i32, i32, u32),
    low: i32,
    y: &mut [i8],
    n: usize,
) {
    let index = |v: i8| usize::from(v as u8 ^ 0x80);
    for ((o, x), z) in y.iter_mut().zip(a).zip(b).take(n) {
        let sum = ta.get(index(*x)).copied().unwrap_or(0).wrapping_add(tb.get(index(*z)).copied().unwrap_or(0));
        *o = requantize_doubled(sum, m, c, r).clamp(-128, 127).max(low) as i8;
    }
}

/// `Σ (x[i] + x_offset) · w[i]` without packing (for long vectors that do not fit the scratch).
#[inline]
pub fn dot_i8(x: &[i8], w: &[i8], x_offset: i32) -> i32 {
    dot_i8_portable(x, w, x_offset)
}

/// Plain reference.
#[inline]
pub fn dot_i8_portable(x: &[i8], w: &[i8], x_offset: i32) -> i32 {
    let mut acc = 0i32;
    for (a, b) in x.iter().zip(w) {
        acc = acc.wrapping_add((i32::from(*a) + x_offset).wrapping_mul(i32::from(*b)));
    }
    acc
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn packed_dot_equals_plain_dot_for_every_length() {
        let x: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(37).wrapping_sub(100));
        let w: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(-53).wrapping_add(7));
        for n in 0..=23 {
            for off in [-128, -3, 0, 5, 128] {
                let mut col = [0u32; 12];
                pack_into(&mut col, 0, &x[..n], off);
                assert_eq!(dot_packed(&col, &w[..n]), dot_i8_portable(&x[..n], &w[..n], off), "n={n} off={off}");
            }
        }
    }

    #[test]
    fn two_by_two_equals_four_single_dots() {
        let x: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(37).wrapping_sub(100));
        let z: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(11).wrapping_add(3));
        let w: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(-53).wrapping_add(7));
        let v: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(29).wrapping_add(-1));
        for n in 0..=23 {
            let (mut c0, mut c1, mut both) = ([0u32; 12], [0u32; 12], [0u32; 24]);
            pack_into(&mut c0, 0, &x[..n], 17);
            pack_into(&mut c1, 0, &z[..n], 17);
            interleave(&c0, &c1, &mut both);
            let want = [
                dot_i8_portable(&x[..n], &w[..n], 17),
                dot_i8_portable(&x[..n], &v[..n], 17),
                dot_i8_portable(&z[..n], &w[..n], 17),
                dot_i8_portable(&z[..n], &v[..n], 17),
            ];
            assert_eq!(dot_packed_2x2(&both, &w[..n], &v[..n]), want, "n={n}");
        }
    }

    #[test]
    fn packing_at_unaligned_starts_and_tails() {
        let x: [i8; 13] = core::array::from_fn(|i| (i as i8) * 9 - 60);
        for start in 0..6 {
            for n in 0..=13 {
                let (mut fast, mut slow) = ([0u32; 12], [0u32; 12]);
                pack_into(&mut fast, start, &x[..n], -7);
                pack_scalar::<2>(&mut slow, start, &x[..n], -7, 0);
                assert_eq!(fast, slow, "start {start} n {n}");
            }
        }
        assert_eq!(sxtab16(0x0001_FFFF, 0x0000_0001), 0x0001_0000);
    }

    #[test]
    fn lane_packing_equals_interleaving_two_packed_columns() {
        // Two receptive fields of 13 values packed straight into their lanes, at every start
        // and length, and the interior path's whole rows: the words `interleave` makes of the
        // two packed separately.
        let x: [i8; 13] = core::array::from_fn(|i| (i as i8) * 9 - 60);
        let z: [i8; 13] = core::array::from_fn(|i| 50 - (i as i8) * 7);
        for start in 0..6 {
            for n in 0..=13 {
                let (mut c0, mut c1, mut want) = ([0u32; 10], [0u32; 10], [0u32; 20]);
                pack_into(&mut c0, start, &x[..n], 3);
                pack_into(&mut c1, start, &z[..n], 3);
                interleave(&c0, &c1, &mut want);
                let mut got = [0u32; 20];
                pack_into_lane(&mut got, start, &x[..n], 3, 0);
                pack_into_lane(&mut got, start, &z[..n], 3, 1);
                assert_eq!(got, want, "start {start} n {n}");
            }
        }
        // Two rows of four values per pixel (5 and 4 apart in their inputs), over a column
        // whose first lane was zeroed and whose second held other values.
        let mut got = [7u32; 8];
        zero_lane(&mut got, 0);
        assert_eq!(got, [0, 0, 7, 7, 0, 0, 7, 7]);
        assert!(pack_rows(&mut got, &x, 0, 5, 2, 1, 0, -1, 0));
        assert!(pack_rows(&mut got, &z, 1, 4, 2, 1, 0, -1, 1));
        let (mut c0, mut c1, mut want) = ([0u32; 4], [0u32; 4], [0u32; 8]);
        pack_into(&mut c0, 0, &x[0..4], -1);
        pack_into(&mut c0, 4, &x[5..9], -1);
        pack_into(&mut c1, 0, &z[1..5], -1);
        pack_into(&mut c1, 4, &z[5..9], -1);
        interleave(&c0, &c1, &mut want);
        assert_eq!(got, want);
        assert!(!pack_rows(&mut got, &x, 0, 5, 2, 1, 0, -1, 2), "a third lane does not exist");
        assert!(!pack_rows(&mut got, &x, 0, 5, 3, 1, 0, -1, 0), "three rows do not fit eight words");
        // Rows one group apart in the column (`gap` 1): row 0 in group 0, row 1 in group 2.
        let mut got = [7u32; 12];
        assert!(pack_rows(&mut got, &x, 0, 5, 2, 1, 1, -1, 1));
        let mut c1 = [0u32; 6];
        pack_into(&mut c1, 0, &x[0..4], -1);
        pack_into(&mut c1, 8, &x[5..9], -1);
        assert_eq!(got, [7, 7, c1[0], c1[1], 7, 7, 7, 7, 7, 7, c1[4], c1[5]]);
        assert!(!pack_rows(&mut got, &x, 0, 5, 2, 1, 2, -1, 0), "rows two groups apart do not fit twelve words");
    }

    #[test]
    fn sxtb16_and_smlad_match_their_definitions() {
        assert_eq!(sxtb16(0x80_7F_01_FF), 0x007F_FFFF);
        assert_eq!(smlad(0xFFFF_0002, 0x0003_0004, 10), 10 + 2 * 4 - 3);
    }
}
