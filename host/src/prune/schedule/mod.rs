//! The iterative schedule: score, rank globally, remove the τ weakest channels (groups
//! together), fine-tune, evaluate, checkpoint; until a target is met. Every iteration is saved,
//! so an interrupted run resumes where it stopped.

use super::criteria::{group_scores, normalize, score, Criterion, GroupReduce, Normalize, ScoreConfig};
use super::groups::Groups;
use super::reconstruct::reconstruct;
use super::surgery::{prune, pruned_arch};
use super::ProvenanceRecord;
use crate::budget::BoardTarget;
use crate::data::Dataset;
use crate::model::{weights, Arch, Net, Node};
use crate::train::{evaluate, recalibrate_batchnorm, train, Evaluation, Teacher, TrainConfig};
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Why a pruning run could not go on; the run's state on disk stays valid.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {cause}")]
    State { path: PathBuf, cause: serde_json::Error },
    #[error(transparent)]
    Weights(#[from] weights::WeightsError),
    #[error("architecture: {0}")]
    Arch(String),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    #[error(transparent)]
    Measure(#[from] crate::budget::measure::MeasureError),
    #[error(transparent)]
    Latency(#[from] crate::budget::LatencyError),
    #[error("nothing to resume: {0} does not exist")]
    NothingToResume(PathBuf),
    #[error("{0} has no checkpoint to resume from")]
    NoCheckpoint(PathBuf),
    #[error("no model to prune")]
    NoModel,
    #[error("no target: give a kept ratio, a FLOPs or parameter reduction, a board budget or a maximum accuracy drop")]
    NoTarget,
    #[error("ranking by the board budget needs a board budget")]
    NoBoardBudget,
    #[error(transparent)]
    Reconstruct(#[from] crate::prune::reconstruct::ReconstructError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error("a step must remove at least one channel")]
    ZeroStep,
    #[error(
        "the size targets are alternatives: give one of a kept ratio, a FLOPs reduction and a parameter reduction"
    )]
    SeveralSizeTargets,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ScheduleError + '_ {
    move |cause| ScheduleError::Io { path: path.into(), cause }
}

/// Writes the state file atomically.
fn save_state(path: &Path, state: &RunState) -> Result<(), ScheduleError> {
    let text =
        serde_json::to_string_pretty(state).map_err(|cause| ScheduleError::State { path: path.into(), cause })?;
    crate::atomic::write(path, text.as_bytes()).map_err(io_at(path))
}

/// How many channels one iteration removes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum StepSize {
    Count(usize),
    /// Fraction of the original prunable channels.
    Fraction(f64),
}

impl std::str::FromStr for StepSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is neither a channel count nor a fraction in (0, 1) (a count is at least 1)");
        if let Ok(n) = s.trim().parse::<usize>() {
            return if n > 0 { Ok(StepSize::Count(n)) } else { Err(bad()) };
        }
        match s.trim().parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(StepSize::Fraction(f)),
            _ => Err(bad()),
        }
    }
}

/// How much fine-tuning a whole run may spend: optimiser steps, wall-clock seconds (scoring,
/// evaluation and fine-tuning all count), or epochs of the training split (resolved to steps
/// with [`Budget::resolve`]). Written `2000`, `600s`, `10m`, `1h` or `5ep`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Budget {
    Steps(usize),
    Seconds(f64),
    Epochs(f64),
}

impl Budget {
    /// Epochs become steps at `steps_per_epoch`; the others stay.
    pub fn resolve(self, steps_per_epoch: usize) -> Self {
        match self {
            Budget::Epochs(e) => Budget::Steps((e * steps_per_epoch as f64).round() as usize),
            Budget::Steps(_) | Budget::Seconds(_) => self,
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "'{s}' is not a budget: write steps (2000), seconds (600s), minutes (10m), hours (1h) or epochs (5ep)"
            )
        };
        let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).ok_or_else(bad);
        if let Some(t) = s.strip_suffix("ep") {
            return Ok(Budget::Epochs(num(t)?));
        }
        for (suffix, unit) in [("s", 1.0), ("m", 60.0), ("h", 3600.0)] {
            if let Some(t) = s.strip_suffix(suffix) {
                return Ok(Budget::Seconds(num(t)? * unit));
            }
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Budget::Steps(n)),
            _ => Err(bad()),
        }
    }
}

/// Distillation from the unpruned model in every fine-tune.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distill {
    pub temperature: f64,
    /// Share of the teacher's soft term (the labels get the rest).
    pub weight: f64,
    /// Share of each batch blended by mixup, teacher and student seeing the same blend
    /// ([`crate::train::Mix`]; 0 = off).
    #[serde(default)]
    pub mixup: f64,
}

impl Default for Distill {
    fn default() -> Self {
        Self { temperature: 4.0, weight: 0.9, mixup: 0.0 }
    }
}

/// The end of the recovery fine-tune on a second split (e.g. CIFAR's bit-exact
/// `train_lossless` after the mostly JPEG-recovered `train`): the last `share` of the recovery's
/// budget trains on it (the same cosine continues), then `bn_batches` of its batches re-estimate
/// every BatchNorm's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Polish {
    pub share: f64,
    pub bn_batches: usize,
}

