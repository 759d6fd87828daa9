//! The fine-tune step: one phase of training with distillation from the original model; the
//! recovery after the last removal ends on the polish split when the run has one.

use super::config::PruneConfig;
use super::phase::Phase;
use super::run_data::RunData;
use crate::model::Net;
use crate::train::{recalibrate_batchnorm, train, Teacher, TrainConfig};
use burn::module::Module;
use burn::tensor::Device;
use std::sync::atomic::AtomicBool;

/// One fine-tune phase; `None` when Ctrl-C cut it short. Returns the model and its steps.
/// The `recovery` (the fine-tune after the last removal) ends on `data.polish` when given.
#[allow(clippy::too_many_arguments)]
pub(super) fn finetune(
    net: Net,
    cfg: &PruneConfig,
    data: &RunData<'_>,
    ph: &Phase,
    recovery: bool,
    teacher: Option<&Teacher>,
    k: usize,
    ad: &Device,
    stop: &AtomicBool,
) -> Option<(Net, usize)> {
    if ph.is_empty() {
        return Some((net.valid(), 0));
    }
    let polish = data.polish.filter(|_| recovery);
    let share = polish.map_or(0.0, |_| cfg.polish.share.clamp(0.0, 1.0));
    let started = std::time::Instant::now();
    // The main part: the phase's first 1 − share, on the fine-tuning split.
    let main = Phase {
        steps: ph.steps.map(|n| n - (n as f64 * share).round() as usize),
        seconds: ph.seconds.map(|s| s * (1.0 - share)),
    };
    let mut steps = 0;
    let mut net = net;
    for (ds, part, span) in [(data.train, main, (0.0, 1.0 - share))].into_iter().chain(polish.map(|p| {
        // The rest of the phase (what the main part left of it), the same cosine continued.
        let rest = Phase {
            steps: ph.steps.map(|n| n.saturating_sub(main.steps.unwrap_or(0))),
            seconds: ph.seconds.map(|s| s * share),
        };
        (p, rest, (1.0 - share, 1.0))
    })) {
        if part.is_empty() {
            continue;
        }
        let per_epoch = ds.len().div_ceil(cfg.batch_size).max(1);
        let done = steps;
        let ft = TrainConfig {
            // Enough epochs to hold the phase; `max_steps` or the time limit ends it.
            epochs: part.steps.map_or(100_000, |s| s.div_ceil(per_epoch).max(1)),
            max_steps: part.steps,
            batch_size: cfg.batch_size,
            lr: cfg.finetune_lr,
            // The polish part shuffles its split with a seed of its own.
            seed: cfg.seed + k as u64 + if span.0 > 0.0 { 1000 } else { 0 },
            time_limit: part.seconds,
            teacher: teacher.cloned(),
            mixup: cfg.distill.map_or(0.0, |d| d.mixup),
            span,
            ..TrainConfig::default()
        };
        net = train(net, ds, &ft, Default::default(), ad, stop, &mut |_, s, _| steps = done + s.step);
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
    }
    if let Some(p) = polish {
        let b = cfg.polish.bn_batches;
        if b > 0 {
            net = recalibrate_batchnorm(net, p, b, cfg.batch_size, ad);
        }
        crate::say!(
            "recovery ended on {} ({share:.2} of {steps} steps, {:.0} s in all){}",
            p.source,
            started.elapsed().as_secs_f64(),
            if b > 0 { format!("; BatchNorm re-estimated on {b} batches of it") } else { String::new() }
        );
    }
    Some((net.valid(), steps))
}
