//! Atomic file writes: a temporary file in the destination folder, then a rename, so an
//! interrupted write never leaves a truncated checkpoint, model or report behind.

use std::path::Path;

/// Writes `bytes` to `path` atomically, creating the folder if needed.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
