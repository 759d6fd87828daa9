//! Report tables (Markdown) and JSON output.

use crate::train::Evaluation;
use std::path::Path;

/// Per-class accuracy, one column per evaluation (e.g. original vs compressed).
pub fn per_class_table(labels: &[String], columns: &[(&str, &Evaluation)]) -> String {
    let mut s = String::from("| class |");
    for (name, _) in columns {
        s += &format!(" {name} |");
    }
    s += "\n|---|";
    s += &"---:|".repeat(columns.len());
    s += "\n";
    for (i, label) in labels.iter().enumerate() {
        s += &format!("| {label} |");
        for (_, ev) in columns {
            s += &format!(" {:.1} % |", 100.0 * ev.per_class.get(i).copied().unwrap_or(0.0));
        }
        s += "\n";
    }
    s += "| **top-1** |";
    for (_, ev) in columns {
        s += &format!(" **{:.2} %** |", 100.0 * ev.top1);
    }
    s
}

/// Writes any serialisable value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    crate::atomic::write(path, text.as_bytes())
}

/// The seed-style tables of a pruning run: Top-1, MACs and params with pruning ratio per
/// iteration, per-class accuracy original vs compressed, and kept channels per layer.
pub fn prune_report(labels: &[String], state: &crate::prune::schedule::RunState, eval_source: &str) -> String {
    let h = &state.history;
    let (Some(first), Some(last)) = (h.first(), h.last()) else { return String::new() };
    let pr = |now: u64, base: u64| 100.0 * (1.0 - now as f64 / base.max(1) as f64);
    let mut s = format!(
        "## Pruning: {} (normalize {:?}), accuracy on {eval_source}{}\n\n| iteration | φ kept | top-1 | Δ top-1 | MACs | FLOPs PR | params | params PR | fine-tune steps | time |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        state.config.criterion.name(),
        state.config.normalize,
        if state.finetune_data.is_empty() { String::new() } else { format!(", fine-tuned on {}", state.finetune_data) }
    );
    for it in h {
        s += &format!(
            "| {}{} | {:.3} | {:.2} % | {:+.2} | {:.2} M | {:.1} % | {:.1} k | {:.1} % | {} | {:.0} s |\n",
            it.iteration,
            it.phase_label(),
            it.kept_ratio,
            100.0 * it.top1,
            100.0 * (it.top1 - first.top1),
            it.macs as f64 / 1e6,
            pr(it.macs, first.macs),
            it.params as f64 / 1e3,
            pr(it.params, first.params),
            it.steps,
            it.seconds
        );
    }
    if let Some(b) = &state.config.board {
        s += &format!(
            "\n### Latency on {} per iteration ({}; budget {})\n\n| iteration | top-1 | MACs | predicted | measured | error | of unpruned |\n|---:|---:|---:|---:|---:|---:|---:|\n",
            b.board,
            b.unit,
            b.max_latency.map_or("none".into(), |l| l.to_string())
        );
        let base = first.measured_latency().unwrap_or(1).max(1) as f64;
        for it in h {
            let Some(m) = it.measured_latency() else { continue };
            let p = it.predicted_latency.map_or("–".into(), |p| format!("{p:.0}"));
            let e = it
                .predicted_latency
                .map_or("–".into(), |p| format!("{:+.2} %", 100.0 * (p - m as f64) / m.max(1) as f64));
            s += &format!(
                "| {}{} | {:.2} % | {:.2} M | {p} | {m} | {e} | {:.1} % |\n",
                it.iteration,
                it.phase_label(),
                100.0 * it.top1,
                it.macs as f64 / 1e6,
                100.0 * m as f64 / base
            );
        }
    }
    s += "\n### Per-class accuracy, original vs compressed\n\n| class | original | compressed | Δ |\n|---|---:|---:|---:|\n";
    for (i, l) in labels.iter().enumerate() {
        let (a, b) = (first.per_class.get(i).copied().unwrap_or(0.0), last.per_class.get(i).copied().unwrap_or(0.0));
        s += &format!("| {l} | {:.1} % | {:.1} % | {:+.1} |\n", 100.0 * a, 100.0 * b, 100.0 * (b - a));
    }
    s += "\n### Kept channels per layer\n\n| layer | original | pruned | kept |\n|---|---:|---:|---:|\n";
    for ((name, a), (_, b)) in first.channels.iter().zip(&last.channels) {
        s += &format!("| {name} | {a} | {b} | {:.0} % |\n", 100.0 * *b as f64 / (*a).max(1) as f64);
    }
    s
}
