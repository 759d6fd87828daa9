//! `pare prune`: the iterative schedule and its report.

use super::common::{DataArgs, ModelArgs};
use crate::prune::criteria::{Criterion, GroupReduce, Normalize};
use crate::prune::reconstruct::Reconstruct;
use crate::prune::schedule::BUDGET_COST_EXPONENT;
use crate::prune::schedule::{run as run_schedule, Budget, Distill, PruneConfig, Rank, RunData, StepSize, Target};
use anyhow::bail;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value = "attribution")]
    pub criterion: Criterion,
    #[command(flatten)]
    pub scorer: super::common::ScorerArgs,
    /// Per-layer normalisation before the global ranking (default: l2, except none for `taylor`,
    /// `sss`, `variational`); `rms` (L2 norm / √width) keeps layers of different widths on one
    /// scale — under l2, ResNet-50's 4×-wide residual streams rank lowest.
    #[arg(long, value_enum)]
    pub normalize: Option<Normalize>,
    /// `all` prunes residual streams too (coupled groups); `internal` only block-internal channels.
    #[arg(long, value_enum, default_value = "all")]
    pub scope: Scope,
    /// Channels removed per iteration: a count (e.g. 32) or a fraction of the original (e.g.
    /// 0.1); the last iteration removes only what the MACs/params target needs [default: 0.5
    /// towards a MACs, params or ratio target — one removal straight to it measured better than
    /// two (BENCHMARKS.md); 0.25 under --max-accuracy-drop or a board budget].
    #[arg(long, allow_hyphen_values = true)]
    pub step: Option<StepSize>,
    /// Keep at least this many channels in every layer.
    #[arg(long, default_value_t = 2, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub min_channels: usize,
    /// Keep at least this fraction of every layer's original width [default: 0.125].
    #[arg(long, value_parser = super::common::fraction_below_one, allow_negative_numbers = true)]
    pub min_width: Option<f64>,
    /// How a coupled group (a residual stream) combines its layers' normalised scores
    /// [default: mean; `sum` makes streams nearly unprunable].
    #[arg(long, value_enum)]
    pub reduce: Option<GroupReduce>,
    /// What a channel's score is divided by before the global ranking: `score` (nothing),
    /// `macs` (its MACs: FLOPs-aware), `budget` (the board budget's cost it frees: latency from
    /// the board's latency model, flash from its parameters) [default: budget under a board
    /// budget, else score].
    #[arg(long, value_enum)]
    pub rank: Option<crate::prune::schedule::Rank>,
    /// Under `--rank macs|budget`: divide scores by (relative cost)^this (1: score per unit of
    /// cost, HALP's greedy; 0.5: a softer trade) [default: 0.5 for budget, 1 for macs; on
    /// resnet20 at half its measured latency 0.5 kept 86.51 % top-1, 1 kept 83.39 %, ranking by
    /// score alone 85.55 % (BENCHMARKS.md)].
    #[arg(long, value_parser = super::common::non_negative, allow_negative_numbers = true)]
    pub cost_exponent: Option<f64>,
    /// The whole run's fine-tuning budget: steps (2000), time (600s, 10m, 1h: scoring and
    /// evaluation count) or epochs of --train-split (5ep). Each removal's fine-tune takes
    /// --iteration-share of what is left; the removal that meets the target is the last, and its
    /// fine-tune (the recovery) takes all the rest.
    /// Replaces --finetune-steps/--finetune-epochs/--final-steps.
    #[arg(long, allow_hyphen_values = true)]
    pub budget: Option<Budget>,
    /// Under --budget: share of the remaining budget each iteration's fine-tune takes [default: 0.15].
    #[arg(long, value_parser = super::common::fraction_above_zero, allow_negative_numbers = true)]
    pub iteration_share: Option<f64>,
    /// Without --budget: recovery fine-tune steps after the last removal.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub final_steps: usize,
    /// Fine-tune with labels only (no distillation from the original model).
    #[arg(long)]
    pub no_distill: bool,
    /// Distillation temperature [default: 4].
    #[arg(long, value_parser = super::common::finite_positive, allow_negative_numbers = true)]
    pub temperature: Option<f64>,
    /// Share of the teacher's soft targets in the distillation loss, the rest on labels [default: 0.9].
    #[arg(long, value_parser = super::common::fraction, allow_negative_numbers = true)]
    pub distill_weight: Option<f64>,
    /// Share of each fine-tuning batch blended with another image by mixup (λ uniform in
    /// [0.5, 1]); the teacher labels the same blend, so a small training set goes further
    /// (0: off) [default: 0].
    #[arg(long, value_parser = super::common::fraction, allow_negative_numbers = true)]
    pub mixup: Option<f64>,
    /// Batches that re-estimate BatchNorm statistics after each removal (0: off) [default: 10].
    #[arg(long, allow_negative_numbers = true)]
    pub bn_batches: Option<usize>,
    /// Repair every layer by least squares right after each removal (ThiNet / He et al.
    /// 2017): each conv's weights refitted to the unpruned layer's output on this many
    /// calibration images (0: off).
    #[arg(long, allow_negative_numbers = true)]
    pub reconstruct: Option<usize>,
    /// Ridge of the least-squares repair, as a fraction of the mean diagonal of the normal
    /// equations [default: 0.001].
    #[arg(long, value_parser = super::common::non_negative, allow_negative_numbers = true)]
    pub reconstruct_ridge: Option<f64>,
    /// Round kept channel counts up to a multiple (4 suits the board kernels' SIMD groups)
    /// [default: 4 under a board budget, else 1].
    #[arg(long, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub round_to: Option<usize>,
    #[command(flatten)]
    pub budgets: super::budget::BudgetArgs,
    /// Board of --max-latency/--max-arena/--max-flash (`pare boards` lists them).
    #[arg(long, default_value = crate::boards::DEFAULT_BOARD)]
    pub board: String,
    /// Stop at this kept-filter ratio φ, in (0, 1). One size target at a time: --target-ratio,
    /// --target-flops or --target-params.
    #[arg(long, value_parser = super::common::fraction_open, allow_negative_numbers = true, conflicts_with_all = ["target_flops", "target_params"])]
    pub target_ratio: Option<f64>,
    /// Stop once MACs fell by this fraction, in (0, 1) (0.5 = half the FLOPs).
    #[arg(long, value_parser = super::common::fraction_open, allow_negative_numbers = true, conflicts_with = "target_params")]
    pub target_flops: Option<f64>,
    /// Stop once parameters fell by this fraction, in (0, 1).
    #[arg(long, value_parser = super::common::fraction_open, allow_negative_numbers = true)]
    pub target_params: Option<f64>,
    /// Stop before an iteration that loses more than this many top-1 points (in [0, 100]).
    #[arg(long, value_parser = super::common::accuracy_points, allow_negative_numbers = true)]
    pub max_accuracy_drop: Option<f64>,
    /// Split for training / fine-tuning (e.g. `train_lossless`: ../shared's bit-exact images).
    #[arg(long, default_value = "train")]
    pub train_split: String,
    /// Split the fine-tunes draw images from while distilling (the original model labels each
    /// one), e.g. CIFAR's `train` with `--train-split train_lossless` [default: --train-split;
    /// `pare pipeline` defaults to the split --train-split was drawn from].
    #[arg(long)]
    pub distill_split: Option<String>,
    /// Split the recovery fine-tune ends on: its last --polish-share trains on it (the same
    /// cosine continued), then --polish-bn-batches of its batches re-estimate BatchNorm; e.g.
    /// `train_lossless` (../shared's bit-exact images) after the mostly JPEG-recovered `train`.
    /// Off by default: on the README job it measured worse (BENCHMARKS.md).
    #[arg(long)]
    pub polish_split: Option<String>,
    /// With --polish-split: share of the recovery's budget spent on it [default: 0.2].
    #[arg(long, value_parser = super::common::fraction, allow_negative_numbers = true)]
    pub polish_share: Option<f64>,
    /// With --polish-split: batches of it that re-estimate BatchNorm at the end (0: none; on the
    /// README job 20 batches of CIFAR's exact images lost 3.2 points) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub polish_bn_batches: Option<usize>,
    #[arg(long, default_value_t = 512, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub calib_samples: usize,
    #[arg(long, default_value = "train")]
    pub calib_split: String,
    #[arg(long, default_value_t = 64, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Fine-tuning steps after each removal.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    pub finetune_steps: usize,
    /// Fine-tuning after each removal in epochs of --train-split instead (overrides
    /// --finetune-steps; 0.5 = half an epoch).
    #[arg(long, value_parser = super::common::non_negative, allow_negative_numbers = true)]
    pub finetune_epochs: Option<f64>,
    /// Peak learning rate of every fine-tune (cosine to 0 within each) [default: 0.005; measured
    /// on resnet20 with distillation: 0.03 → 84.59 %, 0.005 → 88.37 %, see BENCHMARKS.md].
    #[arg(long, value_parser = super::common::finite_positive, allow_negative_numbers = true)]
    pub finetune_lr: Option<f64>,
    #[arg(long, default_value_t = 50, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub max_iterations: usize,
    /// Split that measures accuracy after every iteration.
    #[arg(long, default_value = "test")]
    pub eval_split: String,
    #[arg(long, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub eval_limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: a checkpoint per iteration, state.json, report.md/json.
    #[arg(long, default_value = "runs/prune")]
    pub out: PathBuf,
    /// Also write the run's record (what `report.json` in --out holds: configuration and one row
    /// per iteration) to this path (docs/json.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Continue the run in --out.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    All,
    Internal,
}

