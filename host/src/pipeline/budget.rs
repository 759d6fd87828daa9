//! Board budgets into a [`BoardTarget`]: the board measured (or its cached profile read), the
//! limits resolved against the unpruned model.

use super::{BoardBudgets, PipelineError};
use crate::budget::measure::{self, BoardProfile};
use crate::budget::BoardTarget;
use crate::data::Dataset;
use crate::model::Arch;

/// The board target for pruning `arch` to `budgets` on `board`, or `None` without budgets.
/// Measures the board unless its profile of this model is cached; `sample` is one image at the
/// model's input.
pub fn board_target(
    budgets: &BoardBudgets,
    board: &str,
    arch: &Arch,
    sample: &Dataset,
    criterion: &str,
) -> Result<Option<(BoardTarget, Option<BoardProfile>)>, PipelineError> {
    if !budgets.any() {
        return Ok(None);
    }
    let b = crate::boards::find(board).ok_or_else(|| PipelineError::UnknownBoard(board.into()))?;
    let base = arch.cost().map_err(PipelineError::Arch)?;
    let mut t = BoardTarget {
        board: b.name.into(),
        unit: measure::unit_of(b),
        max_latency: None,
        max_arena: budgets.max_arena,
        max_flash: budgets.max_flash,
        latency: crate::budget::LatencyModel { coefficients: vec![] },
        runtime_bytes: 0,
        criterion: criterion.into(),
        base,
        points: vec![],
        profile_points: 0,
    };
    let Some(limit) = budgets.max_latency else {
        // Byte budgets need no latency profile, only the runtime's flash: measured on the
        // narrowest variant (the unpruned model may not fit the board at all).
        let narrow = measure::narrowest(arch, measure::MIN_SHARE)?;
        let m = measure::measure_arch(b, &narrow, &sample.clone().take(1), criterion, base)?;
        t.runtime_bytes = m.runtime_bytes + measure::RUNTIME_SLACK;
        crate::say!(
            "runtime flash besides the model: {} bytes measured on {}, {} with slack for the code's variation",
            m.runtime_bytes,
            b.name,
            t.runtime_bytes
        );
        return Ok(Some((t, None)));
    };
    let profile = measure::profile(b, arch, sample)?;
    let unpruned = profile.unpruned();
    let max_latency = limit.resolve(unpruned, b.cycles_per_ms()).map_err(PipelineError::Latency)?;
    let fitted = profile.model.predict(arch)?;
    crate::say!(
        "latency model for {} on {}: unpruned {unpruned} {} measured, {:.0} predicted ({:+.2} %), from {} measured models",
        arch.name,
        b.name,
        profile.unit,
        fitted,
        100.0 * (fitted - unpruned as f64) / unpruned.max(1) as f64,
        profile.points.len()
    );
    let (lo, hi) = profile.runtime_seen.iter().fold((u64::MAX, 0), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    crate::say!("runtime flash besides the model: {lo}–{hi} bytes over the measured builds");
    crate::say!(
        "latency budget: {max_latency} {} ({:.1} % of the unpruned model)",
        profile.unit,
        100.0 * max_latency as f64 / unpruned.max(1) as f64
    );
    if max_latency >= unpruned {
        crate::say!("note: the unpruned model already meets the latency budget");
    }
    t.max_latency = Some(max_latency);
    t.latency = profile.model.clone();
    t.runtime_bytes = profile.runtime_bytes + measure::RUNTIME_SLACK;
    t.points = profile.points.clone();
    t.profile_points = profile.points.len();
    Ok(Some((t, Some(profile))))
}
