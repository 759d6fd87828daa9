//! What a run records: one [`Iteration`] per model it kept (a row of the report) and the
//! [`RunState`] that holds them, saved as `state.json` after every iteration.

use super::config::PruneConfig;
use crate::model::{Net, Node};
use crate::train::Evaluation;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// What this row was, beside its removal: the recovery fine-tune after the last removal.
    pub fn phase_label(&self) -> &'static str {
        match (self.recovery, self.removed) {
            (false, _) => "",
            (true, 0) => " (recovery)",
            (true, _) => " (last removal + recovery)",
        }
    }

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

/// Output channels of every conv of `net`, by layer name.
pub(super) fn channels(net: &Net) -> Vec<(String, usize)> {
    net.arch
        .nodes
        .iter()
        .filter_map(|n| if let Node::Conv { name, out, .. } = n { Some((name.clone(), *out)) } else { None })
        .collect()
}

/// The record of iteration `iteration`: `net`'s counts and widths and its evaluation; the
/// fields a run fills in afterwards (steps, recovery, board) are left empty.
pub(super) fn record(
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

/// Logs an iteration's line: what it removed and where the model stands against the original.
pub(super) fn log_iteration(it: &Iteration, base_macs: u64) {
    crate::say!(
        "iteration {}{}: removed {}, φ {:.3}, top-1 {:.2} %, MACs {:.2} M (−{:.1} %), {} steps, {:.0} s",
        it.iteration,
        it.phase_label(),
        it.removed,
        it.kept_ratio,
        100.0 * it.top1,
        it.macs as f64 / 1e6,
        100.0 * (1.0 - it.macs as f64 / base_macs as f64),
        it.steps,
        it.seconds
    );
}
