//! The architecture as data: a list of nodes, each reading earlier nodes' outputs. Every model
//! family in the zoo is expressed with these few node kinds, so pruning, export and reports work
//! on all of them with no per-model code.

use serde::{Deserialize, Serialize};

/// Where a node reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Src {
    Input,
    Node(usize),
}

/// One node. Convolutions carry their BatchNorm and optional ReLU; names follow PyTorch's
/// state-dict naming so that pretrained weights load by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    Conv {
        /// Tensor name of the conv without `.weight`, e.g. `layer1.0.conv1`.
        name: String,
        /// Tensor name of its BatchNorm, e.g. `layer1.0.bn1`.
        bn: String,
        input: Src,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        relu: bool,
        /// Per-side zero padding `[top, left, bottom, right]` where it is not `padding` all
        /// round (TensorFlow's "same" on stride 2 pads 0 top/left, 1 bottom/right; imported
        /// models bring it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pads: Option<[usize; 4]>,
    },
    MaxPool {
        input: Src,
        kernel: usize,
        stride: usize,
        /// Rows and columns on every side that no window value comes from (PyTorch's
        /// `padding`, −∞ there): 1 in an ImageNet stem's 3×3/2 pool.
        #[serde(default)]
        padding: usize,
    },
    AvgPool {
        input: Src,
        kernel: usize,
        stride: usize,
    },
    GlobalAvgPool {
        input: Src,
    },
    Add {
        a: Src,
        b: Src,
        relu: bool,
    },
    /// Option-A shortcut: subsample by `stride`, put input channel `i` at output channel
    /// `channels[i]` (or drop it), zero elsewhere.
    #[serde(alias = "Place")]
    ChannelPlace {
        input: Src,
        stride: usize,
        out: usize,
        channels: Vec<Option<usize>>,
    },
    /// A fully connected layer over its input map flattened in `(c, h, w)` order (PyTorch's
    /// `x.view(N, -1)`): weight `[out, c·h·w]`, output `(out, 1, 1)`. The last node is the
    /// classifier; earlier ones (an MLP head) end in a ReLU.
    #[serde(alias = "Linear")]
    Dense {
        name: String,
        input: Src,
        out: usize,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        relu: bool,
    },
}

impl Node {
    /// A conv's zero padding `[top, left, bottom, right]` (`None` for other nodes).
    pub fn conv_pads(&self) -> Option<[usize; 4]> {
        match self {
            Node::Conv { padding, pads, .. } => Some(pads.unwrap_or([*padding; 4])),
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. }
            | Node::Dense { .. } => None,
        }
    }

    pub fn inputs(&self) -> Vec<Src> {
        match self {
            Node::Conv { input, .. }
            | Node::MaxPool { input, .. }
            | Node::AvgPool { input, .. }
            | Node::GlobalAvgPool { input }
            | Node::ChannelPlace { input, .. }
            | Node::Dense { input, .. } => vec![*input],
            Node::Add { a, b, .. } => vec![*a, *b],
        }
    }
}

/// Channels, height, width of a node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

/// A whole model description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// Zoo name, e.g. `resnet20`.
    pub name: String,
    pub input: Shape,
    pub nodes: Vec<Node>,
    /// Per-channel pixel normalisation: `(x / 255 - mean) / std`.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub labels: Vec<String>,
}

impl Arch {
    /// Output shape of every node, checking that the graph is well formed.
    pub fn shapes(&self) -> Result<Vec<Shape>, String> {
        let shapes = self.shapes_so_far()?;
        match self.nodes.last() {
            Some(Node::Dense { .. }) => Ok(shapes),
            _ => Err("the last node must be the linear classifier".into()),
        }
    }

