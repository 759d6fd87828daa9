//! The pruning provenance a checkpoint stores and a `.pare` file carries: the criterion, the
//! kept-filter ratio and the MACs and parameters before and after.

/// Where a pruned model came from (stored in checkpoints, carried into `.pare` files).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProvenanceRecord {
    pub criterion: String,
    pub kept_filter_ratio: f32,
    pub flops_before: u64,
    pub flops_after: u64,
    pub params_before: u64,
    pub params_after: u64,
}

impl ProvenanceRecord {
    pub fn as_format(&self) -> pare_format::Provenance<'_> {
        pare_format::Provenance {
            criterion: &self.criterion,
            kept_filter_ratio: self.kept_filter_ratio,
            flops_before: self.flops_before,
            flops_after: self.flops_after,
            params_before: self.params_before,
            params_after: self.params_after,
        }
    }
}
