//! From a trained (possibly pruned) [`Net`] to a `.pare` file: BatchNorm folded into convs,
//! NHWC/OHWI layouts, optional int8 post-training quantisation, and the format's memory plan.
//! Input normalisation stays an explicit input step (see `pare_format::InputSpec`), so zero
//! padding happens in normalised space exactly as in training.

mod calibrate;
pub mod onnx;
mod quantize;

pub use calibrate::{calibrate, Calibration, Ranges};

use crate::data::Dataset;
use crate::model::{weights, Net, Node, Src};
use pare_format::{Add, Buffer, ChannelPlace, Conv2d, Dense, ModelBuilder, Op, Params, Pool, Provenance, Table, Unary};

/// Number format of the exported model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Quant {
    F32,
    Int8,
}

/// A folded conv or dense layer: `[out][in·kh·kw]` weights in OHWI order and a bias.
pub struct Folded {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub out: usize,
}

/// Folds a conv node's BatchNorm into its weights and bias, and reorders OIHW to OHWI.
pub fn fold_conv(t: &weights::Tensors, name: &str, bn: &str) -> Folded {
    let (shape, w) = &t[&format!("{name}.weight")];
    let [o, i, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
    let g = &t[&format!("{bn}.weight")].1;
    let b = &t[&format!("{bn}.bias")].1;
    let m = &t[&format!("{bn}.running_mean")].1;
    let v = &t[&format!("{bn}.running_var")].1;
    let mut weights = vec![0f32; o * i * kh * kw];
    let mut bias = vec![0f32; o];
    for oc in 0..o {
        let scale = f64::from(g[oc]) / (f64::from(v[oc]) + 1e-5).sqrt();
        bias[oc] = (f64::from(b[oc]) - f64::from(m[oc]) * scale) as f32;
        for ic in 0..i {
            for y in 0..kh {
                for x in 0..kw {
                    let src = ((oc * i + ic) * kh + y) * kw + x;
                    let dst = ((oc * kh + y) * kw + x) * i + ic;
                    weights[dst] = (f64::from(w[src]) * scale) as f32;
                }
            }
        }
    }
    Folded { weights, bias, out: o }
}

/// Refuses weights that would export to a silently wrong model: a NaN or infinity in any tensor,
/// or a negative BatchNorm variance, named with its tensor and index.
/// Why a model cannot be exported; every variant names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("tensor `{tensor}` holds {value} at index {index}; the model cannot be exported (fix or retrain it)")]
    NonFinite { tensor: String, index: usize, value: f32 },
    #[error("BatchNorm variance `{tensor}` is negative ({value}) at index {index}; the model cannot be exported")]
    NegativeVariance { tensor: String, index: usize, value: f32 },
    #[error(
        "conv `{conv}`: folding BatchNorm `{bn}` into its weights overflows f32 \
         (a weight or scale near 3e38); the model cannot be exported"
    )]
    FoldOverflow { conv: String, bn: String },
    #[error("int8 export needs calibration images")]
    NoCalibration,
    #[error("int8 export needs calibration images: {0} has none (at least one; a few hundred give good ranges)")]
    EmptyCalibration(String),
    #[error("architecture: {0}")]
    Arch(String),
    #[error("the model has no nodes")]
    Empty,
    #[error("internal: buffer {0} is not in the model being built")]
    UnknownBuffer(u32),
    #[error("the .pare encoder refused the model: {0}")]
    Format(#[from] pare_format::Error),
}

pub fn check_weights(t: &weights::Tensors) -> Result<(), ExportError> {
    for (name, (_, v)) in t {
        if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(ExportError::NonFinite { tensor: name.clone(), index: i, value: *x });
        }
        if name.ends_with("running_var") {
            if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| **x < 0.0) {
                return Err(ExportError::NegativeVariance { tensor: name.clone(), index: i, value: *x });
            }
        }
    }
    Ok(())
}

