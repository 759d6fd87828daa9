//! Input files read whole (weights, ONNX models, data archives): only regular files, and never
//! more than a stated cap, so `--weights /dev/zero` or a FIFO is an error naming the file rather
//! than a read that runs until memory is gone.

use std::io::Read;
use std::path::{Path, PathBuf};

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

/// Reads the regular file `path` whole, refusing anything else and anything over `limit` bytes.
/// `what` names the kind of file in the error ("checkpoint", "ONNX model", …).
pub fn read_regular(path: &Path, what: &'static str, limit: u64) -> Result<Vec<u8>, InputError> {
    let io = |cause| InputError::Io { path: path.into(), cause };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(InputError::NotRegular { path: path.into(), what });
    }
    if meta.len() > limit {
        return Err(InputError::TooLarge { path: path.into(), what, size: meta.len(), limit });
    }
    // The file may grow while it is read: never take more than the cap (+1 to notice).
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(InputError::TooLarge { path: path.into(), what, size, limit });
    }
    Ok(bytes)
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
    }
}
