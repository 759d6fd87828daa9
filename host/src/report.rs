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
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(path, text.as_bytes())
}

/// Writes bytes through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path)?;
    Ok(())
}
