//! `pare flash`: bundle a model with samples and host-emulated predictions, build the board's
//! firmware with them, run it (QEMU) or flash it (probe-rs), decode the defmt stream, report.

use crate::boards::{Board, Runner, CODE_RESERVE, RAM_RESERVE};
use crate::data::Dataset;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("unknown board '{0}'; `pare boards` lists them")]
    UnknownBoard(String),
    #[error("{path}: {cause}")]
    Model { path: PathBuf, cause: pare_device::Error },
    #[error("the model: {0}")]
    Runtime(#[from] pare_device::Error),
    #[error(transparent)]
    File(#[from] crate::pare_file::PareFileError),
    #[error("the model does not fit {board}: needs {flash_need} bytes of flash (has {flash}) and {ram_need} bytes of RAM (has {ram})")]
    TooLarge { board: String, flash_need: u64, flash: u64, ram_need: u64, ram: u64 },
    #[error("{tool} not found: {hint}")]
    ToolMissing { tool: String, hint: String },
    #[error(
        "board firmware crate {0} not found: pare builds the firmware from its checkout's `boards/` folder; \
         set PARE_BOARDS_DIR to that folder (this binary was built elsewhere)"
    )]
    BoardsMissing(PathBuf),
    #[error("firmware build failed (cargo exit {0}); see the output above")]
    Build(i32),
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("the firmware's defmt stream: {0}")]
    Defmt(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> FlashError {
    let what = what.to_string();
    move |cause| FlashError::Io { what, cause }
}

/// Everything the firmware embeds.
pub struct Bundle {
    pub dir: PathBuf,
    pub samples: usize,
    pub arena: u32,
    pub model_bytes: usize,
}

/// Checks that model, samples and arena fit the board, with the numbers.
pub fn check_fit(board: &Board, model_bytes: u64, sample_bytes: u64, arena: u64) -> Result<(), FlashError> {
    let flash_need = model_bytes + sample_bytes + CODE_RESERVE;
    let ram_need = arena + RAM_RESERVE;
    if flash_need > board.flash_bytes || ram_need > board.ram_bytes {
        return Err(FlashError::TooLarge {
            board: board.name.into(),
            flash_need,
            flash: board.flash_bytes,
            ram_need,
            ram: board.ram_bytes,
        });
    }
    Ok(())
}

/// Writes the bundle: model, HWC samples, labels, host-emulated predictions, arena size.
pub fn write_bundle(model: &[u8], ds: &Dataset, dir: &Path) -> Result<Bundle, FlashError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    let em = crate::emulate::emulate(model, ds)?;
    let rt = pare_device::Runtime::from_bytes(model)?;
    let samples: Vec<u8> = (0..ds.len()).flat_map(|i| ds.image_hwc(i)).collect();
    let expected: Vec<u8> = em.evaluation.predictions.iter().map(|&p| p as u8).collect();
    let files: [(&str, Vec<u8>); 6] = [
        ("model.pare", model.to_vec()),
        ("samples.bin", samples),
        ("labels.bin", ds.labels.clone()),
        ("expected.bin", expected),
        ("outputs.bin", em.raw_outputs.concat()),
        ("arena.txt", rt.arena_bytes().to_string().into_bytes()),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(path.display()))?;
    }
    Ok(Bundle { dir: dir.into(), samples: ds.len(), arena: rt.arena_bytes(), model_bytes: model.len() })
}

/// The firmware build command.
pub fn build_command(board: &Board, bundle: &Path, target_dir: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.args(["build", "--release"])
        .current_dir(crate::boards::boards_dir().join(board.crate_dir))
        .env("PARE_BUNDLE", bundle)
        .env("CARGO_TARGET_DIR", target_dir);
    c
}

/// An exclusive lock on the firmware build directory, held until dropped (`flock` on Unix;
/// elsewhere nothing is locked).
struct BuildLock(#[allow(dead_code)] std::fs::File);

fn lock_builds(dir: &Path) -> Result<BuildLock, FlashError> {
    std::fs::create_dir_all(dir).map_err(io("creating the build directory"))?;
    let f = std::fs::File::create(dir.join(".flash.lock")).map_err(io("the build lock"))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid, open descriptor; flock only blocks until the lock is free.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io("locking the build directory")(std::io::Error::last_os_error()));
        }
    }
    Ok(BuildLock(f))
}

/// Where firmware builds go (outside the repository, reused between runs).
pub fn target_dir() -> PathBuf {
    crate::boards::build_dir().join("boards-target")
}

/// Path of the built firmware.
pub fn elf_path(board: &Board, target_dir: &Path) -> PathBuf {
    target_dir.join(board.target).join("release").join(format!("pare-board-{}", board.crate_dir))
}

/// The QEMU executable (`PARE_QEMU` overrides).
pub fn qemu_program() -> String {
    std::env::var("PARE_QEMU").unwrap_or_else(|_| "qemu-system-arm".into())
}

