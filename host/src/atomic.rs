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

/// Writes `bytes` to `path` atomically, creating the folder if needed: the temporary file is
/// flushed to disk before the rename and the folder after it, so a crash leaves the old file or
/// the new one, and the file is readable by others like any file the user creates (0644 on Unix;
/// the temporary file starts at 0600).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Copies `from` to `to` atomically ([`write`]).
pub fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    write(to, &std::fs::read(from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_complete_and_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sub/a.bin");
        write(&a, b"first").unwrap();
        write(&a, b"second").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"second");
        copy(&a, &dir.path().join("b.bin")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b.bin")).unwrap(), b"second");
        // Issue 15 item 9: outputs were created 0600.
        #[cfg(unix)]
        for f in [&a, &dir.path().join("b.bin")] {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o644);
        }
        // Nothing but the two files is left behind.
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")]);
    }
}
