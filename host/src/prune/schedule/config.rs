//! A run's settings and their defaults: how much one iteration removes, how channels are
//! ranked, when to stop, distillation and the recovery's polish, all in [`PruneConfig`]
//! (recorded in the run's state, so a resumed run goes on as it began).

use super::error::ScheduleError;
use super::phase::Budget;
use crate::budget::BoardTarget;
use crate::prune::criteria::{Criterion, GroupReduce, Normalize, ScorerSettings};
use crate::prune::reconstruct::Reconstruct;
use serde::{Deserialize, Serialize};

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
    pub scorer: ScorerSettings,
    /// Distil from the original model in every fine-tune (`None`: labels only).
    #[serde(default)]
    pub distill: Option<Distill>,
    /// Batches that re-estimate BatchNorm statistics right after each removal (0: none).
    #[serde(default)]
    pub bn_batches: usize,
    /// Least-squares repair of every layer right after each removal (`None`: off).
    #[serde(default)]
    pub reconstruct: Option<Reconstruct>,
    /// How the recovery ends on [`RunData::polish`](super::RunData::polish) (ignored without it).
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
            scorer: ScorerSettings::default(),
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
