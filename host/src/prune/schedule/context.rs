//! What every step of a run reads: its settings, data and output folder, the original
//! model's numbers (iteration 0), the teacher to distil from and the board target as learned
//! so far.

use super::board::relearned;
use super::config::PruneConfig;
use super::error::ScheduleError;
use super::record::RunState;
use super::run_data::RunData;
use super::target::has_size_target;
use crate::budget::BoardTarget;
use crate::model::weights;
use crate::train::Teacher;
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// A run under way.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a PruneConfig,
    pub(super) data: &'a RunData<'a>,
    /// The output folder: checkpoints and the state file.
    pub(super) out: &'a Path,
    pub(super) state_path: PathBuf,
    /// Where models are evaluated and scored.
    pub(super) device: &'a Device,
    /// The autodiff device models are pruned onto and fine-tuned on.
    pub(super) ad: Device,
    /// Ctrl-C.
    pub(super) stop: &'a AtomicBool,
    /// Top-1 of the original model.
    pub(super) base_top1: f64,
    /// MACs and parameters of the original model.
    pub(super) base: (u64, u64),
    /// Output channels of the original model's convs, by layer name (the floors' widths).
    pub(super) original_channels: Vec<(String, usize)>,
    /// Prunable channels of the original model (the denominator of φ).
    pub(super) n0: f64,
    /// Fine-tuning steps in one epoch of the training split.
    pub(super) per_epoch: usize,
    /// The original model to distil from (`None`: labels only).
    pub(super) teacher: Option<Teacher>,
    /// The board target, having learned every model the run measured.
    pub(super) board: Option<BoardTarget>,
}

impl<'a> Run<'a> {
    /// The run of `state` (fresh or resumed); refuses a run with nothing to stop it.
    pub(super) fn new(
        cfg: &'a PruneConfig,
        data: &'a RunData<'a>,
        out: &'a Path,
        state_path: PathBuf,
        device: &'a Device,
        stop: &'a AtomicBool,
        state: &RunState,
    ) -> Result<Self, ScheduleError> {
        let first = &state.history[0];
        // The teacher is the original model (iteration 0's checkpoint), fresh run or resumed.
        let teacher = match (cfg.distill, first.checkpoint.as_ref()) {
            (Some(d), Some(ck)) => Some(Teacher {
                net: weights::load_checkpoint(ck, device)?.0,
                temperature: d.temperature,
                weight: d.weight,
            }),
            _ => None,
        };
        // The board target learns every model the run measures (a resumed run relearns them).
        let board = relearned(cfg.board.as_ref(), &state.history)?;
        let t = &cfg.target;
        if !has_size_target(t) && t.max_accuracy_drop.is_none() && board.is_none() {
            return Err(ScheduleError::NoTarget);
        }
        Ok(Self {
            cfg,
            data,
            out,
            state_path,
            device,
            ad: device.clone().autodiff(),
            stop,
            base_top1: first.top1,
            base: (first.macs, first.params),
            original_channels: first.channels.clone(),
            n0: state.original_prunable as f64,
            per_epoch: data.train.len().div_ceil(cfg.batch_size.max(1)).max(1),
            teacher,
            board,
        })
    }
}
