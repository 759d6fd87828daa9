//! int8 post-training quantisation: per-tensor asymmetric activations, per-output-channel
//! symmetric weights, i32 bias, TFLite fixed-point requantisation.

use super::{EncodedLayer, Folded, Ranges};
use crate::model::{Arch, Node, Src};
use pare_device::quant::quantize_multiplier;
use pare_format::{Buffer, Table};

/// Quantisation parameters of every buffer.
pub struct QuantPlan {
    input: (f32, i32),
    nodes: Vec<(f32, i32)>,
}

impl QuantPlan {
    /// `(scale, zero point)` of node `id`'s output, or of the input for `None`.
    pub fn buffer(&self, id: Option<usize>) -> (f32, i32) {
        id.map_or(self.input, |i| self.nodes[i])
    }
}

/// Asymmetric int8 parameters covering `[min, max]` (always including 0).
pub fn affine(min: f32, max: f32) -> (f32, i32) {
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zp)
}

/// Ops that move values without arithmetic share their input's parameters.
pub fn plan(arch: &Arch, r: &Ranges) -> QuantPlan {
    let input = affine(r.input.0, r.input.1);
    let mut nodes: Vec<(f32, i32)> = Vec::with_capacity(arch.nodes.len());
    for (i, node) in arch.nodes.iter().enumerate() {
        let of = |s: Src, nodes: &Vec<(f32, i32)>| match s {
            Src::Input => input,
            Src::Node(j) => nodes[j],
        };
        let p = match node {
            Node::MaxPool { input: s, .. }
            | Node::AvgPool { input: s, .. }
            | Node::GlobalAvgPool { input: s }
            | Node::ChannelPlace { input: s, .. } => of(*s, &nodes),
            // Arithmetic: its own range from calibration.
            Node::Conv { .. } | Node::Add { .. } | Node::Dense { .. } => affine(r.nodes[i].0, r.nodes[i].1),
        };
        nodes.push(p);
    }
    QuantPlan { input, nodes }
}

/// Encodes a layer's weights for the format, quantised when `int8`.
pub fn layer(f: &Folded, x: &Buffer, y: &Buffer, int8: bool) -> EncodedLayer {
    let per = f.weights.len() / f.out.max(1);
    if !int8 {
        return EncodedLayer {
            f32: Some((Table::encode(&f.weights), Table::encode(&f.bias))),
            i8: None,
            out: f.out as u32,
            weights: f.weights.len() as u32,
        };
    }
    let mut w = Vec::with_capacity(f.weights.len());
    let (mut bias, mut scales, mut mults, mut shifts) = (vec![], vec![], vec![], vec![]);
    for o in 0..f.out {
        let row = &f.weights[o * per..(o + 1) * per];
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        w.extend(row.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
        let acc_scale = f64::from(x.scale) * f64::from(s);
        bias.push((f64::from(f.bias[o]) / acc_scale).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32);
        let (m, sh) = quantize_multiplier(acc_scale / f64::from(y.scale));
        scales.push(s);
        mults.push(m);
        shifts.push(sh.clamp(-31, 30) as i8);
    }
    EncodedLayer {
        f32: None,
        i8: Some([
            Table::encode(&w),
            Table::encode(&bias),
            Table::encode(&scales),
            Table::encode(&mults),
            Table::encode(&shifts),
        ]),
        out: f.out as u32,
        weights: f.weights.len() as u32,
    }
}
