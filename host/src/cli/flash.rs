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
    #[arg(long, default_value_t = 100, value_parser = super::common::positive)]
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
}

pub fn boards() {
    println!("| board | flash | RAM | runner | description |\n|---|---:|---:|---|---|");
    for b in boards::BOARDS {
        let runner = match b.runner {
            Runner::Qemu { .. } => "qemu-system-arm".to_string(),
            Runner::ProbeRs { chip } => format!("probe-rs --chip {chip}"),
        };
        println!(
            "| {} | {} KiB | {} KiB | {runner} | {} |",
            b.name,
            b.flash_bytes >> 10,
            b.ram_bytes >> 10,
            b.description
        );
    }
}

pub fn run(a: FlashArgs) -> anyhow::Result<()> {
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
    let rt = pare_device::Runtime::from_bytes(&model)
        .map_err(|e| FlashError::Model { path: a.model.clone(), cause: e.into() })?;
    let pixels = u64::from(rt.input_bytes() / rt.model().input_buffer().map_or(1, |b| b.dtype.size()));
    // Per sample: pixels, label, host prediction and host output bytes.
    let per_sample = pixels + 2 + u64::from(rt.output_bytes());
    flash::check_fit(board, model.len() as u64, a.samples as u64 * per_sample, u64::from(rt.arena_bytes()))?;
    let ds = crate::data::load(&a.data.data, &a.split).map_err(anyhow::Error::from)?.take(a.samples);
    let cache = boards::build_dir();
    let bundle_dir = cache.join("bundle").join(board.name);
    let target_dir = cache.join("boards-target");
    let elf = flash::elf_path(board, &target_dir);
    let mut build = flash::build_command(board, &bundle_dir, &target_dir);
    let mut runc = flash::run_command(board, &elf);
    if a.dry_run {
        println!("{}", flash::render(&build));
        println!("{}", flash::render(&runc));
        return Ok(flash::BoardResult::default());
    }
    // The firmware crate, then the runner, before spending minutes on a build.
    let crate_dir = boards::boards_dir().join(board.crate_dir);
    if !crate_dir.join("Cargo.toml").is_file() {
        return Err(FlashError::BoardsMissing(crate_dir));
    }
    let (tool, hint) = match board.runner {
        Runner::Qemu { .. } => (
            flash::qemu_program(),
            "install it with `apt-get install qemu-system-arm` (Debian/Ubuntu) or `brew install qemu`",
        ),
        Runner::ProbeRs { .. } => ("probe-rs".to_string(), "install it with `cargo install probe-rs-tools --locked`"),
    };
    if which(&tool).is_none() {
        return Err(FlashError::ToolMissing { tool, hint: hint.into() });
    }
    let bundle = flash::write_bundle(&model, &ds, &bundle_dir)?;
    eprintln!(
        "building firmware for {} ({} samples, {} byte model, {} byte arena)",
        board.name, bundle.samples, bundle.model_bytes, bundle.arena
    );
    let status = build.status().map_err(anyhow::Error::from)?;
    if !status.success() {
        return Err(FlashError::Build(status.code().unwrap_or(-1)));
    }
    eprintln!("running: {}", flash::render(&runc));
    let output = runc.stderr(std::process::Stdio::inherit()).output().map_err(anyhow::Error::from)?;
    let status = output.status;
    let elf_bytes = std::fs::read(&elf).map_err(anyhow::Error::from)?;
    let stream = output.stdout;
    let lines = flash::decode_defmt(&elf_bytes, &stream)?;
    let mut r = flash::parse_lines(&lines).map_err(anyhow::Error::from)?;
    let macs = layer_macs(&rt);
    for l in &mut r.layers {
        l.macs = l.op.and_then(|i| macs.get(i as usize)).copied().unwrap_or(0);
    }
    // Exit status 1 is a disagreement, already in the counts; any other failure is reported.
    let disagreement = r.agree != r.samples || r.exact != r.samples;
    if !status.success() && r.errors.is_empty() && !disagreement {
        r.errors.push(format!("firmware exit status {}", status.code().unwrap_or(-1)));
    }
    print_report(board.name, &model, &rt, &r);
    if let Some(p) = &a.json {
        crate::report::write_json(p, &r)?;
    }
    Ok(r)
}

fn which(tool: &str) -> Option<PathBuf> {
    let p = PathBuf::from(tool);
    if p.components().count() > 1 {
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|f| f.is_file()))
}

fn print_report(board: &str, model: &[u8], rt: &pare_device::Runtime<'_>, r: &flash::BoardResult) {
    let macs = macs_of(rt);
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

/// MACs of a decoded model (conv and dense), computed from the file itself.
pub fn macs_of(rt: &pare_device::Runtime<'_>) -> u64 {
    layer_macs(rt).iter().sum()
}

/// MACs of every op in order (0 for ops without multiply-accumulates).
pub fn layer_macs(rt: &pare_device::Runtime<'_>) -> Vec<u64> {
    let m = rt.model();
    m.ops
        .iter()
        .map(|op| match op {
            Err(_) => 0,
            Ok(op) => match op {
                pare_format::Op::Conv2d(c) => {
                    let (i, o) = (m.buffer(c.input), m.buffer(c.output));
                    match (i, o) {
                        (Some(i), Some(o)) => u64::from(o.h * o.w * o.c) * u64::from(c.kernel[0] * c.kernel[1] * i.c),
                        _ => 0,
                    }
                }
                pare_format::Op::Dense(d) => match (m.buffer(d.input), m.buffer(d.output)) {
                    (Some(i), Some(o)) => u64::from(i.c) * u64::from(o.c),
                    _ => 0,
                },
                pare_format::Op::MaxPool2d(_)
                | pare_format::Op::AvgPool2d(_)
                | pare_format::Op::GlobalAvgPool(_)
                | pare_format::Op::Add(_)
                | pare_format::Op::ChannelPlace(_)
                | pare_format::Op::Flatten(_) => 0,
            },
        })
        .collect()
}