impl Default for Polish {
    fn default() -> Self {
        // Re-estimating BatchNorm on clean images after training measured 3.2 points worse
        // (BENCHMARKS.md, "The main job", `--polish-split`): off unless asked for.
        Self { share: 0.2, bn_batches: 0 }
    }
}

fn one() -> f64 {
    1.0
}

/// The cost exponent of `Rank::Budget` unless told otherwise: measured on resnet20 at half its
/// QEMU instruction count (bench/board-budget.sh), 0.5 kept 86.51 % top-1 where 1 kept 83.39 %
/// (the full score-per-cost greedy sends stage 1 to its floor) and score alone 85.55 %.
pub const BUDGET_COST_EXPONENT: f64 = 0.5;

/// How channels are ranked for removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Rank {
    /// By score alone.
    #[default]
    Score,
    /// By score per MAC the channel costs (FLOPs-aware).
    Macs,
    /// By score per unit of the board budget's cost the channel frees (needs a board budget).
    Budget,
}

/// When to stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Stop when kept/original prunable channels ≤ this.
    pub kept_ratio: Option<f64>,
    /// Stop when MACs fell by at least this fraction.
    pub flops_reduction: Option<f64>,
    pub params_reduction: Option<f64>,
    /// Stop (keeping the previous iteration) when top-1 falls more than this many points.
    pub max_accuracy_drop: Option<f64>,
}

/// Everything a run needs besides data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneConfig {
    pub criterion: Criterion,
    pub normalize: Normalize,
    pub internal_only: bool,
    pub step: StepSize,
    pub min_channels: usize,
    pub round_to: usize,
    pub target: Target,
    pub calib_samples: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub finetune_steps: usize,
    pub finetune_lr: f64,
    pub max_iterations: usize,
    /// How a space's producers' scores combine.
    #[serde(default)]
    pub reduce: GroupReduce,
    /// Keep at least this fraction of every space's original width.
    #[serde(default)]
    pub min_width: f64,
    /// What a channel's score is divided by before the global ranking.
    #[serde(default)]
    pub rank: Rank,
    /// Under `Rank::Macs`/`Rank::Budget`: scores are divided by (relative cost)^this; 1 is
    /// score per unit of cost (HALP's greedy), 0 ignores cost.
    #[serde(default = "one")]
    pub cost_exponent: f64,
    /// The criteria's settings (IBA, SSS, variational).
    #[serde(default)]
    pub scorer: crate::prune::criteria::ScorerSettings,
    /// Distil from the original model in every fine-tune (`None`: labels only).
    #[serde(default)]
    pub distill: Option<Distill>,
    /// Batches that re-estimate BatchNorm statistics right after each removal (0: none).
    #[serde(default)]
    pub bn_batches: usize,
    /// Least-squares repair of every layer right after each removal (`None`: off).
    #[serde(default)]
    pub reconstruct: Option<crate::prune::reconstruct::Reconstruct>,
    /// How the recovery ends on [`RunData::polish`] (ignored without it).
    #[serde(default)]
    pub polish: Polish,
    /// The whole run's budget; replaces `finetune_steps`/`final_steps` when set.
    #[serde(default)]
    pub budget: Option<Budget>,
    /// Under a budget, each iteration's fine-tune takes this share of what is left; the final
    /// recovery after the last removal takes the rest.
    #[serde(default)]
    pub iteration_share: f64,
    /// Without a budget: recovery steps after the last removal.
    #[serde(default)]
    pub final_steps: usize,
    /// A board's latency, arena and flash budgets: met together with any MACs/params target,
    /// and the ranking divides scores by the budgeted cost a channel frees.
    #[serde(default)]
    pub board: Option<BoardTarget>,
}

impl PruneConfig {
    /// Refuses settings a run cannot go on with: a zero batch size (divides by zero), a step of
    /// no channels (never ends), or more than one size target (a run stops at the first met).
    pub fn check(&self) -> Result<(), ScheduleError> {
        if self.batch_size == 0 {
            return Err(crate::train::TrainError::ZeroBatchSize.into());
        }
        if self.step == StepSize::Count(0) {
            return Err(ScheduleError::ZeroStep);
        }
        let t = &self.target;
        if [t.kept_ratio, t.flops_reduction, t.params_reduction].iter().filter(|v| v.is_some()).count() > 1 {
            return Err(ScheduleError::SeveralSizeTargets);
        }
        Ok(())
    }

    /// `--step`'s default for a run towards `target` (with or without a board budget): half of
    /// the channels where the target is MACs, parameters or a kept ratio — the removal lands on
    /// it, so one removal goes straight to the target (ResNet-56 to −62 % MACs at 1,800 steps:
    /// 90.47 % in one removal, 88.31 % in two, BENCHMARKS.md) — and a quarter where an accuracy
    /// drop or a board budget decides when to stop (the board budgets were measured with it).
    pub fn default_step(target: &Target, board: bool) -> StepSize {
        let lands =
            target.flops_reduction.is_some() || target.params_reduction.is_some() || target.kept_ratio.is_some();
        if lands && !board && target.max_accuracy_drop.is_none() {
            StepSize::Fraction(0.5)
        } else {
            StepSize::Fraction(0.25)
        }
    }
}

