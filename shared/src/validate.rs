//! Proof that a decoded graph can be executed: every index in range, every shape chained, every
//! weight table the right length, and a memory plan whose live buffers never overlap. After
//! [`Model::validate`] succeeds, an interpreter may index without further checks failing.

use crate::error::GraphError;
use crate::graph::{Buffer, DType, Model, Op, Params, PlanEntry};
use crate::table::Table;

type Result<T> = core::result::Result<T, GraphError>;

impl Model<'_> {
    /// Checks the whole graph; see the module documentation.
    pub fn validate(&self) -> Result<()> {
        let count = self.buffers.len();
        if !self.buffers.is_consistent() || !self.plan.entries.is_consistent() {
            return Err(GraphError::TableLength);
        }
        if !self.ops.is_consistent() {
            return Err(GraphError::TableLength);
        }
        if self.ops.is_empty() {
            return Err(GraphError::Empty);
        }
        for (i, raw) in self.buffers.bytes().chunks_exact(24).enumerate() {
            let i = i as u32;
            let code = u32::from_le_bytes([raw[12], raw[13], raw[14], raw[15]]);
            if code > 1 {
                return Err(GraphError::BadBufferShape { buffer: i });
            }
            let b = buffer(self, i)?;
            if b.elements().is_none_or(|n| n == 0) || b.bytes().is_none() {
                return Err(GraphError::BadBufferShape { buffer: i });
            }
            if b.dtype == DType::I8 && !(b.scale.is_finite() && b.scale > 0.0 && (-128..=127).contains(&b.zero_point)) {
                return Err(GraphError::BadBufferShape { buffer: i });
            }
        }
        for io in [self.input, self.output] {
            if io >= count {
                return Err(GraphError::IoOutOfRange { buffer: io });
            }
        }
        self.validate_plan()?;
        let n_ops = self.ops.len();
        for (k, op) in self.ops.iter().enumerate() {
            let op = op.map_err(|_| GraphError::TableLength)?;
            let k = k as u32;
            let step = k + 1;
            for id in op.inputs().into_iter().flatten().chain([op.output()]) {
                if id >= count {
                    return Err(GraphError::BufferOutOfRange { op: k, buffer: id, count });
                }
            }
            for id in op.inputs().into_iter().flatten() {
                let e = entry(self, id)?;
                if e.first >= step {
                    return Err(GraphError::ReadBeforeWrite { op: k, buffer: id });
                }
                if e.last < step {
                    return Err(GraphError::OutsideLifetime { buffer: id, step });
                }
            }
            let out = op.output();
            if out == self.input || entry(self, out)?.first != step {
                return Err(GraphError::MultipleWriters { buffer: out });
            }
            check_op(self, k, &op)?;
        }
        // Every buffer but the input is written by exactly one op (the op at its first step).
        let mut written = 0u32;
        for (i, e) in self.plan.entries.iter().enumerate() {
            if i as u32 == self.input {
                continue;
            }
            if e.first == 0 || e.first > n_ops {
                return Err(GraphError::OutputNotWritten);
            }
            written += 1;
        }
        if written != n_ops {
            return Err(GraphError::OutputNotWritten);
        }
        if entry(self, self.output)?.last != n_ops + 1 {
            return Err(GraphError::OutsideLifetime { buffer: self.output, step: n_ops + 1 });
        }
        self.validate_meta()
    }

    fn validate_plan(&self) -> Result<()> {
        let count = self.buffers.len();
        if self.plan.entries.len() != count {
            return Err(GraphError::PlanLength { expected: count, got: self.plan.entries.len() });
        }
        let arena = self.plan.arena_bytes;
        let span = |i: u32| -> Result<(PlanEntry, u64, u64)> {
            let e = entry(self, i)?;
            let size = buffer(self, i)?.bytes().ok_or(GraphError::Overflow)?;
            Ok((e, u64::from(e.offset), u64::from(e.offset) + u64::from(size)))
        };
        for i in 0..count {
            let (e, _, end) = span(i)?;
            if e.offset % 4 != 0 {
                return Err(GraphError::Misaligned { buffer: i });
            }
            if end > u64::from(arena) {
                return Err(GraphError::OutsideArena { buffer: i, arena });
            }
            if e.first > e.last {
                return Err(GraphError::OutsideLifetime { buffer: i, step: e.first });
            }
            if (i == self.input) != (e.first == 0) {
                return Err(GraphError::ReadBeforeWrite { op: 0, buffer: i });
            }
        }
        // With an allocator (the host), a sweep over time in O(n log n) says whether any two
        // buffers overlap; the pairwise scan below then runs only to name the first pair (or
        // always, without an allocator: device models are small). 16,000 ops took 1.44 s before.
        #[cfg(feature = "alloc")]
        {
            let mut items = alloc::vec::Vec::with_capacity(count as usize);
            for i in 0..count {
                let (e, s, t) = span(i)?;
                items.push((e.first, e.last, s, t));
            }
            if !any_overlap(&items) {
                return Ok(());
            }
        }
        for a in 0..count {
            let (ea, sa, ta) = span(a)?;
            for b in a + 1..count {
                let (eb, sb, tb) = span(b)?;
                let live_together = ea.first <= eb.last && eb.first <= ea.last;
                let share_memory = sa < tb && sb < ta;
                if live_together && share_memory {
                    return Err(GraphError::Overlap { a, b });
                }
            }
        }
        Ok(())
    }

    fn validate_meta(&self) -> Result<()> {
        let meta = &self.meta;
        if !meta.labels.is_consistent() {
            return Err(GraphError::BadMetadata { what: "labels do not decode" });
        }
        let classes = buffer(self, self.output)?.elements().ok_or(GraphError::Overflow)?;
        if !meta.labels.is_empty() && meta.labels.len() != classes {
            return Err(GraphError::BadMetadata { what: "label count differs from output size" });
        }
        let (mean, std) = (meta.input.mean, meta.input.std);
        if !mean.is_consistent() || !std.is_consistent() || mean.len() != std.len() {
            return Err(GraphError::BadMetadata { what: "normalisation tables" });
        }
        let channels = buffer(self, self.input)?.c;
        if !mean.is_empty() && mean.len() != channels {
            return Err(GraphError::BadMetadata { what: "normalisation length differs from input channels" });
        }
        if std.iter().any(|s| !(s.is_finite() && s != 0.0)) || mean.iter().any(|m| !m.is_finite()) {
            return Err(GraphError::BadMetadata { what: "normalisation values" });
        }
        Ok(())
    }
}