/// The command that runs or flashes the firmware. QEMU writes semihosting output (the defmt
/// stream) to its stdout; nothing else goes there with display, serial and monitor off.
pub fn run_command(board: &Board, elf: &Path) -> Command {
    match board.runner {
        Runner::Qemu { machine } => {
            let mut c = Command::new(qemu_program());
            c.args(["-M", machine, "-display", "none", "-serial", "null", "-monitor", "null", "-icount", "shift=0"])
                .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
                .arg(elf);
            c
        }
        Runner::ProbeRs { chip } => {
            let mut c = Command::new("probe-rs");
            c.args(["run", "--chip", chip]).arg(elf);
            c
        }
    }
}

/// Shell-style rendering of a command (for --dry-run and error messages).
pub fn render(c: &Command) -> String {
    let mut s: Vec<String> =
        c.get_envs().filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy()))).collect();
    s.push(c.get_program().to_string_lossy().into_owned());
    s.extend(c.get_args().map(|a| a.to_string_lossy().into_owned()));
    s.join(" ")
}

/// Decodes a defmt byte stream with the firmware's table into text lines.
pub fn decode_defmt(elf: &[u8], stream: &[u8]) -> Result<Vec<String>, FlashError> {
    let table = defmt_decoder::Table::parse(elf)
        .map_err(|e| FlashError::Defmt(e.to_string()))?
        .ok_or_else(|| FlashError::Defmt("the firmware has no defmt table".into()))?;
    let mut dec = table.new_stream_decoder();
    dec.received(stream);
    let mut lines = vec![];
    loop {
        match dec.decode() {
            Ok(frame) => lines.push(frame.display_message().to_string()),
            Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
            Err(defmt_decoder::DecodeError::Malformed) => {
                lines.push("<malformed defmt frame>".into());
                break;
            }
        }
    }
    Ok(lines)
}

/// The board's final report, parsed from its `PARE-RESULT` line.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BoardResult {
    pub samples: u64,
    pub correct: u64,
    pub agree: u64,
    /// Samples whose raw output bytes equal host emulation's.
    pub exact: u64,
    /// Instructions (QEMU) or cycles per inference.
    pub per_inference: u64,
    pub unit: String,
    /// Per step of the first sample: the input preparation, then every op.
    pub layers: Vec<LayerCount>,
    pub errors: Vec<String>,
    /// A dry run's firmware build and board run commands (nothing ran).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
}

impl BoardResult {
    /// The one pass rule of a board check (`pare flash`, `pare pipeline`): samples ran, every
    /// prediction and every raw output byte equals host emulation's, and the board reported no
    /// error.
    pub fn passed(&self) -> bool {
        self.samples > 0 && self.agree == self.samples && self.exact == self.samples && self.errors.is_empty()
    }

    /// Why [`BoardResult::passed`] is false, in one sentence.
    pub fn verdict(&self) -> String {
        let mut s = format!(
            "{} of {} predictions and {} of {} raw outputs equal host emulation",
            self.agree, self.samples, self.exact, self.samples
        );
        if !self.errors.is_empty() {
            s += &format!("; errors: {}", self.errors.join("; "));
        }
        s
    }
}

/// One step's cost on the board, as `pare flash --json` writes it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LayerCount {
    /// The op's index in the model; `None` for the input preparation.
    pub op: Option<u32>,
    /// The op's kind (`conv2d`, `add`, …) or `input`.
    pub kind: String,
    /// Instructions (QEMU) or cycles, in the report's unit.
    pub count: u64,
    /// Multiply-accumulates of the op (0 for ops without them), filled from the model.
    pub macs: u64,
}

fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')).map(str::to_string))
}

/// A board line that does not say what the protocol requires.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("board protocol: {line:?} lacks a valid `{key}`")]
pub struct ProtocolError {
    pub line: String,
    pub key: &'static str,
}

/// The board protocol: each line the check firmware prints (`boards/check`) and the keys the
/// host reads from it. defmt needs literal format strings, so the firmware cannot import these;
/// a test holds its format strings to them instead.
pub const PROTOCOL: [(&str, &[&str]); 3] = [
    ("PARE-START", &["per_count"]),
    ("PARE-LAYER", &["counts"]),
    ("PARE-RESULT", &["samples", "correct", "agree", "exact", "counts_per_inference", "unit"]),
];

