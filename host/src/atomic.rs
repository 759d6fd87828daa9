//! Output files that never damage anything: a regular file (or a new path) is replaced
//! atomically — a temporary file in the destination folder, then a rename — so an interrupted
//! write never leaves a truncated checkpoint, model or report behind; a device or FIFO
//! (`-o /dev/null`, a pipe) is written to directly and stays what it was; a folder is refused.
//! New files get the mode `open(O_CREAT, 0666)` would give them (the umask applies) and an
//! existing file keeps its mode. A temporary file left by a killed run is named after its
//! destination and process (`.<name>.pare-tmp.<pid>.<random>`) and is removed by the next write
//! to that destination once its process is gone. [`check_distinct`] refuses an output that is
//! one of the command's inputs.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Checks up front that files can be created in `dir` (creating it if needed), so a run with an
/// unwritable output fails in its first second rather than after an epoch of work.
pub fn check_writable_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    std::fs::create_dir_all(dir)?;
    // Created and removed again: the probe leaves nothing behind (one a killed run left is
    // removed by the next probe).
    let probe = std::ffi::OsStr::new("pare-probe");
    remove_stale_temporaries(dir, probe);
    create_temporary(dir, probe, 0o600).map(drop)
}

/// [`check_writable_dir`] for the folder that will hold the file `path`; an existing folder at
/// `path` itself is refused (nothing can replace it). A device or FIFO needs no folder check.
pub fn check_writable_file(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(is_a_directory(path)),
        Ok(m) if !m.is_file() => Ok(()),
        Ok(_) | Err(_) => check_writable_dir(parent_of(path)),
    }
}

/// The folder that holds `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn is_a_directory(path: &Path) -> Error {
    Error::new(ErrorKind::IsADirectory, format!("{} is a folder, not a file", path.display()))
}

/// Writes `bytes` to `path`, creating the folder if needed.
///
/// - A new path or an existing regular file: atomically (the temporary file is flushed to disk
///   before the rename and the folder after it, so a crash leaves the old file or the new one).
///   A new file's mode is 0666 less the umask, as for any file the user creates; an existing
///   file keeps its mode.
/// - An existing device, FIFO or other non-regular file: opened for writing and written in
///   place, never replaced or re-moded (`-o /dev/null` discards the output).
/// - An existing folder: refused.
/// - A regular file reached through a link in `/dev` or `/proc` (`/dev/stdout` redirected to
///   a file): appended to.
///
/// Through a symbolic link, the file it points to is written and the link stays.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let existing = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    match existing {
        Some(m) if m.is_dir() => Err(is_a_directory(path)),
        Some(m) if !m.is_file() => {
            let mut f = OpenOptions::new().write(true).open(path)?;
            f.write_all(bytes)?;
            f.flush()
        }
        // `/dev/stdout` and the like, redirected to a file: appended to, as a shell would.
        Some(_) if under_system_folder(path) => {
            let mut f = OpenOptions::new().append(true).open(path)?;
            f.write_all(bytes)?;
            f.flush()
        }
        // Through a symbolic link, the file it points to is replaced and the link stays.
        Some(m) if std::fs::symlink_metadata(path).is_ok_and(|l| l.file_type().is_symlink()) => {
            replace(&std::fs::canonicalize(path)?, bytes, Some(m.permissions()))
        }
        Some(m) => replace(path, bytes, Some(m.permissions())),
        None => replace(path, bytes, None),
    }
}

/// Whether `path` is a link in `/dev` or `/proc` (`/dev/stdout`, `/proc/self/fd/1`): the file
/// it reaches is a process's open file, to be written where it is, never replaced.
fn under_system_folder(path: &Path) -> bool {
    let absolute = match std::env::current_dir() {
        Ok(d) if path.is_relative() => d.join(path),
        Ok(_) | Err(_) => path.to_path_buf(),
    };
    cfg!(unix)
        && (absolute.starts_with("/dev") || absolute.starts_with("/proc"))
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Copies `from` to `to` ([`write`]).
pub fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    write(to, &std::fs::read(from)?)
}

/// The start of every temporary file name for the destination `name` (its pid and a random
/// suffix follow). Long names are shortened so the whole stays within a file name's 255 bytes.
fn temp_prefix(name: &std::ffi::OsStr) -> String {
    let name = name.to_string_lossy();
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.pare-tmp.", &name[..end])
}

