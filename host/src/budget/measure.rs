//! Measuring a board for the latency model: the model and variants of it at random widths
//! (every prunable channel space kept at its own random width, so input and output widths of
//! each layer vary independently), exported int8 with random weights (counts do not depend on
//! weight values: the kernels have no data-dependent branches) and traced layer by layer on the
//! board. Results are cached per board, architecture and firmware sources; a change to any of
//! them measures again.

use super::elf;
use super::latency::{LatencyError, LatencyModel, Measurement};
use crate::boards::Board;
use crate::channels::{pruned_arch, Groups};
use crate::data::Dataset;
use crate::flash::{self, BoardResult, FlashError};
use crate::model::{Arch, Net};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a board could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Flash(#[from] FlashError),
    #[error(transparent)]
    Latency(#[from] LatencyError),
    #[error("architecture: {0}")]
    Arch(String),
    #[error("export of a measured variant: {0}")]
    Export(#[from] crate::export::ExportError),
    #[error("decoding a measured variant: {0}")]
    Decode(#[from] pare_device::Error),
    #[error("the board's run of a measured variant failed: {0}")]
    Board(String),
    #[error("the board's trace lacks step {0}")]
    MissingStep(usize),
    #[error("firmware image {path}: {cause}")]
    Elf { path: PathBuf, cause: elf::ElfError },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
}

/// Per-step counts of a board report: the input preparation, then ops `0..ops`.
pub fn steps(r: &BoardResult, ops: usize) -> Result<Vec<u64>, MeasureError> {
    let mut v = vec![None; ops + 1];
    for l in &r.layers {
        let at = l.op.map_or(0, |i| i as usize + 1);
        if let Some(slot) = v.get_mut(at) {
            *slot = Some(l.count);
        }
    }
    v.iter().enumerate().map(|(i, c)| c.ok_or(MeasureError::MissingStep(i))).collect()
}

/// One architecture as measured on the board.
#[derive(Debug, Clone)]
pub struct Measured {
    pub point: Measurement,
    /// Each step's kind as the board names it (`input`, `conv2d`, …).
    pub kinds: Vec<String>,
    /// Flash the firmware takes besides the model.
    pub runtime_bytes: u64,
    pub model_bytes: u64,
    pub arena: u64,
}

/// Measures one architecture on the board (exported with random weights and a criterion name
/// in its provenance, as a pruned model carries).
pub fn measure_arch(
    board: &Board,
    arch: &Arch,
    sample: &Dataset,
    criterion: &str,
    base: (u64, u64),
) -> Result<Measured, MeasureError> {
    let flex = burn::tensor::Device::flex();
    let net = Net::init(arch, &flex).map_err(MeasureError::Arch)?;
    let model = crate::export::export(
        &net,
        crate::export::Quant::Int8,
        Some(sample),
        Some(super::provenance(criterion, base, arch)),
    )
    .map_err(MeasureError::Export)?;
    let r = flash::run_on_board_with(board, &model, sample, false, true)?;
    if !r.passed() {
        return Err(MeasureError::Board(r.verdict()));
    }
    let counts = steps(&r, arch.nodes.len())?;
    let mut kinds = vec![String::new(); counts.len()];
    for l in &r.layers {
        if let Some(k) = kinds.get_mut(l.op.map_or(0, |i| i as usize + 1)) {
            k.clone_from(&l.kind);
        }
    }
    let rt = pare_device::Runtime::from_bytes(&model)?;
    Ok(Measured {
        point: Measurement::new(arch, counts)?,
        kinds,
        runtime_bytes: runtime_bytes(board, &model, sample.len())?,
        model_bytes: model.len() as u64,
        arena: u64::from(rt.arena_bytes()),
    })
}

/// Flash the last firmware built for `board` takes besides `model` and its `samples` embedded
/// samples: the runtime's code and constants, from the image's loadable bytes.
pub fn runtime_bytes(board: &Board, model: &[u8], samples: usize) -> Result<u64, MeasureError> {
    let path = flash::elf_path(board, &flash::target_dir());
    let image = std::fs::read(&path).map_err(|cause| MeasureError::Io { path: path.clone(), cause })?;
    let loaded = elf::loaded_bytes(&image).map_err(|cause| MeasureError::Elf { path, cause })?;
    let rt = pare_device::Runtime::from_bytes(model)?;
    let embedded = model.len() as u64 + samples as u64 * flash::sample_bytes(&rt);
    Ok(loaded.saturating_sub(embedded))
}

/// `n` variants of `arch`: every prunable space at a random width in
/// `[⌈min_share·width⌉, width]` (at least 1), from `seed`.
pub fn variants(arch: &Arch, n: usize, min_share: f64, seed: u64) -> Result<Vec<Arch>, MeasureError> {
    let groups = Groups::of(arch).map_err(MeasureError::Arch)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Ok((0..n).map(|_| with_widths(arch, &groups, |c| rng.random_range(least(c, min_share)..=c))).collect())
}

/// The fewest channels a profile keeps of a space `channels` wide: `⌈share · channels⌉`, at
/// least 1.
fn least(channels: usize, share: f64) -> usize {
    ((share * channels as f64).ceil() as usize).clamp(1, channels)
}

/// `arch` with every prunable space at `width(its channels)` channels (its first ones).
fn with_widths(arch: &Arch, groups: &Groups, mut width: impl FnMut(usize) -> usize) -> Arch {
    let keep: Vec<Vec<usize>> =
        groups.spaces.iter().map(|s| (0..if s.prunable { width(s.channels) } else { s.channels }).collect()).collect();
    pruned_arch(arch, groups, &keep)
}

/// A board's measurements of one architecture and its variants, and the model fitted to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoardProfile {
    pub board: String,
    pub unit: String,
    /// Hash of the firmware sources the counts came from.
    pub firmware: String,
    /// Hash of the measured architecture.
    pub arch: String,
    /// The architecture itself first, then its variants.
    pub points: Vec<Measurement>,
    /// Flash the firmware took besides the model, per measured build (its code varies a little
    /// with the embedded model: LTO folds the model's constants into it).
    pub runtime_seen: Vec<u64>,
    /// The largest of `runtime_seen`.
    pub runtime_bytes: u64,
    pub model: LatencyModel,
}

impl BoardProfile {
    /// The unmodified architecture's measured count.
    pub fn unpruned(&self) -> u64 {
        self.points.first().map_or(0, Measurement::total)
    }
}

/// How many variants a profile measures besides the model itself (`PARE_LATENCY_VARIANTS`
/// overrides: more variants, a tighter fit, a longer first run).
pub const VARIANTS: usize = 15;

fn variant_count() -> usize {
    std::env::var("PARE_LATENCY_VARIANTS").ok().and_then(|v| v.parse().ok()).filter(|&n| n >= 1).unwrap_or(VARIANTS)
}

/// Narrowest share of a space's width a variant keeps.
pub const MIN_SHARE: f64 = 0.125;

/// Bytes added to the largest runtime flash a profile saw, for flash predictions: the
/// firmware's code changes by a few hundred bytes with the model embedded (LTO folds its
/// constants; 68,727–69,184 bytes over resnet20's 16 profile builds).
pub const RUNTIME_SLACK: u64 = 1024;

/// `arch` with every prunable space at `share` of its width (at least 1 channel).
pub fn narrowest(arch: &Arch, share: f64) -> Result<Arch, MeasureError> {
    let groups = Groups::of(arch).map_err(MeasureError::Arch)?;
    Ok(with_widths(arch, &groups, |c| least(c, share)))
}

/// The board's profile of `arch`: from the cache when board, architecture and firmware sources
/// are unchanged, measured (and cached) otherwise. `sample` is one image at the model's input.
pub fn profile(board: &Board, arch: &Arch, sample: &Dataset) -> Result<BoardProfile, MeasureError> {
    let firmware = format!("{:016x}", firmware_fingerprint(board));
    let what = serde_json::to_string(&(&arch.input, &arch.nodes, variant_count(), super::latency::CONV_FEATURES))
        .unwrap_or_default();
    let key = format!("{:016x}", crate::hash::fnv(what.as_bytes()));
    let path = crate::boards::build_dir().join("latency").join(board.name).join(format!("{key}-{firmware}.json"));
    if let Some(p) = std::fs::read_to_string(&path).ok().and_then(|s| serde_json::from_str::<BoardProfile>(&s).ok()) {
        if p.firmware == firmware && p.arch == key && p.board == board.name {
            crate::say!("latency model: cached measurements of this model on {} ({})", board.name, path.display());
            return Ok(p);
        }
    }
    let sample = sample.clone().take(1);
    let archs: Vec<Arch> =
        std::iter::once(arch.clone()).chain(variants(arch, variant_count(), MIN_SHARE, 0x6c61_7465_6e63)?).collect();
    let mut points = vec![];
    let mut runtime_seen = vec![];
    crate::say!(
        "latency model: measuring {} and {} random-width variants of it on {} (cached for later runs)",
        arch.name,
        archs.len() - 1,
        board.name
    );
    let bar = crate::progress::steps(archs.len() as u64, "measuring");
    for a in &archs {
        bar.inc(1);
        let m = measure_arch(board, a, &sample, "", (0, 0))?;
        runtime_seen.push(m.runtime_bytes);
        points.push(m.point);
    }
    bar.finish_and_clear();
    let unit = unit_of(board);
    let model = LatencyModel::fit(&points)?;
    let runtime_bytes = runtime_seen.iter().copied().max().unwrap_or(0);
    let p = BoardProfile {
        board: board.name.into(),
        unit,
        firmware,
        arch: key,
        points,
        runtime_seen,
        runtime_bytes,
        model,
    };
    save(&path, &p)?;
    Ok(p)
}

fn save(path: &Path, p: &BoardProfile) -> Result<(), MeasureError> {
    let io = |cause| MeasureError::Io { path: path.into(), cause };
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(io)?;
    }
    let json = serde_json::to_string_pretty(p).map_err(|e| io(e.into()))?;
    crate::atomic::write(path, json.as_bytes()).map_err(|e| MeasureError::Io { path: path.into(), cause: e })
}

/// The unit a board counts in.
pub fn unit_of(board: &Board) -> String {
    match board.runner {
        crate::boards::Runner::Qemu { .. } => "instructions".into(),
        crate::boards::Runner::ProbeRs { .. } => "cycles".into(),
    }
}

/// Hash of every source the board's firmware is built from: the device runtime, the check
/// program and the board crate (paths and contents, in sorted order).
pub fn firmware_fingerprint(board: &Board) -> u64 {
    fingerprint_in(&crate::boards::boards_dir(), board)
}

/// [`firmware_fingerprint`] of the firmware sources under `boards` (a checkout's `boards/`).
pub fn fingerprint_in(boards: &Path, board: &Board) -> u64 {
    let roots =
        [boards.join("../device"), boards.join("check"), boards.join(board.crate_dir), boards.join("Cargo.lock")];
    let mut files = vec![];
    for r in &roots {
        collect(r, &mut files);
    }
    files.sort();
    let mut h = Vec::new();
    for f in files {
        h.extend_from_slice(f.strip_prefix(boards).unwrap_or(&f).to_string_lossy().as_bytes());
        h.extend_from_slice(&std::fs::read(&f).unwrap_or_default());
    }
    crate::hash::fnv(&h)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_file() {
        out.push(p.into());
    } else if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let q = e.path();
            let name = e.file_name();
            // Build outputs and editor litter are not sources.
            if name == "target" || name.to_string_lossy().starts_with('.') && name != ".cargo" {
                continue;
            }
            collect(&q, out);
        }
    }
}
