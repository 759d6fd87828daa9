//! The iterative schedule: score, rank globally, remove the τ weakest channels (groups
//! together), fine-tune, evaluate, checkpoint; until a target is met. Every iteration is saved,
//! so an interrupted run resumes where it stopped.

use super::criteria::{group_scores, normalize, score, Criterion, IbaConfig, Normalize, ScoreConfig};
use super::groups::Groups;
use super::surgery::prune;
use super::ProvenanceRecord;
use crate::data::Dataset;
use crate::model::{weights, Net, Node};
use crate::train::{evaluate, train, Evaluation, TrainConfig};
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

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
        if let Ok(n) = s.parse::<usize>() {
            return Ok(StepSize::Count(n));
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(StepSize::Fraction(f)),
            _ => Err(format!("'{s}' is neither a channel count nor a fraction in (0, 1)")),
        }
    }
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
}

/// The state file of a run (`state.json` in the output folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub config: PruneConfig,
    pub original_prunable: usize,
    pub history: Vec<Iteration>,
    pub done: bool,
}

/// Channels of the prunable spaces (the denominator of φ).
pub fn prunable_channels(groups: &Groups, internal_only: bool) -> usize {
    groups.prunable(internal_only).iter().map(|&s| groups.spaces[s].channels).sum()
}

/// Global ascending ranking: removes the `tau` lowest-scoring channels, keeping at least
/// `min_channels` per space and rounding kept counts up to a multiple of `round_to`.
pub fn select(
    groups: &Groups,
    scores: &[Vec<f64>],
    spaces: &[usize],
    tau: usize,
    min_channels: usize,
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
        if left[s] > min_channels.max(1) {
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
    }
}

