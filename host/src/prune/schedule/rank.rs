//! Ranking: every channel's score as the global ranking compares it. The criterion scores
//! every filter, scores are normalised per layer and combined per channel space, and under a
//! cost-aware ranking (`--rank macs`, `--rank budget`) divided by what the channel costs.

use super::config::{PruneConfig, Rank};
use super::error::ScheduleError;
use crate::budget::BoardTarget;
use crate::channels::{pruned_arch, Groups};
use crate::data::Dataset;
use crate::model::{Arch, Net};
use crate::prune::criteria::{group_scores, normalize, score, ScoreConfig};
use burn::tensor::Device;

/// The scores the ranking compares, per space of `groups` (`net`'s): the criterion's on `calib`
/// (seeded with `seed`), normalised, reduced per space and divided by cost as `cfg.rank` says.
pub(super) fn ranked_scores(
    net: &Net,
    groups: &Groups,
    cfg: &PruneConfig,
    calib: &Dataset,
    seed: u64,
    board: Option<&BoardTarget>,
    device: &Device,
) -> Result<Vec<Vec<f64>>, ScheduleError> {
    let spaces = groups.prunable(cfg.internal_only);
    let scfg = ScoreConfig {
        criterion: cfg.criterion,
        calib,
        batch_size: cfg.batch_size,
        seed,
        iba: cfg.scorer.iba,
        sss: cfg.scorer.sss,
        variational: cfg.scorer.variational,
    };
    let raw = score(net, &scfg, device);
    let mut gs = group_scores(groups, &normalize(&raw, cfg.normalize), cfg.reduce);
    match (cfg.rank, board) {
        (Rank::Budget, Some(b)) => {
            // Score per unit of the budgeted cost a channel frees (HALP-style greedy knapsack).
            let per = cost_per_channel(&net.arch, groups, cfg.round_to.max(4), &|a| b.cost(a).ok());
            per_cost(&mut gs, &spaces, &per, cfg.cost_exponent);
        }
        (Rank::Macs, _) => per_cost(&mut gs, &spaces, &macs_per_channel(&net.arch, groups), cfg.cost_exponent),
        (Rank::Budget, None) => return Err(ScheduleError::NoBoardBudget),
        (Rank::Score, _) => {}
    }
    Ok(gs)
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
