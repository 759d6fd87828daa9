//! Channel groups ("spaces") derived from the architecture, for every model family alike.
//!
//! Every node output lives in a channel space. A conv opens a new space; pools pass theirs
//! through; a residual add unifies its operands' spaces (so all convs writing one residual
//! stream form a group that must be pruned together); an option-A shortcut opens a space that
//! the following add unifies with the block's output. Pruning keeps a subset of each space's
//! channels; the producers of a space are the convs whose filters are removed with it.

use crate::model::{Arch, Node, Src};

/// One channel space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub channels: usize,
    /// Conv nodes whose output filters are this space's channels.
    pub producers: Vec<usize>,
    /// Whether channels of this space can be removed at all.
    pub prunable: bool,
    /// True for spaces written by one conv and not coupled through an add or shortcut.
    pub internal: bool,
}

/// The spaces of an architecture and the space of every node output.
#[derive(Debug, Clone)]
pub struct Groups {
    pub spaces: Vec<Space>,
    /// Space of each node's output.
    pub node_space: Vec<usize>,
    /// Space of the model input.
    pub input_space: usize,
}

fn find(parent: &mut [usize], x: usize) -> usize {
    let mut r = x;
    while parent[r] != r {
        r = parent[r];
    }
    let mut y = x;
    while parent[y] != r {
        let next = parent[y];
        parent[y] = r;
        y = next;
    }
    r
}

impl Groups {
    pub fn of(arch: &Arch) -> Result<Self, String> {
        let shapes = arch.shapes()?;
        // Provisional spaces: 0 is the input; then one per node that opens a space.
        let mut parent = vec![0usize];
        let mut channels = vec![arch.input.c];
        let mut coupled = vec![false];
        let mut node_space = Vec::with_capacity(arch.nodes.len());
        let space_of = |s: Src, node_space: &Vec<usize>| match s {
            Src::Input => 0,
            Src::Node(j) => node_space[j],
        };
        for (i, node) in arch.nodes.iter().enumerate() {
            let s = match node {
                Node::Conv { .. } | Node::Dense { .. } | Node::ChannelPlace { .. } => {
                    parent.push(parent.len());
                    channels.push(shapes[i].c);
                    coupled.push(matches!(node, Node::ChannelPlace { .. }));
                    parent.len() - 1
                }
                Node::MaxPool { input, .. } | Node::AvgPool { input, .. } | Node::GlobalAvgPool { input } => {
                    space_of(*input, &node_space)
                }
                Node::Add { a, b, .. } => {
                    let (x, y) =
                        (find(&mut parent, space_of(*a, &node_space)), find(&mut parent, space_of(*b, &node_space)));
                    let (lo, hi) = (x.min(y), x.max(y));
                    parent[hi] = lo;
                    coupled[lo] = true;
                    lo
                }
            };
            node_space.push(s);
        }
        // Renumber roots densely.
        let n = parent.len();
        let mut root_id = vec![usize::MAX; n];
        let mut spaces: Vec<Space> = vec![];
        for (s, &is_coupled) in coupled.iter().enumerate() {
            let r = find(&mut parent, s);
            if root_id[r] == usize::MAX {
                root_id[r] = spaces.len();
                spaces.push(Space { channels: channels[r], producers: vec![], prunable: true, internal: true });
            }
            let sp = &mut spaces[root_id[r]];
            if is_coupled || r != s {
                sp.internal = false;
            }
        }
        let node_space: Vec<usize> = node_space.iter().map(|&s| root_id[find(&mut parent, s)]).collect();
        let input_space = root_id[find(&mut parent, 0)];
        for (i, node) in arch.nodes.iter().enumerate() {
            match node {
                Node::Conv { .. } => spaces[node_space[i]].producers.push(i),
                Node::Dense { .. } => spaces[node_space[i]].prunable = false,
                Node::MaxPool { .. }
                | Node::AvgPool { .. }
                | Node::GlobalAvgPool { .. }
                | Node::Add { .. }
                | Node::ChannelPlace { .. } => {}
            }
        }
        spaces[input_space].prunable = false;
        for s in &mut spaces {
            if s.producers.is_empty() {
                s.prunable = false;
            }
            if s.producers.len() != 1 {
                s.internal = false;
            }
        }
        Ok(Self { spaces, node_space, input_space })
    }

    /// Space read by a node input.
    pub fn space_of(&self, s: Src) -> usize {
        match s {
            Src::Input => self.input_space,
            Src::Node(j) => self.node_space[j],
        }
    }

    /// Spaces that may be pruned under `scope`.
    pub fn prunable(&self, internal_only: bool) -> Vec<usize> {
        (0..self.spaces.len())
            .filter(|&s| self.spaces[s].prunable && (!internal_only || self.spaces[s].internal))
            .collect()
    }

    /// Keep-everything sets.
    pub fn keep_all(&self) -> Vec<Vec<usize>> {
        self.spaces.iter().map(|s| (0..s.channels).collect()).collect()
    }
}
