//! Flash a firmware image occupies: the file bytes of its loadable segments (code, constants
//! and the initial values of data), read from the ELF program headers. Little-endian ELF32,
//! what every supported Cortex-M target links.

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not a little-endian ELF32 file")]
    NotElf32,
    #[error("program header {0} lies outside the file")]
    Truncated(usize),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Sum of `p_filesz` over the `PT_LOAD` program headers.
pub fn loaded_bytes(elf: &[u8]) -> Result<u64, ElfError> {
    // Magic, class 1 (32-bit), data 1 (little-endian).
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 1, 1]) {
        return Err(ElfError::NotElf32);
    }
    let phoff = u32_at(elf, 0x1c).ok_or(ElfError::NotElf32)? as usize;
    let size = usize::from(u16_at(elf, 0x2a).ok_or(ElfError::NotElf32)?);
    let count = usize::from(u16_at(elf, 0x2c).ok_or(ElfError::NotElf32)?);
    let mut total = 0u64;
    for i in 0..count {
        let at = phoff + i * size;
        let kind = u32_at(elf, at).ok_or(ElfError::Truncated(i))?;
        let filesz = u32_at(elf, at + 0x10).ok_or(ElfError::Truncated(i))?;
        if kind == 1 {
            total += u64::from(filesz);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-assembled ELF32 header with three program headers: two PT_LOAD (100 and 28 file
    /// bytes) and one PT_NOTE (999), laid out per the System V ABI.
    fn image() -> Vec<u8> {
        let mut b = vec![0u8; 52 + 3 * 32];
        b[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1]);
        b[0x1c..0x20].copy_from_slice(&52u32.to_le_bytes());
        b[0x2a..0x2c].copy_from_slice(&32u16.to_le_bytes());
        b[0x2c..0x2e].copy_from_slice(&3u16.to_le_bytes());
        for (i, (kind, filesz)) in [(1u32, 100u32), (4, 999), (1, 28)].iter().enumerate() {
            let at = 52 + 32 * i;
            b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            b[at + 0x10..at + 0x14].copy_from_slice(&filesz.to_le_bytes());
        }
        b
    }

    #[test]
    fn loadable_file_bytes_are_summed_and_other_segments_ignored() {
        assert_eq!(loaded_bytes(&image()), Ok(128));
        let mut cut = image();
        cut.truncate(52 + 40);
        assert_eq!(loaded_bytes(&cut), Err(ElfError::Truncated(1)));
        assert_eq!(loaded_bytes(b"\x7fELF\x02\x01rest"), Err(ElfError::NotElf32));
    }
}
