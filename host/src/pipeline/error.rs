//! [`PipelineError`]: each stage's own error, passed through unchanged (its message and its
//! causes are the stage's), and the few the pipeline itself can give.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The pruning run was stopped ([`super::Observer::pruning`]'s flag): its state is saved in
    /// `dir` and can be resumed; nothing was exported.
    #[error("interrupted: pruning state saved in {}; nothing exported", dir.display())]
    Interrupted { dir: PathBuf },
    #[error("unknown board '{0}'; `pare boards` lists them")]
    UnknownBoard(String),
    #[error(
        "unknown model '{name}' (or no layout of it at {size}×{size}); available: {}",
        crate::model::zoo::NAMES.join(", ")
    )]
    UnknownModel { name: String, size: usize },
    /// `--mean` or `--std` with a value count that is neither 1 nor the model's channels, or a
    /// standard deviation that is not above 0.
    #[error("{0}")]
    Normalisation(String),
    /// An architecture that cannot be built or costed.
    #[error("{0}")]
    Arch(String),
    /// A latency limit that cannot be resolved on the board (a time on an unclocked board).
    #[error("{0}")]
    Latency(String),
    #[error("no iterations")]
    NoIterations,
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Measure(#[from] crate::budget::measure::MeasureError),
    #[error(transparent)]
    LatencyModel(#[from] crate::budget::LatencyError),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    #[error(transparent)]
    Schedule(#[from] crate::prune::schedule::ScheduleError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Runtime(#[from] pare_device::Error),
    #[error(transparent)]
    Flash(#[from] crate::flash::FlashError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
