//! ONNX import (`--weights model.onnx`): the graph becomes pare's architecture, the
//! initializers its weights. Supported: Conv (no bias) → BatchNormalization (ε 1e-5) →
//! optional Relu as one conv node; a bias-free 1×1 Conv whose kernel is one-hot per input
//! channel as a channel placement (what `pare export --format onnx` writes for option-A
//! shortcuts); MaxPool (symmetric pads), AveragePool (no pads), GlobalAveragePool, Add
//! (optional Relu), Flatten → Gemm (transB) as the classifier; Identity and Dropout pass
//! through, a trailing Softmax is dropped. Anything else is refused before any work, naming the
//! op, the node and its position. Conv bias, other epsilons and asymmetric pads are not
//! expressible yet. The protobuf reader covers the few onnx.proto messages this needs.

use super::{weights, Arch, Net, Node, Shape, Src};
use std::collections::BTreeMap;

/// Why an ONNX file cannot be imported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OnnxError {
    #[error("not a valid ONNX protobuf: {0}")]
    Protobuf(String),
    #[error("node {index} `{name}` ({op}): {reason}")]
    Unsupported { index: usize, name: String, op: String, reason: String },
    #[error("the graph: {0}")]
    Graph(String),
}

/// A protobuf field: number and value.
#[derive(Debug, Clone)]
enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

fn fields(mut b: &[u8]) -> Result<Vec<(u32, Val<'_>)>, OnnxError> {
    let bad = |w: &str| OnnxError::Protobuf(w.into());
    let varint = |b: &mut &[u8]| -> Result<u64, OnnxError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&x, rest) = b.split_first().ok_or_else(|| bad("truncated varint"))?;
            *b = rest;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    };
    let mut out = vec![];
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (field, wire) = ((key >> 3) as u32, key & 7);
        let v = match wire {
            0 => Val::Int(varint(&mut b)?),
            1 => {
                let (_, rest) = b.split_at_checked(8).ok_or_else(|| bad("truncated fixed64"))?;
                b = rest;
                continue;
            }
            2 => {
                let n = varint(&mut b)? as usize;
                let (data, rest) = b.split_at_checked(n).ok_or_else(|| bad("truncated bytes"))?;
                b = rest;
                Val::Bytes(data)
            }
            5 => {
                let (data, rest) = b.split_at_checked(4).ok_or_else(|| bad("truncated fixed32"))?;
                b = rest;
                Val::Fixed32(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
            }
            w => return Err(bad(&format!("wire type {w}"))),
        };
        out.push((field, v));
    }
    Ok(out)
}

fn strs(f: &[(u32, Val<'_>)], n: u32) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| *k == n)
        .filter_map(|(_, v)| if let Val::Bytes(b) = v { Some(String::from_utf8_lossy(b).into_owned()) } else { None })
        .collect()
}

fn msgs<'a>(f: &[(u32, Val<'a>)], n: u32) -> Vec<&'a [u8]> {
    f.iter().filter(|(k, _)| *k == n).filter_map(|(_, v)| if let Val::Bytes(b) = v { Some(*b) } else { None }).collect()
}