/// Whether process `pid` is still running (a temporary file it owns may still be written).
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: kill(2) with signal 0 sends nothing; it only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        // Without a way to ask, every owner is taken to be alive: nothing is removed.
        let _ = pid;
        true
    }
}

/// Removes the temporary files that runs killed while writing `name` in `dir` left behind
/// (their process is gone); those of running processes stay. Returns what it removed.
pub fn remove_stale_temporaries(dir: &Path, name: &std::ffi::OsStr) -> Vec<PathBuf> {
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut removed = vec![];
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file.strip_prefix(&prefix) else { continue };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// A temporary file that is removed unless it was renamed into place.
struct Temporary {
    path: PathBuf,
    kept: bool,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates a new temporary file for `name` in `dir`: mode `mode` less the umask.
fn create_temporary(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> std::io::Result<(File, Temporary)> {
    let prefix = temp_prefix(name);
    let mut last = None;
    for _ in 0..16 {
        let mut file = OsString::from(&prefix);
        file.push(format!("{}.{:08x}", std::process::id(), rand::random::<u32>()));
        let path = dir.join(file);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&path) {
            Ok(f) => return Ok((f, Temporary { path, kept: false })),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::other("no free temporary file name")))
}

/// The atomic replacement of a regular file (or creation of a new one) at `path`; `keep` is
/// the existing file's permissions.
fn replace(path: &Path, bytes: &[u8], keep: Option<std::fs::Permissions>) -> std::io::Result<()> {
    let dir = parent_of(path);
    let name = path.file_name().ok_or_else(|| Error::new(ErrorKind::InvalidInput, "not a file name"))?;
    std::fs::create_dir_all(dir)?;
    remove_stale_temporaries(dir, name);
    // A new file: 0666 less the umask, applied by the kernel at creation. A replaced one starts
    // private and takes the old file's mode before it becomes visible under the name.
    let (mut file, mut tmp) = create_temporary(dir, name, if keep.is_some() { 0o600 } else { 0o666 })?;
    file.write_all(bytes)?;
    if let Some(p) = keep {
        file.set_permissions(p)?;
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp.path, path)?;
    tmp.kept = true;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// An output that is also one of the command's inputs: writing it would destroy the input.
#[derive(Debug, thiserror::Error)]
#[error("{output_flag} {output} is the same file as {input_flag} {input}: writing it would destroy the input; choose another output")]
pub struct SameFile {
    pub output_flag: String,
    pub output: PathBuf,
    pub input_flag: String,
    pub input: PathBuf,
}

/// Whether `a` and `b` name one existing file (the same device and inode, through links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt;
            x.dev() == y.dev() && x.ino() == y.ino()
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
        _ => false,
    }
}

/// Refuses outputs that are inputs. `outputs` and `inputs` are `(option, path)` pairs; an
/// output that does not exist yet, or is not a regular file (a device or FIFO is written to,
/// not replaced), clashes with nothing.
pub fn check_distinct(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> Result<(), SameFile> {
    for &(output_flag, output) in outputs {
        if !std::fs::metadata(output).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if let Some(&(input_flag, input)) = inputs.iter().find(|(_, i)| same_file(output, i)) {
            return Err(SameFile {
                output_flag: output_flag.into(),
                output: output.into(),
                input_flag: input_flag.into(),
                input: input.into(),
            });
        }
    }
    Ok(())
}

/// [`check_distinct`] for an output folder `dir` (option `flag`): refuses an input that lies
/// directly in it under a name the run writes (`writes(file name)`).
pub fn check_distinct_in(
    flag: &str,
    dir: &Path,
    writes: &dyn Fn(&str) -> bool,
    inputs: &[(&str, &Path)],
) -> Result<(), SameFile> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let written: Vec<PathBuf> =
        entries.flatten().filter(|e| writes(&e.file_name().to_string_lossy())).map(|e| e.path()).collect();
    let outputs: Vec<(&str, &Path)> = written.iter().map(|p| (flag, p.as_path())).collect();
    check_distinct(&outputs, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's umask, read without changing it.
    #[cfg(target_os = "linux")]
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn written_files_are_complete_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sub/a.bin");
        write(&a, b"first").unwrap();
        write(&a, b"second").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"second");
        copy(&a, &dir.path().join("b.bin")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b.bin")).unwrap(), b"second");
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")]);
        // Through a link: the file it points to changes, the link stays a link.
        #[cfg(unix)]
        {
            let link = dir.path().join("link.bin");
            std::os::unix::fs::symlink(&a, &link).unwrap();
            write(&link, b"third").unwrap();
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
            assert_eq!(std::fs::read(&a).unwrap(), b"third");
        }
    }

    /// A new file gets 0666 less the umask (as `open(O_CREAT, 0666)`); a replaced one keeps
    /// its mode, whatever it was.
    #[cfg(target_os = "linux")]
    #[test]
    fn new_files_follow_the_umask_and_replaced_ones_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.bin");
        write(&new, b"x").unwrap();
        assert_eq!(mode(&new), 0o666 & !umask());
        let kept = dir.path().join("kept.bin");
        std::fs::write(&kept, b"old").unwrap();
        std::fs::set_permissions(&kept, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        write(&kept, b"new").unwrap();
        assert_eq!((mode(&kept), std::fs::read(&kept).unwrap()), (0o640, b"new".to_vec()));
    }

    /// A FIFO is written to (its reader gets the bytes) and is still a FIFO afterwards.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_to_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write(&fifo, b"through the pipe").unwrap();
        // Checked before waiting on the reader, which a replaced FIFO would leave blocked.
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert_eq!(mode(&fifo), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("pipe")]);
    }

    /// `/dev/null` takes the output and stays a character device.
    #[cfg(unix)]
    #[test]
    fn dev_null_stays_a_character_device() {
        use std::os::unix::fs::FileTypeExt;
        let null = Path::new("/dev/null");
        write(null, b"discarded").unwrap();
        assert!(std::fs::symlink_metadata(null).unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(dir.path(), b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::IsADirectory, "{e}");
        assert!(e.to_string().contains("is a folder"), "{e}");
        assert!(check_writable_file(dir.path()).is_err());
        assert!(dir.path().is_dir());
    }

    /// A temporary file whose process is gone is removed by the next write to its destination;
    /// one of a running process, or for another destination, stays.
    #[cfg(unix)]
    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".m.pare.pare-tmp.{dead}.0badf00d"));
        // Process 1 runs as long as the system does; this process is writing.
        let running = dir.path().join(".m.pare.pare-tmp.1.0badf00d");
        let mine = dir.path().join(format!(".m.pare.pare-tmp.{}.0badf00d", std::process::id()));
        let other = dir.path().join(format!(".n.pare.pare-tmp.{dead}.0badf00d"));
        for f in [&stale, &running, &mine, &other] {
            std::fs::write(f, b"partial").unwrap();
        }
        write(&dir.path().join("m.pare"), b"model").unwrap();
        assert!(!stale.exists());
        assert!(running.exists() && mine.exists() && other.exists());
        assert_eq!(std::fs::read(dir.path().join("m.pare")).unwrap(), b"model");
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"input").unwrap();
        let e = check_distinct(&[("-o", &a)], &[("--weights", &a)]).unwrap_err();
        assert!(e.to_string().contains("-o") && e.to_string().contains("--weights"), "{e}");
        // The same file under another name: a link, and a path through `..`.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&a, &b).unwrap();
            assert!(check_distinct(&[("-o", &b)], &[("--weights", &a)]).is_err());
        }
        let dotted = dir.path().join("sub/../a");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(check_distinct(&[("-o", &dotted)], &[("--weights", &a)]).is_err());
        // A new output, or another file, clashes with nothing.
        let c = dir.path().join("c");
        assert!(check_distinct(&[("-o", &c)], &[("--weights", &a)]).is_ok());
        std::fs::write(&c, b"other").unwrap();
        assert!(check_distinct(&[("-o", &c)], &[("--weights", &a)]).is_ok());
        // An input inside an output folder under a name the run writes.
        let writes = |n: &str| n == "a";
        assert!(check_distinct_in("--out", dir.path(), &writes, &[("--weights", &a)]).is_err());
        assert!(check_distinct_in("--out", dir.path(), &|n: &str| n == "z", &[("--weights", &a)]).is_ok());
    }
}
