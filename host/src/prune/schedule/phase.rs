//! The fine-tune budget and its phases: what a whole run may spend on fine-tuning ([`Budget`])
//! and how much of it each iteration's fine-tune and the final recovery take ([`Phase`]).

use super::config::PruneConfig;
use super::record::Iteration;
use serde::{Deserialize, Serialize};

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

/// How long one fine-tune phase may run: steps and/or seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Phase {
    pub(super) steps: Option<usize>,
    pub(super) seconds: Option<f64>,
}

impl Phase {
    /// Whether the phase allows no training at all.
    pub(super) fn is_empty(&self) -> bool {
        self.steps == Some(0) || self.seconds.is_some_and(|s| s <= 0.0)
    }
}

/// The fine-tune after a removal (`recovery` false) or after the last one (true), from the
/// budget and what the history has used; `spent_now` is this iteration's time so far.
pub(super) fn phase(
    cfg: &PruneConfig,
    per_epoch: usize,
    history: &[Iteration],
    recovery: bool,
    spent_now: f64,
) -> Phase {
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

/// A phase's length for the log: its steps, else its seconds.
pub(super) fn describe(ph: &Phase) -> String {
    match (ph.steps, ph.seconds) {
        (Some(n), _) => format!("{n} steps"),
        (None, Some(s)) => format!("{s:.0} s"),
        (None, None) => "nothing".into(),
    }
}
