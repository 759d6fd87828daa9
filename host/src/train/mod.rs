//! Training (SGD with Nesterov momentum, weight decay, cosine or step schedule, label
//! smoothing, optional distillation from a teacher and mixup, a step or wall-clock horizon), BatchNorm
//! re-estimation (`eval.rs`, with evaluation: top-1, per-class accuracy, confusion matrix), and
//! the losses (`loss.rs`).

use crate::data::{batch, Augment, Dataset};
use crate::model::Net;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

mod eval;
mod loss;
pub use eval::{argmax, evaluate, logits, recalibrate_batchnorm, Evaluation};
pub use loss::{cross_entropy, distillation_loss, distilled, soft_loss};

/// Mixup (Zhang et al. 2018) of one batch: sample `i` becomes `λᵢ·xᵢ + (1 − λᵢ)·x_partner(i)`,
/// the partners a random permutation of the batch. With a teacher that sees the same blended
/// image, every blend is a new, correctly labelled example ("function matching", Beyer et al.
/// 2022): a small training set stops running out.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub partner: Vec<usize>,
    /// λ per sample, in [0.5, 1] (the sample's own image and label dominate; 1 = not mixed).
    pub lambda: Vec<f32>,
}

impl Mix {
    /// Each sample mixed with probability `p`, λ uniform in [0.5, 1] (the same blends as λ
    /// uniform in [0, 1] with the roles of the two images swapped).
    pub fn draw<R: rand::Rng>(n: usize, p: f64, rng: &mut R) -> Self {
        let mut partner: Vec<usize> = (0..n).collect();
        partner.shuffle(rng);
        let lambda = (0..n)
            .map(|_| if rng.random_bool(p.clamp(0.0, 1.0)) { 1.0 - 0.5 * rng.random::<f32>() } else { 1.0 })
            .collect();
        Self { partner, lambda }
    }

    fn lambda_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        let mut shape = [1usize; D];
        shape[0] = self.lambda.len();
        Tensor::from_data(burn::tensor::TensorData::new(self.lambda.clone(), shape), device)
    }

    fn partner_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let idx: Vec<i64> = self.partner.iter().map(|&i| i as i64).collect();
        Tensor::from_data(burn::tensor::TensorData::new(idx, [self.partner.len()]), device)
    }

    /// The blended images.
    pub fn images(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let lam = self.lambda_tensor::<4>(&device);
        let other = x.clone().select(0, self.partner_tensor(&device));
        x * lam.clone() + other * lam.neg().add_scalar(1.0)
    }

    /// The partners' labels.
    pub fn partner_labels(&self, y: Tensor<1, Int>) -> Tensor<1, Int> {
        let device = y.device();
        y.select(0, self.partner_tensor(&device))
    }

    /// Mean cross-entropy against the blended labels: `−Σᵢ (λᵢ·log pᵢ[yᵢ] + (1 − λᵢ)·log
    /// pᵢ[y_partner(i)]) / n`.
    pub fn cross_entropy(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let device = logits.device();
        let lam = self.lambda_tensor::<2>(&device);
        let theirs = self.partner_labels(targets.clone());
        let logp = log_softmax(logits, 1);
        let own = logp.clone().gather(1, targets.unsqueeze_dim(1));
        let other = logp.gather(1, theirs.unsqueeze_dim(1));
        (own * lam.clone() + other * lam.neg().add_scalar(1.0)).mean().neg()
    }
}

/// A teacher for [`distillation_loss`]: a model (run in inference mode) and the loss's settings.
#[derive(Debug, Clone)]
pub struct Teacher {
    pub net: Net,
    pub temperature: f64,
    /// Share of the soft (teacher) term; the label term gets `1 − weight`.
    pub weight: f64,
}

/// Learning-rate schedule over total steps.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum, Serialize)]
pub enum Schedule {
    /// Half-cosine from `lr` to 0.
    Cosine,
    /// `lr`, divided by 10 at 50 % and 75 % of training.
    Step,
    /// Constant.
    Constant,
}

impl Schedule {
    /// The rate at fraction `t` ∈ [0, 1] of the run (steps or wall-clock).
    pub fn lr_at(self, base: f64, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
            Schedule::Step => {
                base * if t < 0.5 {
                    1.0
                } else if t < 0.75 {
                    0.1
                } else {
                    0.01
                }
            }
            Schedule::Constant => base,
        }
    }
}

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Stop after this many steps in total (for short fine-tunes); `None` = whole epochs.
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub label_smoothing: f64,
    pub seed: u64,
    pub augment: bool,
    /// Print a line (step, mean loss and accuracy of the last `n` steps) every `n` steps, for
    /// logs where the progress bar is hidden.
    pub log_every: Option<usize>,
    /// Wall-clock horizon in seconds: training stops when it is used up, and the schedule runs
    /// over elapsed time (whichever of steps and time is further along drives the rate).
    pub time_limit: Option<f64>,
    /// Distil from this teacher instead of the plain label loss.
    #[serde(skip)]
    pub teacher: Option<Teacher>,
    /// Share of each batch's samples blended with a partner ([`Mix`]; 0 = off).
    pub mixup: f64,
    /// The part of a longer schedule this run covers, as fractions `(from, to)` of it: the
    /// rate at this run's fraction `t` is the schedule's at `from + t·(to − from)`, so two runs
    /// back to back (e.g. a fine-tune, then a pass on other data) make one cosine. `(0, 1)`:
    /// the whole schedule.
    pub span: (f64, f64),
}

