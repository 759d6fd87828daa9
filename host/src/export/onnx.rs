//! ONNX export of any pare model, pruned or not (`pare export --format onnx`), so a compressed
//! network goes back to PyTorch, onnxruntime or TF tooling. f32, opset 13, NCHW input named
//! `input` (already normalised: the model's `mean`/`std` are recorded in the file's metadata
//! as `pare.mean`/`pare.std`), output `logits`. Each node maps to standard ops: a conv to
//! Conv → BatchNormalization (ε 1e-5) → Relu, a channel placement (option-A shortcut) to a 1×1
//! Conv with a fixed 0/1 kernel at its stride, the classifier to Flatten → Gemm. The protobuf is
//! written by hand (a few message types of onnx.proto); `bench/onnx_check.py` runs the file in
//! onnxruntime against pare.

use super::ExportError;
use crate::model::{weights, Node, Src};

/// Protobuf wire writer: just what onnx.proto's messages need.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }
    fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    fn msg(&mut self, field: u32, m: Pb) {
        self.bytes(field, &m.0);
    }
}

/// An attribute: ints (`INTS`, type 7) or one int (`INT`, type 2) or a float (`FLOAT`, 1).
enum Attr<'a> {
    Int(&'a str, i64),
    Ints(&'a str, Vec<i64>),
    Float(&'a str, f32),
}

fn attribute(a: &Attr<'_>) -> Pb {
    let mut m = Pb::default();
    match a {
        Attr::Int(name, v) => {
            m.str(1, name);
            m.int(3, *v);
            m.int(20, 2);
        }
        Attr::Ints(name, v) => {
            m.str(1, name);
            for x in v {
                m.int(8, *x);
            }
            m.int(20, 7);
        }
        Attr::Float(name, v) => {
            m.str(1, name);
            m.key(2, 5);
            m.0.extend_from_slice(&v.to_le_bytes());
            m.int(20, 1);
        }
    }
    m
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: &[Attr<'_>]) -> Pb {
    let mut m = Pb::default();
    for i in inputs {
        m.str(1, i);
    }
    for o in outputs {
        m.str(2, o);
    }
    m.str(3, name);
    m.str(4, op);
    for a in attrs {
        m.msg(5, attribute(a));
    }
    m
}

/// A float tensor initializer.
fn tensor(name: &str, dims: &[usize], values: &[f32]) -> Pb {
    let mut m = Pb::default();
    for d in dims {
        m.int(1, *d as i64);
    }
    m.int(2, 1);
    m.str(8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.bytes(9, &raw);
    m
}

/// A float tensor's name and fixed shape.
fn value_info(name: &str, dims: &[usize]) -> Pb {
    let mut shape = Pb::default();
    for d in dims {
        let mut dim = Pb::default();
        dim.int(1, *d as i64);
        shape.msg(1, dim);
    }
    let mut tt = Pb::default();
    tt.int(1, 1);
    tt.msg(2, shape);
    let mut ty = Pb::default();
    ty.msg(1, tt);
    let mut m = Pb::default();
    m.str(1, name);
    m.msg(2, ty);
    m
}

/// The model as ONNX bytes.
pub fn export_onnx(net: &crate::model::Net) -> Result<Vec<u8>, ExportError> {
    let arch = &net.arch;
    let shapes = arch.shapes().map_err(ExportError::Arch)?;
    let t = weights::to_tensors(net);
    super::check_weights(&t)?;
    let tensor_of = |name: &str| t.get(name).ok_or_else(|| ExportError::Arch(format!("tensor `{name}` is missing")));
    let mut g = Pb::default();
    let mut inits: Vec<Pb> = vec![];
    let value = |s: Src| match s {
        Src::Input => "input".to_string(),
        Src::Node(j) => format!("n{j}"),
    };
    let last = arch.nodes.len().checked_sub(1).ok_or(ExportError::Empty)?;
    for (i, n) in arch.nodes.iter().enumerate() {
        let out = if i == last { "logits".to_string() } else { format!("n{i}") };
        match n {
            Node::Conv { name, bn, input, kernel, stride, relu, .. } => {
                let (shape, w) = tensor_of(&format!("{name}.weight"))?;
                inits.push(tensor(&format!("{name}.weight"), shape, w));
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    let key = format!("{bn}.{p}");
                    let (s, v) = tensor_of(&key)?;
                    inits.push(tensor(&key, s, v));
                }
                let conv_out = format!("{out}.conv");
                let bn_out = if *relu { format!("{out}.bn") } else { out.clone() };
                let (k, s) = (*kernel as i64, *stride as i64);
                let pads: Vec<i64> = n.conv_pads().unwrap_or_default().iter().map(|&x| x as i64).collect();
                g.msg(
                    1,
                    node(
                        "Conv",
                        name,
                        &[&value(*input), &format!("{name}.weight")],
                        &[&conv_out],
                        &[
                            Attr::Ints("kernel_shape", vec![k, k]),
                            Attr::Ints("strides", vec![s, s]),
                            Attr::Ints("pads", pads),
                        ],
                    ),
                );
                let bn_in = [
                    conv_out.clone(),
                    format!("{bn}.weight"),
                    format!("{bn}.bias"),
                    format!("{bn}.running_mean"),
                    format!("{bn}.running_var"),
                ];
                let bn_refs: Vec<&str> = bn_in.iter().map(String::as_str).collect();
                g.msg(1, node("BatchNormalization", bn, &bn_refs, &[&bn_out], &[Attr::Float("epsilon", 1e-5)]));
                if *relu {
                    g.msg(1, node("Relu", &format!("{name}.relu"), &[&bn_out], &[&out], &[]));
                }
            }
            Node::MaxPool { input, kernel, stride, padding } => {
                let (k, s, p) = (*kernel as i64, *stride as i64, *padding as i64);
                let attrs = [
                    Attr::Ints("kernel_shape", vec![k, k]),
                    Attr::Ints("strides", vec![s, s]),
                    Attr::Ints("pads", vec![p; 4]),
                ];
                g.msg(1, node("MaxPool", &format!("pool{i}"), &[&value(*input)], &[&out], &attrs));
            }
            Node::AvgPool { input, kernel, stride } => {
                let (k, s) = (*kernel as i64, *stride as i64);
                let attrs = [Attr::Ints("kernel_shape", vec![k, k]), Attr::Ints("strides", vec![s, s])];
                g.msg(1, node("AveragePool", &format!("pool{i}"), &[&value(*input)], &[&out], &attrs));
            }
            Node::GlobalAvgPool { input } => {
                g.msg(1, node("GlobalAveragePool", &format!("gap{i}"), &[&value(*input)], &[&out], &[]));
            }
            Node::Add { a, b, relu } => {
                let sum = if *relu { format!("{out}.sum") } else { out.clone() };
                g.msg(1, node("Add", &format!("add{i}"), &[&value(*a), &value(*b)], &[&sum], &[]));
                if *relu {
                    g.msg(1, node("Relu", &format!("add{i}.relu"), &[&sum], &[&out], &[]));
                }
            }
            Node::ChannelPlace { input, stride, out: co, channels } => {
                // Input channel c lands on output channel channels[c]: a 1×1 conv of 0s and 1s.
                let ci = channels.len();
                let mut w = vec![0f32; co * ci];
                for (c, to) in channels.iter().enumerate() {
                    if let Some(o) = to {
                        w[o * ci + c] = 1.0;
                    }
                }
                let wname = format!("place{i}.weight");
                inits.push(tensor(&wname, &[*co, ci, 1, 1], &w));
                let s = *stride as i64;
                let attrs = [Attr::Ints("kernel_shape", vec![1, 1]), Attr::Ints("strides", vec![s, s])];
                g.msg(1, node("Conv", &format!("place{i}"), &[&value(*input), &wname], &[&out], &attrs));
            }
            Node::Dense { name, input, relu, .. } => {
                let (ws, w) = tensor_of(&format!("{name}.weight"))?;
                let (bs, b) = tensor_of(&format!("{name}.bias"))?;
                inits.push(tensor(&format!("{name}.weight"), ws, w));
                inits.push(tensor(&format!("{name}.bias"), bs, b));
                let flat = format!("{out}.flat");
                g.msg(
                    1,
                    node("Flatten", &format!("{name}.flatten"), &[&value(*input)], &[&flat], &[Attr::Int("axis", 1)]),
                );
                let ins = [flat.as_str(), &format!("{name}.weight"), &format!("{name}.bias")].map(str::to_string);
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                if *relu {
                    let pre = format!("{out}.pre");
                    g.msg(1, node("Gemm", name, &refs, &[&pre], &[Attr::Int("transB", 1)]));
                    g.msg(1, node("Relu", &format!("{name}.relu"), &[&pre], &[&out], &[]));
                } else {
                    g.msg(1, node("Gemm", name, &refs, &[&out], &[Attr::Int("transB", 1)]));
                }
            }
        }
    }
    g.str(2, &arch.name);
    for init in inits {
        g.msg(5, init);
    }
    g.msg(11, value_info("input", &[1, arch.input.c, arch.input.h, arch.input.w]));
    let classes = shapes.get(last).map_or(0, |s| s.c);
    g.msg(12, value_info("logits", &[1, classes]));
    let mut m = Pb::default();
    m.int(1, 8); // ir_version
    m.str(2, "pare");
    m.str(3, env!("CARGO_PKG_VERSION"));
    m.msg(7, g);
    let mut opset = Pb::default();
    opset.str(1, "");
    opset.int(2, 13);
    m.msg(8, opset);
    for (key, v) in [(crate::model::MEAN_KEY, &arch.mean), (crate::model::STD_KEY, &arch.std)] {
        let mut p = Pb::default();
        p.str(1, key);
        p.str(2, &v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
        m.msg(14, p);
    }
    Ok(m.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_follow_the_protobuf_encoding() {
        // The protobuf documentation's examples: 150 is 0x96 0x01; field 1 varint 150 is
        // 08 96 01; field 2 string "testing" is 12 07 74 65 73 74 69 6e 67.
        let mut p = Pb::default();
        p.int(1, 150);
        assert_eq!(p.0, [0x08, 0x96, 0x01]);
        let mut p = Pb::default();
        p.str(2, "testing");
        assert_eq!(p.0, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        // A negative int64 is ten bytes (two's complement as a 64-bit varint).
        let mut p = Pb::default();
        p.int(1, -1);
        assert_eq!(p.0.len(), 11);
    }
}
