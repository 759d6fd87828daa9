#!/usr/bin/env python3
"""The ONNX conformance table for pare's importer (`host/tests/onnx_conformance.rs` runs it).

Usage: onnx_conformance.py OUTDIR

Builds one small model per case with `onnx.helper` (no PyTorch) and writes, for each case,
`OUTDIR/<name>.onnx`; where onnxruntime can run the model and it ends in logits `[1, K]`, also
`OUTDIR/<name>.in.f32` (N random images, raw little-endian float32 N×C×H×W) and
`OUTDIR/<name>.out.f32` (onnxruntime's logits for them, N×K, CPU provider, graph optimisations
off, one image at a time). `OUTDIR/cases.json` lists every case:

    {"name", "expect": "exact" | "refuse", "refuse_contains": [...], "input": [N, C, H, W],
     "classes": K, "reference": true if the .in/.out files exist}

"exact": pare must import the model and reproduce onnxruntime's logits (max |a-b| / max |b| <
1e-4). "refuse": the import must fail with a message containing every `refuse_contains` string
(an attribute's name, the node's name...). A refusal case still gets reference logits where
onnxruntime runs it, so an unexpected acceptance shows how far off it is.

Unless a case is about the head itself, a model is `input [1, C, H, W] → the ops under test →
GlobalAveragePool → Flatten → Gemm(transB = 1, K = 5)`. Weights are random N(0, 0.5) and every
BatchNormalization has a random scale, shift, mean and a positive variance, so a folding mistake
changes the logits. Every model passes `onnx.checker.check_model` except ones marked
`check=False` (deliberately malformed). Each case draws from its own generator, seeded from its
name, so editing one case leaves the others' weights alone.

Edit the expectations in CASES below.
"""

import json
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

CLASSES = 5
IMAGES = 4


