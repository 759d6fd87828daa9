//! The architecture with fewer channels: every conv's width and every shortcut placement
//! rewritten for the channels kept in each space, weights untouched (what a removal would cost,
//! before doing it).

use super::Groups;
use crate::model::{Arch, Node};

/// The architecture with only `keep[space]` channels of each space, without touching weights:
/// what a removal would cost, before doing it.
pub fn pruned_arch(arch: &Arch, groups: &Groups, keep: &[Vec<usize>]) -> Arch {
    let mut new = Arch { nodes: vec![], ..arch.clone() };
    for (i, node) in arch.nodes.iter().enumerate() {
        let mut node = node.clone();
        match &mut node {
            Node::Conv { out, .. } => *out = keep[groups.node_space[i]].len(),
            Node::ChannelPlace { input, out, channels, .. } => {
                let (so, si) = (groups.node_space[i], groups.space_of(*input));
                *channels =
                    keep[si].iter().map(|&c| channels[c].and_then(|t| keep[so].iter().position(|&k| k == t))).collect();
                *out = keep[so].len();
            }
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::Dense { .. } => {}
        }
        new.nodes.push(node);
    }
    new
}