fn buffer(m: &Model<'_>, i: u32) -> Result<Buffer> {
    m.buffers.get(i).ok_or(GraphError::IoOutOfRange { buffer: i })
}

fn entry(m: &Model<'_>, i: u32) -> Result<PlanEntry> {
    m.plan.entries.get(i).ok_or(GraphError::PlanLength { expected: m.buffers.len(), got: m.plan.entries.len() })
}

/// Output extent of a sliding window, or `None` when the window does not fit.
pub(crate) fn window_out(input: u32, pad_a: u32, pad_b: u32, kernel: u32, stride: u32) -> Option<u32> {
    let padded = u64::from(input) + u64::from(pad_a) + u64::from(pad_b);
    let k = u64::from(kernel);
    if kernel == 0 || stride == 0 || padded < k {
        return None;
    }
    u32::try_from((padded - k) / u64::from(stride) + 1).ok()
}

fn same_quant(a: &Buffer, b: &Buffer) -> bool {
    a.dtype == b.dtype && (a.dtype == DType::F32 || (a.scale == b.scale && a.zero_point == b.zero_point))
}

fn expect_len<R: crate::table::Record>(op: u32, what: &'static str, t: &Table<'_, R>, expected: u64) -> Result<()> {
    if !t.is_consistent() {
        return Err(GraphError::TableLength);
    }
    let expected = u32::try_from(expected).map_err(|_| GraphError::Overflow)?;
    if t.len() != expected {
        return Err(GraphError::LengthMismatch { op, what, expected, got: t.len() });
    }
    Ok(())
}

fn check_params(op: u32, p: &Params<'_>, weights: u64, outputs: u64) -> Result<()> {
    match p {
        Params::F32 { weights: w, bias } => {
            expect_len(op, "weights", w, weights)?;
            expect_len(op, "bias", bias, outputs)
        }
        Params::I8 { weights: w, bias, weight_scales, multipliers, shifts } => {
            expect_len(op, "weights", w, weights)?;
            expect_len(op, "bias", bias, outputs)?;
            expect_len(op, "weight scales", weight_scales, outputs)?;
            expect_len(op, "multipliers", multipliers, outputs)?;
            expect_len(op, "shifts", shifts, outputs)?;
            if multipliers.iter().any(|m| m < 0) {
                return Err(GraphError::BadParameter { op, what: "negative requantisation multiplier" });
            }
            if shifts.iter().any(|s| !(-31..=30).contains(&s)) {
                return Err(GraphError::BadParameter { op, what: "requantisation shift outside -31..=30" });
            }
            Ok(())
        }
    }
}