class Graph:
    """Nodes and initializers of one model under construction."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.softmax = False  # a trailing Softmax after the logits (see `build`)

    def init(self, name, value, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def randn(self, name, shape):
        return self.init(name, self.rng.normal(0.0, 0.5, shape))

    def node(self, op, inputs, name, outputs=1, **attrs):
        """Adds a node; returns its (first) output's name."""
        outs = [f"{name}_out"] + [f"{name}_out{i}" for i in range(1, outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def conv(self, x, cin, cout, k, name="conv0", bias=False, group=1, **attrs):
        w = self.randn(f"{name}.w", [cout, cin // group, k, k])
        inputs = [x, w] + ([self.randn(f"{name}.b", [cout])] if bias else [])
        if group != 1:
            attrs["group"] = group
        return self.node("Conv", inputs, name, kernel_shape=[k, k], **attrs)

    def bn(self, x, c, name="bn0", **attrs):
        scale = self.init(f"{name}.scale", self.rng.uniform(0.5, 1.5, c))
        shift = self.init(f"{name}.shift", self.rng.normal(0.0, 0.5, c))
        mean = self.init(f"{name}.mean", self.rng.normal(0.0, 0.5, c))
        var = self.init(f"{name}.var", self.rng.uniform(0.5, 2.0, c))
        return self.node("BatchNormalization", [x, scale, shift, mean, var], name, **attrs)

    def relu(self, x, name="relu0"):
        return self.node("Relu", [x], name)

    def conv_bn_relu(self, x, cin, cout, k, n=0, **attrs):
        y = self.conv(x, cin, cout, k, name=f"conv{n}", **attrs)
        return self.relu(self.bn(y, cout, name=f"bn{n}"), name=f"relu{n}")

    def gemm(self, x, cin, name="gemm0", **attrs):
        attrs.setdefault("transB", 1)
        shape = [CLASSES, cin] if attrs["transB"] else [cin, CLASSES]
        w, b = self.randn(f"{name}.w", shape), self.randn(f"{name}.b", [CLASSES])
        return self.node("Gemm", [x, w, b], name, **attrs)

    def head(self, x, c):
        """GlobalAveragePool → Flatten → Gemm: the usual classifier on `c` channels."""
        x = self.node("GlobalAveragePool", [x], "gap0")
        return self.gemm(self.node("Flatten", [x], "flatten0"), c)


# Bodies: functions (graph, input name, channels) → (output name, channels) for the standard
# head, or the logits' name when the case builds its own head (`head=False`).


def conv_case(k, s, pads=None, bn=True, bias=False, **attrs):
    if pads is not None:
        attrs["pads"] = pads

    def body(g, x, c):
        y = g.conv(x, c, 6, k, bias=bias, strides=[s, s], **attrs)
        if bn:
            y = g.bn(y, 6)
        return g.relu(y), 6

    return body


def pool_case(op, **attrs):
    """The pool on the input, then a 3×3 conv with padding so the result depends on where each
    pooled value lands (a global average straight after a pool would hide most pooling bugs)."""

    def body(g, x, c):
        y = g.node(op, [x], "pool0", **attrs)
        y = g.conv(y, c, 6, 3, name="conv1", bias=True, pads=[1, 1, 1, 1])
        return g.relu(y, "relu1"), 6

    return body


def gap_alone(g, x, c):
    return x, c


def bn_training(g, x, c):
    y = g.conv(x, c, 6, 3, pads=[1, 1, 1, 1])
    return g.relu(g.bn(y, 6, training_mode=1)), 6


def reduce_mean_attr(keepdims):
    def body(g, x, c):
        y = g.conv_bn_relu(x, c, 6, 3, pads=[1, 1, 1, 1])
        y = g.node("ReduceMean", [y], "reduce0", axes=[2, 3], keepdims=keepdims)
        if keepdims:
            y = g.node("Flatten", [y], "flatten0")
        return g.gemm(y, 6)

    return body


def reduce_mean_input(g, x, c):
    y = g.conv_bn_relu(x, c, 6, 3, pads=[1, 1, 1, 1])
    axes = g.init("reduce0.axes", [2, 3], np.int64)
    y = g.node("ReduceMean", [y, axes], "reduce0", keepdims=1)
    return g.gemm(g.node("Flatten", [y], "flatten0"), 6)


def reduce_mean_channels(g, x, c):
    y = g.conv_bn_relu(x, c, 6, 3, pads=[1, 1, 1, 1])
    y = g.node("ReduceMean", [y], "reduce0", axes=[1], keepdims=1)
    return g.gemm(g.node("Flatten", [y], "flatten0"), 8 * 8)


def pooled(g, x, c):
    """conv0 → bn0 → relu0 → GlobalAveragePool: the body of the head cases, [1, 6, 1, 1]."""
    return g.node("GlobalAveragePool", [g.conv_bn_relu(x, c, 6, 3, pads=[1, 1, 1, 1])], "gap0")


def gemm_head(**attrs):
    def body(g, x, c):
        return g.gemm(g.node("Flatten", [pooled(g, x, c)], "flatten0"), 6, **attrs)

    return body


def gemm_trans_a(g, x, c):
    # A = [1, 6] transposed is [6, 1]: logits [6, K], not a classifier.
    return g.gemm(g.node("Flatten", [pooled(g, x, c)], "flatten0"), 1, transA=1)


def matmul_add(g, x, c):
    y = g.node("Flatten", [pooled(g, x, c)], "flatten0")
    y = g.node("MatMul", [y, g.randn("matmul0.w", [6, CLASSES])], "matmul0")
    return g.node("Add", [y, g.randn("add0.b", [CLASSES])], "add0")


def flatten_axis(axis):
    def body(g, x, c):
        y = g.node("Flatten", [pooled(g, x, c)], "flatten0", axis=axis)
        # axis 2 makes [6, 1]: a Gemm on one feature, logits [6, K].
        return g.gemm(y, 6 if axis == 1 else 1)

    return body


def reshape_const(g, x, c):
    shape = g.init("reshape0.shape", [1, -1], np.int64)
    return g.gemm(g.node("Reshape", [pooled(g, x, c), shape], "reshape0"), 6)


def reshape_shape_subgraph(g, x, c):
    # What torch.onnx.export writes for `x.view(x.size(0), -1)`.
    y = pooled(g, x, c)
    shape = g.node("Shape", [y], "shape0")
    n = g.node("Gather", [shape, g.init("gather0.index", 0, np.int64)], "gather0", axis=0)
    n = g.node("Unsqueeze", [n, g.init("unsqueeze0.axes", [0], np.int64)], "unsqueeze0")
    shape = g.node("Concat", [n, g.init("concat0.rest", [-1], np.int64)], "concat0", axis=0)
    return g.gemm(g.node("Reshape", [y, shape], "reshape0"), 6)


def dropout_identity(g, x, c):
    y = g.node("Flatten", [pooled(g, x, c)], "flatten0")
    y = g.node("Identity", [g.node("Dropout", [y], "dropout0")], "identity0")
    return g.gemm(y, 6)


def trailing_softmax(g, x, c):
    g.softmax = True
    return g.gemm(g.node("Flatten", [pooled(g, x, c)], "flatten0"), 6)


def residual(g, x, c):
    stem = g.conv_bn_relu(x, c, 6, 3, n=0, pads=[1, 1, 1, 1])
    y = g.conv_bn_relu(stem, 6, 6, 3, n=1, pads=[1, 1, 1, 1])
    y = g.bn(g.conv(y, 6, 6, 3, name="conv2", pads=[1, 1, 1, 1]), 6, name="bn2")
    return g.relu(g.node("Add", [y, stem], "add0"), "relu3"), 6


def pad_then_conv(g, x, c):
    pads = g.init("pad0.pads", [0, 0, 1, 2, 0, 0, 1, 0], np.int64)  # top 1, left 2, bottom 1
    y = g.node("Pad", [x, pads], "pad0", mode="constant")
    return g.relu(g.bn(g.conv(y, c, 6, 3), 6)), 6


def unknown_attribute(g, x, c):
    return g.relu(g.bn(g.conv(x, c, 6, 3, pads=[1, 1, 1, 1], foo=1), 6)), 6


def mlp_head(g, x, c):
    y = g.node("Flatten", [pooled(g, x, c)], "flatten0")
    y = g.relu(g.node("Gemm", [y, g.randn("gemm0.w", [8, 6]), g.randn("gemm0.b", [8])], "gemm0", transB=1), "relu1")
    return g.gemm(y, 8, name="gemm1")


def flatten_spatial(g, x, c):
    y = g.conv_bn_relu(x, c, 6, 3, strides=[2, 2], pads=[1, 1, 1, 1])  # 8×8 → 4×4
    return g.gemm(g.node("Flatten", [y], "flatten0"), 6 * 4 * 4)


def vgg_head(g, x, c):
    """torchvision's VGG classifier at small size: a spatial map flattened by a Reshape into
    Gemm → Relu → Dropout → Gemm → Relu → Dropout → Gemm."""
    y = g.conv_bn_relu(x, c, 4, 3, strides=[2, 2], pads=[1, 1, 1, 1])  # 8×8 → 4×4
    y = g.node("Reshape", [y, g.init("shape", [1, -1], np.int64)], "reshape0")
    for i, (cin, cout) in enumerate([(4 * 4 * 4, 12), (12, 10)]):
        y = g.node("Gemm", [y, g.randn(f"fc{i}.w", [cout, cin]), g.randn(f"fc{i}.b", [cout])], f"fc{i}", transB=1)
        y = g.node("Dropout", [g.relu(y, f"fc{i}.relu")], f"fc{i}.drop")
    return g.gemm(y, 10, name="fc2")


def adaptive_pool_up(g, x, c):
    """torch.export's adaptive_avg_pool2d from 1×1 up to 3×3 (as torchvision's VGG at 32×32 from
    1×1 to 7×7): Transpose → GatherND → Transpose → ReduceMean → Reshape, then the classifier."""
    y = g.conv_bn_relu(x, c, 6, 3, pads=[1, 1, 1, 1])
    y = g.node("GlobalAveragePool", [y], "gap0")
    y = g.node("Transpose", [y], "transpose0", perm=[2, 3, 0, 1])
    y = g.node("GatherND", [y, g.init("indices", np.zeros([3, 1, 3, 1, 2]), np.int64)], "gather0")
    y = g.node("Transpose", [y], "transpose1", perm=[4, 5, 0, 1, 2, 3])
    y = g.node("ReduceMean", [y, g.init("axes", [-3, -1], np.int64)], "mean0", keepdims=0)
    y = g.node("Reshape", [y, g.init("shape", [1, 6 * 9], np.int64)], "reshape0")
    return g.gemm(y, 6 * 9)


def case(name, body, refuse=None, c=3, hw=8, opset=13, head=True, check=True, craft=None, external=False):
    """One row of the table: "exact" unless `refuse` lists what the refusal must say.
    `c`, `hw`: the input's channels and size; `head`: whether the standard head follows the body;
    `check`: whether the model must pass the ONNX checker; `craft`: a function that breaks the
    built ModelProto in place (a crafted file: no checker, no reference); `external`: weights
    saved as external data in `<name>.onnx.data` beside the model (PyTorch's default exporter)."""
    expect = "exact" if refuse is None else "refuse"
    return dict(name=name, body=body, expect=expect, refuse=list(refuse or []), c=c, hw=hw, opset=opset,
                head=head, check=check and craft is None, craft=craft, external=external)


def initializer(model, name):
    return next(t for t in model.graph.initializer if t.name == name)


def node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def set_ints(model, node_name, attr, values):
    a = next(a for a in node(model, node_name).attribute if a.name == attr)
    del a.ints[:]
    a.ints.extend(values)


def replace_tensor(model, name, dims, raw=b"", external=None):
    """Initializer `name` with other dims and data (inline `raw`, or an external-data entry)."""
    t = initializer(model, name)
    del t.dims[:]
    t.dims.extend(dims)
    t.ClearField("raw_data")
    t.ClearField("float_data")
    del t.external_data[:]
    if external is None:
        t.raw_data = raw
    else:
        t.data_location = TensorProto.EXTERNAL
        for k, v in external.items():
            t.external_data.add(key=k, value=str(v))


def craft_pads(model):
    set_ints(model, "conv0", "pads", [1 << 62] * 4)


def craft_input(model):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = 1 << 40


def craft_transpose(model):
    model.graph.node.insert(0, helper.make_node("Transpose", ["input"], ["input_t"], name="transpose0",
                                                perm=[0, 0, 1, 2]))
    for n in model.graph.node[1:]:
        n.input[:] = ["input_t" if i == "input" else i for i in n.input]


def craft_constant_of_shape(model):
    shape = helper.make_tensor("huge", TensorProto.INT64, [1], [1 << 40])
    model.graph.initializer.append(shape)
    model.graph.node.insert(0, helper.make_node("ConstantOfShape", ["huge"], ["zeros"], name="fill0"))
    gemm = node(model, "gemm0")
    gemm.input[2] = "zeros"


CASES = [
    # Conv → BatchNormalization → Relu, every kernel/stride/symmetric padding combination.
    *[
        # Padding of the kernel's size or more (whole windows in the padding): the board
        # runtime has no such windows, so the importer refuses them.
        case(f"conv_k{k}_s{s}_p{p}_bn_relu", conv_case(k, s, [p] * 4), c=4 if s == 2 else 3, hw=9 if s == 2 else 8,
             refuse=["pads", "conv0"] if p >= k else None)
        for k in (1, 3, 5)
        for s in (1, 2)
        for p in (0, 1, 2)
    ],
    # A plain conv with a bias and no BatchNormalization (how PyTorch exports a folded one).
    *[case(f"conv_k{k}_s{s}_bias_relu", conv_case(k, s, [k // 2] * 4, bn=False, bias=True)) for k in (1, 3, 5)
      for s in (1, 2)],
    case("conv_pads_0011", conv_case(3, 1, [0, 0, 1, 1])),
    case("conv_pads_1021", conv_case(3, 1, [1, 0, 2, 1])),
    case("conv_pads_1021_s2", conv_case(3, 2, [1, 0, 2, 1]), hw=9),
    *[
        case(f"conv_auto_{mode.lower()}_k{k}_s{s}", conv_case(k, s, auto_pad=mode))
        for mode in ("SAME_UPPER", "SAME_LOWER", "VALID")
        for k in (3, 2)
        for s in (1, 2)
    ],
    case("conv_bias_then_bn", conv_case(3, 1, [1] * 4, bias=True)),
    case("bn_epsilon_1e-3", lambda g, x, c: (g.relu(g.bn(g.conv(x, c, 6, 3, pads=[1] * 4), 6, epsilon=1e-3)), 6)),
    case("conv_dilations", conv_case(3, 1, [2] * 4, dilations=[2, 2]), refuse=["dilations", "conv0"]),
    case("conv_depthwise", conv_case(3, 1, [1] * 4, group=3), c=3, refuse=["group", "conv0"]),
    case("bn_training_mode", bn_training, opset=15, refuse=["training_mode", "bn0"]),
    # MaxPool.
    case("maxpool_k2_s2", pool_case("MaxPool", kernel_shape=[2, 2], strides=[2, 2])),
    case("maxpool_k3_s2_p1", pool_case("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4), hw=9),
    case("maxpool_k3_s1_p1", pool_case("MaxPool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4)),
    case("maxpool_ceil_same_shape", pool_case("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    case("maxpool_ceil_9x9", pool_case("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), hw=9,
         refuse=["ceil_mode", "pool0"]),
    case("maxpool_dilations", pool_case("MaxPool", kernel_shape=[2, 2], strides=[2, 2], dilations=[2, 2]), hw=9,
         refuse=["dilations", "pool0"]),
    case("maxpool_storage_order", pool_case("MaxPool", kernel_shape=[2, 2], strides=[2, 2], storage_order=1)),
    case("maxpool_auto_same_upper_k3_s1",
         pool_case("MaxPool", kernel_shape=[3, 3], strides=[1, 1], auto_pad="SAME_UPPER")),
    case("maxpool_auto_valid", pool_case("MaxPool", kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"), hw=9),
    case("maxpool_pads_0011", pool_case("MaxPool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
         hw=9, refuse=["pads", "pool0"]),
    # AveragePool.
    case("avgpool_k2_s2", pool_case("AveragePool", kernel_shape=[2, 2], strides=[2, 2])),
    case("avgpool_k3_s1", pool_case("AveragePool", kernel_shape=[3, 3], strides=[1, 1])),
    case("avgpool_ceil_same_shape", pool_case("AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    case("avgpool_ceil_9x9", pool_case("AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), hw=9,
         refuse=["ceil_mode", "pool0"]),
    case("avgpool_pads_1", pool_case("AveragePool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4),
         refuse=["pads", "pool0"]),
    case("avgpool_count_include_pad", pool_case("AveragePool", kernel_shape=[2, 2], strides=[2, 2],
                                                count_include_pad=1)),
    # Global pooling.
    case("gap_alone", gap_alone, c=4, hw=10),
    case("reducemean_keepdims_flatten", reduce_mean_attr(1), head=False),
    case("reducemean_no_keepdims_gemm", reduce_mean_attr(0), head=False),
    case("reducemean_axes_input", reduce_mean_input, opset=18, head=False),
    case("reducemean_channels", reduce_mean_channels, head=False, refuse=["ReduceMean", "reduce0"]),
    # The classifier head.
    case("gemm_transb0", gemm_head(transB=0), head=False),
    case("gemm_alpha2", gemm_head(alpha=2.0), head=False),
    case("gemm_beta05", gemm_head(beta=0.5), head=False),
    case("gemm_transa", gemm_trans_a, head=False, refuse=["transA", "gemm0"]),
    case("matmul_add", matmul_add, head=False),
    case("flatten_axis1", flatten_axis(1), head=False),
    case("flatten_axis2", flatten_axis(2), head=False, refuse=["axis", "flatten0"]),
    case("reshape_const", reshape_const, head=False),
    case("reshape_shape_subgraph", reshape_shape_subgraph, head=False),
    case("dropout_identity", dropout_identity, head=False),
    # The expected logits are the Gemm's (onnxruntime runs the model without the Softmax):
    # pare drops a trailing Softmax.
    case("trailing_softmax", trailing_softmax, head=False),
    # Residual block and explicit padding.
    case("residual_add_relu", residual),
    case("pad_then_conv", pad_then_conv),
    # PyTorch's default exporter writes the weights to `<model>.onnx.data`.
    case("external_data", conv_case(3, 1, [1] * 4), external=True),
    # Crafted files: errors naming what is wrong, never a panic or an allocation sized by the file.
    case("crafted_scalar_conv_weight", conv_case(3, 1, [1] * 4), refuse=["conv0", "weight"],
         craft=lambda m: replace_tensor(m, "conv0.w", [], np.float32(1).tobytes())),
    case("crafted_dims_wrap", conv_case(3, 1, [1] * 4), refuse=["conv0.w", "elements"],
         craft=lambda m: replace_tensor(m, "conv0.w", [1 << 62, 1 << 62, 4, 4], b"\0" * 64)),
    case("crafted_dims_vs_data", conv_case(3, 1, [1] * 4), refuse=["conv0.w", "bytes"],
         craft=lambda m: replace_tensor(m, "conv0.w", [1 << 20, 1 << 20], b"\0" * 64)),
    case("crafted_conv_in_channels", conv_case(3, 1, [1] * 4), refuse=["conv0", "input channels"],
         craft=lambda m: replace_tensor(m, "conv0.w", [6, 5, 3, 3], np.zeros(6 * 5 * 9, "<f4").tobytes())),
    case("crafted_gemm_inputs", conv_case(3, 1, [1] * 4), refuse=["gemm0", "inputs"],
         craft=lambda m: replace_tensor(m, "gemm0.w", [CLASSES, 7], np.zeros(CLASSES * 7, "<f4").tobytes())),
    case("crafted_gemm_bias", conv_case(3, 1, [1] * 4), refuse=["gemm0", "bias"],
         craft=lambda m: replace_tensor(m, "gemm0.b", [3], np.zeros(3, "<f4").tobytes())),
    case("crafted_bn_lengths", conv_case(3, 1, [1] * 4), refuse=["bn0", "values"],
         craft=lambda m: replace_tensor(m, "bn0.mean", [4], np.zeros(4, "<f4").tobytes())),
    case("crafted_pads_2e62", conv_case(3, 1, [1] * 4), refuse=["conv0", "pads"], craft=craft_pads),
    case("crafted_input_2e40", conv_case(3, 1, [1] * 4), refuse=["input", "height"], craft=craft_input),
    case("crafted_transpose_repeated_axis", conv_case(3, 1, [1] * 4), refuse=["transpose0"],
         craft=craft_transpose),
    case("crafted_constant_of_shape_2e40", conv_case(3, 1, [1] * 4), refuse=["fill0"],
         craft=craft_constant_of_shape),
    case("crafted_external_outside_folder", conv_case(3, 1, [1] * 4), refuse=["../outside.bin", "relative path"],
         craft=lambda m: replace_tensor(m, "conv0.w", [6, 3, 3, 3], external={"location": "../outside.bin"})),
    case("crafted_external_beyond_file", conv_case(3, 1, [1] * 4), external=True, refuse=["beyond"],
         craft=lambda m: replace_tensor(m, "conv0.w", [6, 3, 3, 3],
                                        external={"location": "crafted_external_beyond_file.onnx.data",
                                                  "offset": 1 << 40, "length": 6 * 3 * 9 * 4})),
    # Unknown or not (yet) supported.
    case("conv_unknown_attribute", unknown_attribute, check=False, refuse=["foo", "conv0"]),
    # An MLP head (Gemm → Relu → Gemm), and a classifier on a flattened spatial map.
    case("mlp_head", mlp_head, head=False),
    case("flatten_spatial_gemm", flatten_spatial, head=False),
    case("vgg_head", vgg_head, head=False),
    case("adaptive_pool_1x1_up", adaptive_pool_up, head=False, opset=18),
]


def build(spec, rng):
    """The case's model, and the model onnxruntime's reference logits come from (the same
    without a trailing Softmax)."""
    g = Graph(rng)
    c, hw = spec["c"], spec["hw"]
    out = spec["body"](g, "input", c)
    if spec["head"]:
        out = g.head(*out)
    logits = out
    if g.softmax:
        out = g.node("Softmax", [logits], "softmax0", axis=1)

    def model(nodes, output):
        graph = helper.make_graph(
            nodes,
            spec["name"],
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, hw, hw])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["rows", "classes"])],
            initializer=g.inits,
        )
        opset = [helper.make_opsetid("", spec["opset"])]
        return helper.make_model(graph, opset_imports=opset, producer_name="pare onnx_conformance")

    full = model(g.nodes, out)
    reference = model([n for n in g.nodes if n.op_type != "Softmax"], logits)
    return full, reference


def run(model, images):
    """onnxruntime's outputs, one image at a time; None when it cannot run the model or the
    output is not logits [1, K]."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        outs = [sess.run(None, {"input": img[None]})[0] for img in images]
    except Exception:  # a deliberately invalid graph
        return None
    if any(o.shape != (1, CLASSES) for o in outs):
        return None
    return np.concatenate(outs).astype(np.float32)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    names = [spec["name"] for spec in CASES]
    assert len(set(names)) == len(names), "duplicate case names"
    table = []
    for spec in CASES:
        name = spec["name"]
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        full, reference = build(spec, rng)
        if spec["check"]:
            onnx.checker.check_model(full)
        if spec["external"]:
            onnx.save_model(full, str(outdir / f"{name}.onnx"), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=f"{name}.onnx.data", size_threshold=0)
            full = onnx.load(str(outdir / f"{name}.onnx"), load_external_data=False)
        if spec["craft"] is not None:
            spec["craft"](full)
            reference = None
        (outdir / f"{name}.onnx").write_bytes(full.SerializeToString())
        images = rng.normal(0.0, 1.0, (IMAGES, spec["c"], spec["hw"], spec["hw"])).astype(np.float32)
        logits = None if reference is None else run(reference, images)
        if logits is None and spec["expect"] == "exact":
            sys.exit(f"{name}: onnxruntime cannot run an 'exact' case")
        if logits is not None:
            (outdir / f"{name}.in.f32").write_bytes(images.astype("<f4").tobytes())
            (outdir / f"{name}.out.f32").write_bytes(logits.astype("<f4").tobytes())
        table.append({
            "name": name,
            "expect": spec["expect"],
            "refuse_contains": spec["refuse"],
            "input": [IMAGES, spec["c"], spec["hw"], spec["hw"]],
            "classes": CLASSES,
            "reference": logits is not None,
        })
    (outdir / "cases.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"onnx_conformance.py: {len(table)} cases in {outdir}")


if __name__ == "__main__":
    main()
