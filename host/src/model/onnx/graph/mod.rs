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
//! anything else is refused before any work, naming the op, the node and its position. The walk
//! and the op table are here; each op family's mapping is a file beside it (`conv`, `pool`,
//! `dense`, `place`).

mod conv;
mod dense;
mod place;
mod pool;
mod view;

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
    ("GatherND", &["batch_dims"]),
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
    /// Permuted and repeated views of 1×1 activations ([`view`]).
    views: BTreeMap<String, view::View>,
    /// Flattened views: value → (the 1×1 source, copies of each channel, side by side).
    repeated: BTreeMap<String, (Src, usize)>,
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
        views: BTreeMap::new(),
        repeated: BTreeMap::new(),
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

    /// The node's `axes`: the attribute (older opsets) or its second input (newer ones); `None`
    /// when neither is given.
    fn axes(&self, at: &At) -> Result<Option<Vec<i64>>, OnnxError> {
        match at.n.ints("axes").map_err(|e| at.refuse(e))? {
            Some(a) => Ok(Some(a)),
            None if at.n.inputs.get(1).is_some_and(|x| !x.is_empty()) => Ok(Some(self.ints_of(at, 1, "axes")?)),
            None => Ok(None),
        }
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
        if self.reads_view(n) {
            return self.view_op(at, out);
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
            "Transpose" | "GatherND" if n.inputs.first().is_some_and(|x| self.src.contains_key(x)) => Err(at.refuse(
                "a Transpose or gather of an activation larger than 1×1 is not supported (PyTorch's default \
                 exporter writes an adaptive average pool this way: export at an input size where the pool \
                 keeps the map's size, or set `model.avgpool = nn.Identity()`)",
            )),
            _ => Err(at.refuse("this op is not supported")),
        }
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

/// Whether `axes` of an NCHW value are exactly height and width (in any order, negative or not).
fn height_and_width(axes: &[i64]) -> bool {
    let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + 4 } else { a }).collect();
    axes.sort_unstable();
    axes == [2, 3]
}

/// Refuses any attribute the op's entry in [`ATTRIBUTES`] does not list.
fn check_attributes(at: &At) -> Result<(), OnnxError> {
    let Some((_, known)) = ATTRIBUTES.iter().find(|(op, _)| *op == at.n.op) else { return Ok(()) };
    match at.n.attrs.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(at.refuse_attr(k, "pare does not implement this attribute")),
        None => Ok(()),
    }
}
