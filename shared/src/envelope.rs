//! The 16-byte envelope around the payload, checked before anything else is decoded.

use crate::error::Error;
use crate::graph::Model;

/// The first four bytes of every pare file.
pub const MAGIC: [u8; 4] = *b"PARE";
/// The format version this crate reads and writes. See `docs/format.md` for the versioning rule.
pub const VERSION: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 16;
/// CRC-32/ISO-HDLC (the zlib/PNG CRC) over the payload.
pub const CHECKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The envelope fields, all little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub flags: u16,
    pub payload_len: u32,
    pub crc32: u32,
}

impl Header {
    /// Reads and checks the header of `bytes`, returning it with the payload it frames.
    pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
        let got = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let Some(head) = bytes.get(..HEADER_LEN) else {
            // A short file that does not even start like ours is not ours.
            let n = bytes.len().min(MAGIC.len());
            if bytes.get(..n) != MAGIC.get(..n) {
                return Err(Error::BadMagic);
            }
            return Err(Error::Truncated { needed: HEADER_LEN as u32, got });
        };
        let field = |range: core::ops::Range<usize>| head.get(range).unwrap_or(&[]);
        if field(0..4) != MAGIC {
            return Err(Error::BadMagic);
        }
        let u16_at = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let header = Header { version: u16_at(4), flags: u16_at(6), payload_len: u32_at(8), crc32: u32_at(12) };
        if header.version != VERSION {
            return Err(Error::UnsupportedVersion { found: header.version, supported: VERSION });
        }
        if header.flags != 0 {
            return Err(Error::UnknownFlags(header.flags));
        }
        let rest = &bytes[HEADER_LEN..];
        let len = header.payload_len as usize;
        let Some(payload) = rest.get(..len) else {
            let needed = (HEADER_LEN as u32).saturating_add(header.payload_len);
            return Err(Error::Truncated { needed, got });
        };
        if rest.len() > len {
            return Err(Error::TrailingBytes(u32::try_from(rest.len() - len).unwrap_or(u32::MAX)));
        }
        let actual = CHECKSUM.checksum(payload);
        if actual != header.crc32 {
            return Err(Error::ChecksumMismatch { expected: header.crc32, actual });
        }
        Ok((header, payload))
    }

    /// The 16 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[6..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.crc32.to_le_bytes());
        out
    }
}

/// Decodes and validates a pare file without allocating or copying.
pub fn decode(bytes: &[u8]) -> Result<Model<'_>, Error> {
    let (_, payload) = Header::parse(bytes)?;
    let (model, rest) = postcard::take_from_bytes::<Model<'_>>(payload)?;
    if !rest.is_empty() {
        return Err(Error::Malformed);
    }
    model.validate()?;
    Ok(model)
}