/// Settings or data that training cannot run with; every variant names what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("the batch size must be at least 1")]
    ZeroBatchSize,
    #[error(
        "the model classifies {model} classes but {data} has {dataset}: train a model built for this data \
         (--model NAME without --weights builds one) or use data with {model} classes"
    )]
    Classes { model: usize, dataset: usize, data: String },
}

/// The number of classes `arch`'s classifier outputs (its labels' count when it has no
/// classifier yet).
pub fn classes_of(arch: &crate::model::Arch) -> usize {
    match arch.nodes.last() {
        Some(crate::model::Node::Dense { out, .. }) => *out,
        _ => arch.labels.len(),
    }
}

/// Refuses data whose classes are not the model's: a label past the classifier's outputs makes
/// the loss index out of bounds, and an evaluation would count nothing right.
pub fn check_classes(arch: &crate::model::Arch, ds: &Dataset) -> Result<(), TrainError> {
    check_class_count(classes_of(arch), ds)
}

/// [`check_classes`] for a model known by its number of classes (a `.pare` file's labels).
pub fn check_class_count(model: usize, ds: &Dataset) -> Result<(), TrainError> {
    if model == ds.classes {
        Ok(())
    } else {
        Err(TrainError::Classes { model, dataset: ds.classes, data: ds.source.clone() })
    }
}

impl TrainConfig {
    /// Refuses settings [`train`] cannot run with (a zero batch size divides by zero).
    pub fn check(&self) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(TrainError::ZeroBatchSize);
        }
        Ok(())
    }

    /// The learning rate at fraction `t` ∈ [0, 1] of this run (steps or wall-clock), within
    /// its [`span`](Self::span) of the schedule.
    pub fn lr_at(&self, t: f64) -> f64 {
        let (from, to) = self.span;
        self.schedule.lr_at(self.lr, from + t.clamp(0.0, 1.0) * (to - from))
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            max_steps: None,
            batch_size: 64,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine,
            label_smoothing: 0.0,
            seed: 0,
            augment: true,
            log_every: None,
            time_limit: None,
            teacher: None,
            mixup: 0.0,
            span: (0.0, 1.0),
        }
    }
}

/// Where a run starts: epochs and optimiser steps already done (zero for a fresh run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub epoch: usize,
    pub step: usize,
}

/// What happened in one epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_second: f64,
    /// Optimiser steps taken since the start of training (resume point).
    pub step: usize,
}

