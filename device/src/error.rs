//! Runtime errors.

/// Why a model could not be loaded or run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The message includes the format error's; it is not also the `source()`, so a printed
    /// error chain says it once.
    #[error("model file: {0}")]
    Format(pare_format::Error),
    #[error("arena too small: {needed} bytes needed, {got} given")]
    ArenaTooSmall { needed: u32, got: u32 },
    #[error("arena must be 4-byte aligned")]
    ArenaMisaligned,
    #[error("input has {got} bytes, the model takes {expected}")]
    InputSize { expected: u32, got: u32 },
    #[error("output has {got} bytes, the model produces {expected}")]
    OutputSize { expected: u32, got: u32 },
    /// Unreachable for validated models; kept so that no path can panic.
    #[error("internal inconsistency in op {op}")]
    Internal { op: u32 },
}

impl From<pare_format::Error> for Error {
    fn from(e: pare_format::Error) -> Self {
        Error::Format(e)
    }
}