impl Default for PruneConfig {
    /// The defaults of `pare prune` and `pare pipeline` (one place for both; the step depends on
    /// the target: [`PruneConfig::default_step`]).
    fn default() -> Self {
        Self {
            criterion: Criterion::Attribution,
            normalize: Criterion::Attribution.default_normalize(),
            internal_only: false,
            step: Self::default_step(&Target::default(), false),
            min_channels: 2,
            round_to: 1,
            target: Target::default(),
            calib_samples: 256,
            batch_size: 64,
            seed: 0,
            finetune_steps: 100,
            finetune_lr: 0.005,
            max_iterations: 50,
            reduce: GroupReduce::Mean,
            min_width: 0.125,
            rank: Rank::Score,
            cost_exponent: 1.0,
            distill: Some(Distill::default()),
            scorer: crate::prune::criteria::ScorerSettings::default(),
            bn_batches: 10,
            reconstruct: None,
            polish: Polish::default(),
            budget: None,
            iteration_share: 0.15,
            final_steps: 0,
            board: None,
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Iteration {
    pub iteration: usize,
    pub kept_ratio: f64,
    pub macs: u64,
    pub params: u64,
    pub top1: f64,
    pub per_class: Vec<f64>,
    /// Output channels of every conv, by layer name.
    pub channels: Vec<(String, usize)>,
    pub removed: usize,
    pub seconds: f64,
    pub checkpoint: Option<PathBuf>,
    /// Optimiser steps of this iteration's fine-tune.
    #[serde(default)]
    pub steps: usize,
    /// This iteration's fine-tune was the recovery after the last removal: a row of its own
    /// (removes nothing), or, under a budget, the last removal's fine-tune taking all that
    /// was left.
    #[serde(default)]
    pub recovery: bool,
    /// Under a board target: the latency model's prediction for this iteration's model (before
    /// its own measurement joined the fit).
    #[serde(default)]
    pub predicted_latency: Option<f64>,
    /// Under a board target: this iteration's model as measured on the board, step by step.
    #[serde(default)]
    pub board_trace: Option<crate::budget::Measurement>,
    /// Top-1 right after the removal and its repair, before the fine-tune.
    #[serde(default)]
    pub top1_after_removal: Option<f64>,
}

impl Iteration {
    /// The measured latency on the board (board-targeted runs).
    pub fn measured_latency(&self) -> Option<u64> {
        self.board_trace.as_ref().map(crate::budget::Measurement::total)
    }
}

/// The state file of a run (`state.json` in the output folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub config: PruneConfig,
    pub original_prunable: usize,
    pub history: Vec<Iteration>,
    pub done: bool,
    /// The dataset the fine-tunes draw from (`Dataset::source`, e.g. `…/cifar10:train`), so a
    /// report says which images trained the model and a resume can check it gets the same.
    #[serde(default)]
    pub finetune_data: String,
}

/// Channels of the prunable spaces (the denominator of φ).
pub fn prunable_channels(groups: &Groups, internal_only: bool) -> usize {
    groups.prunable(internal_only).iter().map(|&s| groups.spaces[s].channels).sum()
}

/// Global ascending ranking: removes the `tau` lowest-scoring channels, keeping at least
/// `floors[space]` (and 1) per space and rounding kept counts up to a multiple of `round_to`.
pub fn select(
    groups: &Groups,
    scores: &[Vec<f64>],
    spaces: &[usize],
    tau: usize,
    floors: &[usize],
    round_to: usize,
) -> (Vec<Vec<usize>>, usize) {
    let mut cand: Vec<(f64, usize, usize)> =
        spaces.iter().flat_map(|&s| scores[s].iter().enumerate().map(move |(c, v)| (*v, s, c))).collect();
    cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut removed = vec![vec![false; 0]; groups.spaces.len()];
    for (s, sp) in groups.spaces.iter().enumerate() {
        removed[s] = vec![false; sp.channels];
    }
    let mut left: Vec<usize> = groups.spaces.iter().map(|s| s.channels).collect();
    let mut n = 0;
    for &(_, s, c) in &cand {
        if n >= tau {
            break;
        }
        if left[s] > floors.get(s).copied().unwrap_or(1).max(1) {
            removed[s][c] = true;
            left[s] -= 1;
            n += 1;
        }
    }
    if round_to > 1 {
        for &s in spaces {
            let total = groups.spaces[s].channels;
            let want = left[s].div_ceil(round_to) * round_to;
            // Give back the best removed channels until the count is a multiple.
            let mut back: Vec<usize> = (0..total).filter(|&c| removed[s][c]).collect();
            back.sort_by(|&a, &b| scores[s][b].total_cmp(&scores[s][a]));
            for c in back.into_iter().take(want.min(total).saturating_sub(left[s])) {
                removed[s][c] = false;
                left[s] += 1;
                n -= 1;
            }
        }
    }
    let keep = removed.iter().map(|r| (0..r.len()).filter(|&c| !r[c]).collect()).collect();
    (keep, n)
}

/// Per space: the fewest channels it may keep, `max(min_channels, ⌈min_width · original⌉)`,
/// where a space's original width is that of its producers in `original` (conv name → width,
/// as recorded for iteration 0).
pub fn floors(
    arch: &Arch,
    groups: &Groups,
    original: &[(String, usize)],
    min_channels: usize,
    min_width: f64,
) -> Vec<usize> {
    groups
        .spaces
        .iter()
        .map(|sp| {
            let width = sp
                .producers
                .iter()
                .filter_map(|&p| match arch.nodes.get(p) {
                    Some(Node::Conv { name, .. }) => original.iter().find(|(n, _)| n == name).map(|(_, c)| *c),
                    _ => None,
                })
                .max()
                .unwrap_or(sp.channels);
            min_channels.max((min_width * width as f64).ceil() as usize)
        })
        .collect()
}

/// What `cost` saves per channel of each space, averaged over removing `group` channels (one
/// fewer channel can cost nothing where kernels pad widths to a multiple): the denominator of
/// cost-aware ranking.
pub fn cost_per_channel(arch: &Arch, groups: &Groups, group: usize, cost: &dyn Fn(&Arch) -> Option<f64>) -> Vec<f64> {
    let all = groups.keep_all();
    let Some(full) = cost(arch) else { return vec![0.0; all.len()] };
    (0..groups.spaces.len())
        .map(|s| {
            let m = group.max(1).min(all[s].len().saturating_sub(1));
            if m == 0 {
                return 0.0;
            }
            let mut keep = all.clone();
            keep[s].truncate(all[s].len() - m);
            cost(&pruned_arch(arch, groups, &keep)).map_or(0.0, |less| (full - less).max(0.0) / m as f64)
        })
        .collect()
}

/// MACs a space saves per channel removed (one channel fewer, everything else kept).
pub fn macs_per_channel(arch: &Arch, groups: &Groups) -> Vec<f64> {
    cost_per_channel(arch, groups, 1, &|a| a.cost().ok().map(|c| c.0 as f64))
}

fn channels(net: &Net) -> Vec<(String, usize)> {
    net.arch
        .nodes
        .iter()
        .filter_map(|n| if let Node::Conv { name, out, .. } = n { Some((name.clone(), *out)) } else { None })
        .collect()
}

fn record(
    net: &Net,
    ev: &Evaluation,
    iteration: usize,
    kept_ratio: f64,
    removed: usize,
    seconds: f64,
    checkpoint: Option<PathBuf>,
) -> Iteration {
    let (macs, params) = net.arch.cost().unwrap_or((0, 0));
    Iteration {
        iteration,
        kept_ratio,
        macs,
        params,
        top1: ev.top1,
        per_class: ev.per_class.clone(),
        channels: channels(net),
        removed,
        seconds,
        checkpoint,
        steps: 0,
        recovery: false,
        predicted_latency: None,
        board_trace: None,
        top1_after_removal: None,
    }
}

/// Data a run uses.
pub struct RunData<'a> {
    pub train: &'a Dataset,
    pub calib: &'a Dataset,
    pub eval: &'a Dataset,
    /// Where the recovery fine-tune ends ([`Polish`]); `None`: all of it on `train`.
    pub polish: Option<&'a Dataset>,
}

/// Whether a model of `macs`/`params` (and kept ratio, when known) meets the size part of the
/// target against the original `base`.
fn size_met(
    t: &Target,
    (macs, params): (u64, u64),
    kept_ratio: Option<f64>,
    (base_macs, base_params): (u64, u64),
) -> bool {
    t.kept_ratio.zip(kept_ratio).is_some_and(|(r, k)| k <= r + 1e-9)
        || t.flops_reduction.is_some_and(|r| 1.0 - macs as f64 / base_macs as f64 >= r - 1e-12)
        || t.params_reduction.is_some_and(|r| 1.0 - params as f64 / base_params as f64 >= r - 1e-12)
}

/// Whether a size target (kept ratio, MACs or parameters) was given.
fn has_size_target(t: &Target) -> bool {
    t.kept_ratio.is_some() || t.flops_reduction.is_some() || t.params_reduction.is_some()
}

/// Whether `arch` meets the whole target: the size part (when given) and every board budget
/// (when given); never when neither is given (then only the accuracy drop ends a run).
fn target_met(
    t: &Target,
    board: Option<&BoardTarget>,
    arch: &Arch,
    kept_ratio: Option<f64>,
    base: (u64, u64),
    measured: Option<u64>,
) -> Result<bool, ScheduleError> {
    if !has_size_target(t) && board.is_none() {
        return Ok(false);
    }
    let cost = arch.cost().map_err(ScheduleError::Arch)?;
    let size = !has_size_target(t) || size_met(t, cost, kept_ratio, base);
    let fits = match board {
        Some(b) => b.holds_for(arch, measured)?,
        None => true,
    };
    Ok(size && fits)
}

/// The fewest removals (of at most `most`) whose predicted latency is at most `goal`, or
/// `most`. Bisection over the ranking.
fn latency_tau(
    b: &BoardTarget,
    arch: &Arch,
    groups: &Groups,
    goal: f64,
    most: usize,
    pick: &dyn Fn(usize) -> Vec<Vec<usize>>,
) -> usize {
    let fits = |n: usize| b.latency.predict(&pruned_arch(arch, groups, &pick(n))).is_ok_and(|l| l <= goal);
    fewest(most, &fits).unwrap_or(most)
}

/// The smallest `n` in `1..=most` for which `holds(n)`, by bisection (`holds` must stay true
/// once it is: more removals never cost more), or `None` when `holds(most)` is false.
fn fewest(most: usize, holds: &dyn Fn(usize) -> bool) -> Option<usize> {
    if !holds(most) {
        return None;
    }
    let (mut lo, mut hi) = (1, most);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if holds(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

/// [`target_met`] for a model of the run (its kept ratio known).
fn target_met_now(
    t: &Target,
    board: Option<&BoardTarget>,
    arch: &Arch,
    kept_ratio: f64,
    base: (u64, u64),
    measured: Option<u64>,
) -> Result<bool, ScheduleError> {
    target_met(t, board, arch, Some(kept_ratio), base, measured)
}

/// Divides every prunable space's scores by its cost per channel relative to the mean over
/// `spaces`, raised to `exponent`: ranking by score per unit of cost freed (1) or a softer
/// trade (below 1).
pub fn per_cost(scores: &mut [Vec<f64>], spaces: &[usize], per: &[f64], exponent: f64) {
    let mean = spaces.iter().map(|&s| per[s]).sum::<f64>() / spaces.len().max(1) as f64;
    for &s in spaces {
        let w = (per[s] / mean.max(1e-12)).max(0.0).powf(exponent);
        scores[s].iter_mut().for_each(|v| *v /= w.max(1e-12));
    }
}

/// The smallest removal count in `1..=1.5·tau` whose pruned architecture meets the MACs,
/// parameter or board target, or `tau` when none does: the last iteration lands on the target instead
/// of overshooting it, and a remainder under half a step is taken now rather than costing a
/// whole iteration (scoring and fine-tune) of its own. Bisection over the ranking (more
/// removals never cost more).
fn landing_tau(
    arch: &Arch,
    groups: &Groups,
    t: &Target,
    board: Option<&BoardTarget>,
    base: (u64, u64),
    tau: usize,
    pick: &dyn Fn(usize) -> Vec<Vec<usize>>,
) -> usize {
    if t.flops_reduction.is_none() && t.params_reduction.is_none() && board.is_none() {
        return tau;
    }
    // The kept ratio is the step's own business (`tau` is clamped to it): MACs/params/board.
    let t = Target { kept_ratio: None, ..*t };
    let meets =
        |n: usize| target_met(&t, board, &pruned_arch(arch, groups, &pick(n)), None, base, None).unwrap_or(false);
    fewest(tau + tau / 2, &meets).unwrap_or(tau)
}

/// How long one fine-tune phase may run: steps and/or seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Phase {
    steps: Option<usize>,
    seconds: Option<f64>,
}

impl Phase {
    fn is_empty(&self) -> bool {
        self.steps == Some(0) || self.seconds.is_some_and(|s| s <= 0.0)
    }
}

/// The fine-tune after a removal (`recovery` false) or after the last one (true), from the
/// budget and what the history has used; `spent_now` is this iteration's time so far.
fn phase(cfg: &PruneConfig, per_epoch: usize, history: &[Iteration], recovery: bool, spent_now: f64) -> Phase {
    let share = if recovery { 1.0 } else { cfg.iteration_share.clamp(0.0, 1.0) };
    match cfg.budget.map(|b| b.resolve(per_epoch)) {
        None => Phase { steps: Some(if recovery { cfg.final_steps } else { cfg.finetune_steps }), seconds: None },
        Some(Budget::Steps(n)) => {
            let used: usize = history.iter().map(|h| h.steps).sum();
            Phase { steps: Some((n.saturating_sub(used) as f64 * share).round() as usize), seconds: None }
        }
        // `resolve` turned epochs into steps.
        Some(Budget::Epochs(_)) => Phase { steps: Some(0), seconds: None },
        Some(Budget::Seconds(total)) => {
            let used: f64 = history.iter().map(|h| h.seconds).sum::<f64>() + spent_now;
            // Keep the time one evaluation takes (iteration 0 was one) for after the fine-tune.
            let eval = history.first().map_or(0.0, |h| h.seconds);
            Phase { steps: None, seconds: Some(((total - used).max(0.0) * share - eval).max(0.0)) }
        }
    }
}

/// Refuses fine-tuning or evaluation data whose classes are not the model's.
fn check_data(net: &Net, data: &RunData<'_>) -> Result<(), ScheduleError> {
    for ds in [Some(data.train), Some(data.eval), data.polish].into_iter().flatten() {
        crate::train::check_classes(&net.arch, ds)?;
    }
    Ok(())
}

/// Runs the schedule on `net`, or resumes the run in `out` when `net` is `None` or `resume`
/// is set and a state file exists; returns the final model and the state.
pub fn run(
    net: Option<Net>,
    cfg: &PruneConfig,
    data: &RunData<'_>,
    out: &Path,
    resume: bool,
    device: &Device,
    stop: &AtomicBool,
) -> Result<(Net, RunState), ScheduleError> {
    cfg.check()?;
    std::fs::create_dir_all(out).map_err(io_at(out))?;
    let state_path = out.join("state.json");
    let ad = device.clone().autodiff();
    let (mut net, mut state) = if net.is_none() || (resume && state_path.exists()) {
        if !state_path.exists() {
            return Err(ScheduleError::NothingToResume(state_path));
        }
        let text = std::fs::read_to_string(&state_path).map_err(io_at(&state_path))?;
        let state: RunState =
            serde_json::from_str(&text).map_err(|cause| ScheduleError::State { path: state_path.clone(), cause })?;
        let last = state
            .history
            .last()
            .and_then(|h| h.checkpoint.clone())
            .ok_or_else(|| ScheduleError::NoCheckpoint(state_path.clone()))?;
        let (net, _) = weights::load_checkpoint(&last, device)?;
        check_data(&net, data)?;
        crate::say!("resuming at iteration {} from {}", state.history.len() - 1, last.display());
        if !state.finetune_data.is_empty() && state.finetune_data != data.train.source {
            crate::say!(
                "warning: this run fine-tuned on {} and now resumes on {} (pass the same --train-split/--distill-split to continue it as it began)",
                state.finetune_data,
                data.train.source
            );
        }
        (net, state)
    } else {
        let net = net.ok_or(ScheduleError::NoModel)?;
        check_data(&net, data)?;
        let groups = Groups::of(&net.arch).map_err(ScheduleError::Arch)?;
        let started = std::time::Instant::now();
        let ev = evaluate(&net, data.eval, cfg.batch_size, device);
        let ck = out.join("iter-0.safetensors");
        weights::save_checkpoint(&net, &weights::CheckpointMeta::default(), &ck)?;
        let mut first = record(&net, &ev, 0, 1.0, 0, started.elapsed().as_secs_f64(), Some(ck));
        if let Some(b) = cfg.board.as_ref().filter(|b| b.max_latency.is_some()) {
            first.predicted_latency = b.latency.predict(&net.arch).ok();
            // The profile measured the unpruned model first.
            first.board_trace = b.points.first().cloned();
        }
        crate::say!("iteration 0: top-1 {:.2} %, {:.2} M MACs", 100.0 * first.top1, first.macs as f64 / 1e6);
        let state = RunState {
            config: cfg.clone(),
            original_prunable: prunable_channels(&groups, cfg.internal_only),
            history: vec![first],
            done: false,
            finetune_data: data.train.source.clone(),
        };
        save_state(&state_path, &state)?;
        (net, state)
    };
    let (base_top1, base_macs, base_params) = (state.history[0].top1, state.history[0].macs, state.history[0].params);
    let original_channels = state.history[0].channels.clone();
    let n0 = state.original_prunable as f64;
    let per_epoch = data.train.len().div_ceil(cfg.batch_size.max(1)).max(1);
    // The teacher is the original model (iteration 0's checkpoint), fresh run or resumed.
    let teacher = match (cfg.distill, state.history[0].checkpoint.as_ref()) {
        (Some(d), Some(ck)) => {
            Some(Teacher { net: weights::load_checkpoint(ck, device)?.0, temperature: d.temperature, weight: d.weight })
        }
        _ => None,
    };
    let t = &cfg.target;
    // The board target learns every model the run measures (a resumed run relearns them).
    let mut board_t = cfg.board.clone();
    if let Some(b) = board_t.as_mut() {
        for m in state.history.iter().skip(1).filter_map(|h| h.board_trace.clone()) {
            b.learn(m)?;
        }
    }
    if !has_size_target(t) && t.max_accuracy_drop.is_none() && board_t.is_none() {
        return Err(ScheduleError::NoTarget);
    }
    let mut target_met = false;
    while !state.done && state.history.len() <= cfg.max_iterations {
        let Some(cur) = state.history.last().cloned() else { return Err(ScheduleError::NoCheckpoint(state_path)) };
        if cur.recovery {
            break;
        }
        let board = board_t.as_ref();
        if target_met_now(t, board, &net.arch, cur.kept_ratio, (base_macs, base_params), cur.measured_latency())? {
            target_met = true;
            break;
        }
        let started = std::time::Instant::now();
        let groups = Groups::of(&net.arch).map_err(ScheduleError::Arch)?;
        let spaces = groups.prunable(cfg.internal_only);
        let kept_now = prunable_channels(&groups, cfg.internal_only);
        let mut tau = match cfg.step {
            StepSize::Count(n) => n,
            StepSize::Fraction(f) => (f * n0).ceil() as usize,
        };
        if let Some(r) = t.kept_ratio {
            tau = tau.min(kept_now.saturating_sub((r * n0).ceil() as usize)).max(1);
        }
        let scfg = ScoreConfig {
            criterion: cfg.criterion,
            calib: data.calib,
            batch_size: cfg.batch_size,
            seed: cfg.seed + state.history.len() as u64,
            iba: cfg.scorer.iba,
            sss: cfg.scorer.sss,
            variational: cfg.scorer.variational,
        };
        let raw = score(&net, &scfg, device);
        let mut gs = group_scores(&groups, &normalize(&raw, cfg.normalize), cfg.reduce);
        match (cfg.rank, board) {
            (Rank::Budget, Some(b)) => {
                // Score per unit of the budgeted cost a channel frees (HALP-style greedy knapsack).
                let per = cost_per_channel(&net.arch, &groups, cfg.round_to.max(4), &|a| b.cost(a).ok());
                per_cost(&mut gs, &spaces, &per, cfg.cost_exponent);
            }
            (Rank::Macs, _) => per_cost(&mut gs, &spaces, &macs_per_channel(&net.arch, &groups), cfg.cost_exponent),
            (Rank::Budget, None) => return Err(ScheduleError::NoBoardBudget),
            (Rank::Score, _) => {}
        }
        let fl = floors(&net.arch, &groups, &original_channels, cfg.min_channels, cfg.min_width);
        let pick = |n: usize| select(&groups, &gs, &spaces, n, &fl, cfg.round_to).0;
        // Under a latency budget a fractional step is a share of the unpruned model's latency:
        // every ranking then takes the same pace towards the budget.
        let tau = match (board, cfg.step, state.history[0].measured_latency(), cur.measured_latency()) {
            (Some(b), StepSize::Fraction(f), Some(l0), Some(now)) if b.max_latency.is_some() => {
                let goal = (now as f64 - f * l0 as f64).max(b.max_latency.unwrap_or(0) as f64);
                let most: usize = spaces.iter().map(|&s| groups.spaces[s].channels.saturating_sub(fl[s].max(1))).sum();
                latency_tau(b, &net.arch, &groups, goal, most.max(1), &pick)
            }
            _ => tau,
        };
        let tau = landing_tau(&net.arch, &groups, t, board, (base_macs, base_params), tau, &pick);
        let (keep, removed) = select(&groups, &gs, &spaces, tau, &fl, cfg.round_to);
        if removed == 0 {
            match board {
                Some(b) => crate::say!(
                    "the board budget cannot be met: {} with every layer at its --min-channels/--min-width floor; \
                     stopping with the best model so far (iteration {})",
                    b.missed(&b.footprint(&net.arch)?).join(", "),
                    state.history.len() - 1
                ),
                None => crate::say!("nothing left to remove under --min-channels/--min-width/--round-to; stopping"),
            }
            break;
        }
        let mut pruned = prune(&net, &groups, &keep, &ad).map_err(ScheduleError::Arch)?;
        if let Some(rc) = cfg.reconstruct.as_ref() {
            let t0 = std::time::Instant::now();
            pruned = reconstruct(&net, &pruned, &groups, &keep, data.calib, rc, device, &ad)?;
            crate::say!("least-squares repair of every layer: {:.1} s", t0.elapsed().as_secs_f64());
        }
        if cfg.bn_batches > 0 {
            pruned = recalibrate_batchnorm(pruned, data.train, cfg.bn_batches, cfg.batch_size, &ad);
        }
        let after_removal = evaluate(&pruned, data.eval, cfg.batch_size, device).top1;
        crate::say!("after the removal, before fine-tuning: top-1 {:.2} %", 100.0 * after_removal);
        let kept_ratio =
            prunable_channels(&Groups::of(&pruned.arch).map_err(ScheduleError::Arch)?, cfg.internal_only) as f64 / n0;
        // Under a budget, the removal that meets the target is the last: its fine-tune is the
        // recovery and takes everything left (one cosine, no second warm restart).
        // Under a board target the pruned model is measured (its counts do not depend on the
        // weights) and joins the latency fit: the budget is checked as measured.
        let (mut predicted, mut trace) = (None, None);
        if let Some(b) = board_t.as_mut().filter(|b| b.max_latency.is_some()) {
            predicted = b.latency.predict(&pruned.arch).ok();
            let m = b.measure(&pruned.arch, data.calib)?;
            crate::say!(
                "measured on {}: {} {} (predicted {:.0})",
                b.board,
                m.point.total(),
                b.unit,
                predicted.unwrap_or(0.0)
            );
            b.learn(m.point.clone())?;
            trace = Some(m.point);
        }
        let board = board_t.as_ref();
        let measured = trace.as_ref().map(crate::budget::Measurement::total);
        let last = cfg.budget.is_some()
            && target_met_now(t, board, &pruned.arch, kept_ratio, (base_macs, base_params), measured)?;
        let ph = phase(cfg, per_epoch, &state.history, last, started.elapsed().as_secs_f64());
        let Some((tuned, steps)) =
            finetune(pruned, cfg, data, &ph, last, teacher.as_ref(), state.history.len(), &ad, stop)
        else {
            // A half fine-tuned model is not a result: keep the last complete iteration.
            crate::say!(
                "interrupted while fine-tuning iteration {}: not recorded; --resume redoes it from iteration {}",
                state.history.len(),
                state.history.len() - 1
            );
            return Ok((net, state));
        };
        let ev = evaluate(&tuned, data.eval, cfg.batch_size, device);
        let k = state.history.len();
        if t.max_accuracy_drop.is_some_and(|d| 100.0 * (base_top1 - ev.top1) > d) {
            crate::say!(
                "iteration {k}: top-1 {:.2} % drops more than the allowed {:.2} points; keeping iteration {}",
                100.0 * ev.top1,
                t.max_accuracy_drop.unwrap_or(0.0),
                k - 1
            );
            break;
        }
        let mut it = checkpoint(&tuned, &ev, k, kept_ratio, removed, cfg, (base_macs, base_params), out)?;
        it.seconds = started.elapsed().as_secs_f64();
        it.steps = steps;
        it.recovery = last;
        it.predicted_latency = predicted;
        it.board_trace = trace;
        it.top1_after_removal = Some(after_removal);
        log_iteration(&it, base_macs);
        state.history.push(it);
        save_state(&state_path, &state)?;
        net = tuned;
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            crate::say!("interrupted: state saved; continue with --resume");
            return Ok((net, state));
        }
    }
    // Recovery: what the budget has left, after the last removal.
    let last_is_recovery = state.history.last().is_some_and(|h| h.recovery);
    if target_met && !last_is_recovery && state.history.len() > 1 {
        let started = std::time::Instant::now();
        let ph = phase(cfg, per_epoch, &state.history, true, 0.0);
        if !ph.is_empty() {
            let k = state.history.len();
            crate::say!("recovery fine-tune after the last removal: {}", describe(&ph));
            // A trainable copy on the autodiff device (the loop's model is an inference one).
            let trainable =
                weights::from_tensors(&net.arch, &weights::to_tensors(&net), &ad).map_err(ScheduleError::Arch)?;
            let Some((tuned, steps)) = finetune(trainable, cfg, data, &ph, true, teacher.as_ref(), k, &ad, stop) else {
                crate::say!("interrupted during the recovery fine-tune: not recorded; --resume redoes it");
                return Ok((net, state));
            };
            let ev = evaluate(&tuned, data.eval, cfg.batch_size, device);
            let kept_ratio = state.history.last().map_or(1.0, |h| h.kept_ratio);
            let mut it = checkpoint(&tuned, &ev, k, kept_ratio, 0, cfg, (base_macs, base_params), out)?;
            it.seconds = started.elapsed().as_secs_f64();
            it.steps = steps;
            it.recovery = true;
            // The recovery changes weights only: the architecture, and its counts, stay.
            let prev = state.history.last();
            it.predicted_latency = prev.and_then(|h| h.predicted_latency);
            it.board_trace = prev.and_then(|h| h.board_trace.clone());
            log_iteration(&it, base_macs);
            state.history.push(it);
            net = tuned;
        }
    }
    state.done = true;
    save_state(&state_path, &state)?;
    Ok((net, state))
}

fn describe(ph: &Phase) -> String {
    match (ph.steps, ph.seconds) {
        (Some(n), _) => format!("{n} steps"),
        (None, Some(s)) => format!("{s:.0} s"),
        (None, None) => "nothing".into(),
    }
}

fn log_iteration(it: &Iteration, base_macs: u64) {
    crate::say!(
        "iteration {}{}: removed {}, φ {:.3}, top-1 {:.2} %, MACs {:.2} M (−{:.1} %), {} steps, {:.0} s",
        it.iteration,
        crate::report::phase_label(it),
        it.removed,
        it.kept_ratio,
        100.0 * it.top1,
        it.macs as f64 / 1e6,
        100.0 * (1.0 - it.macs as f64 / base_macs as f64),
        it.steps,
        it.seconds
    );
}

/// Saves iteration `k`'s checkpoint (with its provenance) and returns its record.
#[allow(clippy::too_many_arguments)]
fn checkpoint(
    net: &Net,
    ev: &Evaluation,
    k: usize,
    kept_ratio: f64,
    removed: usize,
    cfg: &PruneConfig,
    (base_macs, base_params): (u64, u64),
    out: &Path,
) -> Result<Iteration, ScheduleError> {
    let (macs, params) = net.arch.cost().map_err(ScheduleError::Arch)?;
    let prov = ProvenanceRecord {
        criterion: cfg.criterion.name().into(),
        kept_filter_ratio: kept_ratio as f32,
        flops_before: base_macs,
        flops_after: macs,
        params_before: base_params,
        params_after: params,
    };
    let ck = out.join(format!("iter-{k}.safetensors"));
    let meta = weights::CheckpointMeta { provenance: Some(prov), ..Default::default() };
    weights::save_checkpoint(net, &meta, &ck)?;
    Ok(record(net, ev, k, kept_ratio, removed, 0.0, Some(ck)))
}

/// One fine-tune phase; `None` when Ctrl-C cut it short. Returns the model and its steps.
/// The `recovery` (the fine-tune after the last removal) ends on `data.polish` when given.
#[allow(clippy::too_many_arguments)]
fn finetune(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_of_no_channels_is_refused() {
        assert!("0".parse::<StepSize>().is_err());
        assert_eq!("3".parse::<StepSize>(), Ok(StepSize::Count(3)));
        assert_eq!("0.25".parse::<StepSize>(), Ok(StepSize::Fraction(0.25)));
    }

    /// Settings a run cannot go on with are refused before it starts: a zero batch size, a
    /// step of no channels, and two size targets (the run stopped at the first one met).
    #[test]
    fn a_config_the_run_cannot_honour_is_refused() {
        let flops = Target { flops_reduction: Some(0.5), ..Target::default() };
        let ok = PruneConfig { target: flops, ..PruneConfig::default() };
        assert!(ok.check().is_ok());
        let zero = PruneConfig { batch_size: 0, ..ok.clone() };
        assert!(matches!(zero.check(), Err(ScheduleError::Train(crate::train::TrainError::ZeroBatchSize))));
        let still = PruneConfig { step: StepSize::Count(0), ..ok.clone() };
        assert!(matches!(still.check(), Err(ScheduleError::ZeroStep)));
        for (ratio, params) in [(None, Some(0.3)), (Some(0.5), None)] {
            let two = Target { kept_ratio: ratio, params_reduction: params, ..flops };
            let cfg = PruneConfig { target: two, ..ok.clone() };
            assert!(matches!(cfg.check(), Err(ScheduleError::SeveralSizeTargets)));
        }
        // An accuracy drop beside a size target is no second size target.
        let drop = PruneConfig { target: Target { max_accuracy_drop: Some(1.0), ..flops }, ..ok };
        assert!(drop.check().is_ok());
    }
}
