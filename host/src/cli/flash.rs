//! `pare flash` and `pare boards`: arguments into a [`FlashRequest`], the report printed.

use super::common::DataArgs;
use crate::boards::{self, Runner};
use crate::flash::{self, FlashError, FlashReport, FlashRequest};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct FlashArgs {
    /// The .pare model file.
    pub model: PathBuf,
    /// Board name (`pare boards` lists them).
    #[arg(long, default_value_t = FlashRequest::default().board)]
    pub board: String,
    /// Number of test samples to embed and run.
    #[arg(long, default_value_t = FlashRequest::default().samples, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub samples: usize,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = FlashRequest::default().split)]
    pub split: String,
    /// Print the build and run commands instead of executing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the board report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Take the samples spread evenly over the split instead of its first ones (for splits
    /// stored class by class, such as Flowers-102's test ids).
    #[arg(long)]
    pub spread: bool,
}

impl FlashArgs {
    /// The library request these arguments describe.
    pub fn request(&self) -> FlashRequest {
        FlashRequest {
            model: self.model.clone(),
            board: self.board.clone(),
            samples: self.samples,
            data: self.data.data.clone(),
            input_size: self.data.input_size,
            split: self.split.clone(),
            spread: self.spread,
            dry_run: self.dry_run,
        }
    }
}

pub fn boards() {
    println!("| board | flash | RAM | clock | runner | description |\n|---|---:|---:|---:|---|---|");
    for b in boards::BOARDS {
        let runner = match b.runner {
            Runner::Qemu { .. } => "qemu-system-arm".to_string(),
            Runner::ProbeRs { chip } => format!("probe-rs --chip {chip}"),
        };
        let clock = b.clock_mhz.map_or("– (counts instructions)".to_string(), |m| format!("{m} MHz"));
        println!(
            "| {} | {} KiB | {} KiB | {clock} | {runner} | {} |",
            b.name,
            b.flash_bytes >> 10,
            b.ram_bytes >> 10,
            b.description
        );
    }
}

pub fn run(a: FlashArgs) -> anyhow::Result<()> {
    if let Some(json) = &a.json {
        crate::atomic::check_distinct(&[("--json", json)], &[("MODEL", &a.model), a.data.input()])?;
    }
    let report = flash::run(&a.request())?;
    if a.dry_run {
        // Nothing ran, so there is nothing to judge: the commands are the output.
        for c in &report.result.commands {
            println!("{c}");
        }
        return Ok(());
    }
    print_report(&report);
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if !report.passed() {
        anyhow::bail!("board check failed: {}", report.result.verdict());
    }
    Ok(())
}

/// Writes the board's report as JSON (`pare flash --json`, the pipeline's `board.json`).
pub fn write_json(path: &std::path::Path, report: &FlashReport) -> Result<(), FlashError> {
    crate::report::write_json(path, &report.result)
        .map_err(|cause| FlashError::Io { what: path.display().to_string(), cause })
}

/// Prints the board check's report: the measures, then the cost of every step.
pub fn print_report(report: &FlashReport) {
    let r = &report.result;
    let macs = report.macs;
    println!("## On-device check: {}\n", report.board);
    println!("| measure | value |\n|---|---:|");
    println!("| samples | {} |", r.samples);
    println!("| on-device top-1 | {:.2} % |", 100.0 * r.correct as f64 / r.samples.max(1) as f64);
    println!("| predictions equal to host emulation | {} / {} |", r.agree, r.samples);
    println!("| raw outputs bit-identical to host emulation | {} / {} |", r.exact, r.samples);
    println!("| {} per inference | {} |", r.unit, r.per_inference);
    if macs > 0 && r.per_inference > 0 {
        println!("| MAC per {} | {:.3} |", r.unit.trim_end_matches('s'), macs as f64 / r.per_inference as f64);
    }
    println!("| model (flash) bytes | {} |", report.model_bytes);
    println!("| arena (RAM) bytes | {} |", report.arena_bytes);
    for e in &r.errors {
        println!("| error | {e} |");
    }
    if !r.layers.is_empty() {
        println!(
            "\n| op | kind | {} | MACs | MAC per {} |\n|---:|---|---:|---:|---:|",
            r.unit,
            r.unit.trim_end_matches('s')
        );
        for l in &r.layers {
            let (m, n) = (l.macs, l.count);
            let rate = if m > 0 && n > 0 { format!("{:.3}", m as f64 / n as f64) } else { "–".into() };
            let op = l.op.map_or("–".to_string(), |i| i.to_string());
            println!("| {op} | {} | {n} | {m} | {rate} |", l.kind);
        }
    }
}