/// Trains `net` (on an autodiff `device`). `start` (epochs and optimiser steps already taken;
/// the steps drive the LR schedule and the `max_steps` budget) supports resuming; `on_epoch` is called
/// after every epoch (checkpointing); `stop` is checked after every batch (Ctrl-C): when set,
/// the current epoch's state is handed to `on_epoch` and training ends. Callers check `cfg`
/// ([`TrainConfig::check`]) and the data ([`check_classes`]) first; a zero batch size that
/// gets here anyway trains one image per step.
pub fn train(
    mut net: Net,
    ds: &Dataset,
    cfg: &TrainConfig,
    start: Progress,
    device: &Device,
    stop: &AtomicBool,
    on_epoch: &mut dyn FnMut(&Net, &EpochStats, bool),
) -> Net {
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: cfg.momentum, dampening: 0.0, nesterov: true }))
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)))
        .init();
    let batch_size = cfg.batch_size.max(1);
    let steps_per_epoch = ds.len().div_ceil(batch_size);
    let total = cfg.max_steps.unwrap_or(cfg.epochs * steps_per_epoch).min(cfg.epochs * steps_per_epoch);
    let mut step = start.step;
    let clock = std::time::Instant::now();
    let teacher = cfg.teacher.as_ref().map(|t| (t.net.valid().folded(), t.temperature, t.weight));
    // The fraction of the run done: steps, or wall-clock under a time limit.
    let done = |step: usize| {
        let by_steps = step.saturating_sub(start.step) as f64 / total.saturating_sub(start.step).max(1) as f64;
        let by_steps = if cfg.time_limit.is_some() && cfg.max_steps.is_none() { 0.0 } else { by_steps };
        let by_time = cfg.time_limit.map_or(0.0, |l| clock.elapsed().as_secs_f64() / l.max(1e-9));
        by_steps.max(by_time)
    };
    let (mut window_loss, mut window_correct, mut window_seen) = (0.0, 0usize, 0usize);
    for epoch in start.epoch..cfg.epochs {
        if step >= total {
            break;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..ds.len()).collect();
        order.shuffle(&mut rng);
        let n_steps = steps_per_epoch.min(total - step);
        let label = match cfg.time_limit {
            Some(l) if cfg.max_steps.is_none() => format!("epoch {} (until {l:.0} s)", epoch + 1),
            _ => format!("epoch {}/{}", epoch + 1, cfg.epochs.min(total.div_ceil(steps_per_epoch.max(1)))),
        };
        let bar = crate::progress::steps(n_steps as u64, &label);
        let started = std::time::Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let mut interrupted = false;
        let mut out_of_time = false;
        for idx in order.chunks(batch_size).take(n_steps) {
            let aug = cfg.augment.then_some(Augment { rng: &mut rng });
            let (x, y) = batch(ds, idx, &net.arch.mean, &net.arch.std, aug, device);
            let mix = (cfg.mixup > 0.0).then(|| Mix::draw(idx.len(), cfg.mixup, &mut rng));
            let x = match &mix {
                Some(m) => m.images(x),
                None => x,
            };
            let soft = teacher
                .as_ref()
                .map(|(t, temp, w)| (Tensor::from_inner(t.forward(x.clone().inner()).detach()), *temp, *w));
            let logits = net.forward(x);
            // Labels: blended under mixup; smoothed only without a teacher.
            let labels = |s: Tensor<2>, smoothing: f64| match &mix {
                Some(m) => m.cross_entropy(s, y.clone()),
                None => cross_entropy(s, y.clone(), smoothing),
            };
            let loss = match soft {
                Some((t, temp, w)) => distilled(logits.clone(), t, temp, w, |s| labels(s, 0.0)),
                None => labels(logits.clone(), cfg.label_smoothing),
            };
            let pred = logits.argmax(1).squeeze_dim::<1>(1);
            let batch_correct = pred.equal(y).int().sum().into_scalar::<i64>() as usize;
            let batch_loss = loss.clone().into_scalar::<f32>() as f64 * idx.len() as f64;
            correct += batch_correct;
            seen += idx.len();
            loss_sum += batch_loss;
            window_correct += batch_correct;
            window_seen += idx.len();
            window_loss += batch_loss;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let t = if cfg.time_limit.is_some() { done(step) } else { step as f64 / total.max(1) as f64 };
            let lr = cfg.lr_at(t);
            net = optim.step(lr, net, grads);
            step += 1;
            if cfg.log_every.is_some_and(|n| n > 0 && step.is_multiple_of(n)) {
                bar.suspend(|| {
                    crate::say!(
                        "step {step:>6}: loss {:.4}  acc {:.2} %  (mean of the last {} steps)",
                        window_loss / window_seen as f64,
                        100.0 * window_correct as f64 / window_seen as f64,
                        cfg.log_every.unwrap_or(0)
                    )
                });
                (window_loss, window_correct, window_seen) = (0.0, 0, 0);
            }
            bar.inc(1);
            bar.set_prefix(format!(
                "loss {:.3} acc {:.1}% {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
                seen as f64 / started.elapsed().as_secs_f64()
            ));
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            if cfg.time_limit.is_some() && done(step) >= 1.0 {
                out_of_time = true;
                break;
            }
        }
        bar.finish_and_clear();
        let stats = EpochStats {
            epoch: epoch + 1,
            loss: loss_sum / seen.max(1) as f64,
            accuracy: correct as f64 / seen.max(1) as f64,
            images_per_second: seen as f64 / started.elapsed().as_secs_f64(),
            step,
        };
        on_epoch(&net, &stats, interrupted);
        if interrupted || out_of_time {
            break;
        }
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_batch_size_is_refused() {
        assert_eq!(TrainConfig { batch_size: 0, ..TrainConfig::default() }.check(), Err(TrainError::ZeroBatchSize));
        assert_eq!(TrainConfig::default().check(), Ok(()));
    }

    /// The zoo's `tiny` for 10 classes against data of 10, 12 and 3 classes.
    #[test]
    fn data_of_other_classes_is_refused_naming_both_counts() {
        let arch = crate::model::zoo::by_name("tiny", 10).unwrap();
        assert_eq!(classes_of(&arch), 10);
        let ds = |classes: usize| Dataset {
            images: vec![],
            labels: vec![],
            shape: [3, 32, 32],
            classes,
            source: format!("data:{classes}"),
            class_names: vec![],
        };
        assert_eq!(check_classes(&arch, &ds(10)), Ok(()));
        for n in [12, 3] {
            let e = check_classes(&arch, &ds(n)).unwrap_err();
            assert_eq!(e, TrainError::Classes { model: 10, dataset: n, data: format!("data:{n}") });
            assert!(e.to_string().contains(&format!("10 classes but data:{n} has {n}")), "{e}");
        }
    }
}
