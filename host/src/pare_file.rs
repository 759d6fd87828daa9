//! Reading a `.pare` file from disk: a regular file no larger than the format allows, so that a
//! device node (`/dev/zero`), a FIFO or a huge file is refused before it is read into memory.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest `.pare` file: the header plus the largest payload its 32-bit length can frame.
pub const MAX_BYTES: u64 = pare_format::HEADER_LEN as u64 + u32::MAX as u64;

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PareFileError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: not a regular file (a .pare model is read whole, so devices and pipes are refused)")]
    NotAFile { path: PathBuf },
    #[error("{path}: larger than a .pare file can be ({max} bytes)")]
    TooLarge { path: PathBuf, max: u64 },
}

/// Reads a whole `.pare` file after checking that it is a regular file within [`MAX_BYTES`].
pub fn read(path: &Path) -> Result<Vec<u8>, PareFileError> {
    let io = |cause| PareFileError::Io { path: path.into(), cause };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(PareFileError::NotAFile { path: path.into() });
    }
    if meta.len() > MAX_BYTES {
        return Err(PareFileError::TooLarge { path: path.into(), max: MAX_BYTES });
    }
    // Bounded even if the file grows between the check and the read.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path).map_err(io)?.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(PareFileError::TooLarge { path: path.into(), max: MAX_BYTES });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_files_are_read() {
        // `pare run /dev/zero` used to read until the kernel killed it.
        assert!(matches!(read(Path::new("/dev/zero")), Err(PareFileError::NotAFile { .. })));
        let dir = std::env::temp_dir();
        assert!(matches!(read(&dir), Err(PareFileError::NotAFile { .. })));
        let f = dir.join(format!("pare-file-test-{}.pare", std::process::id()));
        std::fs::write(&f, b"PARE1234").unwrap();
        assert_eq!(read(&f).unwrap(), b"PARE1234");
        std::fs::remove_file(&f).unwrap();
        assert!(matches!(read(&f), Err(PareFileError::Io { .. })));
    }
}