/// Data a run uses.
pub struct RunData<'a> {
    pub train: &'a Dataset,
    pub calib: &'a Dataset,
    pub eval: &'a Dataset,
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
) -> anyhow::Result<(Net, RunState)> {
    std::fs::create_dir_all(out)?;
    let state_path = out.join("state.json");
    let ad = device.clone().autodiff();
    let (mut net, mut state) = if net.is_none() || (resume && state_path.exists()) {
        if !state_path.exists() {
            anyhow::bail!("nothing to resume: {} does not exist", state_path.display());
        }
        let state: RunState = serde_json::from_str(&std::fs::read_to_string(&state_path)?)?;
        let last = state
            .history
            .last()
            .and_then(|h| h.checkpoint.clone())
            .ok_or_else(|| anyhow::anyhow!("state.json has no checkpoint"))?;
        let (net, _) = weights::load_checkpoint(&last, device)?;
        eprintln!("resuming at iteration {} from {}", state.history.len() - 1, last.display());
        (net, state)
    } else {
        let net = net.ok_or_else(|| anyhow::anyhow!("no model to prune"))?;
        let groups = Groups::of(&net.arch).map_err(anyhow::Error::msg)?;
        let started = std::time::Instant::now();
        let ev = evaluate(&net, data.eval, cfg.batch_size, device);
        let ck = out.join("iter-0.safetensors");
        weights::save_checkpoint(&net, &[], &ck)?;
        let first = record(&net, &ev, 0, 1.0, 0, started.elapsed().as_secs_f64(), Some(ck));
        eprintln!("iteration 0: top-1 {:.2} %, {:.2} M MACs", 100.0 * first.top1, first.macs as f64 / 1e6);
        let state = RunState {
            config: cfg.clone(),
            original_prunable: prunable_channels(&groups, cfg.internal_only),
            history: vec![first],
            done: false,
        };
        crate::atomic::write(&state_path, serde_json::to_string_pretty(&state)?.as_bytes())?;
        (net, state)
    };
    let (base_top1, base_macs, base_params) = (state.history[0].top1, state.history[0].macs, state.history[0].params);
    let n0 = state.original_prunable as f64;
    while !state.done && state.history.len() <= cfg.max_iterations {
        let cur = state.history.last().cloned().ok_or_else(|| anyhow::anyhow!("empty history"))?;
        let t = &cfg.target;
        let reached = t.kept_ratio.is_some_and(|r| cur.kept_ratio <= r + 1e-9)
            || t.flops_reduction.is_some_and(|r| 1.0 - cur.macs as f64 / base_macs as f64 >= r)
            || t.params_reduction.is_some_and(|r| 1.0 - cur.params as f64 / base_params as f64 >= r);
        if reached
            || (t.kept_ratio.is_none()
                && t.flops_reduction.is_none()
                && t.params_reduction.is_none()
                && t.max_accuracy_drop.is_none())
        {
            break;
        }
        let started = std::time::Instant::now();
        let groups = Groups::of(&net.arch).map_err(anyhow::Error::msg)?;
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
            iba: IbaConfig::default(),
        };
        let raw = score(&net, &scfg, device);
        let gs = group_scores(&groups, &normalize(&raw, cfg.normalize));
        let (keep, removed) = select(&groups, &gs, &spaces, tau, cfg.min_channels, cfg.round_to);
        if removed == 0 {
            eprintln!("nothing left to remove under --min-channels/--round-to; stopping");
            break;
        }
        let pruned = prune(&net, &groups, &keep, &ad).map_err(anyhow::Error::msg)?;
        let tuned = if cfg.finetune_steps > 0 {
            let ft = TrainConfig {
                // Enough epochs to hold the step budget; `max_steps` ends the run.
                epochs: cfg.finetune_steps.div_ceil(data.train.len().div_ceil(cfg.batch_size)),
                max_steps: Some(cfg.finetune_steps),
                batch_size: cfg.batch_size,
                lr: cfg.finetune_lr,
                seed: cfg.seed + state.history.len() as u64,
                ..TrainConfig::default()
            };
            let tuned = train(pruned, data.train, &ft, Default::default(), &ad, stop, &mut |_, _, _| {}).valid();
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                // A half fine-tuned model is not a result: keep the last complete iteration.
                eprintln!(
                    "interrupted while fine-tuning iteration {}: not recorded; --resume redoes it from iteration {}",
                    state.history.len(),
                    state.history.len() - 1
                );
                return Ok((net, state));
            }
            tuned
        } else {
            pruned.valid()
        };
        let ev = evaluate(&tuned, data.eval, cfg.batch_size, device);
        let k = state.history.len();
        let kept_ratio =
            prunable_channels(&Groups::of(&tuned.arch).map_err(anyhow::Error::msg)?, cfg.internal_only) as f64 / n0;
        if t.max_accuracy_drop.is_some_and(|d| 100.0 * (base_top1 - ev.top1) > d) {
            eprintln!(
                "iteration {k}: top-1 {:.2} % drops more than the allowed {:.2} points; keeping iteration {}",
                100.0 * ev.top1,
                t.max_accuracy_drop.unwrap_or(0.0),
                k - 1
            );
            break;
        }
        let (macs, params) = tuned.arch.cost().map_err(anyhow::Error::msg)?;
        let prov = ProvenanceRecord {
            criterion: cfg.criterion.name().into(),
            kept_filter_ratio: kept_ratio as f32,
            flops_before: base_macs,
            flops_after: macs,
            params_before: base_params,
            params_after: params,
        };
        let ck = out.join(format!("iter-{k}.safetensors"));
        weights::save_checkpoint(&tuned, &[("pare.provenance", serde_json::to_string(&prov)?)], &ck)?;
        let it = record(&tuned, &ev, k, kept_ratio, removed, started.elapsed().as_secs_f64(), Some(ck));
        eprintln!(
            "iteration {k}: removed {removed}, φ {:.3}, top-1 {:.2} %, MACs {:.2} M (−{:.1} %), {:.0} s",
            kept_ratio,
            100.0 * ev.top1,
            macs as f64 / 1e6,
            100.0 * (1.0 - macs as f64 / base_macs as f64),
            it.seconds
        );
        state.history.push(it);
        crate::atomic::write(&state_path, serde_json::to_string_pretty(&state)?.as_bytes())?;
        net = tuned;
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("interrupted: state saved; continue with --resume");
            return Ok((net, state));
        }
    }
    state.done = true;
    crate::atomic::write(&state_path, serde_json::to_string_pretty(&state)?.as_bytes())?;
    Ok((net, state))
}