    /// Output shape of every node of a graph still being built (no classifier required).
    pub fn shapes_so_far(&self) -> Result<Vec<Shape>, String> {
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.nodes.len());
        let get = |s: Src, shapes: &Vec<Shape>, i: usize| -> Result<Shape, String> {
            match s {
                Src::Input => Ok(self.input),
                Src::Node(j) if j < i => Ok(shapes[j]),
                Src::Node(j) => Err(format!("node {i} reads node {j}, which is not before it")),
            }
        };
        let window = |n: usize, k: usize, s: usize, p: usize| -> Result<usize, String> {
            if n + 2 * p < k || s == 0 {
                return Err(format!("window {k}/{s} does not fit {n}"));
            }
            Ok((n + 2 * p - k) / s + 1)
        };
        for (i, node) in self.nodes.iter().enumerate() {
            let shape = match node {
                Node::Conv { input, out, kernel, stride, padding, pads, .. } => {
                    let x = get(*input, &shapes, i)?;
                    let [t, l, b, r] = pads.unwrap_or([*padding; 4]);
                    // `window` pads both sides by its last argument: give it the mean, then
                    // correct by the odd unit (2·p = t + b exactly when t + b is even).
                    let side = |n: usize, a: usize, z: usize| -> Result<usize, String> {
                        let total = n + a + z;
                        if total < *kernel || *stride == 0 {
                            return Err(format!("window {kernel}/{stride} does not fit {n} padded {a}+{z}"));
                        }
                        Ok((total - kernel) / stride + 1)
                    };
                    Shape { c: *out, h: side(x.h, t, b)?, w: side(x.w, l, r)? }
                }
                Node::MaxPool { input, kernel, stride, padding } => {
                    let x = get(*input, &shapes, i)?;
                    if *padding * 2 >= *kernel && *padding > 0 {
                        return Err(format!("node {i}: pool padding {padding} leaves windows wholly outside"));
                    }
                    Shape {
                        c: x.c,
                        h: window(x.h, *kernel, *stride, *padding)?,
                        w: window(x.w, *kernel, *stride, *padding)?,
                    }
                }
                Node::AvgPool { input, kernel, stride } => {
                    let x = get(*input, &shapes, i)?;
                    Shape { c: x.c, h: window(x.h, *kernel, *stride, 0)?, w: window(x.w, *kernel, *stride, 0)? }
                }
                Node::GlobalAvgPool { input } => Shape { c: get(*input, &shapes, i)?.c, h: 1, w: 1 },
                Node::Add { a, b, .. } => {
                    let (x, y) = (get(*a, &shapes, i)?, get(*b, &shapes, i)?);
                    if x != y {
                        return Err(format!("node {i} adds {x:?} and {y:?}"));
                    }
                    x
                }
                Node::ChannelPlace { input, stride, out, channels } => {
                    let x = get(*input, &shapes, i)?;
                    if channels.len() != x.c || channels.iter().flatten().any(|&c| c >= *out) {
                        return Err(format!("node {i}: bad channel placement"));
                    }
                    Shape { c: *out, h: x.h.div_ceil(*stride), w: x.w.div_ceil(*stride) }
                }
                Node::Dense { input, out, .. } => {
                    get(*input, &shapes, i)?;
                    Shape { c: *out, h: 1, w: 1 }
                }
            };
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// Input channels of every node.
    pub fn in_channels(&self, shapes: &[Shape], src: Src) -> usize {
        match src {
            Src::Input => self.input.c,
            Src::Node(j) => shapes[j].c,
        }
    }

    /// Inputs of a dense layer reading `src`: its map's `c·h·w` values.
    pub fn dense_inputs(&self, shapes: &[Shape], src: Src) -> usize {
        let s = match src {
            Src::Input => self.input,
            Src::Node(j) => shapes[j],
        };
        s.c * s.h * s.w
    }

    /// Indices of the conv nodes, in order (conv `k` of [`crate::model::Net::convs`] is node
    /// `conv_nodes()[k]`).
    pub fn conv_nodes(&self) -> Vec<usize> {
        self.nodes.iter().enumerate().filter(|(_, n)| matches!(n, Node::Conv { .. })).map(|(i, _)| i).collect()
    }

    /// Multiply-accumulates and parameters (conv weights, BN, classifier) of one inference.
    pub fn cost(&self) -> Result<(u64, u64), String> {
        let shapes = self.shapes()?;
        let (mut macs, mut params) = (0u64, 0u64);
        for (i, node) in self.nodes.iter().enumerate() {
            match node {
                Node::Conv { input, kernel, .. } => {
                    let cin = self.in_channels(&shapes, *input) as u64;
                    let s = shapes[i];
                    let w = s.c as u64 * cin * (*kernel as u64).pow(2);
                    macs += w * (s.h * s.w) as u64;
                    params += w + 2 * s.c as u64;
                }
                Node::Dense { input, out, .. } => {
                    let cin = self.dense_inputs(&shapes, *input) as u64;
                    macs += cin * *out as u64;
                    params += (cin + 1) * *out as u64;
                }
                Node::MaxPool { .. }
                | Node::AvgPool { .. }
                | Node::GlobalAvgPool { .. }
                | Node::Add { .. }
                | Node::ChannelPlace { .. } => {}
            }
        }
        Ok((macs, params))
    }
}
