//! 2-D convolution, NHWC activations and OHWI weights. int8 layers take, by shape: the row-slot
//! path ([`super::conv_rows`]: input channels a multiple of four, even output widths), the
//! blocked im2col path (receptive fields up to [`BLOCKED_K`]), the pair path (up to
//! [`SCRATCH`]) and the direct loops beyond; their SMLAD loops live in [`super::simd`], and all
//! of them work in the runtime's [`Scratch`].

use super::simd;
use super::Window;
use crate::quant::Requantizer;
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
#[derive(Debug, Clone, Copy, Default)]
pub struct Channel {
    pub bias: i32,
    pub scale: Requantizer,
}

impl Requant<'_, '_> {
    /// The output channels in order; shorter than the tables say only if they are inconsistent
    /// (validation rules that out).
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        let (b, _) = self.bias.bytes().as_chunks::<4>();
        let (m, _) = self.multipliers.bytes().as_chunks::<4>();
        b.iter().zip(m).zip(self.shifts.bytes()).map(|((b, m), s)| Channel {
            bias: i32::from_le_bytes(*b),
            scale: Requantizer::new(i32::from_le_bytes(*m), i32::from(*s as i8)),
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
        let y = c.scale.apply(dot.wrapping_add(c.bias)).saturating_add(self.zp);
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
/// interleaved copy, `2 × SCRATCH` words of [`Scratch`]); larger ones the direct path.
pub const SCRATCH: usize = 4608;

/// int8 convolution with per-channel requantisation: [`conv_i8_in`] with a scratch of its own.
pub fn conv_i8(g: &Window, x: &[i8], w: &[i8], q: &Requant<'_, '_>, relu: bool, y: &mut [i8]) -> Option<()> {
    conv_i8_in(&mut Scratch::new(), g, x, w, q, relu, y)
}

/// The convolutions' working memory, made once per inference and lent to every conv op (the
/// runtime's stack frame holds it; zeroing scratch per op cost ~15,000 instructions each): `2 ×
/// SCRATCH` words that [`conv_i8_blocked`] splits into columns, widened weights and accumulators
/// and [`conv_i8_pairs`] into its three columns, so the peak stack is one path's need. Nothing
/// carries over between ops: every word a kernel reads it wrote earlier in the same op.
pub struct Scratch {
    words: [u32; 2 * SCRATCH],
    chans: [Channel; BLOCK],
}

impl Scratch {
    /// The blocked layout: columns ([`COLS`] words), widened weights ([`WIDE`]), accumulators
    /// ([`ACC`]), channel parameters.
    pub(crate) fn parts(&mut self) -> (&mut [u32], &mut [u32], &mut [i32], &mut [Channel; BLOCK]) {
        let (cols, rest) = self.words.split_at_mut(COLS);
        let (wide, acc) = rest.split_at_mut(WIDE);
        (cols, wide, bytemuck::cast_slice_mut(acc), &mut self.chans)
    }

    pub const fn new() -> Self {
        const ZERO: Channel = Channel { bias: 0, scale: Requantizer::ZERO };
        Self { words: [0; 2 * SCRATCH], chans: [ZERO; BLOCK] }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// int8 convolution with per-channel requantisation, working in `scratch`: [`conv_i8_blocked`]
/// where a receptive field fits its scratch (the MCU-sized layers), [`conv_i8_pairs`] up to
/// [`SCRATCH`] elements, the direct loops beyond.
pub fn conv_i8_in(
    scratch: &mut Scratch,
    g: &Window,
    x: &[i8],
    w: &[i8],
    q: &Requant<'_, '_>,
    relu: bool,
    y: &mut [i8],
) -> Option<()> {
    let k = g.kh.checked_mul(g.kw)?.checked_mul(g.ic)?;
    if k <= BLOCKED_K && g.oc <= BLOCK {
        if super::conv_rows::applies(g) {
            return super::conv_rows::conv_i8_rows(scratch, g, x, w, q, relu, y);
        }
        conv_i8_blocked(scratch, g, x, w, q, relu, y)
    } else if k <= SCRATCH {
        conv_i8_pairs(scratch, g, x, w, q, relu, y)
    } else {
        conv_i8_direct(g, x, w, q, relu, y)
    }
}

/// Largest receptive field (`kh·kw·ic`) of [`conv_i8_blocked`].
pub const BLOCKED_K: usize = 576;
/// Its column scratch, in words: as many pixel pairs of packed, interleaved columns as fit (the
/// row-slot path's slot rows).
pub(crate) const COLS: usize = 4096;
/// Its widened filter pair (at most [`BLOCKED_K`] words; the row-slot path's stream adds two
/// words per kernel row) and the multiply loop's state.
pub(crate) const WIDE: usize = BLOCKED_K + 2 * super::conv_rows::ROWS_KH + simd::MAC_STATE;
/// Its accumulator scratch, in words, the rest of [`Scratch`]: `2 · pairs` per output channel
/// (rounded up to even), so a block holds `ACC / (2 · channels)` pixel pairs at most — thin
/// layers take long blocks, and each filter pair's widening is shared by more pixels.
pub(crate) const ACC: usize = 2 * SCRATCH - COLS - WIDE;

/// int8 convolution, pixels in blocks: the block's receptive fields are packed once (im2col,
/// two pixels interleaved per group of four elements), then for each pair of filters the weights
/// are widened to 16 bits once ([`simd::widen_pair`]) and run against every pixel pair of the
/// block ([`simd::mac_rows`]: four loads and eight SMLAD per sixteen multiply-accumulates, no
/// SXTB16 in the loop). A block is as many pixel pairs as the column and accumulator scratch
/// hold ([`COLS`], [`ACC`]).
#[inline(never)]
fn conv_i8_blocked(
    scratch: &mut Scratch,
    g: &Window,
    x: &[i8],
    w: &[i8],
    q: &Requant<'_, '_>,
    relu: bool,
    y: &mut [i8],
) -> Option<()> {
    let k = g.kh.checked_mul(g.kw)?.checked_mul(g.ic)?;
    let x_offset = q.in_zp.checked_neg()?;
    let out = q.out(relu);
    // Each kernel row starts a group of four: rows of `kw·ic` elements padded to `rs`.
    let row = g.kw * g.ic;
    let rs = row.next_multiple_of(4);
    let kp = g.kh * rs;
    if kp > BLOCKED_K {
        return conv_i8_pairs(scratch, g, x, w, q, relu, y);
    }
    let groups = kp / 4;
    let pair_words = groups * 4;
    // Accumulator rows: one per filter, a last odd filter's twin (it runs as a pair with itself)
    // included.
    let rows = g.oc.next_multiple_of(2);
    let pairs = (COLS / pair_words).min(ACC / (2 * rows)).max(1);
    let filters = w.get(..k.checked_mul(g.oc)?)?;
    // Accumulators of the block, channel-major: row `o` holds filter `o`'s `2n` pixels.
    let (cols, wide, acc, chans) = scratch.parts();
    // The filter pair's widened words, the stream's end (no jump, no further row), then the
    // multiply loop's state words.
    let wide = wide.get_mut(..pair_words + 2 + simd::MAC_STATE)?;
    wide.get_mut(pair_words..pair_words + 2)?.fill(0);
    let geo = simd::RowsGeometry { groups, kh: 1, zrow: pair_words, step: pair_words };
    for (d, c) in chans.iter_mut().zip(q.channels()) {
        *d = c;
    }
    let inner = Interior::of(g);
    // Interior pixels: all `kh` rows, `rs` bytes each (up to three past a row's end, which meet
    // zero weights), one call.
    let packer = simd::RowPacker::new(x.len(), g.iw * g.ic, g.kh, rs / 4, 0, x_offset);
    let pixels = g.oh * g.ow;
    let mut p = 0;
    while p < pixels {
        // The block: pixel pairs p, p+1, … packed straight into their lanes of the pair's
        // interleaved column; a last odd pixel is paired with itself and its twin's outputs are
        // not written.
        let n = (pixels - p).div_ceil(2).min(pairs);
        let npx = (2 * n).min(pixels - p);
        let (mut oy, mut ox) = (p / g.ow, p % g.ow);
        for (j, dst) in cols.chunks_exact_mut(pair_words).take(n).enumerate() {
            let a = (oy, ox);
            let b = if p + 2 * j + 1 < pixels { next(&mut oy, &mut ox, g.ow) } else { a };
            next(&mut oy, &mut ox, g.ow);
            pack_pixel(g, &inner, packer.as_ref(), x, a, x_offset, rs, dst, 0)?;
            pack_pixel(g, &inner, packer.as_ref(), x, b, x_offset, rs, dst, 1)?;
        }
        let cols = cols.get(..n * pair_words)?;
        let chans = chans.get(..g.oc)?;
        let mut lines = acc.get_mut(..rows * 2 * n)?.chunks_exact_mut(2 * n);
        let mut o = 0;
        while let (Some(ra), Some(rb)) = (lines.next(), lines.next()) {
            // A last odd filter runs as a pair with itself (its twin's row is not written out).
            let ob = if o + 1 < g.oc { o + 1 } else { o };
            let (fa, fb) = (filters.get(o * k..(o + 1) * k)?, filters.get(ob * k..(ob + 1) * k)?);
            for ((ra, rb), dst) in
                fa.chunks_exact(row).zip(fb.chunks_exact(row)).zip(wide.chunks_exact_mut(rs).take(g.kh))
            {
                simd::widen_pair(ra, rb, dst);
            }
            let bias = [chans.get(o)?.bias, chans.get(ob)?.bias];
            simd::mac_rows(cols, wide, geo, bias, ra, rb).then_some(())?;
            o += 2;
        }
        let block = y.get_mut(p * g.oc..(p + npx) * g.oc)?;
        requant_block(acc.get(..g.oc * 2 * n)?, 2 * n, chans, out, block, npx);
        p += npx;
    }
    Some(())
}

/// The output rows `y0..y1` and columns `x0..x1` whose whole window lies inside the input (no
/// padding taps).
struct Interior {
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
}

impl Interior {
    fn of(g: &Window) -> Self {
        let (y0, y1) = Self::range(g.oh, g.sh, g.pt, g.kh, g.ih);
        let (x0, x1) = Self::range(g.ow, g.sw, g.pl, g.kw, g.iw);
        Self { y0, y1, x0, x1 }
    }

    /// Outputs `o < out` with `o·stride ≥ pad` and `o·stride − pad + kernel ≤ size`.
    fn range(out: usize, stride: usize, pad: usize, kernel: usize, size: usize) -> (usize, usize) {
        let stride = stride.max(1);
        let lo = pad.div_ceil(stride);
        let hi = match (size + pad).checked_sub(kernel) {
            Some(last) => (last / stride + 1).min(out),
            None => 0,
        };
        (lo, hi.max(lo))
    }

    fn contains(&self, oy: usize, ox: usize) -> bool {
        (self.y0..self.y1).contains(&oy) && (self.x0..self.x1).contains(&ox)
    }
}

/// Steps `(oy, ox)` to the next output pixel in row-major order; returns the new position.
#[inline(always)]
fn next(oy: &mut usize, ox: &mut usize, ow: usize) -> (usize, usize) {
    *ox += 1;
    if *ox == ow {
        *ox = 0;
        *oy += 1;
    }
    (*oy, *ox)
}

/// Packs output pixel `(oy, ox)`'s receptive field into `lane` of a pair column: an interior
/// pixel's `kh` rows by one [`simd::RowPacker`] call straight from its first input byte, others
/// (and an interior pixel whose last row's over-read would leave the input) through
/// [`im2col_rows`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pack_pixel(
    g: &Window,
    inner: &Interior,
    packer: Option<&simd::RowPacker>,
    x: &[i8],
    (oy, ox): (usize, usize),
    x_offset: i32,
    rs: usize,
    col: &mut [u32],
    lane: usize,
) -> Option<()> {
    if let Some(pk) = packer.filter(|_| inner.contains(oy, ox)) {
        let first = ((oy * g.sh - g.pt) * g.iw + ox * g.sw - g.pl) * g.ic;
        if pk.pack(col, x, first, lane) {
            return Some(());
        }
    }
    im2col_rows(g, x, oy, ox, x_offset, rs, col, lane)
}

/// im2col for [`conv_i8_blocked`], into pixel `lane`'s words of a pair's interleaved column
/// (the layout [`simd::mac_rows`] reads): kernel row `ky` packed from element `ky·rs` (`rs`, the
/// row length rounded up to four, so every row starts a group and packs whole words). The
/// elements between a row's end and `(ky + 1)·rs` meet zero weights, so an interior pixel packs
/// whole groups straight from the input, reading up to three bytes past its row; a pixel whose
/// window reaches into the padding has its lane zeroed first and packs its in-bounds runs
/// exactly.
#[allow(clippy::too_many_arguments)]
fn im2col_rows(
    g: &Window,
    x: &[i8],
    oy: usize,
    ox: usize,
    x_offset: i32,
    rs: usize,
    col: &mut [u32],
    lane: usize,
) -> Option<()> {
    let (ky0, ky1) = Window::span(oy, g.sh, g.pt, g.kh, g.ih);
    let (kx0, kx1) = Window::span(ox, g.sw, g.pl, g.kw, g.iw);
    let interior = ky0 == 0 && ky1 == g.kh && kx0 == 0 && kx1 == g.kw;
    if !interior {
        simd::zero_lane(col, lane);
    }
    if kx0 >= kx1 {
        return Some(());
    }
    let run = (kx1 - kx0) * g.ic;
    // A border pixel whose in-bounds runs start and end on group boundaries (channel counts that
    // are multiples of four): its rows by one call too, `rs / 4 − run / 4` groups apart.
    let at = ky0 * rs + kx0 * g.ic;
    if !interior && ky0 < ky1 && at.is_multiple_of(4) && run.is_multiple_of(4) {
        let first = ((oy * g.sh + ky0 - g.pt) * g.iw + ox * g.sw + kx0 - g.pl) * g.ic;
        let rows = ky1 - ky0;
        if let Some(dst) = col.get_mut(at..) {
            if simd::pack_rows(dst, x, first, g.iw * g.ic, rows, run / 4, (rs - run) / 4, x_offset, lane) {
                return Some(());
            }
        }
    }
    if interior {
        // Every row whole and in bounds (reading up to three bytes past the last): one call
        // packs all `kh` rows, `rs / 4` words apart in the input's row stride.
        let first = ((oy * g.sh - g.pt) * g.iw + ox * g.sw - g.pl) * g.ic;
        if simd::pack_rows(col, x, first, g.iw * g.ic, g.kh, rs / 4, 0, x_offset, lane) {
            return Some(());
        }
    }
    for ky in ky0..ky1 {
        let px = ((oy * g.sh + ky - g.pt) * g.iw + ox * g.sw + kx0 - g.pl) * g.ic;
        match x.get(px..px + rs) {
            Some(whole) if interior => simd::pack_into_lane(col, ky * rs, whole, x_offset, lane),
            _ => simd::pack_into_lane(col, ky * rs + kx0 * g.ic, x.get(px..px + run)?, x_offset, lane),
        }
    }
    Some(())
}

/// Output channels whose accumulators one pass keeps on the stack (two pixels' worth).
const BLOCK: usize = 256;

/// int8 convolution with per-channel requantisation.
///
/// Per pair of neighbouring output pixels: both receptive fields are packed once (im2col), every
/// pair of filters runs against both in one loop ([`simd::dot_packed_2x2`]), the accumulators
/// go to a stack block, and a separate loop requantises the block, so neither loop spills the
/// other's registers. A filter is read as `k` rounded up to a multiple of 4 bytes where the
/// weights extend that far: the packed columns are zero past `k`, so the extra bytes (the next
/// filter's) add nothing and no partial group needs its own code.
#[inline(never)]
fn conv_i8_pairs(
    scratch: &mut Scratch,
    g: &Window,
    x: &[i8],
    w: &[i8],
    q: &Requant<'_, '_>,
    relu: bool,
    y: &mut [i8],
) -> Option<()> {
    let k = g.kh.checked_mul(g.kw)?.checked_mul(g.ic)?;
    let x_offset = q.in_zp.checked_neg()?;
    let out = q.out(relu);
    let filters = w.get(..k.checked_mul(g.oc)?)?;
    let words = k.div_ceil(4) * 2;
    let Scratch { words: scratch, chans } = scratch;
    let (s0, rest) = scratch.split_at_mut(SCRATCH / 2);
    let (s1, s2) = rest.split_at_mut(SCRATCH / 2);
    let (c0, c1, both) = (s0.get_mut(..words)?, s1.get_mut(..words)?, s2.get_mut(..2 * words)?);
    let mut acc = [[0i32; 2]; BLOCK];
    // Channel parameters of the block in `chans`, decoded once per op when all channels fit one
    // block, else once per block and pixel pair.
    let mut loaded = usize::MAX;
    for oy in 0..g.oh {
        let mut ox = 0;
        while ox < g.ow {
            let base = (oy * g.ow + ox) * g.oc;
            if ox + 1 < g.ow {
                im2col(g, x, oy, ox, x_offset, c0)?;
                im2col(g, x, oy, ox + 1, x_offset, c1)?;
                simd::interleave(c0, c1, both);
                let (ya, yb) = y.get_mut(base..base + 2 * g.oc)?.split_at_mut(g.oc);
                for (first, (ya, yb)) in (0..).step_by(BLOCK).zip(ya.chunks_mut(BLOCK).zip(yb.chunks_mut(BLOCK))) {
                    let n = ya.len();
                    let (acc, ch) = (acc.get_mut(..n)?, chans.get_mut(..n)?);
                    if loaded != first {
                        for (d, c) in ch.iter_mut().zip(q.channels().skip(first)) {
                            *d = c;
                        }
                        loaded = first;
                    }
                    pair_block(both, c0, c1, w, k, first, acc)?;
                    requant_pair(acc, ch, &out, ya, yb);
                }
                ox += 2;
            } else {
                im2col(g, x, oy, ox, x_offset, c0)?;
                let y = y.get_mut(base..base + g.oc)?;
                for ((f, c), v) in filters.chunks_exact(k).zip(q.channels()).zip(y.iter_mut()) {
                    *v = out.value(&c, simd::dot_packed(c0, f));
                }
                ox += 1;
            }
        }
    }
    Some(())
}

/// Writes a block's outputs from its channel-major accumulators (row `o` of `acc`, `stride`
/// long, holds channel `o`'s pixels, `pixels` of them used): one channel's requantiser stays in
/// registers across the block's pixels. Not inlined, for the same reason as [`requant_pair`].
#[inline(never)]
pub(crate) fn requant_block(acc: &[i32], stride: usize, chans: &[Channel], out: Out, block: &mut [i8], pixels: usize) {
    let oc = chans.len();
    let (zp, low) = (out.zp, out.low);
    for (o, (a, c)) in acc.chunks_exact(stride.max(1)).zip(chans).enumerate() {
        // The accumulators include the bias (simd::mac_rows starts from it).
        let outs = block.get_mut(o..).unwrap_or_default();
        simd::requant_strided(a.get(..pixels).unwrap_or_default(), &c.scale, zp, low, outs, oc);
    }
}

/// Requantises a block of two pixels' accumulators. Not inlined: alone, the loop keeps its
/// constants in registers (inlined into the convolution it spilled them, 40 instructions per
/// output against 22).
#[inline(never)]
fn requant_pair(acc: &[[i32; 2]], ch: &[Channel], out: &Out, ya: &mut [i8], yb: &mut [i8]) {
    for (((a, c), va), vb) in acc.iter().zip(ch).zip(ya.iter_mut()).zip(yb.iter_mut()) {
        *va = out.value(c, a[0]);
        *vb = out.value(c, a[1]);
    }
}

/// Accumulators of filters `first..first + acc.len()` against two pixels' columns: `[pixel 0,
/// pixel 1]` per filter.
fn pair_block(
    both: &[u32],
    c0: &[u32],
    c1: &[u32],
    w: &[i8],
    k: usize,
    first: usize,
    acc: &mut [[i32; 2]],
) -> Option<()> {
    let k4 = k.next_multiple_of(4);
    // Filter `o`, read as `k4` bytes where the weights extend that far, else as `k`.
    let filter = |o: usize| w.get(o * k..o * k + k4).or_else(|| w.get(o * k..o * k + k));
    let mut o = first;
    let mut pairs = acc.chunks_exact_mut(2);
    for a in pairs.by_ref() {
        // Both filters of a pass the same length: the last pair of the weights reads `k`.
        let (fa, fb) = match (w.get(o * k..o * k + k4), w.get((o + 1) * k..(o + 1) * k + k4)) {
            (Some(fa), Some(fb)) => (fa, fb),
            _ => (w.get(o * k..(o + 1) * k)?, w.get((o + 1) * k..(o + 2) * k)?),
        };
        let [a0, b0, a1, b1] = simd::dot_packed_2x2(both, fa, fb);
        *a.first_mut()? = [a0, a1];
        *a.last_mut()? = [b0, b1];
        o += 2;
    }
    if let Some(a) = pairs.into_remainder().first_mut() {
        let f = filter(o)?;
        *a = [simd::dot_packed(c0, f), simd::dot_packed(c1, f)];
    }
    Some(())
}

/// im2col of output pixel `(oy, ox)`: the receptive field in filter order (ky, kx, c), packed
/// for [`simd::dot_packed`]; padded taps are zero, which is what (zero point − zero point)
/// contributes. The in-bounds taps of a kernel row are one contiguous run of the input, packed
/// in one call; the column is zeroed first only when the window reaches into the padding.
fn im2col(g: &Window, x: &[i8], oy: usize, ox: usize, x_offset: i32, col: &mut [u32]) -> Option<()> {
    // In-bounds kernel rows `ky0..ky1` and columns `kx0..kx1`.
    let (ky0, ky1) = Window::span(oy, g.sh, g.pt, g.kh, g.ih);
    let (kx0, kx1) = Window::span(ox, g.sw, g.pl, g.kw, g.iw);
    let k = g.kh * g.kw * g.ic;
    if !(g.kw * g.ic).is_multiple_of(4) && k <= GATHER {
        return im2col_gathered(g, x, oy, ox, x_offset, col, [ky0, ky1, kx0, kx1]);
    }
    if ky0 > 0 || kx0 > 0 || ky1 < g.kh || kx1 < g.kw {
        col.fill(0);
    } else {
        // The last group's lanes past the receptive field must still be zero.
        let n = col.len();
        if let Some(last) = col.get_mut(n.saturating_sub(2)..) {
            last.fill(0);
        }
    }
    if kx0 >= kx1 {
        return Some(());
    }
    let run = (kx1 - kx0) * g.ic;
    for ky in ky0..ky1 {
        let px = ((oy * g.sh + ky - g.pt) * g.iw + ox * g.sw + kx0 - g.pl) * g.ic;
        simd::pack_into(col, (ky * g.kw + kx0) * g.ic, x.get(px..px + run)?, x_offset);
    }
    Some(())
}

/// Receptive fields up to this many bytes whose kernel rows do not fill whole groups of four
/// (a 3-channel stem: rows of 9) are gathered into bytes first.
const GATHER: usize = 256;

/// [`im2col`] for rows that start mid-group: the rows' bytes are copied into one contiguous
/// buffer (padded taps and the last group's spare lanes hold the input zero point, so they pack
/// to zero) and packed in one aligned pass, instead of element by element at every row's ends.
fn im2col_gathered(
    g: &Window,
    x: &[i8],
    oy: usize,
    ox: usize,
    x_offset: i32,
    col: &mut [u32],
    [ky0, ky1, kx0, kx1]: [usize; 4],
) -> Option<()> {
    let zp = i8::try_from(x_offset.checked_neg()?).ok()?;
    let k4 = (g.kh * g.kw * g.ic).next_multiple_of(4);
    let mut buf = [zp; GATHER + 4];
    let bytes = buf.get_mut(..k4)?;
    if kx0 < kx1 {
        let run = (kx1 - kx0) * g.ic;
        for ky in ky0..ky1 {
            let px = ((oy * g.sh + ky - g.pt) * g.iw + ox * g.sw + kx0 - g.pl) * g.ic;
            let at = (ky * g.kw + kx0) * g.ic;
            bytes.get_mut(at..at + run)?.copy_from_slice(x.get(px..px + run)?);
        }
    }
    simd::pack_into(col, 0, bytes, x_offset);
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
