//! The interpreter: a decoded model plus the loop over its ops.

use crate::error::Error;
use crate::ops;
use pare_format::{DType, Model, Op};

/// One executed op, reported to a trace callback (for per-layer timing on boards).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerTrace {
    /// The op's index, or [`LayerTrace::INPUT`] for the input preparation before op 0.
    pub index: u32,
    pub kind: &'static str,
}

impl LayerTrace {
    /// `index` of the input step (pixels to the model's input buffer), reported as kind `input`.
    pub const INPUT: u32 = u32::MAX;
}

/// A validated model ready to run.
#[derive(Debug, Clone, Copy)]
pub struct Runtime<'m> {
    model: Model<'m>,
}

impl<'m> Runtime<'m> {
    /// Decodes and validates a `.pare` file, borrowing it.
    pub fn from_bytes(bytes: &'m [u8]) -> Result<Self, Error> {
        Ok(Self { model: pare_format::decode(bytes)? })
    }

    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Arena bytes [`Runtime::run`] needs.
    pub fn arena_bytes(&self) -> u32 {
        self.model.plan.arena_bytes
    }

    /// Bytes of the input buffer (f32 little-endian or int8).
    pub fn input_bytes(&self) -> u32 {
        self.model.input_buffer().and_then(|b| b.bytes()).unwrap_or(0)
    }

    pub fn output_bytes(&self) -> u32 {
        self.model.output_buffer().and_then(|b| b.bytes()).unwrap_or(0)
    }

    /// Number of classes (output elements).
    pub fn classes(&self) -> u32 {
        self.model.output_buffer().and_then(|b| b.elements()).unwrap_or(0)
    }

    fn range(&self, id: u32) -> Result<core::ops::Range<usize>, Error> {
        let bad = Error::Internal { op: 0 };
        let e = self.model.plan.entries.get(id).ok_or(bad)?;
        let len = self.model.buffer(id).and_then(|b| b.bytes()).ok_or(bad)?;
        Ok(e.offset as usize..(e.offset + len) as usize)
    }

    fn check_arena(&self, arena: &[u8]) -> Result<(), Error> {
        if arena.len() < self.arena_bytes() as usize {
            return Err(Error::ArenaTooSmall { needed: self.arena_bytes(), got: arena.len() as u32 });
        }
        if arena.as_ptr().align_offset(4) != 0 {
            return Err(Error::ArenaMisaligned);
        }
        Ok(())
    }

    /// Runs the model on `input` (the input buffer's bytes) and copies the output buffer's bytes
    /// into `output`.
    pub fn run(&self, arena: &mut [u8], input: &[u8], output: &mut [u8]) -> Result<(), Error> {
        self.run_traced(arena, Source::Bytes(input), output, &mut |_| {})
    }

    /// Like [`Runtime::run`], from raw HWC `u8` pixels normalised/quantised on the way in.
    pub fn run_pixels(&self, arena: &mut [u8], pixels: &[u8], output: &mut [u8]) -> Result<(), Error> {
        self.run_traced(arena, Source::Pixels(pixels), output, &mut |_| {})
    }

    /// [`Runtime::run_pixels`] with a callback after every op.
    pub fn run_pixels_traced(
        &self,
        arena: &mut [u8],
        pixels: &[u8],
        output: &mut [u8],
        trace: &mut dyn FnMut(LayerTrace),
    ) -> Result<(), Error> {
        self.run_traced(arena, Source::Pixels(pixels), output, trace)
    }

    fn run_traced(
        &self,
        arena: &mut [u8],
        src: Source<'_>,
        output: &mut [u8],
        trace: &mut dyn FnMut(LayerTrace),
    ) -> Result<(), Error> {
        self.check_arena(arena)?;
        if output.len() != self.output_bytes() as usize {
            return Err(Error::OutputSize { expected: self.output_bytes(), got: output.len() as u32 });
        }
        let input_range = self.range(self.model.input)?;
        let dst = arena.get_mut(input_range).ok_or(Error::Internal { op: 0 })?;
        match src {
            Source::Bytes(b) => {
                if b.len() != dst.len() {
                    return Err(Error::InputSize { expected: dst.len() as u32, got: b.len() as u32 });
                }
                dst.copy_from_slice(b);
            }
            Source::Pixels(p) => crate::input::prepare_input(&self.model, p, dst)?,
        }
        trace(LayerTrace { index: LayerTrace::INPUT, kind: "input" });
        let mut scratch = ops::conv::Scratch::new();
        for (k, op) in self.model.ops.iter().enumerate() {
            let k = k as u32;
            let op: Op<'_> = op.map_err(|_| Error::Internal { op: k })?;
            ops::execute(&self.model, k, &op, arena, &mut scratch)?;
            trace(LayerTrace { index: k, kind: op.kind() });
        }
        let out = arena.get(self.range(self.model.output)?).ok_or(Error::Internal { op: 0 })?;
        output.copy_from_slice(out);
        Ok(())
    }

    /// Output element `i` as a real number (dequantised for int8 outputs).
    pub fn output_value(&self, output: &[u8], i: usize) -> Option<f32> {
        let b = self.model.output_buffer()?;
        match b.dtype {
            DType::F32 => {
                let (chunks, _) = output.as_chunks::<4>();
                Some(f32::from_le_bytes(*chunks.get(i)?))
            }
            DType::I8 => Some(crate::quant::dequantize(*output.get(i)? as i8, b.scale, b.zero_point)),
        }
    }

    /// Index of the largest output (the predicted class); ties go to the lowest index.
    pub fn argmax(&self, output: &[u8]) -> Option<u32> {
        let n = self.classes() as usize;
        let mut best: Option<(usize, f32)> = None;
        for i in 0..n {
            let v = self.output_value(output, i)?;
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
        best.map(|(i, _)| i as u32)
    }
}

enum Source<'a> {
    Bytes(&'a [u8]),
    Pixels(&'a [u8]),
}
