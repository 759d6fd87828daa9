//! `pare prune`: the iterative schedule and its report.

use super::common::{DataArgs, ModelArgs};
use crate::prune::criteria::{Criterion, Normalize};
use crate::prune::schedule::{run as run_schedule, PruneConfig, RunData, StepSize, Target};
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
    /// Per-layer normalisation (default: l2, except none for `taylor`).
    #[arg(long, value_enum)]
    pub normalize: Option<Normalize>,
    /// `all` prunes residual streams too (coupled groups); `internal` only block-internal channels.
    #[arg(long, value_enum, default_value = "all")]
    pub scope: Scope,
    /// Channels removed per iteration: a count (e.g. 32) or a fraction of the original (e.g. 0.1).
    #[arg(long, default_value = "0.1")]
    pub step: StepSize,
    /// Keep at least this many channels in every layer.
    #[arg(long, default_value_t = 2)]
    pub min_channels: usize,
    /// Round kept channel counts up to a multiple (e.g. 4 for SIMD on the board).
    #[arg(long, default_value_t = 1)]
    pub round_to: usize,
    /// Stop at this kept-filter ratio φ.
    #[arg(long)]
    pub target_ratio: Option<f64>,
    /// Stop once MACs fell by this fraction (0.5 = half the FLOPs).
    #[arg(long)]
    pub target_flops: Option<f64>,
    /// Stop once parameters fell by this fraction.
    #[arg(long)]
    pub target_params: Option<f64>,
    /// Stop before an iteration that loses more than this many top-1 points.
    #[arg(long)]
    pub max_accuracy_drop: Option<f64>,
    /// Split for training / fine-tuning (e.g. `train_lossless`: ../shared's bit-exact images).
    #[arg(long, default_value = "train")]
    pub train_split: String,
    #[arg(long, default_value_t = 512)]
    pub calib_samples: usize,
    #[arg(long, default_value = "train")]
    pub calib_split: String,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Fine-tuning steps after each removal.
    #[arg(long, default_value_t = 100)]
    pub finetune_steps: usize,
    /// Fine-tuning after each removal in epochs of --train-split instead (overrides
    /// --finetune-steps; 0.5 = half an epoch).
    #[arg(long)]
    pub finetune_epochs: Option<f64>,
    #[arg(long, default_value_t = 0.01)]
    pub finetune_lr: f64,
    #[arg(long, default_value_t = 50)]
    pub max_iterations: usize,
    /// Split that measures accuracy after every iteration.
    #[arg(long, default_value = "test")]
    pub eval_split: String,
    #[arg(long)]
    pub eval_limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: a checkpoint per iteration, state.json, report.md/json.
    #[arg(long, default_value = "runs/prune")]
    pub out: PathBuf,
    /// Continue the run in --out.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    All,
    Internal,
}

pub fn run(a: PruneArgs) -> anyhow::Result<()> {
    let device = a.model.device.device()?;
    // On --resume the model comes from the run's last checkpoint.
    let net = if a.resume { None } else { Some(a.model.load(&device)?) };
    let train = crate::data::load(&a.data.data, &a.train_split)?;
    let calib = crate::data::load(&a.data.data, &a.calib_split)?.take(a.calib_samples);
    let mut eval = crate::data::load(&a.data.data, &a.eval_split)?;
    if let Some(n) = a.eval_limit {
        eval = eval.take(n);
    }
    let cfg = PruneConfig {
        criterion: a.criterion,
        normalize: a.normalize.unwrap_or(a.criterion.default_normalize()),
        internal_only: a.scope == Scope::Internal,
        step: a.step,
        min_channels: a.min_channels,
        round_to: a.round_to,
        target: Target {
            kept_ratio: a.target_ratio,
            flops_reduction: a.target_flops,
            params_reduction: a.target_params,
            max_accuracy_drop: a.max_accuracy_drop,
        },
        calib_samples: a.calib_samples,
        batch_size: a.batch_size,
        seed: a.seed,
        finetune_steps: match a.finetune_epochs {
            Some(e) if e.is_finite() && e >= 0.0 => (e * train.len().div_ceil(a.batch_size) as f64).round() as usize,
            Some(e) => bail!("--finetune-epochs must be a non-negative number, not {e}"),
            None => a.finetune_steps,
        },
        finetune_lr: a.finetune_lr,
        max_iterations: a.max_iterations,
    };
    let stop = super::train::interrupt_flag();
    let data = RunData { train: &train, calib: &calib, eval: &eval };
    let (net, state) = run_schedule(net, &cfg, &data, &a.out, a.resume, &device, &stop)?;
    let report = crate::report::prune_report(&net.arch.labels, &state, &eval.source);
    crate::atomic::write(&a.out.join("report.md"), report.as_bytes())?;
    crate::report::write_json(&a.out.join("report.json"), &state)?;
    let last = state.history.last().and_then(|h| h.checkpoint.clone());
    if let Some(ck) = &last {
        std::fs::copy(ck, a.out.join("final.safetensors"))?;
    }
    // Plots come last and never fail a finished run.
    match crate::plots::write(&a.out, &state) {
        Ok(files) => files.iter().for_each(|f| eprintln!("wrote {}", f.display())),
        Err(e) => eprintln!("warning: plots not written: {e:#}"),
    }
    println!("{report}");
    println!("final model: {}", a.out.join("final.safetensors").display());
    Ok(())
}
