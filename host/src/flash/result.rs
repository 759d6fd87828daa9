//! The board's report as the host reads it, and the one pass rule of a board check.

/// The board's final report, parsed from its `PARE-RESULT` line.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BoardResult {
    pub samples: u64,
    pub correct: u64,
    pub agree: u64,
    /// Samples whose raw output bytes equal host emulation's.
    pub exact: u64,
    /// Instructions (QEMU) or cycles per inference.
    pub per_inference: u64,
    pub unit: String,
    /// Per step of the first sample: the input preparation, then every op.
    pub layers: Vec<LayerCount>,
    pub errors: Vec<String>,
    /// A dry run's firmware build and board run commands (nothing ran).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
}

impl BoardResult {
    /// The one pass rule of a board check (`pare flash`, `pare pipeline`): samples ran, every
    /// prediction and every raw output byte equals host emulation's, and the board reported no
    /// error.
    pub fn passed(&self) -> bool {
        self.samples > 0 && self.agree == self.samples && self.exact == self.samples && self.errors.is_empty()
    }

    /// Why [`BoardResult::passed`] is false, in one sentence.
    pub fn verdict(&self) -> String {
        let mut s = format!(
            "{} of {} predictions and {} of {} raw outputs equal host emulation",
            self.agree, self.samples, self.exact, self.samples
        );
        if !self.errors.is_empty() {
            s += &format!("; errors: {}", self.errors.join("; "));
        }
        s
    }
}

/// One step's cost on the board, as `pare flash --json` writes it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LayerCount {
    /// The op's index in the model; `None` for the input preparation.
    pub op: Option<u32>,
    /// The op's kind (`conv2d`, `add`, …) or `input`.
    pub kind: String,
    /// Instructions (QEMU) or cycles, in the report's unit.
    pub count: u64,
    /// Multiply-accumulates of the op (0 for ops without them), filled from the model.
    pub macs: u64,
}
