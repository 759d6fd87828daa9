//! The runners: the command that runs the firmware (QEMU) or flashes it (probe-rs), how such a
//! command is shown, and finding the tool on the `PATH`.

use crate::boards::{Board, Runner};
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// The runner's program and how to install it, for the error when it is missing.
pub fn runner_tool(board: &Board) -> (String, &'static str) {
    match board.runner {
        Runner::Qemu { .. } => {
            (qemu_program(), "install it with `apt-get install qemu-system-arm` (Debian/Ubuntu) or `brew install qemu`")
        }
        Runner::ProbeRs { .. } => ("probe-rs".to_string(), "install it with `cargo install probe-rs-tools --locked`"),
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

/// A program on the `PATH` (or a path to one).
pub fn which(tool: &str) -> Option<PathBuf> {
    let p = PathBuf::from(tool);
    if p.components().count() > 1 {
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|f| f.is_file()))
}
