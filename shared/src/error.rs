//! Typed errors: every way a file can be refused, so callers can react and tests can pin them.

/// Why a file could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The first four bytes are not `PARE`.
    #[error("not a pare file (bad magic)")]
    BadMagic,
    /// The file was written for a format version this reader does not understand.
    #[error("unsupported format version {found} (this reader understands version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    /// Header flags this reader does not know.
    #[error("unknown header flags {0:#06x}")]
    UnknownFlags(u16),
    /// The file is shorter than its header says.
    #[error("truncated: {needed} bytes needed, {got} present")]
    Truncated { needed: u32, got: u32 },
    /// Bytes follow the payload.
    #[error("{0} unexpected bytes after the payload")]
    TrailingBytes(u32),
    /// The payload does not match its CRC-32.
    #[error("checksum mismatch: header says {expected:#010x}, payload has {actual:#010x}")]
    ChecksumMismatch { expected: u32, actual: u32 },
    /// The payload is not a well-formed model encoding.
    #[error("malformed payload")]
    Malformed,
    /// The payload decodes but does not describe an executable graph. The message includes the
    /// graph error's; it is not also the `source()`, so a printed error chain says it once.
    #[error("invalid graph: {0}")]
    InvalidGraph(GraphError),
}

/// Why a decoded graph cannot be executed. `op` is the op's index in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GraphError {
    #[error("the graph has no ops")]
    Empty,
    #[error("op {op} refers to buffer {buffer}, but there are only {count} buffers")]
    BufferOutOfRange { op: u32, buffer: u32, count: u32 },
    #[error("model input/output buffer {buffer} out of range")]
    IoOutOfRange { buffer: u32 },
    #[error("buffer {buffer} has a zero or overflowing shape")]
    BadBufferShape { buffer: u32 },
    #[error("op {op}: shapes do not chain ({what})")]
    ShapeMismatch { op: u32, what: &'static str },
    #[error("op {op}: invalid parameter ({what})")]
    BadParameter { op: u32, what: &'static str },
    #[error("op {op}: {what} has {got} elements, {expected} expected")]
    LengthMismatch { op: u32, what: &'static str, expected: u32, got: u32 },
    #[error("op {op}: element types do not match ({what})")]
    DTypeMismatch { op: u32, what: &'static str },
    #[error("buffer {buffer} is written by more than one op, or is the model input and written")]
    MultipleWriters { buffer: u32 },
    #[error("op {op} reads buffer {buffer} before it is written")]
    ReadBeforeWrite { op: u32, buffer: u32 },
    #[error("the model output buffer is never written")]
    OutputNotWritten,
    #[error("a table's byte length does not match its element count")]
    TableLength,
    #[error("the memory plan has {got} entries for {expected} buffers")]
    PlanLength { expected: u32, got: u32 },
    #[error("buffer {buffer} is used at step {step}, outside its planned lifetime")]
    OutsideLifetime { buffer: u32, step: u32 },
    #[error("buffer {buffer} does not fit the {arena}-byte arena")]
    OutsideArena { buffer: u32, arena: u32 },
    #[error("buffer {buffer} offset is not 4-byte aligned")]
    Misaligned { buffer: u32 },
    #[error("buffers {a} and {b} overlap in memory while both are live")]
    Overlap { a: u32, b: u32 },
    #[error("metadata: {what}")]
    BadMetadata { what: &'static str },
    #[error("arithmetic overflow while checking sizes")]
    Overflow,
}

impl From<postcard::Error> for Error {
    fn from(_: postcard::Error) -> Self {
        Error::Malformed
    }
}

impl From<GraphError> for Error {
    fn from(e: GraphError) -> Self {
        Error::InvalidGraph(e)
    }
}
