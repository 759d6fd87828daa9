//! The board target during a run: it learns every model the run measures (a resumed run
//! relearns them), each removal under a latency budget is measured on the board, and a budget
//! no removal can meet is said so.

use super::error::ScheduleError;
use super::record::Iteration;
use crate::budget::{BoardTarget, Measurement};
use crate::data::Dataset;
use crate::model::Arch;

/// `board` having learned every model `history` measured after iteration 0 (whose measurement
/// the board's profile already holds).
pub(super) fn relearned(
    board: Option<&BoardTarget>,
    history: &[Iteration],
) -> Result<Option<BoardTarget>, ScheduleError> {
    let mut board = board.cloned();
    if let Some(b) = board.as_mut() {
        for m in history.iter().skip(1).filter_map(|h| h.board_trace.clone()) {
            b.learn(m)?;
        }
    }
    Ok(board)
}

/// Under a latency budget, the model of `arch` just pruned: the latency model's prediction
/// (before the measurement joins the fit), then its measurement on the board (the counts do
/// not depend on the weights), learned, so the budget is checked as measured. `(None, None)`
/// without a latency budget.
pub(super) fn measure_removal(
    board: Option<&mut BoardTarget>,
    arch: &Arch,
    calib: &Dataset,
) -> Result<(Option<f64>, Option<Measurement>), ScheduleError> {
    let Some(b) = board.filter(|b| b.max_latency.is_some()) else { return Ok((None, None)) };
    let predicted = b.latency.predict(arch).ok();
    let m = b.measure(arch, calib)?;
    crate::say!("measured on {}: {} {} (predicted {:.0})", b.board, m.point.total(), b.unit, predicted.unwrap_or(0.0));
    b.learn(m.point.clone())?;
    Ok((predicted, Some(m.point)))
}

/// Says why an iteration could remove nothing from `arch`: every layer at its floor, with the
/// budgets still missed under a board target; the run stops with iteration `kept`.
pub(super) fn say_nothing_left(board: Option<&BoardTarget>, arch: &Arch, kept: usize) -> Result<(), ScheduleError> {
    match board {
        Some(b) => crate::say!(
            "the board budget cannot be met: {} with every layer at its --min-channels/--min-width floor; \
             stopping with the best model so far (iteration {})",
            b.missed(&b.footprint(arch)?).join(", "),
            kept
        ),
        None => crate::say!("nothing left to remove under --min-channels/--min-width/--round-to; stopping"),
    }
    Ok(())
}
