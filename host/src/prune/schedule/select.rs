//! Selection: which channels an iteration removes. The global ascending ranking takes the
//! weakest channels, never a space below its floor (`--min-channels`, `--min-width`), kept
//! counts rounded to `--round-to`.

use super::config::PruneConfig;
use crate::channels::Groups;
use crate::model::{Arch, Node};

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

/// One iteration's choice: the ranked scores of `arch`'s spaces with the prunable spaces, their
/// floors and the rounding, so that any removal count maps to its kept channels.
pub(super) struct Choice<'a> {
    pub(super) arch: &'a Arch,
    pub(super) groups: &'a Groups,
    scores: &'a [Vec<f64>],
    pub(super) spaces: Vec<usize>,
    floors: Vec<usize>,
    round_to: usize,
}

impl<'a> Choice<'a> {
    /// The choice over `scores` (per space) under `cfg`'s scope, floors and rounding; the
    /// floors take `original` (conv name → width at iteration 0) as the original widths.
    pub(super) fn new(
        arch: &'a Arch,
        groups: &'a Groups,
        scores: &'a [Vec<f64>],
        cfg: &PruneConfig,
        original: &[(String, usize)],
    ) -> Self {
        Self {
            arch,
            groups,
            scores,
            spaces: groups.prunable(cfg.internal_only),
            floors: floors(arch, groups, original, cfg.min_channels, cfg.min_width),
            round_to: cfg.round_to,
        }
    }

    /// The kept channels of every space after removing the `n` weakest, and how many went.
    pub(super) fn take(&self, n: usize) -> (Vec<Vec<usize>>, usize) {
        select(self.groups, self.scores, &self.spaces, n, &self.floors, self.round_to)
    }

    /// The most channels any count can remove: every prunable space down to its floor.
    pub(super) fn most(&self) -> usize {
        self.spaces.iter().map(|&s| self.groups.spaces[s].channels.saturating_sub(self.floors[s].max(1))).sum()
    }
}
