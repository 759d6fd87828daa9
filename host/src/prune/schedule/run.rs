//! The run loop, the method itself: score → remove → repair → fine-tune → record, iteration
//! after iteration until the target is met; then the recovery fine-tune spends what the budget
//! has left. Every iteration is saved, so an interrupted run resumes where it stopped.

use super::board::{measure_removal, say_nothing_left};
use super::checkpoint::{checkpoint, resume as resume_run, save_state, start};
use super::config::PruneConfig;
use super::context::Run;
use super::error::{io_at, ScheduleError};
use super::finetune::finetune;
use super::phase::{describe, phase};
use super::rank::ranked_scores;
use super::record::{log_iteration, Iteration, RunState};
use super::repair::remove_and_repair;
use super::run_data::RunData;
use super::select::{prunable_channels, Choice};
use super::target::{removal_count, target_met_now};
use crate::budget::Measurement;
use crate::channels::Groups;
use crate::model::{weights, Net};
use crate::train::evaluate;
use burn::tensor::Device;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// How one step of the run ended.
enum Outcome {
    /// Recorded and saved: the run goes on from this model.
    Recorded(Net),
    /// Recorded and saved, then Ctrl-C: the run returns this model.
    RecordedThenStopped(Net),
    /// Nothing recorded, nothing more to do (nothing left to remove, the accuracy drop
    /// exceeded, no budget left for a recovery): the run ends with the model it had.
    Ended,
    /// Ctrl-C during the fine-tune: nothing recorded; the run returns the model it had.
    Interrupted,
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
    let (mut net, mut state) = if net.is_none() || (resume && state_path.exists()) {
        resume_run(&state_path, data, device)?
    } else {
        start(net.ok_or(ScheduleError::NoModel)?, cfg, data, out, &state_path, device)?
    };
    let mut run = Run::new(cfg, data, out, state_path, device, stop, &state)?;
    let mut target_met = false;
    while !state.done && state.history.len() <= cfg.max_iterations {
        let Some(cur) = state.history.last().cloned() else { return Err(ScheduleError::NoCheckpoint(run.state_path)) };
        if cur.recovery {
            break;
        }
        let board = run.board.as_ref();
        if target_met_now(&cfg.target, board, &net.arch, cur.kept_ratio, run.base, cur.measured_latency())? {
            target_met = true;
            break;
        }
        match run.iteration(&net, &mut state, &cur)? {
            Outcome::Recorded(tuned) => net = tuned,
            Outcome::RecordedThenStopped(tuned) => return Ok((tuned, state)),
            Outcome::Ended => break,
            Outcome::Interrupted => return Ok((net, state)),
        }
    }
    let last_is_recovery = state.history.last().is_some_and(|h| h.recovery);
    if target_met && !last_is_recovery && state.history.len() > 1 {
        match run.recovery(&net, &mut state)? {
            Outcome::Recorded(tuned) => net = tuned,
            Outcome::RecordedThenStopped(tuned) => return Ok((tuned, state)),
            Outcome::Ended => {}
            Outcome::Interrupted => return Ok((net, state)),
        }
    }
    state.done = true;
    save_state(&run.state_path, &state)?;
    Ok((net, state))
}

