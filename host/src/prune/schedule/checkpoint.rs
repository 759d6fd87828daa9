//! Checkpoints and the run's state on disk: iteration 0 of a fresh run, a checkpoint (with
//! its provenance) per iteration, `state.json` after each, and resuming from them.

use super::config::PruneConfig;
use super::error::{io_at, ScheduleError};
use super::record::{record, Iteration, RunState};
use super::run_data::{check_data, RunData};
use super::select::prunable_channels;
use crate::channels::Groups;
use crate::model::{weights, Net};
use crate::prune::ProvenanceRecord;
use crate::train::{evaluate, Evaluation};
use burn::tensor::Device;
use std::path::Path;

/// A fresh run of `net`: iteration 0 (the unpruned model) evaluated, checkpointed to `out`
/// and recorded in a new state saved at `state_path`.
pub(super) fn start(
    net: Net,
    cfg: &PruneConfig,
    data: &RunData<'_>,
    out: &Path,
    state_path: &Path,
    device: &Device,
) -> Result<(Net, RunState), ScheduleError> {
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
    save_state(state_path, &state)?;
    Ok((net, state))
}

/// The run saved at `state_path`: its state and the model of its last recorded iteration.
pub(super) fn resume(state_path: &Path, data: &RunData<'_>, device: &Device) -> Result<(Net, RunState), ScheduleError> {
    if !state_path.exists() {
        return Err(ScheduleError::NothingToResume(state_path.into()));
    }
    let text = std::fs::read_to_string(state_path).map_err(io_at(state_path))?;
    let state: RunState =
        serde_json::from_str(&text).map_err(|cause| ScheduleError::State { path: state_path.into(), cause })?;
    let last = state
        .history
        .last()
        .and_then(|h| h.checkpoint.clone())
        .ok_or_else(|| ScheduleError::NoCheckpoint(state_path.into()))?;
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
    Ok((net, state))
}

/// Writes the state file atomically.
pub(super) fn save_state(path: &Path, state: &RunState) -> Result<(), ScheduleError> {
    let text =
        serde_json::to_string_pretty(state).map_err(|cause| ScheduleError::State { path: path.into(), cause })?;
    crate::atomic::write(path, text.as_bytes()).map_err(io_at(path))
}

/// Saves iteration `k`'s checkpoint (with its provenance) and returns its record.
#[allow(clippy::too_many_arguments)]
pub(super) fn checkpoint(
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
