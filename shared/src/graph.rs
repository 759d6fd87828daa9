//! The model graph: ops over numbered activation buffers, their weights, metadata and the memory
//! plan. Activations are NHWC with batch 1; convolution weights are OHWI (output channel, kernel
//! row, kernel column, input channel), dense weights are `[out][in]`.

use crate::table::{Record, Seq, Table};
use serde::{Deserialize, Serialize};

/// Element type of an activation buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DType {
    F32,
    /// Asymmetric int8: `real = scale * (q - zero_point)`.
    I8,
}

impl DType {
    pub fn size(self) -> u32 {
        match self {
            DType::F32 => 4,
            DType::I8 => 1,
        }
    }
}

/// An activation buffer: its shape `(h, w, c)`, element type and, for int8, its quantisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buffer {
    pub h: u32,
    pub w: u32,
    pub c: u32,
    pub dtype: DType,
    pub scale: f32,
    pub zero_point: i32,
}

impl Buffer {
    pub fn f32(h: u32, w: u32, c: u32) -> Self {
        Self { h, w, c, dtype: DType::F32, scale: 1.0, zero_point: 0 }
    }

    pub fn i8(h: u32, w: u32, c: u32, scale: f32, zero_point: i32) -> Self {
        Self { h, w, c, dtype: DType::I8, scale, zero_point }
    }

    /// Number of elements, or `None` on overflow.
    pub fn elements(&self) -> Option<u32> {
        self.h.checked_mul(self.w)?.checked_mul(self.c)
    }

    /// Size in bytes, or `None` on overflow.
    pub fn bytes(&self) -> Option<u32> {
        self.elements()?.checked_mul(self.dtype.size())
    }
}

/// 24 bytes: h, w, c (u32), dtype (u32: 0 f32, 1 i8), scale (f32), zero point (i32).
impl Record for Buffer {
    const SIZE: usize = 24;
    fn read(b: &[u8]) -> Self {
        let u = |i: usize| u32::read(&b[i..i + 4]);
        Self {
            h: u(0),
            w: u(4),
            c: u(8),
            // Unknown codes read as F32 with an impossible zero-size marker caught by validate.
            dtype: if u(12) == 1 { DType::I8 } else { DType::F32 },
            scale: f32::read(&b[16..20]),
            zero_point: i32::read(&b[20..24]),
        }
    }
    fn write(&self, out: &mut [u8]) {
        self.h.write(&mut out[0..4]);
        self.w.write(&mut out[4..8]);
        self.c.write(&mut out[8..12]);
        let code: u32 = match self.dtype {
            DType::F32 => 0,
            DType::I8 => 1,
        };
        code.write(&mut out[12..16]);
        self.scale.write(&mut out[16..20]);
        self.zero_point.write(&mut out[20..24]);
    }
}

/// Where a buffer lives in the arena and during which steps it is live.
///
/// Step 0 is the copy of the model input into the arena, op `i` is step `i + 1`, and the read of
/// the model output is step `ops + 1`. Buffers whose `[first, last]` ranges intersect must not
/// overlap in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanEntry {
    pub offset: u32,
    pub first: u32,
    pub last: u32,
}

impl Record for PlanEntry {
    const SIZE: usize = 12;
    fn read(b: &[u8]) -> Self {
        Self { offset: u32::read(&b[0..4]), first: u32::read(&b[4..8]), last: u32::read(&b[8..12]) }
    }
    fn write(&self, out: &mut [u8]) {
        self.offset.write(&mut out[0..4]);
        self.first.write(&mut out[4..8]);
        self.last.write(&mut out[8..12]);
    }
}

/// The static memory plan: one entry per buffer, all inside `arena_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plan<'a> {
    pub arena_bytes: u32,
    #[serde(borrow)]
    pub entries: Table<'a, PlanEntry>,
}

/// Weights and bias of a convolution or dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Params<'a> {
    F32 {
        #[serde(borrow)]
        weights: Table<'a, f32>,
        #[serde(borrow)]
        bias: Table<'a, f32>,
    },
    /// TFLite/CMSIS-NN arithmetic: `acc = bias[o] + Σ (x - zp_in) * w`, then
    /// `y = zp_out + round(acc * multiplier[o] * 2^(shift[o] - 31))`, clamped to int8.
    I8 {
        #[serde(borrow)]
        weights: Table<'a, i8>,
        #[serde(borrow)]
        bias: Table<'a, i32>,
        /// Per-output-channel symmetric weight scales (for inspection and dequantisation).
        #[serde(borrow)]
        weight_scales: Table<'a, f32>,
        #[serde(borrow)]
        multipliers: Table<'a, i32>,
        #[serde(borrow)]
        shifts: Table<'a, i8>,
    },
}

impl Params<'_> {
    pub fn dtype(&self) -> DType {
        match self {
            Params::F32 { .. } => DType::F32,
            Params::I8 { .. } => DType::I8,
        }
    }
}

/// 2-D convolution (dense, not grouped), optionally followed by ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conv2d<'a> {
    pub input: u32,
    pub output: u32,
    /// `[kh, kw]`
    pub kernel: [u32; 2],
    /// `[sh, sw]`
    pub stride: [u32; 2],
    /// `[top, left, bottom, right]`, zero padding (the input zero point for int8).
    pub padding: [u32; 4],
    pub relu: bool,
    #[serde(borrow)]
    pub params: Params<'a>,
}

/// Max or average pooling. Average pooling divides by the number of in-bounds elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub input: u32,
    pub output: u32,
    pub kernel: [u32; 2],
    pub stride: [u32; 2],
    pub padding: [u32; 4],
}

