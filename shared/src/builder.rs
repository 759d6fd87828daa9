//! Writing files (host side). Ops are encoded as they are pushed, so the builder never needs an
//! owned mirror of the borrowed graph types; `finish` computes the memory plan, frames the
//! payload and decodes the result once, so a builder cannot emit a file a device would refuse.

use crate::envelope::{Header, CHECKSUM, VERSION};
use crate::error::Error;
use crate::graph::{Buffer, InputSpec, Meta, Model, Op, Plan, PlanEntry, Provenance};
use crate::table::{Seq, Table};
use alloc::string::String;
use alloc::vec::Vec;

/// Host-side constructor of pare files.
#[derive(Debug, Default, Clone)]
pub struct ModelBuilder {
    name: String,
    labels: Vec<String>,
    mean: Vec<f32>,
    std: Vec<f32>,
    provenance: Option<(String, f32, [u64; 4])>,
    buffers: Vec<Buffer>,
    ops: Vec<u8>,
    /// For each op: the buffers it reads and the one it writes (for the memory plan).
    op_io: Vec<([Option<u32>; 2], u32)>,
    input: u32,
    output: u32,
}

impl ModelBuilder {
    pub fn new(name: &str) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    pub fn labels<S: AsRef<str>>(&mut self, labels: &[S]) -> &mut Self {
        self.labels = labels.iter().map(|s| s.as_ref().into()).collect();
        self
    }

    /// Pixel normalisation the model expects (see [`InputSpec`]).
    pub fn normalization(&mut self, mean: &[f32], std: &[f32]) -> &mut Self {
        self.mean = mean.to_vec();
        self.std = std.to_vec();
        self
    }

    pub fn provenance(&mut self, p: &Provenance<'_>) -> &mut Self {
        self.provenance = Some((
            p.criterion.into(),
            p.kept_filter_ratio,
            [p.flops_before, p.flops_after, p.params_before, p.params_after],
        ));
        self
    }

    /// Declares a buffer and returns its id.
    pub fn buffer(&mut self, b: Buffer) -> u32 {
        self.buffers.push(b);
        (self.buffers.len() - 1) as u32
    }

    pub fn buffer_info(&self, id: u32) -> Option<Buffer> {
        self.buffers.get(id as usize).copied()
    }

    pub fn set_input(&mut self, id: u32) -> &mut Self {
        self.input = id;
        self
    }

    pub fn set_output(&mut self, id: u32) -> &mut Self {
        self.output = id;
        self
    }

    /// Appends an op (its weights are copied into the file now).
    pub fn push(&mut self, op: &Op<'_>) -> Result<(), Error> {
        self.ops.extend_from_slice(&postcard::to_allocvec(op)?);
        self.op_io.push((op.inputs(), op.output()));
        Ok(())
    }

    /// Encodes, plans, frames and validates the file.
    pub fn finish(&self) -> Result<Vec<u8>, Error> {
        let (arena_bytes, entries) = plan_memory(&self.buffers, &self.op_io, self.input, self.output)?;
        let label_bytes = Seq::<&str>::encode(&self.labels.iter().map(String::as_str).collect::<Vec<_>>())?;
        let mean = Table::encode(&self.mean);
        let std = Table::encode(&self.std);
        let buffers = Table::encode(&self.buffers);
        let plan = Table::encode(&entries);
        let model = Model {
            meta: Meta {
                name: &self.name,
                labels: Seq::new(self.labels.len() as u32, &label_bytes),
                input: InputSpec {
                    mean: Table::new(self.mean.len() as u32, &mean),
                    std: Table::new(self.std.len() as u32, &std),
                },
                provenance: self.provenance.as_ref().map(|(c, r, n)| Provenance {
                    criterion: c,
                    kept_filter_ratio: *r,
                    flops_before: n[0],
                    flops_after: n[1],
                    params_before: n[2],
                    params_after: n[3],
                }),
            },
            buffers: Table::new(self.buffers.len() as u32, &buffers),
            ops: Seq::new(self.op_io.len() as u32, &self.ops),
            input: self.input,
            output: self.output,
            plan: Plan { arena_bytes, entries: Table::new(entries.len() as u32, &plan) },
        };
        let bytes = frame(&postcard::to_allocvec(&model)?);
        crate::decode(&bytes)?;
        Ok(bytes)
    }
}

/// Wraps a payload in the envelope.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let header =
        Header { version: VERSION, flags: 0, payload_len: payload.len() as u32, crc32: CHECKSUM.checksum(payload) };
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    out
}

/// Lifetimes from the op list, then greedy-by-size placement (largest buffer first, lowest
/// 4-aligned offset that conflicts with no placed buffer live at the same time), as TFLite
/// Micro's greedy planner does. Returns the arena size and one entry per buffer.
pub fn plan_memory(
    buffers: &[Buffer],
    op_io: &[([Option<u32>; 2], u32)],
    input: u32,
    output: u32,
) -> Result<(u32, Vec<PlanEntry>), Error> {
    let n = buffers.len();
    let end = op_io.len() as u32 + 1;
    let mut life: Vec<(u32, u32)> = alloc::vec![(u32::MAX, 0); n];
    let touch = |id: u32, step: u32, life: &mut Vec<(u32, u32)>| {
        if let Some(l) = life.get_mut(id as usize) {
            l.0 = l.0.min(step);
            l.1 = l.1.max(step);
        }
    };
    touch(input, 0, &mut life);
    for (k, (ins, out)) in op_io.iter().enumerate() {
        let step = k as u32 + 1;
        touch(*out, step, &mut life);
        for id in ins.iter().flatten() {
            touch(*id, step, &mut life);
        }
    }
    touch(output, end, &mut life);
    let sizes: Vec<u32> = buffers
        .iter()
        .map(|b| b.bytes().map(|s| s.div_ceil(4) * 4))
        .collect::<Option<_>>()
        .ok_or(crate::GraphError::Overflow)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (core::cmp::Reverse(sizes[i]), i));
    let mut offsets = alloc::vec![0u32; n];
    let mut placed: Vec<usize> = Vec::new();
    let mut arena = 0u32;
    for &i in &order {
        let (f, l) = life[i];
        let mut conflicts: Vec<(u32, u32)> = placed
            .iter()
            .filter(|&&j| life[j].0 <= l && f <= life[j].1)
            .map(|&j| (offsets[j], offsets[j] + sizes[j]))
            .collect();
        conflicts.sort_unstable();
        let mut at = 0u32;
        for (s, e) in conflicts {
            if at + sizes[i] <= s {
                break;
            }
            at = at.max(e);
        }
        offsets[i] = at;
        arena = arena.max(at.checked_add(sizes[i]).ok_or(crate::GraphError::Overflow)?);
        placed.push(i);
    }
    let entries = (0..n)
        .map(|i| {
            let (f, l) = life[i];
            // Unused buffers get an empty lifetime at the end; validation rejects them.
            let (first, last) = if f == u32::MAX { (end, end) } else { (f, l) };
            PlanEntry { offset: offsets[i], first, last }
        })
        .collect();
    Ok((arena, entries))
}
