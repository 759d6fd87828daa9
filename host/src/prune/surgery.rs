//! Physical removal of channels: every producer's filters and BN entries, every consumer's
//! input channels, shortcut placements and the classifier's columns. The result is a smaller
//! model with its own architecture, not a mask.

use crate::channels::{pruned_arch, Groups};
use crate::model::{weights, Net, Node};
use burn::tensor::{Device, Tensor, TensorData};

/// The model with only `keep[space]` channels of each space (sorted indices).
pub fn prune(net: &Net, groups: &Groups, keep: &[Vec<usize>], device: &Device) -> Result<Net, String> {
    let arch = &net.arch;
    let shapes = arch.shapes()?;
    let t = weights::to_tensors(net);
    let mut out_t = weights::Tensors::new();
    let new = pruned_arch(arch, groups, keep);
    for (i, node) in arch.nodes.iter().enumerate() {
        match node {
            Node::Conv { name, bn, input, kernel, .. } => {
                let (so, si) = (groups.node_space[i], groups.space_of(*input));
                let (ko, ki) = (&keep[so], &keep[si]);
                let cin = arch.in_channels(&shapes, *input);
                let k2 = *kernel * *kernel;
                let w = &t[&format!("{name}.weight")].1;
                let mut nw = Vec::with_capacity(ko.len() * ki.len() * k2);
                for &o in ko {
                    for &c in ki {
                        let base = (o * cin + c) * k2;
                        nw.extend_from_slice(&w[base..base + k2]);
                    }
                }
                out_t.insert(format!("{name}.weight"), (vec![ko.len(), ki.len(), *kernel, *kernel], nw));
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    let v = &t[&format!("{bn}.{p}")].1;
                    out_t.insert(format!("{bn}.{p}"), (vec![ko.len()], ko.iter().map(|&o| v[o]).collect()));
                }
            }
            Node::Dense { name, input, out, .. } => {
                // Columns in (c, h, w) order: a channel's h·w columns go together.
                let ki = &keep[groups.space_of(*input)];
                let cin = arch.dense_inputs(&shapes, *input);
                let hw = cin / arch.in_channels(&shapes, *input).max(1);
                let w = &t[&format!("{name}.weight")].1;
                let nw: Vec<f32> = (0..*out)
                    .flat_map(|o| ki.iter().flat_map(move |&c| (0..hw).map(move |p| w[o * cin + c * hw + p])))
                    .collect();
                out_t.insert(format!("{name}.weight"), (vec![*out, ki.len() * hw], nw));
                out_t.insert(format!("{name}.bias"), t[&format!("{name}.bias")].clone());
            }
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. } => {}
        }
    }
    weights::from_tensors(&new, &out_t, device)
}

/// The original model's forward pass with the channels outside `keep` zeroed wherever their
/// space is produced: the reference the pruned model must equal.
pub fn forward_masked(net: &Net, groups: &Groups, keep: &[Vec<usize>], x: Tensor<4>) -> Tensor<2> {
    let device = x.device();
    let masks: Vec<Tensor<4>> = groups
        .spaces
        .iter()
        .zip(keep)
        .map(|(s, k)| {
            let mut m = vec![0f32; s.channels];
            for &c in k {
                m[c] = 1.0;
            }
            Tensor::from_data(TensorData::new(m, [1, s.channels, 1, 1]), &device)
        })
        .collect();
    let last = net.arch.nodes.len() - 1;
    net.forward_hooked(x, &mut |i, t| if i == last { t } else { t * masks[groups.node_space[i]].clone() })
}
