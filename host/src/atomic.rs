//! Atomic file writes: a temporary file in the destination folder, then a rename, so an
//! interrupted write never leaves a truncated checkpoint, model or report behind.

use std::path::Path;

/// Checks up front that files can be created in `dir` (creating it if needed), so a run with an
/// unwritable output fails in its first second rather than after an epoch of work.
pub fn check_writable_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    std::fs::create_dir_all(dir)?;
    // Created and removed again: the probe leaves nothing behind.
    tempfile::NamedTempFile::new_in(dir).map(drop)
}

/// [`check_writable_dir`] for the folder that will hold the file `path`.
pub fn check_writable_file(path: &Path) -> std::io::Result<()> {
    check_writable_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `path` atomically, creating the folder if needed.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
