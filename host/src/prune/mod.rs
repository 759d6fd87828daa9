//! Filter pruning: importance criteria, physical removal of channels (over the channel spaces
//! of [`crate::channels`]), and the iterative schedule.

pub mod criteria;
pub mod reconstruct;
pub mod schedule;
pub mod surgery;

/// The channel spaces, by the path they had when they lived here.
pub use crate::channels as groups;

/// Where a pruned model came from: defined beside the checkpoints that store it.
pub use crate::model::provenance::ProvenanceRecord;