/// Reads the decoded lines into a result. Every key the protocol defines must be present and
/// numeric where it is a count: a renamed or garbled key is an error, not a silent 0.
pub fn parse_lines(lines: &[String]) -> Result<BoardResult, ProtocolError> {
    let mut r = BoardResult::default();
    let mut per_count = 1u64;
    for l in lines {
        let num = |key: &'static str| -> Result<u64, ProtocolError> {
            field(l, key).and_then(|v| v.parse().ok()).ok_or(ProtocolError { line: l.clone(), key })
        };
        if let Some(rest) = l.strip_prefix("PARE-ERROR ") {
            r.errors.push(rest.to_string());
        } else if l.starts_with("PARE-START") {
            per_count = num("per_count")?;
        } else if let Some(rest) = l.strip_prefix("PARE-LAYER ") {
            let mut it = rest.split_whitespace();
            let idx: u32 =
                it.next().and_then(|v| v.parse().ok()).ok_or(ProtocolError { line: l.clone(), key: "index" })?;
            let kind = it.next().ok_or(ProtocolError { line: l.clone(), key: "kind" })?.to_string();
            let op = (idx != pare_device::LayerTrace::INPUT).then_some(idx);
            r.layers.push(LayerCount { op, kind, count: num("counts")? * per_count, macs: 0 });
        } else if l.starts_with("PARE-RESULT") {
            r.samples = num("samples")?;
            r.correct = num("correct")?;
            r.agree = num("agree")?;
            r.exact = num("exact")?;
            r.per_inference = num("counts_per_inference")? * per_count;
            r.unit = field(l, "unit").ok_or(ProtocolError { line: l.clone(), key: "unit" })?;
        }
    }
    Ok(r)
}

/// Bytes each embedded sample takes: pixels, label, host prediction and host output bytes.
pub fn sample_bytes(rt: &pare_device::Runtime<'_>) -> u64 {
    let pixels = u64::from(rt.input_bytes() / rt.model().input_buffer().map_or(1, |b| b.dtype.size()));
    pixels + 2 + u64::from(rt.output_bytes())
}

/// Builds the board's firmware around `model` and the samples of `ds`, runs it (QEMU) or
/// flashes it (probe-rs), and returns the decoded report with every layer's MACs filled in.
/// With `dry_run` the build and run commands are printed and nothing runs.
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
    let (tool, hint) = match board.runner {
        Runner::Qemu { .. } => {
            (qemu_program(), "install it with `apt-get install qemu-system-arm` (Debian/Ubuntu) or `brew install qemu`")
        }
        Runner::ProbeRs { .. } => ("probe-rs".to_string(), "install it with `cargo install probe-rs-tools --locked`"),
    };
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

/// A program on the `PATH` (or a path to one).
pub fn which(tool: &str) -> Option<PathBuf> {
    let p = PathBuf::from(tool);
    if p.components().count() > 1 {
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|f| f.is_file()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firmware_prints_every_key_the_host_reads() {
        let src = std::fs::read_to_string(crate::boards::boards_dir().join("check/src/lib.rs")).unwrap();
        for (line, keys) in PROTOCOL {
            let fmt =
                src.lines().find(|l| l.contains(&format!("\"{line} "))).unwrap_or_else(|| panic!("no {line} line"));
            for k in keys {
                assert!(fmt.contains(&format!(" {k}=")), "{line} lacks `{k}=`: {fmt}");
            }
        }
        // And the host reads nothing else: a line with only these keys parses.
        let lines: Vec<String> = PROTOCOL
            .iter()
            .map(|(line, keys)| {
                let idx = if *line == "PARE-LAYER" { " 0 conv2d" } else { "" };
                let kv: Vec<String> =
                    keys.iter().map(|k| format!("{k}={}", if *k == "unit" { "x" } else { "1" })).collect();
                format!("{line}{idx} {}", kv.join(" "))
            })
            .collect();
        assert!(parse_lines(&lines).is_ok(), "{lines:?}");
    }

    #[test]
    fn board_lines_parse_into_steps_with_the_input_apart() {
        let lines: Vec<String> = [
            "PARE-START samples=2 model_bytes=10 arena=64 unit=instructions per_count=40",
            "PARE-LAYER 4294967295 input counts=3",
            "PARE-LAYER 0 conv2d counts=100",
            "PARE-LAYER 1 add counts=7",
            "PARE-RESULT samples=2 correct=1 agree=2 exact=2 counts_per_inference=110 unit=instructions per_count=40",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_lines(&lines).unwrap();
        let steps: Vec<(Option<u32>, &str, u64)> = r.layers.iter().map(|l| (l.op, l.kind.as_str(), l.count)).collect();
        // Counts are scaled by per_count (40 instructions per SysTick count).
        assert_eq!(steps, vec![(None, "input", 120), (Some(0), "conv2d", 4000), (Some(1), "add", 280)]);
        assert_eq!((r.samples, r.agree, r.exact, r.per_inference), (2, 2, 2, 4400));
        // A renamed key used to read as 0.
        let renamed: Vec<String> = lines.iter().map(|l| l.replace("agree=", "agreed=")).collect();
        assert_eq!(parse_lines(&renamed).unwrap_err().key, "agree");
        // One pass rule: predictions and raw bytes all equal, no board error. `flash` used to
        // pass a run whose raw outputs differed while predictions agreed.
        assert!(r.passed());
        assert!(!BoardResult { exact: 1, ..r.clone() }.passed());
        assert!(!BoardResult { errors: vec!["x".into()], ..r.clone() }.passed());
        assert!(!BoardResult { samples: 0, agree: 0, exact: 0, ..r.clone() }.passed());
    }
}
