//! The end of a board-targeted run: the final model measured on the board, each budget's
//! limit, prediction and measurement side by side, and the latency model's per-layer error.

use super::BoardTarget;
use crate::model::Arch;
use serde::Serialize;

/// Predicted against measured, for the final model.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub board: String,
    pub unit: String,
    pub max_latency: Option<u64>,
    pub max_arena: Option<u64>,
    pub max_flash: Option<u64>,
    pub predicted_latency: f64,
    pub measured_latency: u64,
    /// From a size-only export of the architecture.
    pub predicted_arena: u64,
    pub predicted_flash: u64,
    pub arena: u64,
    pub flash: u64,
    /// Per step (input preparation, then each op): kind, predicted, measured.
    pub steps: Vec<(String, f64, u64)>,
    pub holds: bool,
}

impl Verification {
    /// Compares the target's predictions for `arch` with the board's per-step `measured`
    /// counts, the exported model's `arena` and the image's `flash` bytes.
    pub fn new(
        t: &BoardTarget,
        arch: &Arch,
        kinds: &[String],
        measured: &[u64],
        arena: u64,
        flash: u64,
    ) -> Result<Self, super::BudgetError> {
        let predicted = match t.max_latency {
            Some(_) => t.latency.predict_steps(arch)?,
            None => vec![0.0; measured.len()],
        };
        let (model, predicted_arena) = super::footprint(arch, &t.criterion, t.base)?;
        let measured_latency: u64 = measured.iter().sum();
        let steps = predicted
            .iter()
            .zip(measured)
            .enumerate()
            .map(|(i, (p, m))| (kinds.get(i).cloned().unwrap_or_default(), *p, *m))
            .collect();
        // The target's own rule, on what was measured.
        let holds = t.holds(&super::Footprint { latency: measured_latency as f64, arena, flash });
        Ok(Self {
            board: t.board.clone(),
            unit: t.unit.clone(),
            max_latency: t.max_latency,
            max_arena: t.max_arena,
            max_flash: t.max_flash,
            predicted_latency: predicted.iter().sum(),
            measured_latency,
            predicted_arena,
            predicted_flash: model + t.runtime_bytes,
            arena,
            flash,
            steps,
            holds,
        })
    }

    /// Relative error of the predicted total.
    pub fn latency_error(&self) -> f64 {
        (self.predicted_latency - self.measured_latency as f64) / (self.measured_latency as f64).max(1.0)
    }

    /// Markdown: the budgets, then predicted vs measured per layer.
    pub fn markdown(&self) -> String {
        let lim = |v: Option<u64>| v.map_or("–".into(), |v| v.to_string());
        let ok = |v: Option<u64>, m: u64| v.map_or("–", |v| if m <= v { "yes" } else { "**no**" });
        let mut s = format!("\n## Board budget on {}\n\n", self.board);
        s += "| budget | limit | predicted | measured | holds |\n|---|---:|---:|---:|---|\n";
        // Without a latency budget there is no latency model: measured only.
        let modelled = self.max_latency.is_some();
        let predicted = if modelled {
            format!("{:.0} ({:+.2} %)", self.predicted_latency, 100.0 * self.latency_error())
        } else {
            "–".into()
        };
        s += &format!(
            "| latency ({}) | {} | {predicted} | {} | {} |\n",
            self.unit,
            lim(self.max_latency),
            self.measured_latency,
            ok(self.max_latency, self.measured_latency)
        );
        for (what, limit, predicted, measured) in [
            ("arena (bytes)", self.max_arena, self.predicted_arena, self.arena),
            ("flash: model + runtime (bytes)", self.max_flash, self.predicted_flash, self.flash),
        ] {
            s += &format!("| {what} | {} | {predicted} | {measured} | {} |\n", lim(limit), ok(limit, measured));
        }
        s += "\n| step | kind | predicted | measured | error |\n|---:|---|---:|---:|---:|\n";
        for (i, (k, p, m)) in self.steps.iter().enumerate() {
            let step = if i == 0 { "–".to_string() } else { (i - 1).to_string() };
            let (p, e) = if modelled {
                (format!("{p:.0}"), format!("{:+.2} %", 100.0 * (p - *m as f64) / (*m as f64).max(1.0)))
            } else {
                ("–".into(), "–".into())
            };
            s += &format!("| {step} | {k} | {p} | {m} | {e} |\n");
        }
        s
    }
}
