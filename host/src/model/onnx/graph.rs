//! The ONNX graph mapped onto pare's architecture, one op at a time. Supported:
//! Conv (square kernel, equal strides, any non-negative pads or `auto_pad`; a bias, folded into
//! the BatchNormalization after it when there is one) → BatchNormalization → optional Relu as
//! one conv node; a bias-free 1×1 Conv whose kernel is one-hot per input channel as a channel
//! placement (what `pare export --format onnx` writes for option-A shortcuts); MaxPool and
//! AveragePool (`ceil_mode` where it does not change the output size, symmetric pads for max,
//! none for average); GlobalAveragePool and ReduceMean over height and width; Add (optional
//! Relu); Flatten or Reshape to `(N, -1)` of any map, Squeeze of a 1×1 map, then dense layers:
//! Gemm (any `alpha`, `beta`, `transB`) or MatMul (+ Add), a Relu after each but the classifier
//! (an MLP head); Identity and Dropout pass through, a trailing Softmax is dropped; constant subgraphs fold. [`ATTRIBUTES`] lists what each op may carry;
//! anything else is refused before any work, naming the op, the node and its position.

use super::fold::eval;
use super::proto::{fields, ints, msgs, parse_const, parse_node, strs, Attr, Const, DataDir, OnnxNode};
use super::OnnxError;
use crate::model::{weights, Arch, Node, Shape, Src};
use std::collections::BTreeMap;
use std::path::Path;

/// The attributes each op may carry; any other attribute is refused by name. Each listed one is
/// read and either honoured or refused by value in the op's mapping below (or, for the ops of
/// constant subgraphs, in [`super::fold`]).
pub const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("Conv", &["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"]),
    ("BatchNormalization", &["epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs"]),
    ("Relu", &[]),
    ("MaxPool", &["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"]),
    ("AveragePool", &["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"]),
    ("GlobalAveragePool", &[]),
    ("ReduceMean", &["axes", "keepdims", "noop_with_empty_axes"]),
    ("Add", &[]),
    ("Flatten", &["axis"]),
    ("Reshape", &["allowzero"]),
    ("Squeeze", &["axes"]),
    ("Unsqueeze", &["axes"]),
    ("Identity", &[]),
    ("Dropout", &["ratio", "seed", "is_test"]),
    ("Gemm", &["alpha", "beta", "transA", "transB", "broadcast"]),
    ("MatMul", &[]),
    ("Softmax", &["axis"]),
    ("Slice", &[]),
    ("Pad", &["mode"]),
    ("Constant", &["value", "value_float", "value_int", "value_floats", "value_ints"]),
    ("ConstantOfShape", &["value"]),
    ("Shape", &[]),
    ("Gather", &["axis"]),
    ("Concat", &["axis"]),
    ("Transpose", &["perm"]),
    ("Cast", &["to", "saturate"]),
    ("Sub", &[]),
    ("Mul", &[]),
    ("Div", &[]),
];

/// Input height, width and channels above this are refused (a crafted file cannot ask for a
/// terabyte of activations).
const MAX_INPUT_DIM: usize = 1 << 14;
/// Kernel sizes, strides and pads above this are refused.
const MAX_WINDOW: i64 = 1 << 12;
/// The most values one activation may hold (256 MiB of f32 per image).
const MAX_ACTIVATION: usize = 1 << 26;

/// The importer's state while it walks the graph in order.
struct Importer<'a> {
    nodes: &'a [OnnxNode],
    /// Initializers and folded constants by value name.
    consts: BTreeMap<String, Const>,
    /// Which pare source each ONNX activation name is.
    src: BTreeMap<String, Src>,
    /// Nodes already consumed by an earlier mapping (a conv's BatchNorm and Relu, …).
    used: Vec<bool>,
    /// Activations subsampled by Slice nodes (steps on H/W) waiting for their Pad: value →
    /// (source, stride along H, stride along W).
    pending: BTreeMap<String, (Src, usize, usize)>,
    /// Activations zero-padded in height/width by a Pad node, for the conv after it to absorb:
    /// value → (source, [top, left, bottom, right]).
    spatial: BTreeMap<String, (Src, [usize; 4])>,
    arch: Arch,
    tensors: weights::Tensors,
}

/// One node being mapped: its position and contents, for error messages.
struct At<'a> {
    i: usize,
    n: &'a OnnxNode,
}

