//! One module per op of the format, each with an f32 and an int8 kernel over NHWC slices.
//! [`execute`] finds an op's buffers in the arena and calls the matching kernel.

pub mod add;
pub mod conv;
pub mod conv_rows;
pub mod dense;
pub mod place;
pub mod pool;
pub mod simd;

use crate::arena::{split, Span};
use crate::error::Error;
use pare_format::{Buffer, DType, Model, Op, Params};

/// Geometry of a sliding-window op (convolution or pooling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub ih: usize,
    pub iw: usize,
    pub ic: usize,
    pub oh: usize,
    pub ow: usize,
    pub oc: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// Top and left padding (bottom/right follow from the output size).
    pub pt: usize,
    pub pl: usize,
}

impl Window {
    fn new(i: &Buffer, o: &Buffer, kernel: [u32; 2], stride: [u32; 2], padding: [u32; 4]) -> Self {
        Self {
            ih: i.h as usize,
            iw: i.w as usize,
            ic: i.c as usize,
            oh: o.h as usize,
            ow: o.w as usize,
            oc: o.c as usize,
            kh: kernel[0] as usize,
            kw: kernel[1] as usize,
            sh: stride[0] as usize,
            sw: stride[1] as usize,
            pt: padding[0] as usize,
            pl: padding[1] as usize,
        }
    }

    /// The in-bounds kernel indices `k0..k1` of output index `o` (input index = `o·stride + k −
    /// pad`): the closed-form twin of [`Window::taps`].
    pub fn span(o: usize, stride: usize, pad: usize, kernel: usize, size: usize) -> (usize, usize) {
        let start = o.saturating_mul(stride);
        (pad.saturating_sub(start).min(kernel), size.saturating_add(pad).saturating_sub(start).min(kernel))
    }

    /// Input rows (or columns) covered by output index `o`: `(kernel index, input index)` pairs
    /// for the in-bounds taps only, computed from [`Window::span`], so the work is bounded by the
    /// input's extent however large the kernel and its padding (a 2^31-wide pooling window costs
    /// what its in-bounds taps cost).
    pub fn taps(
        o: usize,
        stride: usize,
        pad: usize,
        kernel: usize,
        size: usize,
    ) -> impl Iterator<Item = (usize, usize)> {
        let (k0, k1) = Self::span(o, stride, pad, kernel, size);
        let start = o.saturating_mul(stride);
        (k0..k1).map(move |k| (k, (start + k).saturating_sub(pad)))
    }
}

fn span(model: &Model<'_>, id: u32, op: u32) -> Result<(Buffer, Span), Error> {
    let b = model.buffer(id).ok_or(Error::Internal { op })?;
    let e = model.plan.entries.get(id).ok_or(Error::Internal { op })?;
    let len = b.bytes().ok_or(Error::Internal { op })? as usize;
    Ok((b, Span { offset: e.offset as usize, len }))
}

fn f32s(bytes: &[u8], op: u32) -> Result<&[f32], Error> {
    bytemuck::try_cast_slice(bytes).map_err(|_| Error::Internal { op })
}

fn f32s_mut(bytes: &mut [u8], op: u32) -> Result<&mut [f32], Error> {
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Internal { op })
}

fn i8s(bytes: &[u8]) -> &[i8] {
    bytemuck::cast_slice(bytes)
}

fn i8s_mut(bytes: &mut [u8]) -> &mut [i8] {
    bytemuck::cast_slice_mut(bytes)
}