impl Run<'_> {
    /// One iteration from `net`, the model of `cur` (the last recorded): score → remove →
    /// repair → fine-tune → record.
    fn iteration(&mut self, net: &Net, state: &mut RunState, cur: &Iteration) -> Result<Outcome, ScheduleError> {
        let (cfg, data, k) = (self.cfg, self.data, state.history.len());
        let started = std::time::Instant::now();
        // Score every channel of every space, as the global ranking compares them.
        let groups = Groups::of(&net.arch).map_err(ScheduleError::Arch)?;
        let seed = cfg.seed + k as u64;
        let scores = ranked_scores(net, &groups, cfg, data.calib, seed, self.board.as_ref(), self.device)?;
        // Remove the weakest: as many as the step and the target call for.
        let choice = Choice::new(&net.arch, &groups, &scores, cfg, &self.original_channels);
        let latency = (state.history[0].measured_latency(), cur.measured_latency());
        let tau = removal_count(&choice, cfg, self.n0, self.board.as_ref(), latency, self.base);
        let (keep, removed) = choice.take(tau);
        if removed == 0 {
            say_nothing_left(self.board.as_ref(), &net.arch, k - 1)?;
            return Ok(Outcome::Ended);
        }
        // Repair, then (under a latency budget) measure on the board.
        let (pruned, after_removal) = remove_and_repair(net, &groups, &keep, cfg, data, self.device, &self.ad)?;
        let pruned_groups = Groups::of(&pruned.arch).map_err(ScheduleError::Arch)?;
        let kept_ratio = prunable_channels(&pruned_groups, cfg.internal_only) as f64 / self.n0;
        let (predicted, trace) = measure_removal(self.board.as_mut(), &pruned.arch, data.calib)?;
        // Fine-tune. Under a budget, the removal that meets the target is the last: its
        // fine-tune is the recovery and takes everything left (one cosine, no second warm
        // restart).
        let measured = trace.as_ref().map(Measurement::total);
        let last = cfg.budget.is_some()
            && target_met_now(&cfg.target, self.board.as_ref(), &pruned.arch, kept_ratio, self.base, measured)?;
        let ph = phase(cfg, self.per_epoch, &state.history, last, started.elapsed().as_secs_f64());
        let teacher = self.teacher.as_ref();
        let Some((tuned, steps)) = finetune(pruned, cfg, data, &ph, last, teacher, k, &self.ad, self.stop) else {
            // A half fine-tuned model is not a result: keep the last complete iteration.
            crate::say!(
                "interrupted while fine-tuning iteration {k}: not recorded; --resume redoes it from iteration {}",
                k - 1
            );
            return Ok(Outcome::Interrupted);
        };
        let ev = evaluate(&tuned, data.eval, cfg.batch_size, self.device);
        if cfg.target.max_accuracy_drop.is_some_and(|d| 100.0 * (self.base_top1 - ev.top1) > d) {
            crate::say!(
                "iteration {k}: top-1 {:.2} % drops more than the allowed {:.2} points; keeping iteration {}",
                100.0 * ev.top1,
                cfg.target.max_accuracy_drop.unwrap_or(0.0),
                k - 1
            );
            return Ok(Outcome::Ended);
        }
        // Record: checkpoint, log, state.
        let mut it = checkpoint(&tuned, &ev, k, kept_ratio, removed, cfg, self.base, self.out)?;
        it.seconds = started.elapsed().as_secs_f64();
        it.steps = steps;
        it.recovery = last;
        it.predicted_latency = predicted;
        it.board_trace = trace;
        it.top1_after_removal = Some(after_removal);
        log_iteration(&it, self.base.0);
        state.history.push(it);
        save_state(&self.state_path, state)?;
        if self.stop.load(Ordering::SeqCst) {
            crate::say!("interrupted: state saved; continue with --resume");
            return Ok(Outcome::RecordedThenStopped(tuned));
        }
        Ok(Outcome::Recorded(tuned))
    }

    /// The recovery after the last removal: what the budget has left, fine-tuning `net`, the
    /// last recorded model, into a row of its own (the state is saved when the run is done).
    fn recovery(&self, net: &Net, state: &mut RunState) -> Result<Outcome, ScheduleError> {
        let (cfg, data, k) = (self.cfg, self.data, state.history.len());
        let started = std::time::Instant::now();
        let ph = phase(cfg, self.per_epoch, &state.history, true, 0.0);
        if ph.is_empty() {
            return Ok(Outcome::Ended);
        }
        crate::say!("recovery fine-tune after the last removal: {}", describe(&ph));
        // A trainable copy on the autodiff device (the loop's model is an inference one).
        let trainable =
            weights::from_tensors(&net.arch, &weights::to_tensors(net), &self.ad).map_err(ScheduleError::Arch)?;
        let teacher = self.teacher.as_ref();
        let Some((tuned, steps)) = finetune(trainable, cfg, data, &ph, true, teacher, k, &self.ad, self.stop) else {
            crate::say!("interrupted during the recovery fine-tune: not recorded; --resume redoes it");
            return Ok(Outcome::Interrupted);
        };
        let ev = evaluate(&tuned, data.eval, cfg.batch_size, self.device);
        let kept_ratio = state.history.last().map_or(1.0, |h| h.kept_ratio);
        let mut it = checkpoint(&tuned, &ev, k, kept_ratio, 0, cfg, self.base, self.out)?;
        it.seconds = started.elapsed().as_secs_f64();
        it.steps = steps;
        it.recovery = true;
        // The recovery changes weights only: the architecture, and its counts, stay.
        let prev = state.history.last();
        it.predicted_latency = prev.and_then(|h| h.predicted_latency);
        it.board_trace = prev.and_then(|h| h.board_trace.clone());
        log_iteration(&it, self.base.0);
        state.history.push(it);
        Ok(Outcome::Recorded(tuned))
    }
}
