//! `pare pipeline`: the main job, checkpoint to board in one command. Train (or load) a model,
//! attribution-prune it with fine-tuning, quantise to int8, export, check it on a board, and
//! print the seed-style report.

use super::common::{DataArgs, ModelArgs};
use crate::export::{export, Quant};
use crate::prune::criteria::Criterion;
use crate::prune::schedule::{run as run_schedule, Budget, PruneConfig, RunData, StepSize, Target};
use crate::train::{train, TrainConfig};
use burn::module::Module;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Model and weights; without --weights a zoo model (default `tiny`) is trained first.
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Epochs when training from scratch.
    #[arg(long, default_value_t = 3, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub epochs: usize,
    #[arg(long, value_enum, default_value = "attribution")]
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
    #[arg(long, default_value = "train")]
    pub train_split: String,
    /// Split the pruning run's fine-tunes draw images from; the original model labels each one
    /// [default: the split --train-split was drawn from, when the dataset has one (CIFAR's
    /// `train` for `train_lossless`: 50,000 images instead of 7,728), else --train-split].
    #[arg(long)]
    pub distill_split: Option<String>,
    #[arg(long, default_value_t = 256, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub calib_samples: usize,
    /// Split for accuracy (test_lossless for ../shared's CIFAR-10).
    #[arg(long, default_value = "test")]
    pub eval_split: String,
    #[arg(long, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub eval_limit: Option<usize>,
    #[arg(long, default_value = "qemu-mps2-an500")]
    pub board: String,
    /// Samples run on the board.
    #[arg(long, default_value_t = 100, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub samples: usize,
    #[arg(long, default_value = "runs/pipeline")]
    pub out: PathBuf,
    /// Also write the summary as JSON: top-1 at each stage, MACs, parameters, file size and the
    /// board's report (docs/json.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The default fine-tuning budget: this many epochs of the fine-tuning split …
const DEFAULT_BUDGET_EPOCHS: usize = 9;
/// … but no more steps than this: on CIFAR's 50,000 images the README's resnet20 job stays
/// inside 10 minutes on 2 cores (3,600 steps took 10 min 6 s, −0.90 points; BENCHMARKS.md).
const DEFAULT_BUDGET_STEPS: usize = 3200;

