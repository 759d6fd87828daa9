//! `pare run`: host emulation of the device runtime.

use super::common::DataArgs;
use crate::report;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The .pare model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Only the first N images.
    #[arg(long, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub limit: Option<usize>,
    /// Write one predicted class per line (what `pare flash` compares the board against).
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Also write the result as JSON: `{model, data, images, evaluation: {samples, top1,
    /// per_class, confusion}}` (docs/json.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let outputs: Vec<(&str, &std::path::Path)> = [("--predictions", &a.predictions), ("--json", &a.json)]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect();
    crate::atomic::check_distinct(&outputs, &[("MODEL", &a.model), a.data.input()])?;
    let bytes = crate::pare_file::read(&a.model)?;
    let model = pare_format::decode(&bytes)?;
    let size = model.input_buffer().map_or(32, |b| b.h as usize);
    let labels: Vec<String> = model.meta.labels.iter().map(|l| l.unwrap_or("?").to_string()).collect();
    let mut ds = a.data.load_at(&a.split, size)?;
    if !labels.is_empty() {
        crate::train::check_class_count(labels.len(), &ds)?;
    }
    if let Some(n) = a.limit {
        ds = ds.take(n);
    }
    let em = crate::emulate::emulate(&bytes, &ds)?;
    println!(
        "{} (pare-device, host) on {}: top-1 {:.2} % over {} images",
        a.model.display(),
        ds.source,
        100.0 * em.evaluation.top1,
        ds.len()
    );
    let table = report::per_class_table(&labels, &[("accuracy", &em.evaluation)]);
    println!("{}", super::common::terminal_safe(&table));
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "model": a.model.display().to_string(),
            "data": ds.source,
            "images": ds.len(),
            "evaluation": em.evaluation,
        });
        report::write_json(p, &doc)?;
    }
    if let Some(p) = a.predictions {
        let text: String = em.evaluation.predictions.iter().map(|p| format!("{p}\n")).collect();
        crate::atomic::write(&p, text.as_bytes())?;
    }
    Ok(())
}
