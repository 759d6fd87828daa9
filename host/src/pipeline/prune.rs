//! The pruning stage: the fine-tuning and calibration data, the target (a FLOPs reduction or
//! the board's budgets), the schedule's configuration, and the pruning run itself.

use super::{Observer, PipelineError, PipelineRequest, DEFAULT_BUDGET_EPOCHS, DEFAULT_BUDGET_STEPS};
use crate::budget::BoardTarget;
use crate::data::Dataset;
use crate::model::Net;
use crate::prune::schedule::{run as run_schedule, Budget, PruneConfig, Rank, RunData, RunState, Target};

/// The pruning run's outcome and what the later stages need of its inputs.
pub(super) struct Pruned {
    pub net: Net,
    pub state: RunState,
    /// Calibration images for the int8 export.
    pub calib: Dataset,
    /// The board budgets resolved, when there were any.
    pub board_target: Option<BoardTarget>,
}

/// Prunes `net` as the request says, fine-tuning on the distillation split; `train_ds` is the
/// training split (reused when it is also the fine-tuning split).
pub(super) fn prune(
    req: &PipelineRequest,
    net: Net,
    train_ds: Dataset,
    eval_ds: &Dataset,
    observer: &mut dyn Observer,
) -> Result<Pruned, PipelineError> {
    let size = net.arch.input.h;
    let tune_split = match &req.distill_split {
        Some(s) => s.clone(),
        None => crate::data::superset_split(&req.data, &req.train_split).unwrap_or_else(|| req.train_split.clone()),
    };
    let load = |split: &str| crate::data::load_sized(&req.data, split, req.input_size.or(Some(size)));
    let tune_ds = if tune_split == req.train_split { train_ds } else { load(&tune_split)? };
    // Calibration images: the first of `train` (read once when the fine-tunes use it too).
    let calib =
        if tune_split == "train" { tune_ds.head(req.calib_samples) } else { load("train")?.take(req.calib_samples) };
    if tune_split != req.train_split {
        crate::say!(
            "  fine-tuning on {} ({} images, labelled by the original model; --distill-split {} keeps to the training split)",
            tune_ds.source,
            tune_ds.len(),
            req.train_split
        );
    }
    let target_flops = match (req.target_flops, req.budgets.any()) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => Some(0.5),
    };
    let board_target =
        super::budget::board_target(&req.budgets, &req.board, &net.arch, &calib, req.criterion.name())?.map(|(t, _)| t);
    match target_flops {
        Some(f) => crate::say!("[2/5] pruning with {} to −{:.0} % FLOPs", req.criterion.name(), 100.0 * f),
        None => crate::say!("[2/5] pruning with {} to the board budget", req.criterion.name()),
    }
    let cfg = config(req, target_flops, board_target.clone(), tune_ds.len());
    let stop = observer.pruning().unwrap_or_default();
    let data = RunData { train: &tune_ds, calib: &calib, eval: eval_ds, polish: None };
    let dir = req.out.join("prune");
    let (net, state) = run_schedule(Some(net), &cfg, &data, &dir, false, &req.device, &stop)?;
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(PipelineError::Interrupted { dir });
    }
    Ok(Pruned { net, state, calib, board_target })
}

/// The schedule's configuration: the pipeline's choices over [`PruneConfig::default`], the
/// default budget sized to the fine-tuning split's `tune_images`.
fn config(
    req: &PipelineRequest,
    target_flops: Option<f64>,
    board: Option<BoardTarget>,
    tune_images: usize,
) -> PruneConfig {
    let d = PruneConfig::default();
    let target = Target { flops_reduction: target_flops, ..Target::default() };
    let on_board = board.is_some();
    PruneConfig {
        scorer: req.scorer,
        criterion: req.criterion,
        normalize: req.criterion.default_normalize(),
        step: req.step.unwrap_or_else(|| PruneConfig::default_step(&target, on_board)),
        target,
        round_to: if on_board { 4 } else { d.round_to },
        rank: if on_board { Rank::Budget } else { d.rank },
        cost_exponent: crate::prune::schedule::BUDGET_COST_EXPONENT,
        board,
        calib_samples: req.calib_samples,
        budget: Some(req.budget.unwrap_or_else(|| {
            let per_epoch = tune_images.div_ceil(d.batch_size.max(1));
            Budget::Steps((DEFAULT_BUDGET_EPOCHS * per_epoch).min(DEFAULT_BUDGET_STEPS))
        })),
        ..d
    }
}
