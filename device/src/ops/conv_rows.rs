//! The int8 convolution's row-slot path: instead of packing every output pixel's receptive field
//! (im2col: each input value widened and stored once per tap that reads it, nine times for a 3×3
//! kernel), each input row is widened once into a *slot row*: slot `j` holds input pixel `j − pl`
//! in its first lane and pixel `j − pl + sw` in its second, group by group, in the layout the
//! SMLAD loop reads ([`simd::mac_rows`]). An output pixel pair `(ox, ox + 1)`'s kernel row is then
//! the run of slots `ox·sw − pl … ox·sw − pl + kw − 1` of one slot row, read in place; padding is
//! zero slots and zero rows, so border pixels cost what interior ones do. For channel counts that
//! are multiples of four, even output widths and strides no longer than the kernel;
//! [`super::conv`]'s blocked path takes the rest.

use super::conv::{requant_block, Requant, Scratch, ACC, COLS, WIDE};
use super::simd;
use super::Window;

/// Kernel heights up to this take the row-slot path (its weight stream holds two words per
/// kernel row).
pub const ROWS_KH: usize = 7;

/// Whether [`conv_i8_rows`] takes a convolution of this geometry.
pub fn applies(g: &Window) -> bool {
    plan(g).is_some()
}

/// Layout of one geometry: words per slot, slots and words per slot row, groups per kernel row,
/// output rows per block, the weight stream's words.
#[derive(Debug, Clone, Copy)]
struct Plan {
    slots: usize,
    zrow: usize,
    groups: usize,
    per_block: usize,
    stream: usize,
}

fn plan(g: &Window) -> Option<Plan> {
    let shape = g.ic > 0
        && g.ic.is_multiple_of(4)
        && g.ow.is_multiple_of(2)
        && (1..=ROWS_KH).contains(&g.kh)
        && g.kw > 0
        && g.sh > 0
        && g.sw > 0
        // A stride past the kernel (a 1×1 stride-2 shortcut) would widen input rows and columns
        // no output reads; the blocked path packs only what it reads.
        && g.kh >= g.sh
        && g.kw >= g.sw;
    if !shape {
        return None;
    }
    let slot = g.ic;
    let slots = g.ow.checked_sub(2)?.checked_mul(g.sw)?.checked_add(g.kw)?;
    let zrow = slots.checked_mul(slot)?;
    let groups = g.kw.checked_mul(g.ic)? / 4;
    let stream = g.kh.checked_mul(4 * groups + 2)?;
    if stream + simd::MAC_STATE > WIDE || zrow.checked_mul(g.kh)? > COLS {
        return None;
    }
    // Output rows whose slot rows fit the column scratch and whose accumulators fit theirs.
    let by_cols = (COLS / zrow - g.kh) / g.sh + 1;
    let by_acc = ACC / (g.oc.next_multiple_of(2) * g.ow);
    let per_block = by_cols.min(by_acc).min(g.oh);
    (per_block > 0).then_some(Plan { slots, zrow, groups, per_block, stream })
}

