//! `pare eval`.

use super::common::{DataArgs, ModelArgs};
use crate::report;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Split: train, test, or any NAME.bin in the data folder (e.g. test_lossless).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Evaluate only the first N images.
    #[arg(long, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 128, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Also write top-1, per-class accuracy and the confusion matrix as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    if let Some(json) = &a.json {
        let mut inputs = a.model.inputs();
        inputs.push(a.data.input());
        crate::atomic::check_distinct(&[("--json", json)], &inputs)?;
    }
    let device = a.model.device.device()?;
    let net = a.model.load(&device)?;
    let mut ds = a.data.load_at(&a.split, net.arch.input.h)?;
    super::common::check_classes(&net, &ds)?;
    if let Some(n) = a.limit {
        ds = ds.take(n);
    }
    let ev = crate::train::evaluate(&net, &ds, a.batch_size, &device);
    let name = super::common::terminal_safe(&net.arch.name);
    println!("{name} on {} ({} images): top-1 {:.2} %", ds.source, ev.samples, 100.0 * ev.top1);
    let table = report::per_class_table(&net.arch.labels, &[("accuracy", &ev)]);
    println!("{}", super::common::terminal_safe(&table));
    if let Some(path) = a.json {
        report::write_json(&path, &ev)?;
    }
    Ok(())
}
