//! Input files read whole (weights, ONNX models, data archives): only regular files, and never
//! more than a stated cap, so `--weights /dev/zero` or a FIFO is an error naming the file rather
//! than a read that runs until memory is gone. Decompressed streams are bounded the same way
//! ([`Capped`]).

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The largest input file read whole: 4 GiB (a VGG-16 checkpoint is 60 MB, CIFAR-10's archive
/// 170 MB).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: not a regular file (a device, FIFO or folder cannot be read as {what})")]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("{path}: {size} bytes, more than the {limit} bytes a {what} may have")]
    TooLarge { path: PathBuf, what: &'static str, size: u64, limit: u64 },
}

/// Opens the regular file `path` for streaming, refusing anything else and anything over `limit`
/// bytes; returns the file and its size.
pub fn open_regular(path: &Path, what: &'static str, limit: u64) -> Result<(std::fs::File, u64), InputError> {
    let io = |cause| InputError::Io { path: path.into(), cause };
    // Opened without blocking: a FIFO with no writer would otherwise hang the open itself
    // (no effect on regular files, which are all that is read past the check below).
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(InputError::NotRegular { path: path.into(), what });
    }
    if meta.len() > limit {
        return Err(InputError::TooLarge { path: path.into(), what, size: meta.len(), limit });
    }
    Ok((file, meta.len()))
}

/// Reads the regular file `path` whole, refusing anything else and anything over `limit` bytes.
/// `what` names the kind of file in the error ("checkpoint", "ONNX model", …).
pub fn read_regular(path: &Path, what: &'static str, limit: u64) -> Result<Vec<u8>, InputError> {
    let io = |cause| InputError::Io { path: path.into(), cause };
    let (file, len) = open_regular(path, what, limit)?;
    // The file may grow while it is read: never take more than the cap (+1 to notice).
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(InputError::TooLarge { path: path.into(), what, size, limit });
    }
    Ok(bytes)
}

/// A reader that passes at most `limit` bytes through (a decompressor's output) and fails on the
/// next one, so a zip bomb stops at the cap. The error travels through whatever wraps the reader
/// (a tar parser, say); [`Capped::exceeded`] on a handle kept aside tells it apart afterwards.
#[derive(Debug)]
pub struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

/// Whether a [`Capped`] reader hit its cap; kept by the caller while the reader is lent out.
#[derive(Debug, Clone)]
pub struct CapHit(Rc<Cell<bool>>);

impl CapHit {
    pub fn exceeded(&self) -> bool {
        self.0.get()
    }
}

impl<R: Read> Capped<R> {
    /// `inner` limited to `limit` bytes, and the handle that says whether the limit was hit.
    pub fn new(inner: R, limit: u64) -> (Self, CapHit) {
        let exceeded = Rc::new(Cell::new(false));
        (Capped { inner, left: limit, exceeded: exceeded.clone() }, CapHit(exceeded))
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the cap is read to tell a stream that ends exactly there from a longer one.
        let want = buf.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.exceeded.set(true);
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "decompressed data exceeds its cap"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_folders_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, [1u8, 2, 3]).unwrap();
        assert_eq!(read_regular(&f, "test file", 3).unwrap(), vec![1, 2, 3]);
        assert!(matches!(read_regular(&f, "test file", 2), Err(InputError::TooLarge { size: 3, limit: 2, .. })));
        assert!(matches!(read_regular(dir.path(), "test file", 9), Err(InputError::NotRegular { .. })));
        #[cfg(unix)]
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), "test file", MAX_FILE_BYTES),
            Err(InputError::NotRegular { .. })
        ));
        // A FIFO with no writer: refused at once, not waited on.
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
            assert!(matches!(read_regular(&fifo, "test file", 9), Err(InputError::NotRegular { .. })));
        }
    }

    #[test]
    fn capped_passes_up_to_its_limit_and_fails_past_it() {
        let (mut r, hit) = Capped::new(&[7u8; 10][..], 10);
        let mut out = vec![];
        assert_eq!(r.read_to_end(&mut out).unwrap(), 10);
        assert!(!hit.exceeded());
        let (mut r, hit) = Capped::new(&[7u8; 11][..], 10);
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(hit.exceeded());
    }
}