/// Whether a pipeline writes a file of this name into its output folder (the pruning run's
/// files go to `prune/` inside it).
fn writes(name: &str) -> bool {
    matches!(name, "model.pare" | "board.json" | "report.md") || super::prune::is_plot(name)
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
    let started = std::time::Instant::now();
    let device = a.model.device.device()?;
    let ad = device.clone().autodiff();
    // A checkpoint fixes the input size; a zoo model is built for the data.
    let loaded = if a.model.weights.is_some() { Some(a.model.load(&device)?) } else { None };
    let load = |split: &str| match &loaded {
        Some(n) => a.data.load_at(split, n.arch.input.h),
        None => a.data.load(split),
    };
    let train_ds = load(&a.train_split)?;
    let mut eval_ds = load(&a.eval_split)?;
    if let Some(n) = a.eval_limit {
        eval_ds = eval_ds.take(n);
    }
    if let Some(n) = &loaded {
        super::common::check_classes(n, &train_ds)?;
        super::common::check_classes(n, &eval_ds)?;
    }
    let net = if let Some(net) = loaded {
        net
    } else {
        let name = a.model.model.clone().unwrap_or_else(|| "tiny".into());
        eprintln!("[1/5] training {name} on {} for {} epochs", train_ds.source, a.epochs);
        let args = ModelArgs { model: Some(name), ..a.model.clone() };
        let mut net = args.load_for(&ad, train_ds.classes, train_ds.shape[1])?;
        net.name_classes(&train_ds.class_names);
        let cfg = TrainConfig { epochs: a.epochs, ..TrainConfig::default() };
        let stop = std::sync::atomic::AtomicBool::new(false);
        train(net, &train_ds, &cfg, Default::default(), &ad, &stop, &mut |_, s, _| {
            eprintln!("  epoch {}: loss {:.3}, train acc {:.1} %", s.epoch, s.loss, 100.0 * s.accuracy)
        })
        .valid()
    };
    let tune_split = a.data.distill_split(&a.train_split, a.distill_split.as_deref());
    let tune_ds = if tune_split == a.train_split { train_ds } else { a.data.load_at(&tune_split, net.arch.input.h)? };
    // Calibration images: the first of `train` (read once when the fine-tunes use it too).
    let calib = if tune_split == "train" {
        tune_ds.head(a.calib_samples)
    } else {
        a.data.load_at("train", net.arch.input.h)?.take(a.calib_samples)
    };
    if tune_split != a.train_split {
        eprintln!(
            "  fine-tuning on {} ({} images, labelled by the original model; --distill-split {} keeps to the training split)",
            tune_ds.source,
            tune_ds.len(),
            a.train_split
        );
    }
    let target_flops = match (a.target_flops, a.budgets.any()) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => Some(0.5),
    };
    let board_target = a.budgets.target(&a.board, &net.arch, &calib, a.criterion.name())?.map(|(t, _)| t);
    match target_flops {
        Some(f) => eprintln!("[2/5] pruning with {} to −{:.0} % FLOPs", a.criterion.name(), 100.0 * f),
        None => eprintln!("[2/5] pruning with {} to the board budget", a.criterion.name()),
    }
    let d = PruneConfig::default();
    let target = Target { flops_reduction: target_flops, ..Target::default() };
    let cfg = PruneConfig {
        scorer: a.scorer.settings(false),
        criterion: a.criterion,
        normalize: a.criterion.default_normalize(),
        step: a.step.unwrap_or_else(|| PruneConfig::default_step(&target, board_target.is_some())),
        target,
        round_to: if board_target.is_some() { 4 } else { d.round_to },
        rank: if board_target.is_some() { crate::prune::schedule::Rank::Budget } else { d.rank },
        cost_exponent: crate::prune::schedule::BUDGET_COST_EXPONENT,
        board: board_target.clone(),
        calib_samples: a.calib_samples,
        budget: Some(a.budget.unwrap_or_else(|| {
            let per_epoch = tune_ds.len().div_ceil(d.batch_size.max(1));
            Budget::Steps((DEFAULT_BUDGET_EPOCHS * per_epoch).min(DEFAULT_BUDGET_STEPS))
        })),
        ..d
    };
    let stop = super::train::interrupt_flag();
    let data = RunData { train: &tune_ds, calib: &calib, eval: &eval_ds, polish: None };
    let (pruned, state) = run_schedule(Some(net), &cfg, &data, &a.out.join("prune"), false, &device, &stop)?;
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(super::common::Interrupted(format!(
            "pruning state saved in {}; nothing exported",
            a.out.join("prune").display()
        ))
        .into());
    }
    eprintln!("[3/5] int8 quantisation and export");
    let last = state.history.last().ok_or_else(|| anyhow::anyhow!("no iterations"))?;
    let first = &state.history[0];
    let prov = crate::prune::ProvenanceRecord {
        criterion: a.criterion.name().into(),
        kept_filter_ratio: last.kept_ratio as f32,
        flops_before: first.macs,
        flops_after: last.macs,
        params_before: first.params,
        params_after: last.params,
    };
    let bytes = export(&pruned.valid(), Quant::Int8, Some(&calib), Some(prov.as_format()))?;
    let model_path = a.out.join("model.pare");
    crate::atomic::write(&model_path, &bytes)?;
    eprintln!("[4/5] host emulation of the device runtime on {}", eval_ds.source);
    let em = crate::emulate::emulate(&bytes, &eval_ds)?;
    eprintln!("[5/5] on-device check on {}", a.board);
    let flashed = crate::flash::run(&crate::flash::FlashRequest {
        model: model_path.clone(),
        board: a.board.clone(),
        samples: a.samples,
        data: a.data.data.clone(),
        input_size: a.data.input_size,
        split: a.eval_split.clone(),
        spread: false,
        dry_run: false,
    })?;
    super::flash::print_report(&flashed);
    super::flash::write_json(&a.out.join("board.json"), &flashed)?;
    let board = flashed.result;
    let mut report = crate::report::prune_report(&pruned.arch.labels, &state, &eval_ds.source);
    // Under a board budget: the model that ran, predicted against measured.
    let verification = match &board_target {
        Some(t) => {
            let b = crate::boards::find(&t.board).ok_or_else(|| anyhow::anyhow!("unknown board '{}'", t.board))?;
            let counts = crate::budget::measure::steps(&board, pruned.arch.nodes.len())?;
            let kinds: Vec<String> = std::iter::once("input".to_string())
                .chain((0..pruned.arch.nodes.len()).map(|i| {
                    board.layers.iter().find(|l| l.op == Some(i as u32)).map_or(String::new(), |l| l.kind.clone())
                }))
                .collect();
            let rt = pare_device::Runtime::from_bytes(&bytes)?;
            let runtime = crate::budget::measure::runtime_bytes(b, &bytes, board.samples as usize)?;
            let v = crate::budget::verify::Verification::new(
                t,
                &pruned.arch,
                &kinds,
                &counts,
                u64::from(rt.arena_bytes()),
                bytes.len() as u64 + runtime,
            )?;
            report += &v.markdown();
            Some(v)
        }
        None => None,
    };
    let mut summary = format!(
        "\n## Summary\n\n| stage | top-1 |\n|---|---:|\n| original (f32, burn) | {:.2} % |\n| pruned + fine-tuned (f32, burn) | {:.2} % |\n| pruned int8 (pare-device on host) | {:.2} % |\n| pruned int8 on {} ({} samples) | {:.2} % |\n",
        100.0 * first.top1,
        100.0 * last.top1,
        100.0 * em.evaluation.top1,
        a.board,
        board.samples,
        100.0 * board.correct as f64 / board.samples.max(1) as f64
    );
    summary += &format!(
        "\nFLOPs {:.2} M → {:.2} M (PR {:.1} %), params {:.1} k → {:.1} k (PR {:.1} %), file {} bytes, board agreement {}/{}, {} {} per inference, total time {:.0} s\n",
        first.macs as f64 / 1e6,
        last.macs as f64 / 1e6,
        100.0 * (1.0 - last.macs as f64 / first.macs as f64),
        first.params as f64 / 1e3,
        last.params as f64 / 1e3,
        100.0 * (1.0 - last.params as f64 / first.params as f64),
        bytes.len(),
        board.agree,
        board.samples,
        board.per_inference,
        board.unit,
        started.elapsed().as_secs_f64()
    );
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "top1": {
                "original_f32": first.top1,
                "pruned_f32": last.top1,
                "pruned_int8_host": em.evaluation.top1,
                "pruned_int8_board": board.correct as f64 / board.samples.max(1) as f64,
            },
            "macs": { "before": first.macs, "after": last.macs },
            "params": { "before": first.params, "after": last.params },
            "model_bytes": bytes.len(),
            "board": board,
            "board_budget": verification,
            "seconds": started.elapsed().as_secs_f64(),
        });
        crate::report::write_json(p, &doc)?;
    }
    let full = format!("{report}{summary}");
    crate::atomic::write(&a.out.join("report.md"), full.as_bytes())?;
    if let Err(e) = crate::plots::write(&a.out, &state) {
        eprintln!("warning: plots not written: {e:#}");
    }
    println!("{}", super::common::terminal_safe(&full));
    if !board.passed() {
        anyhow::bail!("board check failed: {}", board.verdict());
    }
    if let Some(v) = &verification {
        super::budget::require(v)?;
    }
    Ok(())
}