/// Whether a pruning run writes a file of this name into its output folder: checkpoints,
/// state, reports and plots.
pub fn writes(name: &str) -> bool {
    let iteration = name.strip_prefix("iter-").and_then(|n| n.strip_suffix(".safetensors"));
    is_plot(name)
        || iteration.is_some_and(|k| k.parse::<usize>().is_ok())
        || matches!(
            name,
            "final.safetensors"
                | "state.json"
                | "report.md"
                | "report.json"
                | "report-partial.md"
                | "board-budget.json"
        )
}

/// Whether `name` is one of the plots ([`crate::plots::write`]).
pub fn is_plot(name: &str) -> bool {
    ["accuracy_vs_macs", "channels", "accuracy_vs_latency"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(|e| e == ".svg" || e == ".png"))
}

pub fn run(a: PruneArgs) -> anyhow::Result<()> {
    super::common::check_out(&a.out, true)?;
    // --resume reads the run in --out on purpose (and ignores --weights).
    let mut inputs = if a.resume { vec![] } else { a.model.inputs() };
    inputs.push(a.data.input());
    crate::atomic::check_distinct_in("--out", &a.out, &writes, &inputs)?;
    if let Some(json) = &a.json {
        crate::atomic::check_distinct(&[("--json", json)], &inputs)?;
    }
    let device = a.model.device.device()?;
    // A zoo model without --weights starts from random weights: --seed fixes them too.
    device.seed(a.seed);
    // On --resume the model comes from the run's last checkpoint.
    let net = if a.resume { None } else { Some(a.model.load(&device)?) };
    // Image datasets at the model's input size (a resumed run: --input-size or the default).
    let load = |split: &str| match &net {
        Some(n) => a.data.load_at(split, n.arch.input.h),
        None => a.data.load(split),
    };
    let train = load(&a.train_split)?;
    let calib = load(&a.calib_split)?.take(a.calib_samples);
    let mut eval = load(&a.eval_split)?;
    if let Some(n) = &net {
        super::common::check_classes(n, &train)?;
        super::common::check_classes(n, &eval)?;
    }
    if let Some(n) = a.eval_limit {
        eval = eval.take(n);
    }
    let d = PruneConfig::default();
    let target = Target {
        kept_ratio: a.target_ratio,
        flops_reduction: a.target_flops,
        params_reduction: a.target_params,
        max_accuracy_drop: a.max_accuracy_drop,
    };
    if target == Target::default() && !a.budgets.any() && !a.resume {
        bail!(
            "give a target: --target-flops, --target-params, --target-ratio, --max-accuracy-drop, \
             or a board budget (--max-latency, --max-arena, --max-flash)"
        );
    }
    if a.rank == Some(Rank::Budget) && !a.budgets.any() {
        bail!("--rank budget needs a board budget (--max-latency, --max-arena or --max-flash)");
    }
    // The board budget is resolved against the original model (iteration 0 when resuming).
    let original = match (&net, a.resume) {
        (Some(n), _) => Some(n.arch.clone()),
        (None, _) if a.budgets.any() => {
            Some(crate::model::weights::load_checkpoint(&a.out.join("iter-0.safetensors"), &device)?.0.arch)
        }
        (None, _) => None,
    };
    let board = match &original {
        Some(arch) => a.budgets.target(&a.board, arch, &calib, a.criterion.name())?,
        None => None,
    };
    if a.polish_split.is_none() && (a.polish_share.is_some() || a.polish_bn_batches.is_some()) {
        bail!("--polish-share and --polish-bn-batches need --polish-split");
    }
    let distill = match (a.no_distill, a.temperature, a.distill_weight) {
        (true, _, _) => {
            if a.mixup.is_some_and(|m| m > 0.0) {
                bail!("--mixup blends what the teacher labels: it needs distillation (drop --no-distill)");
            }
            None
        }
        (false, t, w) => {
            let d = Distill::default();
            let (t, w) = (t.unwrap_or(d.temperature), w.unwrap_or(d.weight));
            Some(Distill { temperature: t, weight: w, mixup: a.mixup.unwrap_or(d.mixup) })
        }
    };
    let cfg = PruneConfig {
        scorer: a.scorer.settings(false),
        criterion: a.criterion,
        normalize: a.normalize.unwrap_or(a.criterion.default_normalize()),
        internal_only: a.scope == Scope::Internal,
        step: a.step.unwrap_or_else(|| PruneConfig::default_step(&target, board.is_some())),
        min_channels: a.min_channels,
        min_width: a.min_width.unwrap_or(d.min_width),
        reduce: a.reduce.unwrap_or(d.reduce),
        rank: a.rank.unwrap_or(if board.is_some() { Rank::Budget } else { Rank::Score }),
        cost_exponent: a.cost_exponent.unwrap_or(match a.rank {
            Some(Rank::Macs) => 1.0,
            _ => BUDGET_COST_EXPONENT,
        }),
        distill,
        bn_batches: a.bn_batches.unwrap_or(d.bn_batches),
        reconstruct: match a.reconstruct {
            Some(0) => None,
            Some(images) => {
                Some(Reconstruct { images, ridge: a.reconstruct_ridge.unwrap_or(Reconstruct::default().ridge) })
            }
            None => d.reconstruct.map(|r| Reconstruct { ridge: a.reconstruct_ridge.unwrap_or(r.ridge), ..r }),
        },
        polish: crate::prune::schedule::Polish {
            share: a.polish_share.unwrap_or(d.polish.share),
            bn_batches: a.polish_bn_batches.unwrap_or(d.polish.bn_batches),
        },
        budget: a.budget,
        iteration_share: a.iteration_share.unwrap_or(d.iteration_share),
        final_steps: a.final_steps,
        round_to: a.round_to.unwrap_or(if board.is_some() { 4 } else { 1 }),
        board: board.as_ref().map(|(t, _)| t.clone()),
        target,
        calib_samples: a.calib_samples,
        batch_size: a.batch_size,
        seed: a.seed,
        finetune_steps: match a.finetune_epochs {
            Some(e) => (e * train.len().div_ceil(a.batch_size.max(1)) as f64).round() as usize,
            None => a.finetune_steps,
        },
        finetune_lr: a.finetune_lr.unwrap_or(d.finetune_lr),
        max_iterations: a.max_iterations,
    };
    let stop = super::train::interrupt_flag();
    let tune = match a.distill_split.as_deref() {
        Some(s) if s != a.train_split => {
            if a.no_distill {
                bail!("--distill-split needs distillation (drop --no-distill)");
            }
            load(s)?
        }
        _ => train,
    };
    let polish = a.polish_split.as_deref().map(load).transpose()?;
    let data = RunData { train: &tune, calib: &calib, eval: &eval, polish: polish.as_ref() };
    let (net, state) = run_schedule(net, &cfg, &data, &a.out, a.resume, &device, &stop)?;
    let report = crate::report::prune_report(&net.arch.labels, &state, &eval.source);
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        // No final.safetensors and a report that says it is partial: a script that deploys
        // `final.safetensors` after `pare prune` cannot ship a half-pruned model.
        let partial = format!(
            "# PARTIAL: interrupted after {} iteration(s); `pare prune … --resume` continues\n\n{report}",
            state.history.len().saturating_sub(1)
        );
        crate::atomic::write(&a.out.join("report-partial.md"), partial.as_bytes())?;
        let stale = a.out.join("final.safetensors");
        if stale.exists() {
            std::fs::remove_file(&stale)?;
        }
        return Err(super::common::Interrupted(format!(
            "state saved in {}; no final.safetensors written; continue with --resume",
            a.out.display()
        ))
        .into());
    }
    // Under a board budget the final model is measured on the board: budgets as measured.
    let verification = match &cfg.board {
        Some(t) => Some(super::budget::verify(t, &net.arch, &calib)?),
        None => None,
    };
    let report = match &verification {
        Some(v) => format!("{report}{}", v.markdown()),
        None => report,
    };
    crate::atomic::write(&a.out.join("report.md"), report.as_bytes())?;
    crate::report::write_json(&a.out.join("report.json"), &state)?;
    if let Some(p) = &a.json {
        crate::report::write_json(p, &state)?;
    }
    let last = state.history.last().and_then(|h| h.checkpoint.clone());
    if let Some(ck) = &last {
        crate::atomic::copy(ck, &a.out.join("final.safetensors"))?;
    }
    // Plots come last and never fail a finished run.
    match crate::plots::write(&a.out, &state) {
        Ok(files) => files.iter().for_each(|f| eprintln!("wrote {}", f.display())),
        Err(e) => eprintln!("warning: plots not written: {e:#}"),
    }
    println!("{}", super::common::terminal_safe(&report));
    println!("final model: {}", a.out.join("final.safetensors").display());
    if let Some(v) = &verification {
        crate::report::write_json(&a.out.join("board-budget.json"), v)?;
        super::budget::require(v)?;
    }
    Ok(())
}
