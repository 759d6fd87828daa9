//! Reading a `.pare` file from disk: a regular file no larger than the format allows, so that a
//! device node (`/dev/zero`), a FIFO or a huge file is refused before it is read into memory.

use std::path::Path;

/// The largest `.pare` file: the header plus the largest payload its 32-bit length can frame.
pub const MAX_BYTES: u64 = pare_format::HEADER_LEN as u64 + u32::MAX as u64;

/// Why a model file could not be read: [`crate::input`]'s errors, as for every input file.
pub type PareFileError = crate::input::InputError;

/// Reads a whole `.pare` file after checking that it is a regular file within [`MAX_BYTES`].
pub fn read(path: &Path) -> Result<Vec<u8>, PareFileError> {
    crate::input::read_regular(path, ".pare model", MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_files_are_read() {
        // `pare run /dev/zero` used to read until the kernel killed it.
        assert!(matches!(read(Path::new("/dev/zero")), Err(PareFileError::NotRegular { .. })));
        let dir = std::env::temp_dir();
        assert!(matches!(read(&dir), Err(PareFileError::NotRegular { .. })));
        let f = dir.join(format!("pare-file-test-{}.pare", std::process::id()));
        std::fs::write(&f, b"PARE1234").unwrap();
        assert_eq!(read(&f).unwrap(), b"PARE1234");
        std::fs::remove_file(&f).unwrap();
        assert!(matches!(read(&f), Err(PareFileError::Io { .. })));
    }
}