/// Runs op number `k` of a validated model; convolutions work in `scratch`.
pub fn execute(
    model: &Model<'_>,
    k: u32,
    op: &Op<'_>,
    arena: &mut [u8],
    scratch: &mut conv::Scratch,
) -> Result<(), Error> {
    let bad = Error::Internal { op: k };
    let [first, second] = op.inputs();
    let (ib, is) = span(model, first.ok_or(bad)?, k)?;
    let (ob, os) = span(model, op.output(), k)?;
    match op {
        Op::Add(a) => {
            let (bb, bs) = span(model, a.b, k)?;
            let ([x, y], out) = split(arena, [is, bs], os, k)?;
            match a.quant {
                None => add::add_f32(f32s(x, k)?, f32s(y, k)?, a.relu, f32s_mut(out, k)?),
                Some(q) => {
                    let zp = [ib.zero_point, bb.zero_point, ob.zero_point];
                    add::add_i8(i8s(x), i8s(y), &q, zp, a.relu, i8s_mut(out))
                }
            }
            return Ok(());
        }
        _ if second.is_some() => return Err(bad),
        _ => {}
    }
    let ([x], out) = split(arena, [is], os, k)?;
    let none = || Error::Internal { op: k };
    match (op, ib.dtype) {
        (Op::Conv2d(c), _) => {
            let g = Window::new(&ib, &ob, c.kernel, c.stride, c.padding);
            match &c.params {
                Params::F32 { weights, bias } => {
                    conv::conv_f32(&g, f32s(x, k)?, weights, bias, c.relu, f32s_mut(out, k)?).ok_or_else(none)
                }
                Params::I8 { weights, bias, multipliers, shifts, .. } => {
                    let q = conv::Requant { bias, multipliers, shifts, in_zp: ib.zero_point, out_zp: ob.zero_point };
                    conv::conv_i8_in(scratch, &g, i8s(x), i8s(weights.bytes()), &q, c.relu, i8s_mut(out))
                        .ok_or_else(none)
                }
            }
        }
        (Op::Dense(d), _) => match &d.params {
            Params::F32 { weights, bias } => {
                dense::dense_f32(f32s(x, k)?, weights, bias, d.relu, f32s_mut(out, k)?).ok_or_else(none)
            }
            Params::I8 { weights, bias, multipliers, shifts, .. } => {
                let q = conv::Requant { bias, multipliers, shifts, in_zp: ib.zero_point, out_zp: ob.zero_point };
                dense::dense_i8(i8s(x), i8s(weights.bytes()), &q, d.relu, i8s_mut(out)).ok_or_else(none)
            }
        },
        (Op::MaxPool2d(p), DType::F32) => {
            let g = Window::new(&ib, &ob, p.kernel, p.stride, p.padding);
            pool::max_f32(&g, f32s(x, k)?, f32s_mut(out, k)?).ok_or_else(none)
        }
        (Op::MaxPool2d(p), DType::I8) => {
            let g = Window::new(&ib, &ob, p.kernel, p.stride, p.padding);
            pool::max_i8(&g, i8s(x), i8s_mut(out)).ok_or_else(none)
        }
        (Op::AvgPool2d(p), DType::F32) => {
            let g = Window::new(&ib, &ob, p.kernel, p.stride, p.padding);
            pool::avg_f32(&g, f32s(x, k)?, f32s_mut(out, k)?).ok_or_else(none)
        }
        (Op::AvgPool2d(p), DType::I8) => {
            let g = Window::new(&ib, &ob, p.kernel, p.stride, p.padding);
            pool::avg_i8(&g, i8s(x), i8s_mut(out)).ok_or_else(none)
        }
        (Op::GlobalAvgPool(_), dt) => {
            let g = Window::new(&ib, &ob, [ib.h, ib.w], [1, 1], [0; 4]);
            match dt {
                DType::F32 => pool::avg_f32(&g, f32s(x, k)?, f32s_mut(out, k)?).ok_or_else(none),
                DType::I8 => pool::avg_i8(&g, i8s(x), i8s_mut(out)).ok_or_else(none),
            }
        }
        (Op::ChannelPlace(c), dt) => {
            let geom = place::Geometry {
                ih: ib.h as usize,
                iw: ib.w as usize,
                ic: ib.c as usize,
                oh: ob.h as usize,
                ow: ob.w as usize,
                oc: ob.c as usize,
                stride: c.stride as usize,
            };
            match dt {
                DType::F32 => place::place(&geom, f32s(x, k)?, &c.channels, 0.0, f32s_mut(out, k)?),
                DType::I8 => place::place(&geom, i8s(x), &c.channels, ob.zero_point as i8, i8s_mut(out)),
            }
            .ok_or_else(none)
        }
        (Op::Flatten(_), _) => {
            // NHWC is already flat in memory: flatten is a copy.
            if x.len() != out.len() {
                return Err(bad);
            }
            out.copy_from_slice(x);
            Ok(())
        }
        (Op::Add(_), _) => Err(bad),
    }
}
