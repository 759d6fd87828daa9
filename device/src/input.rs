//! Raw pixels to model input, as the model's [`pare_format::InputSpec`] says. Host emulation and
//! board call this same function, so both feed the model identical bytes.

use crate::error::Error;
use crate::quant::quantize_f32;
use pare_format::{DType, Model};

/// Input channels up to which int8 inputs are quantised through per-channel tables.
const LUT_CHANNELS: usize = 4;

/// Fills `input` (the model's input buffer bytes) from `pixels`, HWC `u8` in the input's shape.
pub fn prepare_input(model: &Model<'_>, pixels: &[u8], input: &mut [u8]) -> Result<(), Error> {
    let b = model.input_buffer().ok_or(Error::Internal { op: 0 })?;
    let n = b.elements().ok_or(Error::Internal { op: 0 })?;
    if pixels.len() != n as usize {
        return Err(Error::InputSize { expected: n, got: pixels.len() as u32 });
    }
    let expected = b.bytes().ok_or(Error::Internal { op: 0 })?;
    if input.len() != expected as usize {
        return Err(Error::InputSize { expected, got: input.len() as u32 });
    }
    let spec = &model.meta.input;
    let c = b.c as usize;
    let real = |i: usize, p: u8| -> f32 {
        let ch = (i % c) as u32;
        let x = f32::from(p) / 255.0;
        match (spec.mean.get(ch), spec.std.get(ch)) {
            (Some(m), Some(s)) => (x - m) / s,
            _ => x,
        }
    };
    match b.dtype {
        DType::F32 => {
            for (i, (p, out)) in pixels.iter().zip(input.chunks_exact_mut(4)).enumerate() {
                out.copy_from_slice(&real(i, *p).to_le_bytes());
            }
        }
        DType::I8 if c <= LUT_CHANNELS && pixels.len() > 256 * c => {
            // A pixel's int8 value depends on its channel and byte alone: one 256-entry table
            // per channel (the same function on the same inputs, so the same bytes) replaces a
            // float conversion per pixel.
            let mut lut = [[0u8; 256]; LUT_CHANNELS];
            for (ch, t) in lut.iter_mut().take(c).enumerate() {
                for (v, e) in t.iter_mut().enumerate() {
                    *e = quantize_f32(real(ch, v as u8), b.scale, b.zero_point) as u8;
                }
            }
            for (px, out) in pixels.chunks_exact(c).zip(input.chunks_exact_mut(c)) {
                for ((p, o), t) in px.iter().zip(out.iter_mut()).zip(&lut) {
                    *o = t.get(usize::from(*p)).copied().unwrap_or(0);
                }
            }
        }
        DType::I8 => {
            for (i, (p, out)) in pixels.iter().zip(input.iter_mut()).enumerate() {
                *out = quantize_f32(real(i, *p), b.scale, b.zero_point) as u8;
            }
        }
    }
    Ok(())
}