/// Builds the `.pare` bytes. `calibration` is required for int8 (min/max ranges).
pub fn export(
    net: &Net,
    quant: Quant,
    calibration: Option<&Dataset>,
    provenance: Option<Provenance<'_>>,
) -> Result<Vec<u8>, ExportError> {
    export_with(net, quant, calibration, Calibration::MinMax, provenance)
}

/// [`export`] with a choice of activation-range calibration.
pub fn export_with(
    net: &Net,
    quant: Quant,
    calibration: Option<&Dataset>,
    method: Calibration,
    provenance: Option<Provenance<'_>>,
) -> Result<Vec<u8>, ExportError> {
    let arch = &net.arch;
    let shapes = arch.shapes().map_err(ExportError::Arch)?;
    let t = weights::to_tensors(net);
    check_weights(&t)?;
    let ranges = match quant {
        Quant::F32 => None,
        Quant::Int8 => {
            let ds = calibration.ok_or(ExportError::NoCalibration)?;
            if ds.is_empty() {
                return Err(ExportError::EmptyCalibration(ds.source.clone()));
            }
            // Calibrated on burn-flex whatever device trained the net, so the ranges (and the
            // int8 model) do not depend on the backend; the net is rebuilt there from its tensors.
            let flex = burn::tensor::Device::flex();
            let on_flex = weights::from_tensors(arch, &t, &flex).map_err(ExportError::Arch)?;
            Some(calibrate(&on_flex, ds, &flex, method))
        }
    };
    let q = ranges.as_ref().map(|r| quantize::plan(arch, r));
    let mut b = ModelBuilder::new(&arch.name);
    b.labels(&arch.labels).normalization(&arch.mean, &arch.std);
    if let Some(p) = &provenance {
        b.provenance(p);
    }
    let buf = |s: crate::model::Shape, id: Option<usize>| -> Buffer {
        match &q {
            None => Buffer::f32(s.h as u32, s.w as u32, s.c as u32),
            Some(q) => {
                let (scale, zp) = q.buffer(id);
                Buffer::i8(s.h as u32, s.w as u32, s.c as u32, scale, zp)
            }
        }
    };
    let input = b.buffer(buf(arch.input, None));
    b.set_input(input);
    let mut ids = Vec::with_capacity(arch.nodes.len());
    let id = |s: Src, ids: &Vec<u32>| match s {
        Src::Input => input,
        Src::Node(j) => ids[j],
    };
    for (i, node) in arch.nodes.iter().enumerate() {
        let out = b.buffer(buf(shapes[i], Some(i)));
        // Every buffer was just added to the builder: one it does not know is an exporter bug,
        // reported, never a stand-in 1×1×1 buffer.
        let info = |b: &ModelBuilder, buf: u32| b.buffer_info(buf).ok_or(ExportError::UnknownBuffer(buf));
        let bi = |s: Src| info(&b, id(s, &ids));
        match node {
            Node::Conv { name, bn, input: src, kernel, stride, padding, relu, .. } => {
                let f = fold_conv(&t, name, bn);
                if f.weights.iter().chain(&f.bias).any(|x| !x.is_finite()) {
                    return Err(ExportError::FoldOverflow { conv: name.clone(), bn: bn.clone() });
                }
                let (k, s) = (*kernel as u32, *stride as u32);
                let pads = node.conv_pads().unwrap_or([*padding; 4]).map(|x| x as u32);
                let (x, y) = (bi(*src)?, info(&b, out)?);
                let enc = quantize::layer(&f, &x, &y, q.is_some());
                let op = Op::Conv2d(Conv2d {
                    input: id(*src, &ids),
                    output: out,
                    kernel: [k, k],
                    stride: [s, s],
                    padding: pads,
                    relu: *relu,
                    params: enc.params(),
                });
                b.push(&op)?;
            }
            Node::Dense { name, input: src, relu, .. } => {
                let (shape, w) = &t[&format!("{name}.weight")];
                let mut x = bi(*src)?;
                let mut input = id(*src, &ids);
                let mut w = w.clone();
                if (x.h, x.w) != (1, 1) {
                    // The device's maps are (h, w, c): flatten there, and reorder the weight's
                    // columns from pare's (c, h, w) order to match.
                    let (c, hw) = (x.c as usize, (x.h * x.w) as usize);
                    let flat = x.h * x.w * x.c;
                    let fb = match q {
                        None => Buffer::f32(1, 1, flat),
                        Some(_) => Buffer::i8(1, 1, flat, x.scale, x.zero_point),
                    };
                    let f = b.buffer(fb);
                    b.push(&Op::Flatten(Unary { input, output: f }))?;
                    w = w
                        .chunks(c * hw)
                        .flat_map(|row| (0..hw).flat_map(move |p| (0..c).map(move |ch| row[ch * hw + p])))
                        .collect();
                    (input, x) = (f, info(&b, f)?);
                }
                let f = Folded { weights: w, bias: t[&format!("{name}.bias")].1.clone(), out: shape[0] };
                let y = info(&b, out)?;
                let enc = quantize::layer(&f, &x, &y, q.is_some());
                b.push(&Op::Dense(Dense { input, output: out, relu: *relu, params: enc.params() }))?;
            }
            Node::MaxPool { input: src, kernel, stride, .. } | Node::AvgPool { input: src, kernel, stride } => {
                let pad = match node {
                    Node::MaxPool { padding, .. } => *padding as u32,
                    _ => 0,
                };
                let p = Pool {
                    input: id(*src, &ids),
                    output: out,
                    kernel: [*kernel as u32; 2],
                    stride: [*stride as u32; 2],
                    padding: [pad; 4],
                };
                b.push(&if matches!(node, Node::MaxPool { .. }) { Op::MaxPool2d(p) } else { Op::AvgPool2d(p) })?;
            }
            Node::GlobalAvgPool { input: src } => {
                b.push(&Op::GlobalAvgPool(Unary { input: id(*src, &ids), output: out }))?
            }
            Node::Add { a, b: bb, relu } => {
                let quant = match q {
                    Some(_) => Some(pare_device::quant::add_quant(bi(*a)?.scale, bi(*bb)?.scale, info(&b, out)?.scale)),
                    None => None,
                };
                b.push(&Op::Add(Add { a: id(*a, &ids), b: id(*bb, &ids), output: out, relu: *relu, quant }))?;
            }
            Node::ChannelPlace { input: src, stride, channels, .. } => {
                let ch: Vec<u16> = channels.iter().map(|c| c.map_or(ChannelPlace::DROP, |c| c as u16)).collect();
                let bytes = Table::encode(&ch);
                b.push(&Op::ChannelPlace(ChannelPlace {
                    input: id(*src, &ids),
                    output: out,
                    stride: *stride as u32,
                    channels: Table::new(ch.len() as u32, &bytes),
                }))?;
            }
        }
        ids.push(out);
    }
    b.set_output(*ids.last().ok_or(ExportError::Empty)?);
    Ok(b.finish()?)
}

/// Encoded parameters of one layer, owning the bytes the format borrows.
pub struct EncodedLayer {
    f32: Option<(Vec<u8>, Vec<u8>)>,
    i8: Option<[Vec<u8>; 5]>,
    out: u32,
    weights: u32,
}

impl EncodedLayer {
    pub fn params(&self) -> Params<'_> {
        match (&self.f32, &self.i8) {
            (Some((w, b)), _) => Params::F32 { weights: Table::new(self.weights, w), bias: Table::new(self.out, b) },
            (_, Some([w, b, s, m, sh])) => Params::I8 {
                weights: Table::new(self.weights, w),
                bias: Table::new(self.out, b),
                weight_scales: Table::new(self.out, s),
                multipliers: Table::new(self.out, m),
                shifts: Table::new(self.out, sh),
            },
            _ => Params::F32 { weights: Table::empty(), bias: Table::empty() },
        }
    }
}