impl At<'_> {
    fn refuse(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            index: self.i,
            name: self.n.name.clone(),
            op: self.n.op.clone(),
            reason: reason.into(),
        }
    }

    /// `attribute `key` = value: why`, for a value the importer does not implement.
    fn refuse_attr(&self, key: &str, why: &str) -> OnnxError {
        let value = self.n.attrs.get(key).map_or_else(|| "(absent)".to_string(), Attr::to_string);
        self.refuse(format!("attribute `{key}` = {value}: {why}"))
    }

    fn int(&self, key: &str, default: i64) -> Result<i64, OnnxError> {
        self.n.int(key, default).map_err(|e| self.refuse(e))
    }

    fn float(&self, key: &str, default: f32) -> Result<f32, OnnxError> {
        self.n.float(key, default).map_err(|e| self.refuse(e))
    }

    fn string(&self, key: &str, default: &'static str) -> Result<String, OnnxError> {
        self.n.string(key, default).map(str::to_string).map_err(|e| self.refuse(e))
    }

    /// A per-axis attribute for height and width (`[h, w]`), `default` when absent; values
    /// must be equal (pare's windows are square) and within `lo..=MAX_WINDOW`.
    fn square(&self, key: &str, default: i64, lo: i64) -> Result<usize, OnnxError> {
        match self.n.ints(key).map_err(|e| self.refuse(e))?.as_deref() {
            None => Ok(default as usize),
            Some(&[a, b]) if a == b && (lo..=MAX_WINDOW).contains(&a) => Ok(a as usize),
            Some(&[a, b]) if a == b => Err(self.refuse_attr(key, &format!("must lie in {lo}..={MAX_WINDOW}"))),
            Some(_) => Err(self.refuse_attr(key, "height and width differ (or not two values)")),
        }
    }

    /// `dilations` must be all 1: pare's convolutions and pools are not dilated.
    fn no_dilation(&self) -> Result<(), OnnxError> {
        match self.n.ints("dilations").map_err(|e| self.refuse(e))? {
            Some(d) if d.iter().any(|&x| x != 1) => {
                Err(self.refuse_attr("dilations", "dilated windows are not supported"))
            }
            _ => Ok(()),
        }
    }

    /// The explicit `pads` as `[top, left, bottom, right]` (ONNX writes begins then ends).
    fn pads(&self) -> Result<[usize; 4], OnnxError> {
        match self.n.ints("pads").map_err(|e| self.refuse(e))?.as_deref() {
            None => Ok([0; 4]),
            Some(&[t, l, b, r]) if [t, l, b, r].iter().all(|x| (0..=MAX_WINDOW).contains(x)) => {
                Ok([t as usize, l as usize, b as usize, r as usize])
            }
            Some(_) => Err(self.refuse_attr("pads", &format!("must be four values in 0..={MAX_WINDOW}"))),
        }
    }

    /// The padding `[top, left, bottom, right]` of a window `k`/`s` over a `h`×`w` input from
    /// `auto_pad` and `pads` (only one of them may be given).
    fn window_pads(&self, k: usize, s: usize, h: usize, w: usize) -> Result<[usize; 4], OnnxError> {
        let mode = self.string("auto_pad", "NOTSET")?;
        if mode != "NOTSET" && self.n.attrs.contains_key("pads") {
            return Err(self.refuse_attr("pads", "given together with auto_pad"));
        }
        // SAME: the output is ceil(n / s); the padding it takes, split with the odd unit at the
        // end (UPPER) or at the beginning (LOWER).
        let same = |n: usize, upper: bool| -> (usize, usize) {
            let total = ((n.div_ceil(s) - 1) * s + k).saturating_sub(n);
            let small = total / 2;
            if upper {
                (small, total - small)
            } else {
                (total - small, small)
            }
        };
        match mode.as_str() {
            "NOTSET" => self.pads(),
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let upper = mode == "SAME_UPPER";
                let ((t, b), (l, r)) = (same(h, upper), same(w, upper));
                Ok([t, l, b, r])
            }
            _ => Err(self.refuse_attr("auto_pad", "unknown mode")),
        }
    }
}

/// Output size of a window `k`/`s` with padding `p` on each side over `n`, rounding down
/// (`ceil = false`) or up as ONNX and PyTorch do with `ceil_mode` (the last window must start
/// inside the input or its left padding).
fn pooled(n: usize, k: usize, s: usize, p: usize, ceil: bool) -> Option<usize> {
    let span = (n + 2 * p).checked_sub(k)?;
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    Some(out)
}

/// The architecture and pare-named weights of ONNX `bytes`; external data files are read from
/// `dir` (the model's folder), and refused without one.
pub(super) fn map(bytes: &[u8], dir: Option<&Path>) -> Result<(Arch, weights::Tensors), OnnxError> {
    let dir = DataDir(dir.map(Path::to_path_buf));
    let model = fields(bytes)?;
    let graph = fields(msgs(&model, 7).first().ok_or_else(|| OnnxError::Protobuf("no graph".into()))?)?;
    let mut meta = BTreeMap::new();
    for p in msgs(&model, 14) {
        let pf = fields(p)?;
        meta.insert(strs(&pf, 1).concat(), strs(&pf, 2).concat());
    }
    let mut consts = BTreeMap::new();
    for t in msgs(&graph, 5) {
        let (name, c) = parse_const(t, &dir)?;
        consts.insert(name, c);
    }
    let nodes: Vec<OnnxNode> = msgs(&graph, 1).into_iter().map(|b| parse_node(b, &dir)).collect::<Result<_, _>>()?;
    let (input_name, input) = graph_input(&graph, &consts)?;
    let mut arch = Arch {
        name: strs(&graph, 2).concat(),
        input,
        nodes: vec![],
        mean: vec![0.0; input.c],
        std: vec![1.0; input.c],
        labels: vec![],
    };
    normalisation(&meta, &mut arch)?;
    let mut im = Importer {
        nodes: &nodes,
        consts,
        src: BTreeMap::from([(input_name, Src::Input)]),
        used: vec![false; nodes.len()],
        pending: BTreeMap::new(),
        spatial: BTreeMap::new(),
        arch,
        tensors: weights::Tensors::new(),
    };
    for (i, n) in nodes.iter().enumerate() {
        if !im.used[i] {
            im.node(&At { i, n })?;
        }
    }
    im.finish(&graph)
}

