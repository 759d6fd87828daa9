//! Targets: whether a model meets the run's target (size, board budgets), and how many
//! channels an iteration removes to approach it: the step, paced under a latency budget, and
//! on the last iteration landed on the target by bisection over the ranking.

use super::config::{PruneConfig, StepSize, Target};
use super::error::ScheduleError;
use super::select::{prunable_channels, Choice};
use crate::budget::BoardTarget;
use crate::channels::pruned_arch;
use crate::model::Arch;

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
pub(super) fn has_size_target(t: &Target) -> bool {
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

/// [`target_met`] for a model of the run (its kept ratio known).
pub(super) fn target_met_now(
    t: &Target,
    board: Option<&BoardTarget>,
    arch: &Arch,
    kept_ratio: f64,
    base: (u64, u64),
    measured: Option<u64>,
) -> Result<bool, ScheduleError> {
    target_met(t, board, arch, Some(kept_ratio), base, measured)
}

/// How many channels this iteration removes: the step (a share of the original `n0`
/// prunable channels, or a count), no further than the kept-ratio target; under a latency
/// budget a fractional step is a share of the unpruned model's latency, `latency` being the
/// measured (unpruned, current) pair; then landed on the MACs, parameter or board target.
pub(super) fn removal_count(
    choice: &Choice<'_>,
    cfg: &PruneConfig,
    n0: f64,
    board: Option<&BoardTarget>,
    latency: (Option<u64>, Option<u64>),
    base: (u64, u64),
) -> usize {
    let kept_now = prunable_channels(choice.groups, cfg.internal_only);
    let mut tau = match cfg.step {
        StepSize::Count(n) => n,
        StepSize::Fraction(f) => (f * n0).ceil() as usize,
    };
    if let Some(r) = cfg.target.kept_ratio {
        tau = tau.min(kept_now.saturating_sub((r * n0).ceil() as usize)).max(1);
    }
    // Under a latency budget a fractional step is a share of the unpruned model's latency:
    // every ranking then takes the same pace towards the budget.
    let tau = match (board, cfg.step, latency.0, latency.1) {
        (Some(b), StepSize::Fraction(f), Some(l0), Some(now)) if b.max_latency.is_some() => {
            let goal = (now as f64 - f * l0 as f64).max(b.max_latency.unwrap_or(0) as f64);
            latency_tau(b, choice, goal, choice.most().max(1))
        }
        _ => tau,
    };
    landing_tau(choice, &cfg.target, board, base, tau)
}

/// The fewest removals (of at most `most`) whose predicted latency is at most `goal`, or
/// `most`. Bisection over the ranking.
fn latency_tau(b: &BoardTarget, choice: &Choice<'_>, goal: f64, most: usize) -> usize {
    let fits = |n: usize| {
        b.latency.predict(&pruned_arch(choice.arch, choice.groups, &choice.take(n).0)).is_ok_and(|l| l <= goal)
    };
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

/// The smallest removal count in `1..=1.5·tau` whose pruned architecture meets the MACs,
/// parameter or board target, or `tau` when none does: the last iteration lands on the target instead
/// of overshooting it, and a remainder under half a step is taken now rather than costing a
/// whole iteration (scoring and fine-tune) of its own. Bisection over the ranking (more
/// removals never cost more).
fn landing_tau(choice: &Choice<'_>, t: &Target, board: Option<&BoardTarget>, base: (u64, u64), tau: usize) -> usize {
    if t.flops_reduction.is_none() && t.params_reduction.is_none() && board.is_none() {
        return tau;
    }
    // The kept ratio is the step's own business (`tau` is clamped to it): MACs/params/board.
    let t = Target { kept_ratio: None, ..*t };
    let meets = |n: usize| {
        let arch = pruned_arch(choice.arch, choice.groups, &choice.take(n).0);
        target_met(&t, board, &arch, None, base, None).unwrap_or(false)
    };
    fewest(tau + tau / 2, &meets).unwrap_or(tau)
}
