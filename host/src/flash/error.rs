//! What can go wrong on the way from a `.pare` file to a board's report.

use super::protocol::ProtocolError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("unknown board '{0}'; `pare boards` lists them")]
    UnknownBoard(String),
    #[error("{path}: {cause}")]
    Model { path: PathBuf, cause: pare_device::Error },
    #[error("the model: {0}")]
    Runtime(#[from] pare_device::Error),
    #[error(transparent)]
    File(#[from] crate::pare_file::PareFileError),
    #[error("the model does not fit {board}: needs {flash_need} bytes of flash (has {flash}) and {ram_need} bytes of RAM (has {ram})")]
    TooLarge { board: String, flash_need: u64, flash: u64, ram_need: u64, ram: u64 },
    #[error("{tool} not found: {hint}")]
    ToolMissing { tool: String, hint: String },
    #[error(
        "board firmware crate {0} not found: pare builds the firmware from its checkout's `boards/` folder; \
         set PARE_BOARDS_DIR to that folder (this binary was built elsewhere)"
    )]
    BoardsMissing(PathBuf),
    #[error("firmware build failed (cargo exit {0}); see the output above")]
    Build(i32),
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("the firmware's defmt stream: {0}")]
    Defmt(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

/// Maps an I/O error to [`FlashError::Io`] about `what`.
pub(super) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> FlashError {
    let what = what.to_string();
    move |cause| FlashError::Io { what, cause }
}
