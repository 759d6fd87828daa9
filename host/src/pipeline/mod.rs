//! The main job, checkpoint to board in one call: train (or take) a model, prune it with
//! fine-tuning, quantise it to int8, export it, emulate it on the host, check it on a board,
//! and report. `pare pipeline` is a front end of [`run_with`].
//!
//! One stage per file: [`model`] (datasets, and the model given or trained), [`budget`] (board
//! budgets resolved on the board), [`prune`] (the pruning run), [`report`] (export, emulation,
//! board check and the report); [`request`] and [`error`] are what goes in and what can go wrong.

pub mod budget;
pub mod error;
mod model;
pub(crate) use model::normalised;
mod prune;
pub mod report;
pub mod request;

pub use budget::board_target;
pub use error::PipelineError;
pub use report::{BeforeAfter, PipelineReport, Top1};
pub use request::{
    BoardBudgets, ModelSource, PipelineRequest, DEFAULT_BUDGET_EPOCHS, DEFAULT_BUDGET_STEPS, DEFAULT_MODEL,
};

use crate::flash::FlashReport;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a front end hears of a pipeline run besides its progress lines ([`crate::say!`]).
pub trait Observer {
    /// Pruning is about to start: the flag that stops it, if any. The pruning run checks it
    /// between batches, saves its state (resumable) and the pipeline returns
    /// [`PipelineError::Interrupted`]. `pare` installs its Ctrl-C handler here, not before, so
    /// a Ctrl-C while training still ends the process at once.
    fn pruning(&mut self) -> Option<Arc<AtomicBool>> {
        None
    }

    /// The board check finished; the report is written next.
    fn board_checked(&mut self, _report: &FlashReport) {}
}

/// An observer that hears nothing and never stops the run.
pub struct Unobserved;

impl Observer for Unobserved {}

/// Runs the pipeline `req` describes, uninterruptible and unobserved ([`run_with`]).
pub fn run(req: &PipelineRequest) -> Result<PipelineReport, PipelineError> {
    run_with(req, &mut Unobserved)
}

/// Runs the pipeline `req` describes: the datasets and the model (trained first when it is a
/// zoo model), pruning into `out/prune`, int8 export to `out/model.pare`, host emulation, the
/// board check (`out/board.json`), `out/report.md`, the plots and the `--json` summary. The
/// caller checks `out` first (it is written into, and no output there may be an input).
pub fn run_with(req: &PipelineRequest, observer: &mut dyn Observer) -> Result<PipelineReport, PipelineError> {
    let started = std::time::Instant::now();
    let model::Prepared { net, train, eval } = model::prepare(req)?;
    let pruned = prune::prune(req, net, train, &eval, observer)?;
    report::finish(req, pruned, &eval, started, observer)
}
