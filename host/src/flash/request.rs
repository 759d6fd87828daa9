//! The board check as a library call: a [`FlashRequest`] (model file, board, samples, data) in,
//! a [`FlashReport`] out. `pare flash` and `pare pipeline` are front ends of [`run`].

use super::{check_fit, macs_of, run_on_board, sample_bytes, BoardResult, FlashError};
use std::path::PathBuf;

/// What to check on which board.
#[derive(Debug, Clone, PartialEq)]
pub struct FlashRequest {
    /// The `.pare` model file.
    pub model: PathBuf,
    /// Board name ([`crate::boards::BOARDS`]).
    pub board: String,
    /// Number of samples to embed and run.
    pub samples: usize,
    /// The dataset: `synthetic`, or a path ([`crate::data::load_sized`]).
    pub data: String,
    /// Input resolution for image datasets; `None`: the model's input size.
    pub input_size: Option<usize>,
    /// The split the samples come from.
    pub split: String,
    /// Take the samples spread evenly over the split instead of its first ones.
    pub spread: bool,
    /// Build nothing and run nothing: the report holds the build and run commands.
    pub dry_run: bool,
}

impl Default for FlashRequest {
    /// 100 samples of `synthetic`'s test split on the default board; `model` is to be set.
    fn default() -> Self {
        FlashRequest {
            model: PathBuf::new(),
            board: crate::boards::DEFAULT_BOARD.into(),
            samples: 100,
            data: "synthetic".into(),
            input_size: None,
            split: "test".into(),
            spread: false,
            dry_run: false,
        }
    }
}

/// A board check's outcome: the board's own report and the model facts beside it.
#[derive(Debug, Clone)]
pub struct FlashReport {
    /// The board's name.
    pub board: String,
    /// What the board reported (for a dry run: only the commands).
    pub result: BoardResult,
    /// The model's size in bytes (it goes to flash).
    pub model_bytes: usize,
    /// The activation arena the model needs, in bytes (RAM).
    pub arena_bytes: u32,
    /// Multiply-accumulates of one inference, from the model file.
    pub macs: u64,
}

impl FlashReport {
    /// Whether the check passed ([`BoardResult::passed`]).
    pub fn passed(&self) -> bool {
        self.result.passed()
    }
}

/// Runs the board check `req` describes: reads the model, checks it fits the board (before
/// loading any data), loads the samples, builds the firmware and runs it (QEMU) or flashes it
/// (probe-rs). A check that ran but disagreed with host emulation is an `Ok` report whose
/// [`FlashReport::passed`] is false.
pub fn run(req: &FlashRequest) -> Result<FlashReport, FlashError> {
    let board = crate::boards::find(&req.board).ok_or_else(|| FlashError::UnknownBoard(req.board.clone()))?;
    let model = crate::pare_file::read(&req.model)?;
    let rt = pare_device::Runtime::from_bytes(&model)
        .map_err(|cause| FlashError::Model { path: req.model.clone(), cause })?;
    // The fit check needs only the sample count: before loading any data.
    let samples = req.samples as u64 * sample_bytes(&rt);
    check_fit(board, model.len() as u64, samples, u64::from(rt.arena_bytes()))?;
    let size = rt.model().input_buffer().map_or(32, |b| b.h as usize);
    let ds = crate::data::load_sized(&req.data, &req.split, req.input_size.or(Some(size)))?;
    let ds = if req.spread { ds.spread(req.samples) } else { ds.take(req.samples) };
    let result = run_on_board(board, &model, &ds, req.dry_run)?;
    Ok(FlashReport {
        board: board.name.into(),
        result,
        model_bytes: model.len(),
        arena_bytes: rt.arena_bytes(),
        macs: macs_of(&rt),
    })
}