fn check_op(m: &Model<'_>, k: u32, op: &Op<'_>) -> Result<()> {
    let mismatch = |what| GraphError::ShapeMismatch { op: k, what };
    match op {
        Op::Conv2d(c) => {
            let (i, o) = (buffer(m, c.input)?, buffer(m, c.output)?);
            let [kh, kw] = c.kernel;
            let [sh, sw] = c.stride;
            let [pt, pl, pb, pr] = c.padding;
            if pt >= kh || pb >= kh || pl >= kw || pr >= kw {
                return Err(GraphError::BadParameter { op: k, what: "padding not smaller than kernel" });
            }
            let oh = window_out(i.h, pt, pb, kh, sh).ok_or(mismatch("conv window"))?;
            let ow = window_out(i.w, pl, pr, kw, sw).ok_or(mismatch("conv window"))?;
            if (oh, ow) != (o.h, o.w) {
                return Err(mismatch("conv output size"));
            }
            if i.dtype != c.params.dtype() || o.dtype != c.params.dtype() {
                return Err(GraphError::DTypeMismatch { op: k, what: "conv buffers and params" });
            }
            let weights = u64::from(o.c) * u64::from(kh) * u64::from(kw) * u64::from(i.c);
            check_params(k, &c.params, weights, u64::from(o.c))
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
            let (i, o) = (buffer(m, p.input)?, buffer(m, p.output)?);
            let [pt, pl, pb, pr] = p.padding;
            if pt >= p.kernel[0] || pb >= p.kernel[0] || pl >= p.kernel[1] || pr >= p.kernel[1] {
                return Err(GraphError::BadParameter { op: k, what: "padding not smaller than kernel" });
            }
            let oh = window_out(i.h, pt, pb, p.kernel[0], p.stride[0]).ok_or(mismatch("pool window"))?;
            let ow = window_out(i.w, pl, pr, p.kernel[1], p.stride[1]).ok_or(mismatch("pool window"))?;
            if (oh, ow, i.c) != (o.h, o.w, o.c) {
                return Err(mismatch("pool output size"));
            }
            if !same_quant(&i, &o) {
                return Err(GraphError::DTypeMismatch { op: k, what: "pool input and output" });
            }
            Ok(())
        }
        Op::GlobalAvgPool(u) | Op::Flatten(u) => {
            let (i, o) = (buffer(m, u.input)?, buffer(m, u.output)?);
            let c = if matches!(op, Op::Flatten(_)) { i.elements().ok_or(GraphError::Overflow)? } else { i.c };
            if (o.h, o.w, o.c) != (1, 1, c) {
                return Err(mismatch("output must be (1, 1, c)"));
            }
            if !same_quant(&i, &o) {
                return Err(GraphError::DTypeMismatch { op: k, what: "input and output" });
            }
            Ok(())
        }
        Op::Add(a) => {
            let (x, y, o) = (buffer(m, a.a)?, buffer(m, a.b)?, buffer(m, a.output)?);
            if (x.h, x.w, x.c) != (y.h, y.w, y.c) || (x.h, x.w, x.c) != (o.h, o.w, o.c) {
                return Err(mismatch("add operands differ"));
            }
            if x.dtype != o.dtype || y.dtype != o.dtype || (o.dtype == DType::I8) != a.quant.is_some() {
                return Err(GraphError::DTypeMismatch { op: k, what: "add operands and quantisation" });
            }
            if let Some(q) = a.quant {
                let shifts = [q.a_shift, q.b_shift, q.out_shift];
                if !(0..=20).contains(&q.left_shift) || shifts.iter().any(|s| !(-31..=30).contains(s)) {
                    return Err(GraphError::BadParameter { op: k, what: "add shifts" });
                }
                if [q.a_multiplier, q.b_multiplier, q.out_multiplier].iter().any(|m| *m < 0) {
                    return Err(GraphError::BadParameter { op: k, what: "negative add multiplier" });
                }
            }
            Ok(())
        }
        Op::ChannelPlace(c) => {
            let (i, o) = (buffer(m, c.input)?, buffer(m, c.output)?);
            if c.stride == 0 {
                return Err(GraphError::BadParameter { op: k, what: "zero stride" });
            }
            if (o.h, o.w) != (i.h.div_ceil(c.stride), i.w.div_ceil(c.stride)) {
                return Err(mismatch("channel place output size"));
            }
            expect_len(k, "channels", &c.channels, u64::from(i.c))?;
            let mut prev: Option<u16> = None;
            for ch in c.channels.iter().filter(|&ch| ch != crate::ChannelPlace::DROP) {
                if prev.is_some_and(|p| ch <= p) || u32::from(ch) >= o.c {
                    return Err(GraphError::BadParameter { op: k, what: "channels not increasing or out of range" });
                }
                prev = Some(ch);
            }
            if !same_quant(&i, &o) {
                return Err(GraphError::DTypeMismatch { op: k, what: "channel place input and output" });
            }
            Ok(())
        }
        Op::Dense(d) => {
            let (i, o) = (buffer(m, d.input)?, buffer(m, d.output)?);
            if (i.h, i.w, o.h, o.w) != (1, 1, 1, 1) {
                return Err(mismatch("dense buffers must be (1, 1, n)"));
            }
            if i.dtype != d.params.dtype() || o.dtype != d.params.dtype() {
                return Err(GraphError::DTypeMismatch { op: k, what: "dense buffers and params" });
            }
            check_params(k, &d.params, u64::from(o.c) * u64::from(i.c), u64::from(o.c))
        }
    }
}

