//! One board check: fit check, bundle, firmware build under the build lock, run or flash,
//! defmt decoding and the protocol, with every layer's MACs filled in.

use super::build::{build_command, elf_path, lock_builds, target_dir};
use super::error::io;
use super::runner::{render, run_command, runner_tool, which};
use super::{check_fit, decode_defmt, layer_macs, parse_lines, sample_bytes, write_bundle, BoardResult, FlashError};
use crate::boards::Board;
use crate::data::Dataset;

/// Builds the board's firmware around `model` and the samples of `ds`, runs it (QEMU) or
/// flashes it (probe-rs), and returns the decoded report with every layer's MACs filled in.
/// With `dry_run` nothing runs: the report holds the build and run commands.
pub fn run_on_board(board: &Board, model: &[u8], ds: &Dataset, dry_run: bool) -> Result<BoardResult, FlashError> {
    run_on_board_with(board, model, ds, dry_run, false)
}

/// [`run_on_board`]; `quiet` keeps the build's and runner's output to itself unless the build
/// fails (a latency profile runs many builds).
pub fn run_on_board_with(
    board: &Board,
    model: &[u8],
    ds: &Dataset,
    dry_run: bool,
    quiet: bool,
) -> Result<BoardResult, FlashError> {
    let rt = pare_device::Runtime::from_bytes(model)?;
    check_fit(board, model.len() as u64, ds.len() as u64 * sample_bytes(&rt), u64::from(rt.arena_bytes()))?;
    let cache = crate::boards::build_dir();
    let bundle_dir = cache.join("bundle").join(board.name);
    let target_dir = target_dir();
    let elf = elf_path(board, &target_dir);
    let mut build = build_command(board, &bundle_dir, &target_dir);
    let mut runc = run_command(board, &elf);
    if dry_run {
        return Ok(BoardResult { commands: vec![render(&build), render(&runc)], ..BoardResult::default() });
    }
    // The firmware crate, then the runner, before spending minutes on a build.
    let crate_dir = crate::boards::boards_dir().join(board.crate_dir);
    if !crate_dir.join("Cargo.toml").is_file() {
        return Err(FlashError::BoardsMissing(crate_dir));
    }
    let (tool, hint) = runner_tool(board);
    if which(&tool).is_none() {
        return Err(FlashError::ToolMissing { tool, hint: hint.into() });
    }
    // The bundle and the firmware are one per board in a shared directory: one build-and-run at a
    // time, or one process runs the firmware another just built (a latency profile beside a flash).
    let _lock = lock_builds(&cache)?;
    let bundle = write_bundle(model, ds, &bundle_dir)?;
    if !quiet {
        crate::say!(
            "building firmware for {} ({} samples, {} byte model, {} byte arena)",
            board.name,
            bundle.samples,
            bundle.model_bytes,
            bundle.arena
        );
    }
    let status = if quiet {
        let out = build.output().map_err(io("cargo (firmware build)"))?;
        if !out.status.success() {
            crate::say!("{}", String::from_utf8_lossy(&out.stderr));
        }
        out.status
    } else {
        build.status().map_err(io("cargo (firmware build)"))?
    };
    if !status.success() {
        return Err(FlashError::Build(status.code().unwrap_or(-1)));
    }
    if !quiet {
        crate::say!("running: {}", render(&runc));
    }
    let err = if quiet { std::process::Stdio::null() } else { std::process::Stdio::inherit() };
    let output = runc.stderr(err).output().map_err(io(render(&runc)))?;
    let status = output.status;
    let elf_bytes = std::fs::read(&elf).map_err(io(elf.display()))?;
    let lines = decode_defmt(&elf_bytes, &output.stdout)?;
    let mut r = parse_lines(&lines)?;
    let macs = layer_macs(&rt);
    for l in &mut r.layers {
        l.macs = l.op.and_then(|i| macs.get(i as usize)).copied().unwrap_or(0);
    }
    // Exit status 1 is a disagreement, already in the counts; any other failure is reported.
    let disagreement = r.agree != r.samples || r.exact != r.samples;
    if !status.success() && r.errors.is_empty() && !disagreement {
        r.errors.push(format!("firmware exit status {}", status.code().unwrap_or(-1)));
    }
    Ok(r)
}