fn ints(f: &[(u32, Val<'_>)], n: u32) -> Vec<i64> {
    let mut v = vec![];
    for (k, x) in f {
        if *k != n {
            continue;
        }
        match x {
            Val::Int(i) => v.push(*i as i64),
            // Packed repeated varints.
            Val::Bytes(b) => {
                let mut rest = *b;
                while !rest.is_empty() {
                    let mut x = 0u64;
                    let mut shift = 0;
                    while let Some((&byte, r)) = rest.split_first() {
                        rest = r;
                        x |= u64::from(byte & 0x7f) << shift;
                        shift += 7;
                        if byte & 0x80 == 0 {
                            break;
                        }
                    }
                    v.push(x as i64);
                }
            }
            Val::Fixed32(_) => {}
        }
    }
    v
}

/// One graph node.
struct OnnxNode {
    op: String,
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    ints: BTreeMap<String, Vec<i64>>,
    floats: BTreeMap<String, f32>,
}

fn parse_node(b: &[u8]) -> Result<OnnxNode, OnnxError> {
    let f = fields(b)?;
    let mut n = OnnxNode {
        op: strs(&f, 4).concat(),
        name: strs(&f, 3).concat(),
        inputs: strs(&f, 1),
        outputs: strs(&f, 2),
        ints: BTreeMap::new(),
        floats: BTreeMap::new(),
    };
    for a in msgs(&f, 5) {
        let af = fields(a)?;
        let name = strs(&af, 1).concat();
        let mut i = ints(&af, 8);
        i.extend(ints(&af, 3));
        if !i.is_empty() {
            n.ints.insert(name.clone(), i);
        }
        if let Some(Val::Fixed32(x)) = af.iter().find(|(k, _)| *k == 2).map(|(_, v)| v.clone()) {
            n.floats.insert(name, f32::from_bits(x));
        }
    }
    Ok(n)
}

/// A float initializer: dims and values (raw_data or float_data).
fn parse_tensor(b: &[u8]) -> Result<(String, Vec<usize>, Vec<f32>), OnnxError> {
    let f = fields(b)?;
    let name = strs(&f, 8).concat();
    let dims: Vec<usize> = ints(&f, 1).iter().map(|&d| d.max(0) as usize).collect();
    let dtype = ints(&f, 2).first().copied().unwrap_or(0);
    if dtype != 1 {
        return Err(OnnxError::Graph(format!("initializer `{name}` is not float32 (data type {dtype})")));
    }
    let values: Vec<f32> = match msgs(&f, 9).first() {
        Some(raw) => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        None => f
            .iter()
            .filter(|(k, _)| *k == 4)
            .flat_map(|(_, v)| match v {
                Val::Fixed32(x) => vec![f32::from_bits(*x)],
                Val::Bytes(p) => p.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                Val::Int(_) => vec![],
            })
            .collect(),
    };
    if values.len() != dims.iter().product::<usize>() {
        return Err(OnnxError::Graph(format!("initializer `{name}`: {} values for shape {dims:?}", values.len())));
    }
    Ok((name, dims, values))
}

/// The model in an ONNX file, with its weights.
pub fn import(bytes: &[u8], device: &burn::tensor::Device) -> Result<Net, OnnxError> {
    let (arch, tensors) = import_arch(bytes)?;
    weights::from_tensors(&arch, &tensors, device).map_err(OnnxError::Graph)
}

/// The architecture and weights (pare's tensor names) of an ONNX file.
pub fn import_arch(bytes: &[u8]) -> Result<(Arch, weights::Tensors), OnnxError> {
    let model = fields(bytes)?;
    let graph = fields(msgs(&model, 7).first().ok_or_else(|| OnnxError::Protobuf("no graph".into()))?)?;
    let mut meta = BTreeMap::new();
    for p in msgs(&model, 14) {
        let pf = fields(p)?;
        meta.insert(strs(&pf, 1).concat(), strs(&pf, 2).concat());
    }
    let mut init: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    for t in msgs(&graph, 5) {
        let (name, dims, values) = parse_tensor(t)?;
        init.insert(name, (dims, values));
    }
    let nodes: Vec<OnnxNode> = msgs(&graph, 1).into_iter().map(parse_node).collect::<Result<_, _>>()?;
    // The graph input that is not an initializer, and its NCHW shape.
    let input = msgs(&graph, 11)
        .into_iter()
        .map(|v| -> Result<(String, Vec<i64>), OnnxError> {
            let vf = fields(v)?;
            let mut dims = vec![];
            for ty in msgs(&vf, 2) {
                for tt in msgs(&fields(ty)?, 1) {
                    for shape in msgs(&fields(tt)?, 2) {
                        for d in msgs(&fields(shape)?, 1) {
                            dims.push(ints(&fields(d)?, 1).first().copied().unwrap_or(-1));
                        }
                    }
                }
            }
            Ok((strs(&vf, 1).concat(), dims))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|(n, _)| !init.contains_key(n))
        .ok_or_else(|| OnnxError::Graph("no graph input".into()))?;
    let [_, c, h, w] = input.1[..] else {
        return Err(OnnxError::Graph(format!("input `{}` is not NCHW: {:?}", input.0, input.1)));
    };
    let mut arch = Arch {
        name: strs(&graph, 2).concat(),
        input: Shape { c: c.max(1) as usize, h: h.max(1) as usize, w: w.max(1) as usize },
        nodes: vec![],
        mean: vec![0.0; c.max(1) as usize],
        std: vec![1.0; c.max(1) as usize],
        labels: vec![],
    };
    let list =
        |k: &str| -> Option<Vec<f32>> { meta.get(k).map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect()) };
    if let (Some(m), Some(s)) = (list("pare.mean"), list("pare.std")) {
        (arch.mean, arch.std) = (m, s);
    }
    let mut tensors = weights::Tensors::new();
    // Which pare source each ONNX value name is.
    let mut src: BTreeMap<String, Src> = BTreeMap::from([(input.0.clone(), Src::Input)]);
    let mut used = vec![false; nodes.len()];
    let consumers = |name: &str| -> Vec<usize> {
        nodes.iter().enumerate().filter(|(_, n)| n.inputs.iter().any(|i| i == name)).map(|(i, _)| i).collect()
    };
    let only_consumer = |name: &str, op: &str| -> Option<usize> {
        let c = consumers(name);
        (c.len() == 1 && nodes[c[0]].op == op).then_some(c[0])
    };
    for (i, n) in nodes.iter().enumerate() {
        if used[i] {
            continue;
        }
        let unsupported = |reason: &str| OnnxError::Unsupported {
            index: i,
            name: n.name.clone(),
            op: n.op.clone(),
            reason: reason.into(),
        };
        let get = |k: usize| -> Result<Src, OnnxError> {
            n.inputs
                .get(k)
                .and_then(|x| src.get(x))
                .copied()
                .ok_or_else(|| unsupported("reads a value no supported node produced"))
        };
        let single = |k: &str, default: i64| -> Result<i64, OnnxError> {
            match n.ints.get(k).map(Vec::as_slice) {
                None => Ok(default),
                Some([a, b]) if a == b => Ok(*a),
                Some([a, b, c, d]) if a == b && b == c && c == d => Ok(*a),
                Some(_) => Err(unsupported(&format!("`{k}` differs between height and width or sides"))),
            }
        };
        let out = n.outputs.first().cloned().unwrap_or_default();
        let node = match n.op.as_str() {
            "Conv" => {
                let (wshape, w) = n
                    .inputs
                    .get(1)
                    .and_then(|x| init.get(x))
                    .ok_or_else(|| unsupported("weights are not an initializer"))?;
                if n.inputs.len() > 2 {
                    return Err(unsupported("a conv bias is not expressible yet (pare convs carry a BatchNorm)"));
                }
                if n.ints.get("group").is_some_and(|g| g.first() != Some(&1))
                    || n.ints.get("dilations").is_some_and(|d| d.iter().any(|&x| x != 1))
                {
                    return Err(unsupported("grouped or dilated convs are not supported"));
                }
                let (k, s, p) = (
                    single("kernel_shape", wshape.get(2).copied().unwrap_or(1) as i64)?,
                    single("strides", 1)?,
                    single("pads", 0)?,
                );
                let [o, ci] = [wshape[0], wshape.get(1).copied().unwrap_or(0)];
                match only_consumer(&out, "BatchNormalization") {
                    Some(bi) => {
                        let b = &nodes[bi];
                        if b.floats.get("epsilon").is_some_and(|e| (e - 1e-5).abs() > 1e-9) {
                            return Err(unsupported("BatchNormalization epsilon other than 1e-5"));
                        }
                        used[bi] = true;
                        let name = if n.name.is_empty() { format!("conv{i}") } else { n.name.clone() };
                        let bn = if b.name.is_empty() { format!("bn{bi}") } else { b.name.clone() };
                        tensors.insert(format!("{name}.weight"), (wshape.clone(), w.clone()));
                        for (j, p) in ["weight", "bias", "running_mean", "running_var"].iter().enumerate() {
                            let v = b
                                .inputs
                                .get(j + 1)
                                .and_then(|x| init.get(x))
                                .ok_or_else(|| unsupported("BatchNorm parameters are not initializers"))?;
                            tensors.insert(format!("{bn}.{p}"), v.clone());
                        }
                        let mut last = b.outputs.first().cloned().unwrap_or_default();
                        let relu = match only_consumer(&last, "Relu") {
                            Some(ri) => {
                                used[ri] = true;
                                last = nodes[ri].outputs.first().cloned().unwrap_or_default();
                                true
                            }
                            None => false,
                        };
                        arch.nodes.push(Node::Conv {
                            name,
                            bn,
                            input: get(0)?,
                            out: o,
                            kernel: k as usize,
                            stride: s as usize,
                            padding: p as usize,
                            relu,
                        });
                        src.insert(last, Src::Node(arch.nodes.len() - 1));
                        continue;
                    }
                    None => {
                        // A bias-free one-hot 1×1 conv: a channel placement.
                        let one_hot = k == 1
                            && p == 0
                            && (0..ci).all(|c| (0..o).filter(|&q| w[q * ci + c] != 0.0).count() <= 1)
                            && w.iter().all(|&x| x == 0.0 || x == 1.0);
                        if !one_hot {
                            return Err(unsupported(
                                "a conv without a following BatchNormalization is not expressible yet",
                            ));
                        }
                        let channels = (0..ci).map(|c| (0..o).find(|&q| w[q * ci + c] == 1.0)).collect();
                        Node::ChannelPlace { input: get(0)?, stride: s as usize, out: o, channels }
                    }
                }
            }
            "MaxPool" => {
                let k = single("kernel_shape", 1)?;
                Node::MaxPool {
                    input: get(0)?,
                    kernel: k as usize,
                    stride: single("strides", k)? as usize,
                    padding: single("pads", 0)? as usize,
                }
            }
            "AveragePool" => {
                if single("pads", 0)? != 0 {
                    return Err(unsupported("padded average pools are not supported"));
                }
                let k = single("kernel_shape", 1)?;
                Node::AvgPool { input: get(0)?, kernel: k as usize, stride: single("strides", k)? as usize }
            }
            "GlobalAveragePool" => Node::GlobalAvgPool { input: get(0)? },
            "Add" => {
                let (a, b) = (get(0)?, get(1)?);
                let mut last = out.clone();
                let relu = match only_consumer(&out, "Relu") {
                    Some(ri) => {
                        used[ri] = true;
                        last = nodes[ri].outputs.first().cloned().unwrap_or_default();
                        true
                    }
                    None => false,
                };
                arch.nodes.push(Node::Add { a, b, relu });
                src.insert(last, Src::Node(arch.nodes.len() - 1));
                continue;
            }
            "Flatten" | "Identity" | "Dropout" => {
                src.insert(out, get(0)?);
                continue;
            }
            "Gemm" => {
                if n.ints.get("transB").map(Vec::as_slice) != Some(&[1])
                    || n.ints.get("transA").is_some_and(|t| t != &[0])
                {
                    return Err(unsupported("only Gemm with transB = 1 (PyTorch's Linear) is supported"));
                }
                let wv = n
                    .inputs
                    .get(1)
                    .and_then(|x| init.get(x))
                    .ok_or_else(|| unsupported("weights are not an initializer"))?;
                let bv = n
                    .inputs
                    .get(2)
                    .and_then(|x| init.get(x))
                    .ok_or_else(|| unsupported("a Gemm needs a bias initializer"))?;
                let name = if n.name.is_empty() { format!("gemm{i}") } else { n.name.clone() };
                tensors.insert(format!("{name}.weight"), wv.clone());
                tensors.insert(format!("{name}.bias"), bv.clone());
                Node::Dense { name, input: get(0)?, out: wv.0[0] }
            }
            "Softmax" if i + 1 == nodes.len() => {
                eprintln!("note: the trailing Softmax of the ONNX graph is dropped (pare's models end in logits)");
                continue;
            }
            "Relu" => return Err(unsupported("a Relu not after a conv's BatchNormalization or an Add")),
            _ => return Err(unsupported("this op is not supported")),
        };
        arch.nodes.push(node);
        src.insert(out, Src::Node(arch.nodes.len() - 1));
    }
    let classes = match arch.nodes.last() {
        Some(Node::Dense { out, .. }) => *out,
        _ => return Err(OnnxError::Graph("the graph must end in a Gemm classifier (then an optional Softmax)".into())),
    };
    arch.labels = (0..classes).map(|i| format!("class{i}")).collect();
    arch.shapes().map_err(OnnxError::Graph)?;
    Ok((arch, tensors))
}
