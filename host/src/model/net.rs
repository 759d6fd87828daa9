//! The burn module that executes an [`Arch`]: one conv+BN pair per conv node and one weight
//! and bias per dense node (the classifier last).

use super::arch::{Arch, Node, Src};
use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{activation::relu, Device, Distribution, Tensor, TensorData};

/// A convolution without bias, followed by BatchNorm (eps 1e-5, momentum 0.1).
#[derive(Module, Debug)]
pub struct ConvBn {
    /// `[out, in, kh, kw]`, PyTorch layout.
    pub weight: Param<Tensor<4>>,
    pub bn: BatchNorm,
}

/// A dense layer, PyTorch layout `[out, in]`.
#[derive(Module, Debug)]
pub struct Dense {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

/// A model: parameters plus the architecture that wires them.
#[derive(Module, Debug)]
pub struct Net {
    pub convs: Vec<ConvBn>,
    /// One per dense node, in order; the last is the classifier.
    pub dense: Vec<Dense>,
    #[module(skip)]
    pub arch: Arch,
}

/// Called with each node's output (a conv's after BN and ReLU); returns what flows on.
pub type Hook<'h> = dyn FnMut(usize, Tensor<4>) -> Tensor<4> + 'h;

impl Net {
    /// A freshly initialised model (Kaiming-normal convs, PyTorch-default classifier).
    pub fn init(arch: &Arch, device: &Device) -> Result<Self, String> {
        let shapes = arch.shapes()?;
        let mut convs = Vec::new();
        let mut dense = Vec::new();
        for node in &arch.nodes {
            match node {
                Node::Conv { input, out, kernel, .. } => {
                    let cin = arch.in_channels(&shapes, *input);
                    let std = (2.0 / (out * kernel * kernel) as f64).sqrt();
                    let w = Tensor::random([*out, cin, *kernel, *kernel], Distribution::Normal(0.0, std), device);
                    convs.push(ConvBn { weight: Param::from_tensor(w), bn: BatchNormConfig::new(*out).init(device) });
                }
                Node::Dense { input, out, .. } => {
                    let cin = arch.dense_inputs(&shapes, *input);
                    let k = (1.0 / cin as f64).sqrt();
                    dense.push(Dense {
                        weight: Param::from_tensor(Tensor::random([*out, cin], Distribution::Uniform(-k, k), device)),
                        bias: Param::from_tensor(Tensor::random([*out], Distribution::Uniform(-k, k), device)),
                    });
                }
                Node::MaxPool { .. }
                | Node::AvgPool { .. }
                | Node::GlobalAvgPool { .. }
                | Node::Add { .. }
                | Node::ChannelPlace { .. } => {}
            }
        }
        if dense.is_empty() {
            return Err("no classifier".into());
        }
        Ok(Self { convs, dense, arch: arch.clone() })
    }

    /// Names the classes after the data a fresh model is about to learn (a zoo model comes
    /// with CIFAR-10's names); ignored when the count differs.
    pub fn name_classes(&mut self, names: &[String]) {
        if names.len() == self.arch.labels.len() {
            self.arch.labels = names.to_vec();
        }
    }

    /// Logits for a batch `[n, c, h, w]` of normalised images.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_hooked(x, &mut |_, t| t)
    }

    /// Forward pass with a hook on every node output (for masks, scores and bottlenecks).
    pub fn forward_hooked(&self, x: Tensor<4>, hook: &mut Hook<'_>) -> Tensor<2> {
        let conv = |i: usize, x: Tensor<4>, opts: ConvOptions<2>| {
            let cb = &self.convs[i];
            cb.bn.forward(conv2d(x, cb.weight.val(), None, opts))
        };
        let dense: Vec<_> = self.dense.iter().map(|d| (d.weight.val(), d.bias.val())).collect();
        walk(&self.arch, x, &conv, &dense, hook)
    }

    /// The model for inference only: every BatchNorm (running statistics) folded into its
    /// convolution's weights and a bias, so a forward pass skips a pass over every conv output.
    /// Same function up to float rounding (`host/tests/folded.rs` compares the two).
    pub fn folded(&self) -> Folded {
        let convs = self
            .convs
            .iter()
            .map(|cb| {
                let bn = &cb.bn;
                let scale = bn.gamma.val() / bn.running_var.value().add_scalar(bn.epsilon).sqrt();
                let bias = bn.beta.val() - bn.running_mean.value() * scale.clone();
                let [o] = scale.dims();
                (cb.weight.val() * scale.reshape([o, 1, 1, 1]), bias)
            })
            .collect();
        let dense = self.dense.iter().map(|d| (d.weight.val(), d.bias.val())).collect();
        Folded { convs, dense, arch: self.arch.clone() }
    }
}

/// A [`Net`] for inference with its BatchNorms folded ([`Net::folded`]): per conv `(weight,
/// bias)`, then per dense layer.
#[derive(Debug, Clone)]
pub struct Folded {
    convs: Vec<(Tensor<4>, Tensor<1>)>,
    dense: Vec<(Tensor<2>, Tensor<1>)>,
    pub arch: Arch,
}