/// An op with one input and one output and no parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unary {
    pub input: u32,
    pub output: u32,
}

/// Rescaling of an int8 residual add (TFLite's `ADD`): both inputs are brought to a common
/// scale with `left_shift` extra bits, summed, and requantised to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddQuant {
    pub left_shift: i32,
    pub a_multiplier: i32,
    pub a_shift: i32,
    pub b_multiplier: i32,
    pub b_shift: i32,
    pub out_multiplier: i32,
    pub out_shift: i32,
}

/// Element-wise sum of two equally shaped buffers (a residual connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Add {
    pub a: u32,
    pub b: u32,
    pub output: u32,
    pub relu: bool,
    /// Present exactly when the buffers are int8.
    pub quant: Option<AddQuant>,
}

/// Places input channel `i` at output channel `channels[i]` and fills every other output
/// channel with zero, sampling every `stride`-th pixel (`x[:, :, ::s, ::s]`). This is CIFAR
/// ResNet's parameter-free "option A" shortcut, also after either side was pruned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelPlace<'a> {
    pub input: u32,
    pub output: u32,
    pub stride: u32,
    /// One entry per input channel: its output channel, or [`ChannelPlace::DROP`] when the
    /// channel is discarded (its target was pruned). Kept targets are strictly increasing.
    #[serde(borrow)]
    pub channels: Table<'a, u16>,
}

impl ChannelPlace<'_> {
    /// Marks an input channel that is not placed anywhere.
    pub const DROP: u16 = u16::MAX;
}

/// Fully connected layer over a `(1, 1, n)` buffer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dense<'a> {
    pub input: u32,
    pub output: u32,
    pub relu: bool,
    #[serde(borrow)]
    pub params: Params<'a>,
}

/// One step of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Op<'a> {
    #[serde(borrow)]
    Conv2d(Conv2d<'a>),
    MaxPool2d(Pool),
    AvgPool2d(Pool),
    /// `(h, w, c)` → `(1, 1, c)`, the mean over all pixels.
    GlobalAvgPool(Unary),
    Add(Add),
    #[serde(borrow)]
    ChannelPlace(ChannelPlace<'a>),
    #[serde(borrow)]
    Dense(Dense<'a>),
    /// `(h, w, c)` → `(1, 1, h·w·c)` in NHWC order.
    Flatten(Unary),
}

impl Op<'_> {
    /// Short name for traces and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::AvgPool2d(_) => "avgpool2d",
            Op::GlobalAvgPool(_) => "global_avgpool",
            Op::Add(_) => "add",
            Op::ChannelPlace(_) => "channel_place",
            Op::Dense(_) => "dense",
            Op::Flatten(_) => "flatten",
        }
    }

    /// The buffers this op reads (up to two; unused slots are `None`).
    pub fn inputs(&self) -> [Option<u32>; 2] {
        match self {
            Op::Conv2d(c) => [Some(c.input), None],
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => [Some(p.input), None],
            Op::GlobalAvgPool(u) | Op::Flatten(u) => [Some(u.input), None],
            Op::Add(a) => [Some(a.a), Some(a.b)],
            Op::ChannelPlace(c) => [Some(c.input), None],
            Op::Dense(d) => [Some(d.input), None],
        }
    }

    /// The buffer this op writes.
    pub fn output(&self) -> u32 {
        match self {
            Op::Conv2d(c) => c.output,
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => p.output,
            Op::GlobalAvgPool(u) | Op::Flatten(u) => u.output,
            Op::Add(a) => a.output,
            Op::ChannelPlace(c) => c.output,
            Op::Dense(d) => d.output,
        }
    }
}

/// How raw pixels become the model input: `x = (pixel / 255 - mean[c]) / std[c]`, then, for an
/// int8 input buffer, quantised with that buffer's scale and zero point. Empty `mean`/`std`
/// mean no normalisation. Layout is always NHWC, the shape is the input buffer's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InputSpec<'a> {
    #[serde(borrow)]
    pub mean: Table<'a, f32>,
    #[serde(borrow)]
    pub std: Table<'a, f32>,
}

/// Where a pruned model came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Provenance<'a> {
    pub criterion: &'a str,
    pub kept_filter_ratio: f32,
    pub flops_before: u64,
    pub flops_after: u64,
    pub params_before: u64,
    pub params_after: u64,
}

/// Descriptive metadata.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Meta<'a> {
    pub name: &'a str,
    /// One label per output class.
    #[serde(borrow)]
    pub labels: Seq<'a, &'a str>,
    #[serde(borrow)]
    pub input: InputSpec<'a>,
    #[serde(borrow)]
    pub provenance: Option<Provenance<'a>>,
}

/// A decoded model, borrowing everything from the file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Model<'a> {
    #[serde(borrow)]
    pub meta: Meta<'a>,
    #[serde(borrow)]
    pub buffers: Table<'a, Buffer>,
    #[serde(borrow)]
    pub ops: Seq<'a, Op<'a>>,
    pub input: u32,
    pub output: u32,
    #[serde(borrow)]
    pub plan: Plan<'a>,
}

impl<'a> Model<'a> {
    /// Buffer `i` (validated models always have it).
    pub fn buffer(&self, i: u32) -> Option<Buffer> {
        self.buffers.get(i)
    }

    pub fn input_buffer(&self) -> Option<Buffer> {
        self.buffers.get(self.input)
    }

    pub fn output_buffer(&self) -> Option<Buffer> {
        self.buffers.get(self.output)
    }
}
