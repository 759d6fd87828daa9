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
    tensors: BTreeMap<String, Const>,
    strings: BTreeMap<String, String>,
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
        tensors: BTreeMap::new(),
        strings: BTreeMap::new(),
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
            n.floats.insert(name.clone(), f32::from_bits(x));
        }
        if let Some(t) = msgs(&af, 5).first() {
            n.tensors.insert(name.clone(), parse_any(t)?.1);
        }
        if let Some(text) = strs(&af, 4).first() {
            n.strings.insert(name, text.clone());
        }
    }
    Ok(n)
}

/// A tensor of any numeric type as f64 values (integers exact to 2^53): constants and the
/// integer subgraphs exporters compute shapes and pads with.
#[derive(Debug, Clone, PartialEq)]
struct Const {
    dims: Vec<usize>,
    v: Vec<f64>,
}

fn parse_any(b: &[u8]) -> Result<(String, Const), OnnxError> {
    let f = fields(b)?;
    let name = strs(&f, 8).concat();
    let dims: Vec<usize> = ints(&f, 1).iter().map(|&d| d.max(0) as usize).collect();
    let dtype = ints(&f, 2).first().copied().unwrap_or(0);
    let raw = msgs(&f, 9).first().copied();
    let v: Vec<f64> = match (dtype, raw) {
        (1, Some(r)) => r.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        (7, Some(r)) => r
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64)
            .collect(),
        (6, Some(r)) => r.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        (1, None) => parse_tensor(b)?.2.iter().map(|&x| f64::from(x)).collect(),
        (7, None) => ints(&f, 7).iter().map(|&x| x as f64).collect(),
        (6, None) => ints(&f, 5).iter().map(|&x| x as f64).collect(),
        _ => return Err(OnnxError::Graph(format!("tensor `{name}`: data type {dtype} is not supported"))),
    };
    if v.len() != dims.iter().product::<usize>() {
        return Err(OnnxError::Graph(format!("tensor `{name}`: {} values for shape {dims:?}", v.len())));
    }
    Ok((name, Const { dims, v }))
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Evaluates a node whose inputs are all constants: the integer subgraphs exporters emit for
/// shapes and pads (PyTorch computes `F.pad`'s amounts this way). `None`: not foldable.
fn eval(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    let scalar = |x: f64| Const { dims: vec![], v: vec![x] };
    let arg = |i: usize| c.get(i).copied();
    let list = |i: usize| arg(i).map(|t| t.v.iter().map(|&x| x as i64).collect::<Vec<i64>>());
    Some(match n.op.as_str() {
        "Constant" => {
            n.tensors.get("value").cloned().or_else(|| n.floats.get("value_float").map(|&x| scalar(f64::from(x))))?
        }
        "Identity" | "Cast" => arg(0)?.clone(),
        "Shape" => {
            let t = arg(0)?;
            Const { dims: vec![t.dims.len()], v: t.dims.iter().map(|&d| d as f64).collect() }
        }
        "ConstantOfShape" => {
            let dims: Vec<usize> = arg(0)?.v.iter().map(|&x| x.max(0.0) as usize).collect();
            let fill = n.tensors.get("value").and_then(|t| t.v.first().copied()).unwrap_or(0.0);
            Const { v: vec![fill; dims.iter().product()], dims }
        }
        "Concat" => {
            let v: Vec<f64> = c.iter().flat_map(|t| t.v.iter().copied()).collect();
            (c.iter().all(|t| t.dims.len() <= 1)).then_some(())?;
            Const { dims: vec![v.len()], v }
        }
        "Reshape" => {
            let t = arg(0)?;
            let want = list(1)?;
            let known: usize = want
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if d == 0 {
                        t.dims.get(i).copied().unwrap_or(1)
                    } else if d < 0 {
                        1
                    } else {
                        d as usize
                    }
                })
                .product();
            let dims: Vec<usize> = want
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if d == 0 {
                        t.dims.get(i).copied().unwrap_or(1)
                    } else if d < 0 {
                        t.v.len() / known.max(1)
                    } else {
                        d as usize
                    }
                })
                .collect();
            (dims.iter().product::<usize>() == t.v.len()).then_some(())?;
            Const { dims, v: t.v.clone() }
        }
        "Unsqueeze" => {
            let t = arg(0)?;
            let mut axes = n.ints.get("axes").cloned().or_else(|| list(1))?;
            let rank = (t.dims.len() + axes.len()) as i64;
            axes.iter_mut().for_each(|a| *a = if *a < 0 { *a + rank } else { *a });
            axes.sort();
            let mut dims = t.dims.clone();
            for a in axes {
                dims.insert((a as usize).min(dims.len()), 1);
            }
            Const { dims, v: t.v.clone() }
        }
        "Gather" => {
            let (t, idx) = (arg(0)?, arg(1)?);
            (t.dims.len() == 1 && n.ints.get("axis").is_none_or(|a| a == &[0])).then_some(())?;
            let v: Vec<f64> = idx
                .v
                .iter()
                .map(|&i| {
                    let i = if i < 0.0 { i + t.v.len() as f64 } else { i };
                    t.v.get(i as usize).copied()
                })
                .collect::<Option<_>>()?;
            Const { dims: idx.dims.clone(), v }
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let (a, b) = (arg(0)?, arg(1)?);
            let (long, n_out) = if a.v.len() >= b.v.len() { (a, a.v.len()) } else { (b, b.v.len()) };
            ((a.v.len() == n_out || a.v.len() == 1) && (b.v.len() == n_out || b.v.len() == 1)).then_some(())?;
            let at = |t: &Const, i: usize| if t.v.len() == 1 { t.v[0] } else { t.v[i] };
            let v = (0..n_out)
                .map(|i| {
                    let (x, y) = (at(a, i), at(b, i));
                    match n.op.as_str() {
                        "Add" => x + y,
                        "Sub" => x - y,
                        "Mul" => x * y,
                        _ => (x / y).trunc(),
                    }
                })
                .collect();
            Const { dims: long.dims.clone(), v }
        }
        "Transpose" => {
            let t = arg(0)?;
            let perm: Vec<usize> = n
                .ints
                .get("perm")
                .map_or_else(|| (0..t.dims.len()).rev().collect(), |p| p.iter().map(|&x| x as usize).collect());
            let dims: Vec<usize> = perm.iter().map(|&p| t.dims.get(p).copied()).collect::<Option<_>>()?;
            let (src_st, out_st) = (strides(&t.dims), strides(&dims));
            let mut v = vec![0.0; t.v.len()];
            for (o, slot) in v.iter_mut().enumerate() {
                let mut from = 0;
                for (k, &p) in perm.iter().enumerate() {
                    from += (o / out_st[k] % dims[k]) * src_st[p];
                }
                *slot = t.v[from];
            }
            Const { dims, v }
        }
        "Slice" => {
            let t = arg(0)?;
            let (starts, ends) = (list(1)?, list(2)?);
            let rank = t.dims.len() as i64;
            let axes = list(3).unwrap_or_else(|| (0..starts.len() as i64).collect());
            let steps = list(4).unwrap_or_else(|| vec![1; starts.len()]);
            // Per axis: the indices kept (numpy semantics, negative steps included).
            let mut keep: Vec<Vec<usize>> = t.dims.iter().map(|&d| (0..d).collect()).collect();
            for (((&s, &e), &a), &st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
                let a = if a < 0 { a + rank } else { a } as usize;
                let d = *t.dims.get(a)? as i64;
                (st != 0).then_some(())?;
                let clamp = |x: i64, lo: i64, hi: i64| if x < 0 { (x + d).max(lo) } else { x.min(hi) };
                let idx: Vec<usize> = if st > 0 {
                    let (s, e) = (clamp(s, 0, d), clamp(e, 0, d));
                    (s..e).step_by(st as usize).map(|i| i as usize).collect()
                } else {
                    let (s, e) = (clamp(s, -1, d - 1), clamp(e, -1, d - 1));
                    let mut v = vec![];
                    let mut i = s;
                    while i > e {
                        v.push(i as usize);
                        i += st;
                    }
                    v
                };
                keep[a] = idx;
            }
            let dims: Vec<usize> = keep.iter().map(Vec::len).collect();
            let st = strides(&t.dims);
            let out_st = strides(&dims);
            let total: usize = dims.iter().product();
            let v = (0..total)
                .map(|o| (0..dims.len()).map(|k| keep[k][o / out_st[k] % dims[k]] * st[k]).sum::<usize>())
                .map(|i| t.v[i])
                .collect();
            Const { dims, v }
        }
        _ => return None,
    })
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
    // Every initializer as a constant too (integer ones feed shape and pad subgraphs).
    let mut consts: BTreeMap<String, Const> = BTreeMap::new();
    for t in msgs(&graph, 5) {
        let (name, c) = parse_any(t)?;
        if let Ok((_, dims, values)) = parse_tensor(t) {
            init.insert(name.clone(), (dims, values));
        }
        consts.insert(name, c);
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
    // Activations subsampled by Slice nodes (steps on H/W) waiting for their Pad: value name →
    // (source, stride along H, stride along W).
    let mut pending: BTreeMap<String, (Src, usize, usize)> = BTreeMap::new();
    // Activations zero-padded in height/width by a Pad node, for the conv after it to absorb:
    // value name → (source, [top, left, bottom, right]).
    let mut spatial: BTreeMap<String, (Src, [usize; 4])> = BTreeMap::new();
    let consumers = |name: &str| -> Vec<usize> {
        nodes.iter().enumerate().filter(|(_, n)| n.inputs.iter().any(|i| i == name)).map(|(i, _)| i).collect()
    };
    let only_consumer = |name: &str, op: &str| -> Option<usize> {
        let c = consumers(name);
        (c.len() == 1 && nodes[c[0]].op == op).then_some(c[0])
    };
    // A Relu that alone reads `value` fuses into the node writing it: whether it did, and the
    // value the fused node now writes.
    let fuse_relu = |value: &str, used: &mut Vec<bool>| -> (bool, String) {
        match only_consumer(value, "Relu") {
            Some(ri) => {
                used[ri] = true;
                (true, nodes[ri].outputs.first().cloned().unwrap_or_default())
            }
            None => (false, value.to_string()),
        }
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
        // Input `k` of this node as an initializer, or `why` it is not supported.
        let initializer =
            |k: usize, why: &str| n.inputs.get(k).and_then(|x| init.get(x)).ok_or_else(|| unsupported(why));
        let get = |k: usize| -> Result<Src, OnnxError> {
            let x = n.inputs.get(k);
            // A spatially padded value is read only by a conv, which takes the padding over.
            let padded = x.and_then(|x| spatial.get(x)).filter(|_| n.op == "Conv").map(|(s, _)| *s);
            padded
                .or_else(|| x.and_then(|x| src.get(x)).copied())
                .ok_or_else(|| unsupported("reads a value no supported node produced (a spatial Pad must feed a Conv)"))
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
        // Constant subgraphs fold to numbers (a Shape of an activation reads its known shape).
        let ins: Option<Vec<&Const>> = n.inputs.iter().filter(|x| !x.is_empty()).map(|x| consts.get(x)).collect();
        if let Some(v) = ins.and_then(|cs| eval(n, &cs)) {
            consts.insert(out, v);
            continue;
        }
        if n.op == "Shape" {
            if let Some(&s) = n.inputs.first().and_then(|x| src.get(x)) {
                let shape = match s {
                    Src::Input => arch.input,
                    Src::Node(j) => arch.shapes_so_far().map_err(OnnxError::Graph)?[j],
                };
                consts
                    .insert(out, Const { dims: vec![4], v: vec![1.0, shape.c as f64, shape.h as f64, shape.w as f64] });
                continue;
            }
        }
        let konst = |k: usize| -> Result<Vec<i64>, OnnxError> {
            n.inputs
                .get(k)
                .and_then(|x| consts.get(x))
                .map(|c| c.v.iter().map(|&x| x as i64).collect())
                .ok_or_else(|| unsupported(&format!("input {k} is not a constant")))
        };
        let node = match n.op.as_str() {
            "Slice" => {
                // x[:, :, ::s, ::t] on an activation: a subsampling, placed by the Pad after it.
                let data = n.inputs.first().cloned().unwrap_or_default();
                let (base, mut sh, mut sw) = match (pending.get(&data), src.get(&data)) {
                    (Some(&p), _) => p,
                    (None, Some(&s)) => (s, 1, 1),
                    _ => return Err(unsupported("slices only an activation")),
                };
                let (starts, ends, axes) = (konst(1)?, konst(2)?, konst(3)?);
                let steps = if n.inputs.len() > 4 { konst(4)? } else { vec![1; axes.len()] };
                for (((&s, &e), &a), &st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
                    let whole = s == 0 && e >= i64::from(i32::MAX);
                    match (a, whole, st) {
                        (2 | -2, true, 1..) => sh *= st as usize,
                        (3 | -1, true, 1..) => sw *= st as usize,
                        _ => {
                            return Err(unsupported(
                                "only whole-axis strided slices of height and width (x[:, :, ::s, ::s]) are supported",
                            ))
                        }
                    }
                }
                pending.insert(out, (base, sh, sw));
                continue;
            }
            "Pad" => {
                // Zero channels on both sides of a (subsampled) activation: a channel placement.
                let data = n.inputs.first().cloned().unwrap_or_default();
                let (base, sh, sw) = match (pending.get(&data), src.get(&data)) {
                    (Some(&p), _) => p,
                    (None, Some(&s)) => (s, 1, 1),
                    _ => return Err(unsupported("pads only an activation")),
                };
                let pads = konst(1)?;
                let value = if n.inputs.len() > 2 && !n.inputs[2].is_empty() { konst(2)? } else { vec![0] };
                let mode = n.strings.get("mode").map_or("constant", String::as_str);
                if let [0, 0, t, l, 0, 0, b, r] = pads[..] {
                    if (sh, sw) != (1, 1)
                        || [t, l, b, r].iter().any(|&x| x < 0)
                        || value.iter().any(|&v| v != 0)
                        || mode != "constant"
                    {
                        return Err(unsupported("only constant-zero height/width padding is supported"));
                    }
                    spatial.insert(out, (base, [t as usize, l as usize, b as usize, r as usize]));
                    continue;
                }
                let [0, c0, 0, 0, 0, c1, 0, 0] = pads[..] else {
                    return Err(unsupported(
                        "only zero padding of the channel axis, or of height and width before a conv, is supported",
                    ));
                };
                if mode != "constant" || value.iter().any(|&v| v != 0) || sh != sw || c0 < 0 || c1 < 0 {
                    return Err(unsupported(
                        "only constant-zero channel padding after an equal H/W subsampling is supported",
                    ));
                }
                let ci = match base {
                    Src::Input => arch.input.c,
                    Src::Node(j) => arch.shapes_so_far().map_err(OnnxError::Graph)?[j].c,
                };
                let (c0, c1) = (c0 as usize, c1 as usize);
                Node::ChannelPlace {
                    input: base,
                    stride: sh,
                    out: ci + c0 + c1,
                    channels: (0..ci).map(|c| Some(c + c0)).collect(),
                }
            }
            "Conv" => {
                let (wshape, w) = initializer(1, "weights are not an initializer")?;
                let bias = n
                    .inputs
                    .get(2)
                    .filter(|b| !b.is_empty())
                    .map(|b| init.get(b).ok_or_else(|| unsupported("the bias is not an initializer")))
                    .transpose()?;
                if n.ints.get("group").is_some_and(|g| g.first() != Some(&1))
                    || n.ints.get("dilations").is_some_and(|d| d.iter().any(|&x| x != 1))
                {
                    return Err(unsupported("grouped or dilated convs are not supported"));
                }
                let (k, s) =
                    (single("kernel_shape", wshape.get(2).copied().unwrap_or(1) as i64)?, single("strides", 1)?);
                // [top, left, bottom, right]: the conv's own pads plus a Pad node before it.
                let own: [usize; 4] = match n.ints.get("pads").map(Vec::as_slice) {
                    None => [0; 4],
                    Some(&[t, l, b, r]) if t >= 0 && l >= 0 && b >= 0 && r >= 0 => {
                        [t as usize, l as usize, b as usize, r as usize]
                    }
                    Some(_) => return Err(unsupported("pads must be four non-negative values")),
                };
                let before = n.inputs.first().and_then(|x| spatial.get(x)).map_or([0; 4], |(_, p)| *p);
                let pads4: [usize; 4] = [0, 1, 2, 3].map(|i| own[i] + before[i]);
                let p = pads4[0] as i64;
                let uneven = pads4.iter().any(|&x| x != pads4[0]);
                let conv_pads = uneven.then_some(pads4);
                let [o, ci] = [wshape[0], wshape.get(1).copied().unwrap_or(0)];
                let bn_next = only_consumer(&out, "BatchNormalization");
                if bias.is_some() && bn_next.is_some() {
                    return Err(unsupported("a conv with both a bias and a BatchNormalization"));
                }
                let one_hot = bias.is_none()
                    && k == 1
                    && pads4 == [0; 4]
                    && w.iter().all(|&x| x == 0.0 || x == 1.0)
                    && (0..ci).all(|c| (0..o).filter(|&q| w[q * ci + c] != 0.0).count() <= 1);
                if bn_next.is_none() && one_hot {
                    // A bias-free one-hot 1×1 conv: a channel placement.
                    let channels = (0..ci).map(|c| (0..o).find(|&q| w[q * ci + c] == 1.0)).collect();
                    Node::ChannelPlace { input: get(0)?, stride: s as usize, out: o, channels }
                } else {
                    let name = if n.name.is_empty() { format!("conv{i}") } else { n.name.clone() };
                    tensors.insert(format!("{name}.weight"), (wshape.clone(), w.clone()));
                    // The BatchNorm after the conv, and the value it writes.
                    let (bn, bn_out) = match bn_next {
                        Some(bi) => {
                            let b = &nodes[bi];
                            // pare's BatchNorm adds ε = 1e-5 to the variance: another ε moves
                            // into the stored variance (σ² + ε − 1e-5), the same normalisation.
                            let eps = f64::from(b.floats.get("epsilon").copied().unwrap_or(1e-5));
                            used[bi] = true;
                            let bn = if b.name.is_empty() { format!("bn{bi}") } else { b.name.clone() };
                            for (j, p) in ["weight", "bias", "running_mean", "running_var"].iter().enumerate() {
                                let v = b
                                    .inputs
                                    .get(j + 1)
                                    .and_then(|x| init.get(x))
                                    .ok_or_else(|| unsupported("BatchNorm parameters are not initializers"))?;
                                let mut v = v.clone();
                                if *p == "running_var" && (eps - 1e-5).abs() > 1e-12 {
                                    for x in &mut v.1 {
                                        *x = (f64::from(*x) + eps - 1e-5) as f32;
                                    }
                                    if v.1.iter().any(|&x| x < 0.0) {
                                        return Err(unsupported(
                                            "epsilon below 1e-5 with a variance that would turn negative",
                                        ));
                                    }
                                }
                                tensors.insert(format!("{bn}.{p}"), v);
                            }
                            (bn, b.outputs.first().cloned().unwrap_or_default())
                        }
                        None => {
                            // A plain conv (PyTorch folds BatchNorm into the conv's bias on
                            // export): an identity BatchNorm carrying the bias (γ 1, μ 0,
                            // σ² 1 − ε).
                            let bn = format!("{name}.bn");
                            let b = bias.map_or_else(|| vec![0.0; o], |b| b.1.clone());
                            tensors.insert(format!("{bn}.weight"), (vec![o], vec![1.0; o]));
                            tensors.insert(format!("{bn}.bias"), (vec![o], b));
                            tensors.insert(format!("{bn}.running_mean"), (vec![o], vec![0.0; o]));
                            tensors.insert(format!("{bn}.running_var"), (vec![o], vec![1.0 - 1e-5; o]));
                            (bn, out.clone())
                        }
                    };
                    let (relu, last) = fuse_relu(&bn_out, &mut used);
                    arch.nodes.push(Node::Conv {
                        name,
                        bn,
                        input: get(0)?,
                        out: o,
                        kernel: k as usize,
                        stride: s as usize,
                        padding: p as usize,
                        relu,
                        pads: conv_pads,
                    });
                    src.insert(last, Src::Node(arch.nodes.len() - 1));
                    continue;
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
                let (relu, last) = fuse_relu(&out, &mut used);
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
                let wv = initializer(1, "weights are not an initializer")?;
                let bv = initializer(2, "a Gemm needs a bias initializer")?;
                let name = if n.name.is_empty() { format!("gemm{i}") } else { n.name.clone() };
                tensors.insert(format!("{name}.weight"), wv.clone());
                tensors.insert(format!("{name}.bias"), bv.clone());
                Node::Dense { name, input: get(0)?, out: wv.0[0] }
            }
            "MatMul" => {
                // x · W (W: [in, out]) and an optional Add of a bias initializer: a classifier.
                let (ws, w) = initializer(1, "the right operand is not an initializer")?;
                let [cin, co] = ws[..] else { return Err(unsupported("the weight is not a matrix")) };
                let wt: Vec<f32> =
                    (0..co).flat_map(|o| (0..cin).map(move |c| (o, c))).map(|(o, c)| w[c * co + o]).collect();
                let mut last = out.clone();
                let mut bias = vec![0.0; co];
                if let Some(ai) = only_consumer(&out, "Add") {
                    let other = nodes[ai].inputs.iter().find(|x| **x != out).and_then(|x| init.get(x));
                    if let Some((_, b)) = other.filter(|(_, b)| b.len() == co) {
                        bias.clone_from(b);
                        used[ai] = true;
                        last = nodes[ai].outputs.first().cloned().unwrap_or_default();
                    }
                }
                let name = if n.name.is_empty() { format!("matmul{i}") } else { n.name.clone() };
                tensors.insert(format!("{name}.weight"), (vec![co, cin], wt));
                tensors.insert(format!("{name}.bias"), (vec![co], bias));
                arch.nodes.push(Node::Dense { name, input: get(0)?, out: co });
                src.insert(last, Src::Node(arch.nodes.len() - 1));
                continue;
            }
            "Softmax" if i + 1 == nodes.len() => {
                crate::say!("note: the trailing Softmax of the ONNX graph is dropped (pare's models end in logits)");
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