impl Folded {
    /// Logits for a batch `[n, c, h, w]` of normalised images.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let conv = |i: usize, x: Tensor<4>, opts: ConvOptions<2>| {
            let (w, b) = &self.convs[i];
            conv2d(x, w.clone(), Some(b.clone()), opts)
        };
        walk(&self.arch, x, &conv, &self.dense, &mut |_, t| t)
    }
}

/// Runs `arch` on `x`: `conv(i, input, options)` computes the `i`-th convolution with its
/// normalisation (ReLU is applied here), `dense` the dense layers' `(weight, bias)`; `hook` sees every
/// node's output and returns what flows on.
fn walk(
    arch: &Arch,
    x: Tensor<4>,
    conv: &dyn Fn(usize, Tensor<4>, ConvOptions<2>) -> Tensor<4>,
    dense: &[(Tensor<2>, Tensor<1>)],
    hook: &mut Hook<'_>,
) -> Tensor<2> {
    // Every value is let go by its last reader, so a tensor nobody else holds can be updated in
    // place (the residual add, ReLU) and its memory is reused, not kept for the whole pass.
    let mut last = vec![usize::MAX; arch.nodes.len()];
    for (i, node) in arch.nodes.iter().enumerate() {
        for s in node.inputs() {
            if let Src::Node(j) = s {
                last[j] = i;
            }
        }
    }
    let mut values: Vec<Option<Tensor<4>>> = Vec::with_capacity(arch.nodes.len());
    let get = |s: Src, i: usize, values: &mut Vec<Option<Tensor<4>>>| match s {
        Src::Input => x.clone(),
        Src::Node(j) if last[j] == i => values[j].take().expect("validated architectures read earlier nodes"),
        Src::Node(j) => values[j].clone().expect("validated architectures read earlier nodes"),
    };
    let (mut conv_index, mut dense_index) = (0, 0);
    for (i, node) in arch.nodes.iter().enumerate() {
        let y = match node {
            Node::Conv { input, stride, padding, relu: r, pads, .. } => {
                let [pt, pl, pb, pr] = pads.unwrap_or([*padding; 4]);
                let opts = ConvOptions::new_with_padding([*stride; 2], [(pt, pb), (pl, pr)], [1, 1], 1);
                let y = conv(conv_index, get(*input, i, &mut values), opts);
                conv_index += 1;
                if *r {
                    relu(y)
                } else {
                    y
                }
            }
            Node::MaxPool { input, kernel, stride, padding } => {
                let mut o = MaxPoolOptions::new([*kernel; 2]);
                o.stride = [*stride; 2];
                o.padding = [(*padding, *padding); 2];
                max_pool2d(get(*input, i, &mut values), o)
            }
            Node::AvgPool { input, kernel, stride } => {
                let mut o = AvgPoolOptions::new([*kernel; 2]);
                o.stride = [*stride; 2];
                avg_pool2d(get(*input, i, &mut values), o)
            }
            Node::GlobalAvgPool { input } => get(*input, i, &mut values).mean_dim(2).mean_dim(3),
            Node::Add { a, b, relu: r } => {
                let ta = get(*a, i, &mut values);
                let tb = if a == b { ta.clone() } else { get(*b, i, &mut values) };
                let y = ta + tb;
                if *r {
                    relu(y)
                } else {
                    y
                }
            }
            Node::ChannelPlace { input, stride, out, channels } => {
                place(get(*input, i, &mut values), *stride, *out, channels)
            }
            Node::Dense { input, relu: r, .. } => {
                let v = get(*input, i, &mut values);
                let [n, c, h, w] = v.dims();
                let flat: Tensor<2> = v.reshape([n, c * h * w]);
                let (weight, bias) = &dense[dense_index];
                dense_index += 1;
                let y = flat.matmul(weight.clone().transpose()) + bias.clone().unsqueeze_dim(0);
                let y = if *r { relu(y) } else { y };
                let [n, k] = y.dims();
                y.reshape([n, k, 1, 1])
            }
        };
        values.push(Some(hook(i, y)));
    }
    let out = values.pop().flatten().expect("validated architectures end in a classifier");
    let [n, k, _, _] = out.dims();
    out.reshape([n, k])
}

/// Option-A shortcut: `x[:, :, ::s, ::s]`, channels placed, zeros elsewhere.
fn place(x: Tensor<4>, stride: usize, out: usize, channels: &[Option<usize>]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let x = if stride > 1 {
        // Strided subsampling as a 1×1 pool with stride s (exactly x[:, :, ::s, ::s]).
        let mut o = MaxPoolOptions::new([1, 1]);
        o.stride = [stride; 2];
        max_pool2d(x, o)
    } else {
        x
    };
    let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
    // Placement as a matmul with a 0/1 matrix [out, c]: simple, differentiable, any device.
    let mut m = vec![0f32; out * c];
    for (i, t) in channels.iter().enumerate() {
        if let Some(t) = t {
            m[t * c + i] = 1.0;
        }
    }
    let m: Tensor<2> = Tensor::from_data(TensorData::new(m, [out, c]), &device);
    let flat: Tensor<3> = x.reshape([n, c, oh * ow]);
    let y = m.unsqueeze_dim::<3>(0).repeat_dim(0, n).matmul(flat);
    y.reshape([n, out, oh, ow])
}
