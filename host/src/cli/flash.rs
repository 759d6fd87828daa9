//! `pare flash` and `pare boards`.

use super::common::DataArgs;
use crate::boards::{self, Runner};
use crate::flash::{self, FlashError};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct FlashArgs {
    /// The .pare model file.
    pub model: PathBuf,
    /// Board name (`pare boards` lists them).
    #[arg(long, default_value = "qemu-mps2-an500")]
    pub board: String,
    /// Number of test samples to embed and run.
    #[arg(long, default_value_t = 100, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub samples: usize,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value = "test")]
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
    let report = flash_model(&a)?;
    if a.dry_run {
        // The commands were printed; nothing ran, so there is nothing to judge.
        return Ok(());
    }
    if !report.passed() {
        anyhow::bail!("board check failed: {}", report.verdict());
    }
    Ok(())
}

/// Does the work of `pare flash`; returns the board's report.
pub fn flash_model(a: &FlashArgs) -> Result<flash::BoardResult, FlashError> {
    let board = boards::find(&a.board).ok_or_else(|| FlashError::UnknownBoard(a.board.clone()))?;
    let model = crate::pare_file::read(&a.model)?;
    let rt =
        pare_device::Runtime::from_bytes(&model).map_err(|cause| FlashError::Model { path: a.model.clone(), cause })?;
    // The fit check needs only the sample count: before loading any data.
    let samples = a.samples as u64 * flash::sample_bytes(&rt);
    flash::check_fit(board, model.len() as u64, samples, u64::from(rt.arena_bytes()))?;
    let size = rt.model().input_buffer().map_or(32, |b| b.h as usize);
    let ds = a.data.load_at(&a.split, size)?;
    let ds = if a.spread { ds.spread(a.samples) } else { ds.take(a.samples) };
    let r = flash::run_on_board(board, &model, &ds, a.dry_run)?;
    if a.dry_run {
        for c in &r.commands {
            println!("{c}");
        }
        return Ok(r);
    }
    print_report(board.name, &model, &rt, &r);
    if let Some(p) = &a.json {
        crate::report::write_json(p, &r).map_err(|cause| FlashError::Io { what: p.display().to_string(), cause })?;
    }
    Ok(r)
}

fn print_report(board: &str, model: &[u8], rt: &pare_device::Runtime<'_>, r: &flash::BoardResult) {
    let macs = flash::macs_of(rt);
    println!("## On-device check: {board}\n");
    println!("| measure | value |\n|---|---:|");
    println!("| samples | {} |", r.samples);
    println!("| on-device top-1 | {:.2} % |", 100.0 * r.correct as f64 / r.samples.max(1) as f64);
    println!("| predictions equal to host emulation | {} / {} |", r.agree, r.samples);
    println!("| raw outputs bit-identical to host emulation | {} / {} |", r.exact, r.samples);
    println!("| {} per inference | {} |", r.unit, r.per_inference);
    if macs > 0 && r.per_inference > 0 {
        println!("| MAC per {} | {:.3} |", r.unit.trim_end_matches('s'), macs as f64 / r.per_inference as f64);
    }
    println!("| model (flash) bytes | {} |", model.len());
    println!("| arena (RAM) bytes | {} |", rt.arena_bytes());
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