/// int8 convolution through slot rows; `None` only if slices disagree with the geometry or the
/// geometry is not one [`applies`] takes.
pub fn conv_i8_rows(
    scratch: &mut Scratch,
    g: &Window,
    x: &[i8],
    w: &[i8],
    q: &Requant<'_, '_>,
    relu: bool,
    y: &mut [i8],
) -> Option<()> {
    let p = plan(g)?;
    let k = g.kh * g.kw * g.ic;
    let run = 4 * p.groups;
    let x_offset = q.in_zp.checked_neg()?;
    let out = q.out(relu);
    let filters = w.get(..k.checked_mul(g.oc)?)?;
    let (cols, wide, acc, chans) = scratch.parts();
    for (d, c) in chans.iter_mut().zip(q.channels()) {
        *d = c;
    }
    let chans = chans.get(..g.oc)?;
    let wide = wide.get_mut(..p.stream + simd::MAC_STATE)?;
    // Each input row packed into lane 0 of slots pl… and lane 1 of slots pl − sw…
    let lanes = Lanes::of(g, &p, x.len(), x_offset)?;
    // The weight stream's jump words: to the next kernel row's run, and after the last row to
    // the next pair's first slot (2·sw slots on), in bytes.
    let next_row = 4 * (p.zrow - run);
    let next_pair = (8 * g.sw * g.ic) as i64 - 4 * ((g.kh - 1) * p.zrow + run) as i64;
    let rows = g.oc.next_multiple_of(2);
    let mut oy0 = 0;
    while oy0 < g.oh {
        let r = p.per_block.min(g.oh - oy0);
        let npx = r * g.ow;
        let needed = (r - 1) * g.sh + g.kh;
        for t in 0..needed {
            let dst = cols.get_mut(t * p.zrow..(t + 1) * p.zrow)?;
            let iy = (oy0 * g.sh + t).checked_sub(g.pt).filter(|&iy| iy < g.ih);
            match iy {
                Some(iy) => lanes.fill(dst, x, iy)?,
                None => dst.fill(0),
            }
        }
        let slots = cols.get(..needed * p.zrow)?;
        let mut lines = acc.get_mut(..rows * npx)?.chunks_exact_mut(npx);
        let mut o = 0;
        while let (Some(ra), Some(rb)) = (lines.next(), lines.next()) {
            let ob = if o + 1 < g.oc { o + 1 } else { o };
            let (fa, fb) = (filters.get(o * k..(o + 1) * k)?, filters.get(ob * k..(ob + 1) * k)?);
            let rows_w = fa.chunks_exact(run).zip(fb.chunks_exact(run));
            for (ky, ((ra, rb), dst)) in rows_w.zip(wide.chunks_exact_mut(run + 2)).enumerate() {
                let (wr, jump) = dst.split_at_mut(run);
                simd::widen_pair(ra, rb, wr);
                let last = ky + 1 == g.kh;
                if let [j, n] = jump {
                    *j = if last { next_pair as i32 as u32 } else { next_row as u32 };
                    *n = if last { 0 } else { p.groups as u32 };
                }
            }
            let bias = [chans.get(o)?.bias, chans.get(ob)?.bias];
            for t in 0..r {
                let row = slots.get(t * g.sh * p.zrow..)?;
                let (aa, ab) = (ra.get_mut(t * g.ow..(t + 1) * g.ow)?, rb.get_mut(t * g.ow..(t + 1) * g.ow)?);
                let geo = simd::RowsGeometry { groups: p.groups, kh: g.kh, zrow: p.zrow, step: 2 * g.sw * g.ic };
                simd::mac_rows(row, wide, geo, bias, aa, ab).then_some(())?;
            }
            o += 2;
        }
        let block = y.get_mut(oy0 * g.ow * g.oc..(oy0 + r) * g.ow * g.oc)?;
        requant_block(acc.get(..g.oc * npx)?, npx, chans, out, block, npx);
        oy0 += r;
    }
    Some(())
}

/// How one input row fills a slot row: its pixels `0..n0` into lane 0 of slots `j0…`, pixels
/// `p1..p1 + n1` into lane 1 of slots `j1…` (each a single [`simd::RowPacker`] call), the other
/// slots' lanes zeroed.
struct Lanes {
    row: usize,
    slots: usize,
    j0: usize,
    n0: usize,
    p1: usize,
    j1: usize,
    n1: usize,
    pack0: Option<simd::RowPacker>,
    pack1: Option<simd::RowPacker>,
}

impl Lanes {
    fn of(g: &Window, p: &Plan, len: usize, x_offset: i32) -> Option<Self> {
        let row = g.iw * g.ic;
        // Lane 0 of slot j: pixel j − pl, for j in pl..slots.
        let j0 = g.pl.min(p.slots);
        let n0 = g.iw.min(p.slots - j0);
        // Lane 1 of slot j: pixel j − pl + sw.
        let p1 = g.sw.saturating_sub(g.pl);
        let j1 = (p1 + g.pl - g.sw).min(p.slots);
        let n1 = g.iw.saturating_sub(p1).min(p.slots - j1);
        let packer = |n: usize| {
            if n == 0 {
                return None;
            }
            simd::RowPacker::new(len, n * g.ic, 1, n * g.ic / 4, 0, x_offset)
        };
        Some(Self { row, slots: p.slots, j0, n0, p1, j1, n1, pack0: packer(n0), pack1: packer(n1) })
    }

    /// Slot row of input row `iy` into `dst` (`slots · ic` words).
    fn fill(&self, dst: &mut [u32], x: &[i8], iy: usize) -> Option<()> {
        let slot = dst.len() / self.slots.max(1);
        let base = iy * self.row;
        simd::zero_slots(dst, 0, self.j0 * slot / 4, 0);
        simd::zero_slots(dst, (self.j0 + self.n0) * slot / 4, dst.len() / 4, 0);
        simd::zero_slots(dst, 0, self.j1 * slot / 4, 1);
        simd::zero_slots(dst, (self.j1 + self.n1) * slot / 4, dst.len() / 4, 1);
        if let Some(pk) = &self.pack0 {
            let ok = pk.pack(dst.get_mut(self.j0 * slot..)?, x, base, 0);
            ok.then_some(())?;
        }
        if let Some(pk) = &self.pack1 {
            let ok = pk.pack(dst.get_mut(self.j1 * slot..)?, x, base + self.p1 * (slot), 1);
            ok.then_some(())?;
        }
        Some(())
    }
}
