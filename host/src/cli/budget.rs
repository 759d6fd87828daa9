//! `--max-latency`, `--max-arena`, `--max-flash` on `pare prune` and `pare pipeline`: measure
//! the board (or read its cached profile), resolve the limits, and check the final model.

use crate::boards;
use crate::budget::measure::{self, BoardProfile};
use crate::budget::verify::Verification;
use crate::budget::{BoardTarget, LatencyLimit};
use crate::data::Dataset;
use crate::model::Arch;
use anyhow::bail;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct BudgetArgs {
    /// Prune until the model runs within this latency on --board: a count in the board's unit
    /// (instructions on QEMU, cycles on hardware: 25000000, 25M, 800k), milliseconds on a
    /// clocked board (12ms), or a share of the unpruned model's measured count (50%). The board
    /// is measured first (the model and random-width variants of it, traced per layer; cached
    /// per board, model and firmware sources) and channels are ranked by score per unit of
    /// latency they free.
    #[arg(long, value_parser = latency, allow_hyphen_values = true)]
    pub max_latency: Option<LatencyLimit>,
    /// Largest activation arena (RAM) in bytes (or 96k, 1M), exact from the export plan.
    #[arg(long, value_parser = bytes, allow_hyphen_values = true)]
    pub max_arena: Option<u64>,
    /// Largest flash for the int8 model plus the runtime's code, in bytes (or 256k, 1M).
    #[arg(long, value_parser = bytes, allow_hyphen_values = true)]
    pub max_flash: Option<u64>,
}

/// A latency limit ([`LatencyLimit`]'s forms), refusing a count that rounds to nothing.
pub fn latency(s: &str) -> Result<LatencyLimit, String> {
    match s.parse::<LatencyLimit>()? {
        LatencyLimit::Count(0) => Err(format!("'{s}' is not a latency: a count must be at least 1")),
        l @ (LatencyLimit::Count(_) | LatencyLimit::Millis(_) | LatencyLimit::Share(_)) => Ok(l),
    }
}

/// Bytes with an optional `k`/`M` suffix (1024-based).
pub fn bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024.0),
        Some((i, 'M')) => (&t[..i], 1024.0 * 1024.0),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && (v * unit).round() >= 1.0 => Ok((v * unit).round() as u64),
        _ => Err(format!("'{s}' is not a byte count of at least 1: write 262144, 256k or 1M")),
    }
}

impl BudgetArgs {
    pub fn any(&self) -> bool {
        self.max_latency.is_some() || self.max_arena.is_some() || self.max_flash.is_some()
    }

    /// The board target for pruning `arch`, or `None` without budgets
    /// ([`crate::pipeline::board_target`]).
    pub fn target(
        &self,
        board: &str,
        arch: &Arch,
        sample: &Dataset,
        criterion: &str,
    ) -> anyhow::Result<Option<(BoardTarget, Option<BoardProfile>)>> {
        let budgets = crate::pipeline::BoardBudgets {
            max_latency: self.max_latency,
            max_arena: self.max_arena,
            max_flash: self.max_flash,
        };
        Ok(crate::pipeline::board_target(&budgets, board, arch, sample, criterion)?)
    }
}

/// Measures `arch` on the target's board (random weights: counts and sizes depend on the
/// architecture only) and compares with the predictions.
pub fn verify(t: &BoardTarget, arch: &Arch, sample: &Dataset) -> anyhow::Result<Verification> {
    let b = boards::find(&t.board).ok_or_else(|| anyhow::anyhow!("unknown board '{}'", t.board))?;
    let sample = sample.clone().take(1);
    let m = measure::measure_arch(b, arch, &sample, &t.criterion, t.base)?;
    Ok(Verification::new(t, arch, &m.kinds, &m.point.counts, m.arena, m.model_bytes + m.runtime_bytes)?)
}

/// The check that ends a board-targeted run: every budget holds as measured.
pub fn require(v: &Verification) -> anyhow::Result<()> {
    if !v.holds {
        bail!(
            "the final model misses the board budget as measured on {} (latency {} {} measured, {:.0} predicted); \
             the latency model's per-layer errors are in the report",
            v.board,
            v.measured_latency,
            v.unit,
            v.predicted_latency
        );
    }
    Ok(())
}
