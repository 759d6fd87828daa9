//! `pare train`.

use super::common::{finite_positive, fraction_below_one, non_negative, positive, DataArgs, ModelArgs};
use crate::model::weights;
use crate::train::{Schedule, TrainConfig};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Split for training / fine-tuning (e.g. `train_lossless`: ../shared's bit-exact images).
    #[arg(long, default_value = "train")]
    pub train_split: String,
    /// Checkpoint written after every epoch (atomically).
    #[arg(long, default_value = "runs/model.safetensors")]
    pub out: PathBuf,
    /// Continue from the checkpoint at --out (its epoch counter and weights).
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value_t = 10, value_parser = positive, allow_negative_numbers = true)]
    pub epochs: usize,
    /// Stop after this many optimiser steps in total (0: write the model as it stands).
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[arg(long, default_value_t = 64, value_parser = positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = finite_positive, allow_negative_numbers = true)]
    pub lr: f64,
    /// Nesterov momentum, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = fraction_below_one, allow_negative_numbers = true)]
    pub momentum: f64,
    #[arg(long, default_value_t = 5e-4, value_parser = non_negative, allow_negative_numbers = true)]
    pub weight_decay: f64,
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: Schedule,
    /// Share of the target spread over all classes, in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction_below_one, allow_negative_numbers = true)]
    pub label_smoothing: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also print the mean loss and accuracy of every N steps (the progress bar shows them live
    /// but is hidden when stderr is not a terminal).
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    pub log_every: Option<usize>,
    /// Evaluate on this split after training (e.g. test, test_lossless).
    #[arg(long)]
    pub eval_split: Option<String>,
}

/// Ctrl-C sets this; the training loop finishes its batch, saves and stops.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // A second handler registration fails harmlessly (e.g. in tests); the flag then stays unset.
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing this batch and saving (Ctrl-C again to abort)");
    });
    flag
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    super::common::check_out(&a.out, false)?;
    // --resume reads the checkpoint at --out on purpose (and ignores --weights).
    let mut inputs = if a.resume { vec![] } else { a.model.inputs() };
    inputs.push(a.data.input());
    crate::atomic::check_distinct(&[("--out", &a.out)], &inputs)?;
    let cfg = TrainConfig {
        epochs: a.epochs,
        max_steps: a.max_steps,
        batch_size: a.batch_size,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        schedule: a.schedule,
        label_smoothing: a.label_smoothing,
        seed: a.seed,
        augment: true,
        log_every: a.log_every,
        ..TrainConfig::default()
    };
    cfg.check()?;
    let device = a.model.device.device()?.autodiff();
    device.seed(a.seed);
    let (mut net, start, start_step) = if a.resume {
        let (net, meta) =
            weights::load_checkpoint(&a.out, &device).context("--resume needs the checkpoint at --out")?;
        let (epoch, step) = (meta.epoch.unwrap_or(0), meta.step.unwrap_or(0));
        eprintln!("resuming {} from epoch {epoch} (step {step})", a.out.display());
        (net, epoch, step)
    } else {
        // A zoo model is built for the data: its classes and (image datasets) input size.
        let ds = a.data.load(&a.train_split)?;
        (a.model.load_for(&device, ds.classes, ds.shape[1])?, 0, 0)
    };
    let ds = a.data.load_at(&a.train_split, net.arch.input.h)?;
    super::common::check_classes(&net, &ds)?;
    if a.model.weights.is_none() && !a.resume {
        net.name_classes(&ds.class_names);
    }
    let stop = interrupt_flag();
    let mut save_error = None;
    let mut saved = false;
    let started = std::time::Instant::now();
    let net = crate::train::train(
        net,
        &ds,
        &cfg,
        crate::train::Progress { epoch: start, step: start_step },
        &device,
        &stop,
        &mut |net, s, interrupted| {
            eprintln!(
                "epoch {:>3}: loss {:.4}  train acc {:.2} %  {:.0} img/s{}",
                s.epoch,
                s.loss,
                100.0 * s.accuracy,
                s.images_per_second,
                if interrupted { "  (interrupted)" } else { "" }
            );
            // An interrupted epoch is saved with the previous epoch number, so --resume redoes it.
            let done = if interrupted { s.epoch - 1 } else { s.epoch };
            let meta = weights::CheckpointMeta { epoch: Some(done), step: Some(s.step), provenance: None };
            if let Err(e) = weights::save_checkpoint(net, &meta, &a.out) {
                save_error = Some(e);
            }
            saved = true;
        },
    );
    if let Some(e) = save_error {
        return Err(e.into());
    }
    // No step ran (`--max-steps 0`, or a resumed run already complete): the model as it stands.
    if !saved {
        let meta = weights::CheckpointMeta { epoch: Some(start), step: Some(start_step), provenance: None };
        weights::save_checkpoint(&net, &meta, &a.out)?;
    }
    eprintln!("saved {} ({:.0} s)", a.out.display(), started.elapsed().as_secs_f64());
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(super::common::Interrupted(format!(
            "checkpoint saved at {}; continue with --resume",
            a.out.display()
        ))
        .into());
    }
    if let Some(split) = a.eval_split {
        let ds = a.data.load_at(&split, net.arch.input.h)?;
        super::common::check_classes(&net, &ds)?;
        let ev = crate::train::evaluate(&net, &ds, 256, &device.inner());
        println!("{} on {}: top-1 {:.2} %", super::common::terminal_safe(&net.arch.name), ds.source, 100.0 * ev.top1);
    }
    Ok(())
}