/// The graph input that is not an initializer, and its shape (N, C, H, W with fixed C, H, W).
fn graph_input(
    graph: &[(u32, super::proto::Val<'_>)],
    consts: &BTreeMap<String, Const>,
) -> Result<(String, Shape), OnnxError> {
    let mut found = None;
    for v in msgs(graph, 11) {
        let vf = fields(v)?;
        let name = strs(&vf, 1).concat();
        if consts.contains_key(&name) {
            continue;
        }
        // ValueInfoProto.type → TypeProto.tensor_type → shape → dims (dim_value or dim_param).
        let mut dims: Vec<Option<i64>> = vec![];
        for ty in msgs(&vf, 2) {
            for tt in msgs(&fields(ty)?, 1) {
                for shape in msgs(&fields(tt)?, 2) {
                    for d in msgs(&fields(shape)?, 1) {
                        dims.push(ints(&fields(d)?, 1)?.first().copied());
                    }
                }
            }
        }
        found = Some((name, dims));
        break;
    }
    let (name, dims) = found.ok_or_else(|| OnnxError::Graph("no graph input".into()))?;
    let [_, c, h, w] = dims[..] else {
        return Err(OnnxError::Graph(format!("input `{name}` is not NCHW: {} dimensions", dims.len())));
    };
    let fixed = |d: Option<i64>, what: &str| -> Result<usize, OnnxError> {
        d.and_then(|d| usize::try_from(d).ok()).filter(|d| (1..=MAX_INPUT_DIM).contains(d)).ok_or_else(|| {
            OnnxError::Graph(format!(
                "input `{name}`: its {what} must be a fixed number in 1..={MAX_INPUT_DIM} (export with a fixed input size), is {}",
                d.map_or("symbolic".into(), |d| d.to_string())
            ))
        })
    };
    let shape = Shape { c: fixed(c, "channel count")?, h: fixed(h, "height")?, w: fixed(w, "width")? };
    Ok((name, shape))
}

/// `pare.mean` / `pare.std` metadata (written by `pare export --format onnx`): one finite
/// value per input channel, every std positive.
fn normalisation(meta: &BTreeMap<String, String>, arch: &mut Arch) -> Result<(), OnnxError> {
    let list = |k: &str| -> Result<Option<Vec<f32>>, OnnxError> {
        let Some(text) = meta.get(k) else { return Ok(None) };
        let v: Vec<f32> = text
            .split(',')
            .map(|x| x.trim().parse::<f32>().ok().filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| OnnxError::Graph(format!("metadata `{k}` = {text:?} is not a list of finite numbers")))?;
        if v.len() != arch.input.c {
            return Err(OnnxError::Graph(format!(
                "metadata `{k}` has {} values for {} channels",
                v.len(),
                arch.input.c
            )));
        }
        Ok(Some(v))
    };
    if let (Some(m), Some(s)) = (list(crate::model::MEAN_KEY)?, list(crate::model::STD_KEY)?) {
        if s.iter().any(|&x| x <= 0.0) {
            return Err(OnnxError::Graph(format!(
                "metadata `{}` has a std that is not positive",
                crate::model::STD_KEY
            )));
        }
        (arch.mean, arch.std) = (m, s);
    }
    Ok(())
}

impl Importer<'_> {
    fn consumers(&self, value: &str) -> Vec<usize> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.inputs.iter().any(|x| x == value)).map(|(i, _)| i).collect()
    }

    /// The node reading `value` when it is the only reader and an `op`.
    fn only_consumer(&self, value: &str, op: &str) -> Option<usize> {
        match self.consumers(value)[..] {
            [c] if self.nodes[c].op == op => Some(c),
            _ => None,
        }
    }

    /// A Relu that alone reads `value` fuses into the node writing it: whether it did, and the
    /// value the fused node now writes.
    fn fuse_relu(&mut self, value: &str) -> Result<(bool, String), OnnxError> {
        match self.only_consumer(value, "Relu") {
            Some(ri) => {
                let relu = At { i: ri, n: &self.nodes[ri] };
                check_attributes(&relu)?;
                self.used[ri] = true;
                Ok((true, relu.n.outputs.first().cloned().unwrap_or_default()))
            }
            None => Ok((false, value.to_string())),
        }
    }

    fn shape(&self, s: Src) -> Result<Shape, OnnxError> {
        match s {
            Src::Input => Ok(self.arch.input),
            Src::Node(j) => self
                .arch
                .shapes_so_far()
                .map_err(OnnxError::Graph)?
                .get(j)
                .copied()
                .ok_or_else(|| OnnxError::Graph(format!("node {j} has no shape"))),
        }
    }

    /// Input `k` of the node as an activation.
    fn get(&self, at: &At, k: usize) -> Result<Src, OnnxError> {
        let x = at.n.inputs.get(k);
        // A spatially padded value is read only by a conv, which takes the padding over.
        let padded = x.and_then(|x| self.spatial.get(x)).filter(|_| at.n.op == "Conv").map(|(s, _)| *s);
        padded.or_else(|| x.and_then(|x| self.src.get(x)).copied()).ok_or_else(|| {
            at.refuse(format!("input {k} is not a value a supported node produced (a spatial Pad must feed a Conv)"))
        })
    }

    /// Input `k` of the node as a constant (an initializer or a folded value).
    fn konst(&self, at: &At, k: usize, what: &str) -> Result<&Const, OnnxError> {
        at.n.inputs
            .get(k)
            .filter(|x| !x.is_empty())
            .and_then(|x| self.consts.get(x))
            .ok_or_else(|| at.refuse(format!("{what} is not a constant")))
    }

    fn ints_of(&self, at: &At, k: usize, what: &str) -> Result<Vec<i64>, OnnxError> {
        Ok(self.konst(at, k, what)?.v.iter().map(|&x| x as i64).collect())
    }

    /// Appends `node`, making it the source of `value`.
    fn push(&mut self, node: Node, value: String) {
        self.arch.nodes.push(node);
        self.src.insert(value, Src::Node(self.arch.nodes.len() - 1));
    }

    fn node(&mut self, at: &At) -> Result<(), OnnxError> {
        check_attributes(at)?;
        let n = at.n;
        let out = n.outputs.first().cloned().unwrap_or_default();
        // Constant subgraphs fold to numbers; a Shape of an activation reads its known shape.
        let ins: Option<Vec<&Const>> = n.inputs.iter().filter(|x| !x.is_empty()).map(|x| self.consts.get(x)).collect();
        if let Some(v) = ins.and_then(|cs| eval(n, &cs)) {
            self.consts.insert(out, v);
            return Ok(());
        }
        if n.op == "Shape" {
            if let Some(&s) = n.inputs.first().and_then(|x| self.src.get(x)) {
                let shape = self.shape(s)?;
                let v = vec![1.0, shape.c as f64, shape.h as f64, shape.w as f64];
                self.consts.insert(out, Const { dims: vec![4], v });
                return Ok(());
            }
        }
        match n.op.as_str() {
            "Slice" => self.slice(at, out),
            "Pad" => self.pad(at, out),
            "Conv" => self.conv(at, out),
            "MaxPool" | "AveragePool" => self.pool(at, out),
            "GlobalAveragePool" => {
                let input = self.get(at, 0)?;
                self.push(Node::GlobalAvgPool { input }, out);
                Ok(())
            }
            "ReduceMean" => self.reduce_mean(at, out),
            "Add" => {
                let (a, b) = (self.get(at, 0)?, self.get(at, 1)?);
                let (relu, last) = self.fuse_relu(&out)?;
                self.push(Node::Add { a, b, relu }, last);
                Ok(())
            }
            "Flatten" | "Reshape" | "Squeeze" => self.flatten(at, out),
            "Identity" | "Dropout" => {
                if n.outputs.iter().skip(1).any(|o| !o.is_empty() && !self.consumers(o).is_empty()) {
                    return Err(at.refuse("its mask output is used"));
                }
                let s = self.get(at, 0)?;
                self.src.insert(out, s);
                Ok(())
            }
            "Gemm" => self.gemm(at, out),
            "MatMul" => self.matmul(at, out),
            "Softmax" if at.i + 1 == self.nodes.len() => {
                crate::say!("note: the trailing Softmax of the ONNX graph is dropped (pare's models end in logits)");
                let s = self.get(at, 0)?;
                self.src.insert(out, s);
                Ok(())
            }
            "Relu" => Err(at.refuse("a Relu not after a conv's BatchNormalization, an Add or a dense layer")),
            "BatchNormalization" => Err(at.refuse("a BatchNormalization not after a Conv whose only reader it is")),
            _ => Err(at.refuse("this op is not supported")),
        }
    }

    /// `x[:, :, ::s, ::t]` on an activation: a subsampling, placed by the Pad after it.
    fn slice(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let data = at.n.inputs.first().cloned().unwrap_or_default();
        let (base, mut sh, mut sw) = match (self.pending.get(&data), self.src.get(&data)) {
            (Some(&p), _) => p,
            (None, Some(&s)) => (s, 1, 1),
            _ => return Err(at.refuse("slices only an activation")),
        };
        let (starts, ends, axes) =
            (self.ints_of(at, 1, "starts")?, self.ints_of(at, 2, "ends")?, self.ints_of(at, 3, "axes")?);
        let steps = if at.n.inputs.len() > 4 { self.ints_of(at, 4, "steps")? } else { vec![1; axes.len()] };
        if [ends.len(), axes.len(), steps.len()].iter().any(|&l| l != starts.len()) {
            return Err(at.refuse("starts, ends, axes and steps differ in length"));
        }
        for (((&s, &e), &a), &st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
            let whole = s == 0 && e >= i64::from(i32::MAX);
            match (a, whole, st) {
                (2 | -2, true, 1..=MAX_WINDOW) => sh *= st as usize,
                (3 | -1, true, 1..=MAX_WINDOW) => sw *= st as usize,
                _ => {
                    return Err(at.refuse(
                        "only whole-axis strided slices of height and width (x[:, :, ::s, ::s]) are supported",
                    ))
                }
            }
        }
        if sh.max(sw) > MAX_WINDOW as usize {
            return Err(at.refuse("subsampling stride too large"));
        }
        self.pending.insert(out, (base, sh, sw));
        Ok(())
    }

    /// Zero padding: of height and width before a conv (absorbed by it), or of channels after an
    /// equal subsampling (an option-A shortcut's channel placement).
    fn pad(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let data = at.n.inputs.first().cloned().unwrap_or_default();
        let (base, sh, sw) = match (self.pending.get(&data), self.src.get(&data)) {
            (Some(&p), _) => p,
            (None, Some(&s)) => (s, 1, 1),
            _ => return Err(at.refuse("pads only an activation")),
        };
        let pads = self.ints_of(at, 1, "pads")?;
        let value =
            if at.n.inputs.get(2).is_some_and(|x| !x.is_empty()) { self.ints_of(at, 2, "value")? } else { vec![0] };
        if at.n.inputs.get(3).is_some_and(|x| !x.is_empty()) {
            return Err(at.refuse("the axes input is not supported"));
        }
        let mode = at.string("mode", "constant")?;
        if mode != "constant" || value.iter().any(|&v| v != 0) {
            return Err(at.refuse_attr("mode", "only constant-zero padding is supported"));
        }
        if pads.iter().any(|x| !(0..=MAX_WINDOW).contains(x)) {
            return Err(at.refuse(format!("pads {pads:?} must lie in 0..={MAX_WINDOW}")));
        }
        if let [0, 0, t, l, 0, 0, b, r] = pads[..] {
            if (sh, sw) != (1, 1) {
                return Err(at.refuse("height/width padding after a subsampling is not supported"));
            }
            self.spatial.insert(out, (base, [t as usize, l as usize, b as usize, r as usize]));
            return Ok(());
        }
        let [0, c0, 0, 0, 0, c1, 0, 0] = pads[..] else {
            return Err(
                at.refuse("only zero padding of the channel axis, or of height and width before a conv, is supported")
            );
        };
        if sh != sw {
            return Err(at.refuse("channel padding after an unequal H/W subsampling is not supported"));
        }
        let ci = self.shape(base)?.c;
        let (c0, c1) = (c0 as usize, c1 as usize);
        let node = Node::ChannelPlace {
            input: base,
            stride: sh,
            out: ci + c0 + c1,
            channels: (0..ci).map(|c| Some(c + c0)).collect(),
        };
        self.push(node, out);
        Ok(())
    }

    fn conv(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let n = at.n;
        let weight = self.konst(at, 1, "the weight")?;
        let (wshape, w) = (weight.dims.clone(), weight.f32());
        let [o, ci, kh, kw] = wshape[..] else {
            return Err(at.refuse(format!("the weight has shape {wshape:?}, not [out, in, kh, kw] (2-D convs only)")));
        };
        if kh != kw || kh == 0 || kh > MAX_WINDOW as usize || o == 0 {
            return Err(
                at.refuse(format!("the weight has shape {wshape:?}: pare's kernels are square, 1..={MAX_WINDOW}"))
            );
        }
        let bias = match n.inputs.get(2).filter(|b| !b.is_empty()) {
            None => None,
            Some(_) => {
                let b = self.konst(at, 2, "the bias")?;
                if b.v.len() != o {
                    return Err(at.refuse(format!("the bias has {} values for {o} output channels", b.v.len())));
                }
                Some(b.f32())
            }
        };
        if at.int("group", 1)? != 1 {
            return Err(at.refuse_attr("group", "grouped and depthwise convolutions are not supported"));
        }
        at.no_dilation()?;
        if at.square("kernel_shape", kh as i64, 1)? != kh {
            return Err(at.refuse_attr("kernel_shape", &format!("differs from the weight's {kh}×{kw}")));
        }
        let s = at.square("strides", 1, 1)?;
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        if x.c != ci {
            return Err(at.refuse(format!("the weight reads {ci} input channels, the input has {}", x.c)));
        }
        // A Pad node before the conv, then the conv's own padding (auto_pad sees the padded size).
        let before = n.inputs.first().and_then(|x| self.spatial.get(x)).map_or([0; 4], |(_, p)| *p);
        let own = at.window_pads(kh, s, x.h + before[0] + before[2], x.w + before[1] + before[3])?;
        let pads4: [usize; 4] = [0, 1, 2, 3].map(|k| own[k] + before[k]);
        if pads4.iter().any(|&p| p >= kh) {
            return Err(at.refuse_attr(
                "pads",
                &format!(
                    "padding {pads4:?} reaches the kernel size {kh}: whole windows in the padding are not supported"
                ),
            ));
        }
        let conv_pads = pads4.iter().any(|&p| p != pads4[0]).then_some(pads4);
        let bn_next = self.only_consumer(&out, "BatchNormalization");
        let one_hot = bias.is_none()
            && kh == 1
            && pads4 == [0; 4]
            && w.iter().all(|&x| x == 0.0 || x == 1.0)
            && (0..ci).all(|c| (0..o).filter(|&q| w[q * ci + c] != 0.0).count() <= 1);
        if bn_next.is_none() && one_hot {
            // A bias-free one-hot 1×1 conv: a channel placement.
            let channels = (0..ci).map(|c| (0..o).find(|&q| w[q * ci + c] == 1.0)).collect();
            self.push(Node::ChannelPlace { input, stride: s, out: o, channels }, out);
            return Ok(());
        }
        let name = if n.name.is_empty() { format!("conv{}", at.i) } else { n.name.clone() };
        self.tensors.insert(format!("{name}.weight"), (wshape.clone(), w));
        let (bn, bn_out) = match bn_next {
            Some(bi) => self.batch_norm(bi, o, bias.as_deref())?,
            None => {
                // A plain conv (PyTorch folds BatchNorm into the conv's bias on export): an
                // identity BatchNorm carrying the bias (γ 1, μ 0, σ² 1 − ε).
                let bn = format!("{name}.bn");
                let b = bias.unwrap_or_else(|| vec![0.0; o]);
                self.tensors.insert(format!("{bn}.weight"), (vec![o], vec![1.0; o]));
                self.tensors.insert(format!("{bn}.bias"), (vec![o], b));
                self.tensors.insert(format!("{bn}.running_mean"), (vec![o], vec![0.0; o]));
                self.tensors.insert(format!("{bn}.running_var"), (vec![o], vec![1.0 - 1e-5; o]));
                (bn, out)
            }
        };
        let (relu, last) = self.fuse_relu(&bn_out)?;
        let node =
            Node::Conv { name, bn, input, out: o, kernel: kh, stride: s, padding: pads4[0], relu, pads: conv_pads };
        self.push(node, last);
        Ok(())
    }

    /// The BatchNormalization node `bi` after a conv of `o` channels with an optional `bias`
    /// (folded into the running mean: BN(z + b) has mean μ − b): its pare name and output.
    fn batch_norm(&mut self, bi: usize, o: usize, bias: Option<&[f32]>) -> Result<(String, String), OnnxError> {
        let at = At { i: bi, n: &self.nodes[bi] };
        check_attributes(&at)?;
        if at.int("training_mode", 0)? != 0 {
            return Err(at.refuse_attr("training_mode", "only inference-mode batch norm is supported"));
        }
        if at.int("spatial", 1)? != 1 {
            return Err(at.refuse_attr("spatial", "per-activation batch norm is not supported"));
        }
        if at.n.outputs.iter().skip(1).any(|x| !x.is_empty()) {
            return Err(at.refuse("its running-statistics outputs are used (training mode)"));
        }
        // pare's BatchNorm adds ε = 1e-5 to the variance: another ε moves into the stored
        // variance (σ² + ε − 1e-5), the same normalisation.
        let eps = f64::from(at.float("epsilon", 1e-5)?);
        if !eps.is_finite() || eps < 0.0 {
            return Err(at.refuse_attr("epsilon", "must be a finite non-negative number"));
        }
        let bn = if at.n.name.is_empty() { format!("bn{bi}") } else { at.n.name.clone() };
        for (j, p) in ["weight", "bias", "running_mean", "running_var"].iter().enumerate() {
            let mut v = self.konst(&at, j + 1, &format!("the {p}"))?.f32();
            if v.len() != o {
                return Err(at.refuse(format!("the {p} has {} values for the conv's {o} channels", v.len())));
            }
            if *p == "running_var" {
                for x in &mut v {
                    *x = (f64::from(*x) + eps - 1e-5) as f32;
                }
                if v.iter().any(|&x| x < 0.0 || !x.is_finite()) {
                    return Err(at.refuse("a variance that is negative (or turns negative with ε below 1e-5)"));
                }
            }
            if *p == "running_mean" {
                if let Some(b) = bias {
                    v.iter_mut().zip(b).for_each(|(m, b)| *m -= b);
                }
            }
            self.tensors.insert(format!("{bn}.{p}"), (vec![o], v));
        }
        self.used[bi] = true;
        Ok((bn, at.n.outputs.first().cloned().unwrap_or_default()))
    }

    fn pool(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let max = at.n.op == "MaxPool";
        if at.n.outputs.iter().skip(1).any(|x| !x.is_empty()) {
            return Err(at.refuse("the Indices output is not supported"));
        }
        if !at.n.attrs.contains_key("kernel_shape") {
            return Err(at.refuse("no kernel_shape"));
        }
        let k = at.square("kernel_shape", 1, 1)?;
        // ONNX's default stride is 1 (PyTorch writes the kernel size explicitly).
        let s = at.square("strides", 1, 1)?;
        at.no_dilation()?;
        // storage_order only orders the Indices output, refused above; count_include_pad only
        // matters with padding, which average pools refuse below.
        let storage = at.int("storage_order", 0)?;
        let count_pad = at.int("count_include_pad", 0)?;
        if !(0..=1).contains(&storage) || !(0..=1).contains(&count_pad) {
            return Err(at.refuse("storage_order and count_include_pad must be 0 or 1"));
        }
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        let [t, l, b, r] = at.window_pads(k, s, x.h, x.w)?;
        let p = t;
        if [l, b, r].iter().any(|&q| q != p) {
            return Err(at.refuse_attr(
                if at.n.attrs.contains_key("pads") { "pads" } else { "auto_pad" },
                &format!("asymmetric padding [{t}, {l}, {b}, {r}] of a pool is not supported"),
            ));
        }
        if !max && p != 0 {
            return Err(at.refuse_attr(
                if at.n.attrs.contains_key("pads") { "pads" } else { "auto_pad" },
                "padded average pools are not supported",
            ));
        }
        if max && p > 0 && 2 * p >= k {
            return Err(at.refuse_attr("pads", "padding of half the kernel or more leaves windows wholly outside"));
        }
        match at.int("ceil_mode", 0)? {
            0 => {}
            1 => {
                let same = |n: usize| pooled(n, k, s, p, true) == pooled(n, k, s, p, false);
                if !(same(x.h) && same(x.w)) {
                    return Err(at.refuse_attr(
                        "ceil_mode",
                        &format!("rounding up changes the output size over this {}×{} input (not supported)", x.h, x.w),
                    ));
                }
            }
            _ => return Err(at.refuse_attr("ceil_mode", "must be 0 or 1")),
        }
        let node = if max {
            Node::MaxPool { input, kernel: k, stride: s, padding: p }
        } else {
            Node::AvgPool { input, kernel: k, stride: s }
        };
        self.push(node, out);
        Ok(())
    }

    /// ReduceMean over height and width: a global average pool (keepdims or not).
    fn reduce_mean(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let axes = match at.n.ints("axes").map_err(|e| at.refuse(e))? {
            Some(a) => a,
            None if at.n.inputs.get(1).is_some_and(|x| !x.is_empty()) => self.ints_of(at, 1, "axes")?,
            None => vec![],
        };
        let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + 4 } else { a }).collect();
        axes.sort_unstable();
        if axes != [2, 3] {
            return Err(at.refuse_attr("axes", "only the mean over height and width (axes 2, 3) is supported"));
        }
        if !(0..=1).contains(&at.int("keepdims", 1)?) {
            return Err(at.refuse_attr("keepdims", "must be 0 or 1"));
        }
        let input = self.get(at, 0)?;
        self.push(Node::GlobalAvgPool { input }, out);
        Ok(())
    }

    /// Flatten, Reshape or Squeeze of a map to `(N, C·H·W)` before a dense layer: the same
    /// values, so the value name just aliases its source.
    fn flatten(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        match at.n.op.as_str() {
            "Flatten" => {
                let axis = at.int("axis", 1)?;
                if axis != 1 && axis != -3 {
                    return Err(at.refuse_attr("axis", "only flattening to (N, C·H·W) is supported"));
                }
            }
            "Reshape" => {
                let shape = self.ints_of(at, 1, "the shape")?;
                let allow_zero = at.int("allowzero", 0)? == 1;
                let flat = (x.c * x.h * x.w) as i64;
                let ok = match shape[..] {
                    [n, f] => {
                        let batch_ok = n == 1 || n == -1 && f == flat || (n == 0 && !allow_zero);
                        batch_ok && (f == flat || f == -1 && n != -1)
                    }
                    _ => false,
                };
                if !ok {
                    return Err(at.refuse(format!(
                        "a reshape to {shape:?} (only to (N, -1) before the classifier is supported)"
                    )));
                }
            }
            _ => {
                let axes = match at.n.ints("axes").map_err(|e| at.refuse(e))? {
                    Some(a) => a,
                    None if at.n.inputs.get(1).is_some_and(|x| !x.is_empty()) => self.ints_of(at, 1, "axes")?,
                    None => vec![2, 3],
                };
                let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + 4 } else { a }).collect();
                axes.sort_unstable();
                if axes != [2, 3] || (x.h, x.w) != (1, 1) {
                    return Err(at.refuse_attr("axes", "only squeezing a 1×1 height and width is supported"));
                }
            }
        }
        // The flattened value is the map itself to pare: a dense layer reads it in (c, h, w)
        // order, as ONNX's Flatten writes it.
        self.src.insert(out, input);
        Ok(())
    }

    /// Gemm as the classifier: `alpha · A · B' + beta · C` with B' = B or Bᵀ.
    fn gemm(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        if at.int("transA", 0)? != 0 {
            return Err(at.refuse_attr("transA", "a transposed activation is not supported"));
        }
        let trans_b = at.int("transB", 0)?;
        if !(0..=1).contains(&trans_b) {
            return Err(at.refuse_attr("transB", "must be 0 or 1"));
        }
        let (alpha, beta) = (at.float("alpha", 1.0)?, at.float("beta", 1.0)?);
        if !alpha.is_finite() || !beta.is_finite() {
            return Err(at.refuse("alpha and beta must be finite"));
        }
        let b = self.konst(at, 1, "the weight")?;
        let (rows, cols) = match b.dims[..] {
            [r, c] => (r, c),
            _ => return Err(at.refuse(format!("the weight has shape {:?}, not a matrix", b.dims))),
        };
        // pare's dense weight is [out, in].
        let (co, cin) = if trans_b == 1 { (rows, cols) } else { (cols, rows) };
        let weight: Vec<f32> = if trans_b == 1 {
            b.v.iter().map(|&x| (x * f64::from(alpha)) as f32).collect()
        } else {
            (0..co)
                .flat_map(|o| (0..cin).map(move |c| c * co + o))
                .map(|k| (b.v[k] * f64::from(alpha)) as f32)
                .collect()
        };
        let bias: Vec<f32> = match at.n.inputs.get(2).filter(|x| !x.is_empty()) {
            None => vec![0.0; co],
            Some(_) => {
                let c = self.konst(at, 2, "the bias")?;
                match c.v.len() {
                    1 => vec![(c.v[0] * f64::from(beta)) as f32; co],
                    l if l == co => c.v.iter().map(|&x| (x * f64::from(beta)) as f32).collect(),
                    l => return Err(at.refuse(format!("the bias has {l} values for {co} outputs"))),
                }
            }
        };
        self.dense(at, out, co, cin, weight, bias)
    }

    /// x · W (W: [in, out]) and an optional Add of a bias constant: the classifier.
    fn matmul(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let b = self.konst(at, 1, "the right operand")?;
        let [cin, co] = b.dims[..] else {
            return Err(at.refuse(format!("the weight has shape {:?}, not a matrix", b.dims)));
        };
        let weight: Vec<f32> = (0..co).flat_map(|o| (0..cin).map(move |c| c * co + o)).map(|k| b.v[k] as f32).collect();
        let mut last = out.clone();
        let mut bias = vec![0.0; co];
        if let Some(ai) = self.only_consumer(&out, "Add") {
            let add = &self.nodes[ai];
            let other = add.inputs.iter().find(|x| **x != out).and_then(|x| self.consts.get(x));
            if let Some(c) = other.filter(|c| c.v.len() == co) {
                bias = c.f32();
                self.used[ai] = true;
                last = add.outputs.first().cloned().unwrap_or_default();
            }
        }
        self.dense(at, last, co, cin, weight, bias)
    }

    fn dense(
        &mut self,
        at: &At,
        out: String,
        co: usize,
        cin: usize,
        w: Vec<f32>,
        b: Vec<f32>,
    ) -> Result<(), OnnxError> {
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        if x.c * x.h * x.w != cin {
            return Err(at.refuse(format!("the weight reads {cin} inputs, the input is {}×{}×{}", x.c, x.h, x.w)));
        }
        if co == 0 {
            return Err(at.refuse("no outputs"));
        }
        let name = if at.n.name.is_empty() { format!("gemm{}", at.i) } else { at.n.name.clone() };
        self.tensors.insert(format!("{name}.weight"), (vec![co, cin], w));
        self.tensors.insert(format!("{name}.bias"), (vec![co], b));
        // A ReLU after a hidden dense layer (an MLP head) fuses into it.
        let (relu, last) = self.fuse_relu(&out)?;
        self.push(Node::Dense { name, input, out: co, relu }, last);
        Ok(())
    }

    /// The architecture once every node is mapped: it must end in the classifier, the graph's
    /// output must be the classifier's, every activation must stay bounded and the weights fit.
    fn finish(mut self, graph: &[(u32, super::proto::Val<'_>)]) -> Result<(Arch, weights::Tensors), OnnxError> {
        let classes = match self.arch.nodes.last() {
            Some(Node::Dense { out, .. }) => *out,
            _ => {
                return Err(OnnxError::Graph(
                    "the graph must end in a Gemm classifier (then an optional Softmax)".into(),
                ))
            }
        };
        let last = Src::Node(self.arch.nodes.len() - 1);
        for o in msgs(graph, 12) {
            let name = strs(&fields(o)?, 1).concat();
            if self.src.get(&name) != Some(&last) {
                return Err(OnnxError::Graph(format!("the graph output `{name}` is not the classifier's logits")));
            }
        }
        self.arch.labels = (0..classes).map(|i| format!("class{i}")).collect();
        let shapes = self.arch.shapes().map_err(OnnxError::Graph)?;
        for (i, s) in shapes.iter().enumerate() {
            if s.c.checked_mul(s.h).and_then(|x| x.checked_mul(s.w)).is_none_or(|x| x > MAX_ACTIVATION) {
                return Err(OnnxError::Graph(format!("node {i}'s output {}×{}×{} is too large", s.c, s.h, s.w)));
            }
        }
        weights::check(&self.arch, &self.tensors, Path::new("the ONNX graph"))
            .map_err(|e| OnnxError::Graph(e.to_string()))?;
        Ok((self.arch, self.tensors))
    }
}

/// Refuses any attribute the op's entry in [`ATTRIBUTES`] does not list.
fn check_attributes(at: &At) -> Result<(), OnnxError> {
    let Some((_, known)) = ATTRIBUTES.iter().find(|(op, _)| *op == at.n.op) else { return Ok(()) };
    match at.n.attrs.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(at.refuse_attr(k, "pare does not implement this attribute")),
        None => Ok(()),
    }
}
