//! Channel spaces of an architecture: which node outputs share channels and must lose the same
//! ones ([`Groups`], `groups.rs`), and the architecture that keeps only some channels of each
//! space ([`pruned_arch`], `narrow.rs`). Plain architecture data, below pruning and the board
//! budgets that both use it.

mod groups;
mod narrow;

pub use groups::{Groups, Space};
pub use narrow::pruned_arch;
