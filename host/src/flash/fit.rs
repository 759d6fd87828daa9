//! The fit check: model, embedded samples and arena against the board's flash and RAM, before
//! any build.

use super::FlashError;
use crate::boards::{Board, CODE_RESERVE, RAM_RESERVE};

/// Checks that model, samples and arena fit the board, with the numbers.
pub fn check_fit(board: &Board, model_bytes: u64, sample_bytes: u64, arena: u64) -> Result<(), FlashError> {
    let flash_need = model_bytes + sample_bytes + CODE_RESERVE;
    let ram_need = arena + RAM_RESERVE;
    if flash_need > board.flash_bytes || ram_need > board.ram_bytes {
        return Err(FlashError::TooLarge {
            board: board.name.into(),
            flash_need,
            flash: board.flash_bytes,
            ram_need,
            ram: board.ram_bytes,
        });
    }
    Ok(())
}

/// Bytes each embedded sample takes: pixels, label, host prediction and host output bytes.
pub fn sample_bytes(rt: &pare_device::Runtime<'_>) -> u64 {
    let pixels = u64::from(rt.input_bytes() / rt.model().input_buffer().map_or(1, |b| b.dtype.size()));
    pixels + 2 + u64::from(rt.output_bytes())
}
