//! `pare pipeline`: the main job, checkpoint to board in one command. The arguments become a
//! [`PipelineRequest`] for [`crate::pipeline::run_with`]; the board check and the report are
//! printed, and the exit status says whether the board check and any board budget passed.

use super::common::{DataArgs, ModelArgs};
use crate::flash::FlashReport;
use crate::pipeline::{BoardBudgets, ModelSource, Observer, PipelineError, PipelineRequest};
use crate::prune::criteria::Criterion;
use crate::prune::schedule::{Budget, StepSize};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Model and weights; without --weights a zoo model (default `tiny`) is trained first.
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Epochs when training from scratch.
    #[arg(long, default_value_t = PipelineRequest::default().epochs, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub epochs: usize,
    #[arg(long, value_enum, default_value_t = PipelineRequest::default().criterion)]
    pub criterion: Criterion,
    #[command(flatten)]
    pub scorer: super::common::ScorerArgs,
    /// FLOPs reduction to reach, in (0, 1) (0.5 = half) [default: 0.5 without a board budget].
    #[arg(long, value_parser = super::common::fraction_open, allow_negative_numbers = true)]
    pub target_flops: Option<f64>,
    #[command(flatten)]
    pub budgets: super::budget::BudgetArgs,
    /// Channels removed per iteration (fraction of the original, or a count); the last
    /// iteration removes only what the target needs [default: 0.5 towards the FLOPs target, 0.25
    /// under a board budget].
    #[arg(long, allow_hyphen_values = true)]
    pub step: Option<StepSize>,
    /// Fine-tuning budget of the pruning run: steps (2000), time (8m, 480s: scoring and
    /// evaluation count) or epochs of the fine-tuning split (9ep); split between the iterations
    /// and a recovery fine-tune after the last removal, always distilling from the original
    /// model [default: 9 epochs of the fine-tuning split, at most 3,200 steps].
    #[arg(long, allow_hyphen_values = true)]
    pub budget: Option<Budget>,
    /// Split for training / fine-tuning (e.g. `train_lossless`: ../shared's bit-exact images).
    #[arg(long, default_value_t = PipelineRequest::default().train_split)]
    pub train_split: String,
    /// Split the pruning run's fine-tunes draw images from; the original model labels each one
    /// [default: the split --train-split was drawn from, when the dataset has one (CIFAR's
    /// `train` for `train_lossless`: 50,000 images instead of 7,728), else --train-split].
    #[arg(long)]
    pub distill_split: Option<String>,
    #[arg(long, default_value_t = PipelineRequest::default().calib_samples, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub calib_samples: usize,
    /// Split for accuracy (test_lossless for ../shared's CIFAR-10).
    #[arg(long, default_value_t = PipelineRequest::default().eval_split)]
    pub eval_split: String,
    #[arg(long, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub eval_limit: Option<usize>,
    #[arg(long, default_value_t = PipelineRequest::default().board)]
    pub board: String,
    /// Samples run on the board.
    #[arg(long, default_value_t = PipelineRequest::default().samples, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub samples: usize,
    #[arg(long, default_value_os_t = PipelineRequest::default().out)]
    pub out: PathBuf,
    /// Also write the summary as JSON: top-1 at each stage, MACs, parameters, file size and the
    /// board's report (docs/json.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Whether a pipeline writes a file of this name into its output folder (the pruning run's
/// files go to `prune/` inside it).
fn writes(name: &str) -> bool {
    matches!(name, "model.pare" | "board.json" | "report.md") || super::prune::is_plot(name)
}

impl PipelineArgs {
    /// The library request these arguments describe, with the model loaded on `device` when
    /// --weights names one.
    fn request(&self, device: burn::tensor::Device) -> anyhow::Result<PipelineRequest> {
        let model = match &self.model.weights {
            Some(_) => ModelSource::Loaded(self.model.load(&device)?),
            None => ModelSource::Zoo {
                name: self.model.model.clone().unwrap_or_else(|| crate::pipeline::DEFAULT_MODEL.into()),
                mean: self.model.mean.as_ref().map(|c| c.0.clone()),
                std: self.model.std.as_ref().map(|c| c.0.clone()),
            },
        };
        Ok(PipelineRequest {
            model,
            device,
            epochs: self.epochs,
            data: self.data.data.clone(),
            input_size: self.data.input_size,
            train_split: self.train_split.clone(),
            distill_split: self.distill_split.clone(),
            eval_split: self.eval_split.clone(),
            eval_limit: self.eval_limit,
            calib_samples: self.calib_samples,
            criterion: self.criterion,
            scorer: self.scorer.settings(false),
            target_flops: self.target_flops,
            budgets: BoardBudgets {
                max_latency: self.budgets.max_latency,
                max_arena: self.budgets.max_arena,
                max_flash: self.budgets.max_flash,
            },
            step: self.step,
            budget: self.budget,
            board: self.board.clone(),
            samples: self.samples,
            out: self.out.clone(),
            json: self.json.clone(),
        })
    }
}

/// The command's side of a run: Ctrl-C stops pruning (not training), and the board check is
/// printed as soon as it is done.
struct Terminal;

impl Observer for Terminal {
    fn pruning(&mut self) -> Option<Arc<AtomicBool>> {
        Some(super::train::interrupt_flag())
    }

    fn board_checked(&mut self, report: &FlashReport) {
        super::flash::print_report(report);
    }
}

pub fn run(a: PipelineArgs) -> anyhow::Result<()> {
    super::common::check_out(&a.out, true)?;
    let mut inputs = a.model.inputs();
    inputs.push(a.data.input());
    crate::atomic::check_distinct_in("--out", &a.out, &writes, &inputs)?;
    crate::atomic::check_distinct_in("--out", &a.out.join("prune"), &super::prune::writes, &inputs)?;
    if let Some(json) = &a.json {
        crate::atomic::check_distinct(&[("--json", json)], &inputs)?;
    }
    let request = a.request(a.model.device.device()?)?;
    let report = match crate::pipeline::run_with(&request, &mut Terminal) {
        Ok(report) => report,
        Err(PipelineError::Interrupted { dir }) => {
            return Err(super::common::Interrupted(format!(
                "pruning state saved in {}; nothing exported",
                dir.display()
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    println!("{}", super::common::terminal_safe(&report.markdown));
    if !report.board.passed() {
        anyhow::bail!("board check failed: {}", report.board.result.verdict());
    }
    if let Some(v) = &report.verification {
        super::budget::require(v)?;
    }
    Ok(())
}