/// Whether two of `items` (`(first step, last step, start byte, end byte)`, all non-empty; with
/// an empty one it answers `true`, leaving the pairwise scan to decide) are live at a common
/// step and share a byte: a sweep in order of first step keeping the live, pairwise-disjoint
/// buffers ordered by start, so each newcomer is checked against its two neighbours.
#[cfg(feature = "alloc")]
fn any_overlap(items: &[(u32, u32, u64, u64)]) -> bool {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    if items.iter().any(|b| b.2 >= b.3) {
        // Empty buffers (which validation refuses earlier) can sit inside another one by the
        // pairwise rule; leave them to it.
        return true;
    }
    let real: Vec<&(u32, u32, u64, u64)> = items.iter().collect();
    let mut by_first = real.clone();
    by_first.sort_by_key(|b| b.0);
    let mut by_last = real;
    by_last.sort_by_key(|b| b.1);
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let mut gone = by_last.iter().peekable();
    for &&(first, _, s, t) in &by_first {
        while let Some(&&&(_, last, ds, dt)) = gone.peek() {
            if last >= first {
                break;
            }
            if live.get(&ds) == Some(&dt) {
                live.remove(&ds);
            }
            gone.next();
        }
        if live.range(..=s).next_back().is_some_and(|(_, &end)| end > s)
            || live.range(s..).next().is_some_and(|(&start, _)| start < t)
        {
            return true;
        }
        live.insert(s, t);
    }
    false
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::any_overlap;

    /// The pairwise definition the sweep replaces.
    fn pairwise(items: &[(u32, u32, u64, u64)]) -> bool {
        items
            .iter()
            .enumerate()
            .any(|(i, a)| items.iter().skip(i + 1).any(|b| a.0 <= b.1 && b.0 <= a.1 && a.2 < b.3 && b.2 < a.3))
    }

    #[test]
    fn sweep_agrees_with_the_pairwise_definition() {
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r % n
        };
        let (mut yes, mut no) = (0, 0);
        for _ in 0..20_000 {
            let n = 1 + next(8) as usize;
            let items: alloc::vec::Vec<_> = (0..n)
                .map(|_| {
                    let first = next(6) as u32;
                    let start = next(8) * 4;
                    (first, first + next(4) as u32, start, start + 1 + next(12))
                })
                .collect();
            let want = pairwise(&items);
            // With an empty buffer the sweep defers to the pairwise scan (answers "maybe").
            if items.iter().all(|b| b.2 < b.3) {
                assert_eq!(any_overlap(&items), want, "{items:?}");
            }
            if want {
                yes += 1
            } else {
                no += 1
            }
        }
        // Both outcomes drawn often enough to mean something.
        assert!(yes > 1000 && no > 1000, "{yes} overlapping, {no} clean");
    }
}
