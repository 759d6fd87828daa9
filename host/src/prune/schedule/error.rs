//! Why a pruning run could not go on.

use crate::model::weights;
use std::path::{Path, PathBuf};

/// Why a pruning run could not go on; the run's state on disk stays valid.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {cause}")]
    State { path: PathBuf, cause: serde_json::Error },
    #[error(transparent)]
    Weights(#[from] weights::WeightsError),
    #[error("architecture: {0}")]
    Arch(String),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    #[error(transparent)]
    Measure(#[from] crate::budget::measure::MeasureError),
    #[error(transparent)]
    Latency(#[from] crate::budget::LatencyError),
    #[error("nothing to resume: {0} does not exist")]
    NothingToResume(PathBuf),
    #[error("{0} has no checkpoint to resume from")]
    NoCheckpoint(PathBuf),
    #[error("no model to prune")]
    NoModel,
    #[error("no target: give a kept ratio, a FLOPs or parameter reduction, a board budget or a maximum accuracy drop")]
    NoTarget,
    #[error("ranking by the board budget needs a board budget")]
    NoBoardBudget,
    #[error(transparent)]
    Reconstruct(#[from] crate::prune::reconstruct::ReconstructError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error("a step must remove at least one channel")]
    ZeroStep,
    #[error(
        "the size targets are alternatives: give one of a kept ratio, a FLOPs reduction and a parameter reduction"
    )]
    SeveralSizeTargets,
}

/// An I/O error at `path`, as a [`ScheduleError::Io`].
pub(super) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ScheduleError + '_ {
    move |cause| ScheduleError::Io { path: path.into(), cause }
}
