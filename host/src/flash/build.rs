//! The firmware build: its command, where it goes, and the lock that keeps one build-and-run per
//! build directory at a time.

use super::error::io;
use super::FlashError;
use crate::boards::Board;
use std::path::{Path, PathBuf};
use std::process::Command;

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
pub(super) struct BuildLock(#[allow(dead_code)] std::fs::File);

/// Takes the build lock of `dir`, waiting while another process holds it.
pub(super) fn lock_builds(dir: &Path) -> Result<BuildLock, FlashError> {
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
