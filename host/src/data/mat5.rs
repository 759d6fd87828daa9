//! A reader for the numeric matrices of MATLAB level-5 `.mat` files (what Flowers-102's
//! `imagelabels.mat` and `setid.mat` are): a 128-byte header, then data elements, each an
//! `miMATRIX` or an `miCOMPRESSED` (zlib) wrapper around one. Only real, non-sparse numeric
//! arrays are read; anything else is skipped by name. Layout per MathWorks' "MAT-File Format"
//! (level 5): 8-byte tags (type, byte count) or 4-byte "small" tags, payloads padded to 8.
//! A compressed element inflates to at most the size its inner tag declares, and all of them
//! together to at most [`MAX_BYTES`]: a small file cannot ask for gigabytes.

use std::collections::BTreeMap;
use std::io::Read;

/// Why a `.mat` file cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatError {
    #[error("not a MATLAB level-5 MAT-file (or a big-endian one)")]
    NotMat5,
    #[error("truncated data element at byte {0}")]
    Truncated(usize),
    #[error("compressed element at byte {0} does not inflate")]
    Inflate(usize),
    #[error("matrix `{name}`: unsupported element type {ty}")]
    Type { name: String, ty: u32 },
    #[error("variable `{0}` is missing")]
    Missing(String),
    #[error("compressed element at byte {at} asks for {size} bytes once inflated, more than the {limit} allowed")]
    TooLarge { at: usize, size: u64, limit: u64 },
    #[error("compressed element at byte {at} inflates past the {declared} bytes its tag declares")]
    Overlong { at: usize, declared: u64 },
}

/// The most a MAT-file, or its compressed elements once inflated, may hold: 16 MiB (Flowers-102's
/// `setid.mat` and `imagelabels.mat` are 15 kB and 0.5 kB; their largest variable inflates
/// to 65 kB).
pub const MAX_BYTES: u64 = 16 << 20;

const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// One numeric matrix: its dimensions and its values in MATLAB's column-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub dims: Vec<usize>,
    pub values: Vec<f64>,
}

/// Reads every numeric matrix of a level-5 MAT-file by name.
pub fn read(bytes: &[u8]) -> Result<BTreeMap<String, Matrix>, MatError> {
    // Header: 116 bytes of text, 8 of subsystem offset, version 0x0100, endian "IM" (little).
    if bytes.len() < 128 || !bytes.starts_with(b"MATLAB 5.0 MAT-file") || bytes.get(126..128) != Some(b"IM") {
        return Err(MatError::NotMat5);
    }
    let mut out = BTreeMap::new();
    // What the compressed elements may inflate to, together.
    let mut budget = MAX_BYTES;
    for (at, ty, payload) in elements(bytes, 128)? {
        let inflated;
        let (ty, payload) = if ty == MI_COMPRESSED {
            inflated = inflate(payload, at, budget)?;
            budget -= inflated.len() as u64;
            match elements(&inflated, 0)?.first() {
                Some(&(_, t, p)) => (t, p),
                None => continue,
            }
        } else {
            (ty, payload)
        };
        if ty == MI_MATRIX {
            if let Some((name, m)) = matrix(payload)? {
                out.insert(name, m);
            }
        }
    }
    Ok(out)
}

/// Inflates the compressed element at byte `at`: its inner tag first, then exactly the bytes that
/// tag declares (tag included, at most `limit`); more data than declared is an error, not a
/// longer read.
fn inflate(payload: &[u8], at: usize, limit: u64) -> Result<Vec<u8>, MatError> {
    let mut z = flate2::read::ZlibDecoder::new(payload);
    let mut tag = [0u8; 8];
    z.read_exact(&mut tag).map_err(|_| MatError::Inflate(at))?;
    let word = |i: usize| u32::from_le_bytes([tag[i], tag[i + 1], tag[i + 2], tag[i + 3]]);
    // A small element keeps its data in the tag; a full one declares its byte count, padded to 8.
    let declared = if word(0) >> 16 != 0 { 0 } else { u64::from(word(4)).next_multiple_of(8) };
    if declared + 8 > limit {
        return Err(MatError::TooLarge { at, size: declared + 8, limit });
    }
    let mut buf = tag.to_vec();
    // One byte more than declared, to notice a stream that goes on.
    z.take(declared + 1).read_to_end(&mut buf).map_err(|_| MatError::Inflate(at))?;
    if buf.len() as u64 > declared + 8 {
        return Err(MatError::Overlong { at, declared });
    }
    Ok(buf)
}

/// One data element: its byte offset, type and payload.
type Element<'a> = (usize, u32, &'a [u8]);

/// The data elements from `start`.
fn elements(b: &[u8], start: usize) -> Result<Vec<Element<'_>>, MatError> {
    let mut v = vec![];
    let mut i = start;
    while i + 8 <= b.len() {
        let word = |at: usize| b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        let (t, n) = (word(i).ok_or(MatError::Truncated(i))?, word(i + 4).ok_or(MatError::Truncated(i))?);
        if t >> 16 != 0 {
            // Small element: type and byte count (≤ 4) in the first word, data in the second.
            let n = (t >> 16) as usize;
            v.push((i, t & 0xffff, b.get(i + 4..i + 4 + n).ok_or(MatError::Truncated(i))?));
            i += 8;
            continue;
        }
        let n = n as usize;
        let payload = b.get(i + 8..i + 8 + n).ok_or(MatError::Truncated(i))?;
        v.push((i, t, payload));
        // Compressed elements are not padded; everything else is, to 8 bytes.
        i += 8 + if t == MI_COMPRESSED { n } else { n.next_multiple_of(8) };
    }
    Ok(v)
}

/// An `miMATRIX` payload: flags, dimensions, name, real part.
fn matrix(p: &[u8]) -> Result<Option<(String, Matrix)>, MatError> {
    let subs = elements(p, 0)?;
    let [(_, _, flags), (_, _, dims), (_, _, name), (_, ty, real), ..] = subs.as_slice() else {
        return Ok(None);
    };
    let name = String::from_utf8_lossy(name).into_owned();
    // Array class (flags byte 0): 6 double … 15 uint64; cells, structs, chars, sparse are skipped.
    let class = flags.first().copied().unwrap_or(0);
    if !(6..=15).contains(&class) || flags.get(1).is_some_and(|f| f & 0x08 != 0) {
        return Ok(None);
    }
    let dims: Vec<usize> =
        dims.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]).max(0) as usize).collect();
    let values: Vec<f64> = match ty {
        1 => real.iter().map(|&x| f64::from(x as i8)).collect(),
        2 => real.iter().map(|&x| f64::from(x)).collect(),
        3 => real.chunks_exact(2).map(|c| f64::from(i16::from_le_bytes([c[0], c[1]]))).collect(),
        4 => real.chunks_exact(2).map(|c| f64::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        5 => real.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        6 => real.chunks_exact(4).map(|c| f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        7 => real.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        9 => {
            real.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
        }
        &ty => return Err(MatError::Type { name, ty }),
    };
    Ok(Some((name, Matrix { dims, values })))
}

/// A variable as positive integers (labels, ids).
pub fn integers(vars: &BTreeMap<String, Matrix>, name: &str) -> Result<Vec<usize>, MatError> {
    let m = vars.get(name).ok_or_else(|| MatError::Missing(name.into()))?;
    Ok(m.values.iter().map(|&v| v.max(0.0).round() as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a MAT-file by hand from the format specification: a header, then a 1×3 uint8
    /// matrix `ids` = [7, 1, 250] stored plainly and a 1×2 double matrix `x` = [1.5, -2]
    /// wrapped in an miCOMPRESSED element.
    fn handmade() -> Vec<u8> {
        fn el(ty: u32, data: &[u8]) -> Vec<u8> {
            let mut v = ty.to_le_bytes().to_vec();
            v.extend((data.len() as u32).to_le_bytes());
            v.extend(data);
            v.resize(v.len().next_multiple_of(8), 0);
            v
        }
        fn matrix(name: &str, class: u8, ty: u32, data: &[u8], n: i32) -> Vec<u8> {
            let mut p = el(6, &[class, 0, 0, 0, 0, 0, 0, 0]);
            p.extend(el(5, &[1i32.to_le_bytes(), n.to_le_bytes()].concat()));
            p.extend(el(1, name.as_bytes()));
            p.extend(el(ty, data));
            el(14, &p)
        }
        let mut f = b"MATLAB 5.0 MAT-file, hand-made".to_vec();
        f.resize(124, b' ');
        f.extend([0x00, 0x01, b'I', b'M']);
        f.extend(matrix("ids", 9, 2, &[7, 1, 250], 3));
        let doubles: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let inner = matrix("x", 6, 9, &doubles, 2);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &inner).unwrap();
        let packed = z.finish().unwrap();
        f.extend(15u32.to_le_bytes());
        f.extend((packed.len() as u32).to_le_bytes());
        f.extend(packed);
        f
    }

    #[test]
    fn plain_and_compressed_matrices_read_back() {
        let vars = read(&handmade()).unwrap();
        assert_eq!(vars["ids"], Matrix { dims: vec![1, 3], values: vec![7.0, 1.0, 250.0] });
        assert_eq!(vars["x"], Matrix { dims: vec![1, 2], values: vec![1.5, -2.0] });
        assert_eq!(integers(&vars, "ids").unwrap(), vec![7, 1, 250]);
        assert_eq!(integers(&vars, "nope"), Err(MatError::Missing("nope".into())));
        assert_eq!(read(b"not a mat file").unwrap_err(), MatError::NotMat5);
        let mut cut = handmade();
        cut.truncate(150);
        assert!(matches!(read(&cut), Err(MatError::Truncated(_))));
    }

    /// A MAT header and one miCOMPRESSED element holding `inner` zlib-compressed.
    fn compressed(inner: &[u8]) -> Vec<u8> {
        let mut f = b"MATLAB 5.0 MAT-file, bomb".to_vec();
        f.resize(124, b' ');
        f.extend([0x00, 0x01, b'I', b'M']);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, inner).unwrap();
        let packed = z.finish().unwrap();
        f.extend(15u32.to_le_bytes());
        f.extend((packed.len() as u32).to_le_bytes());
        f.extend(packed);
        f
    }

    #[test]
    fn compressed_elements_inflate_no_further_than_declared() {
        // A matrix tag declaring 4 GB, then 20 MiB of zeros: refused from the tag, before any
        // of it is inflated.
        let mut inner = 14u32.to_le_bytes().to_vec();
        inner.extend(0xffff_fff0u32.to_le_bytes());
        inner.resize(8 + (20 << 20), 0);
        let bomb = compressed(&inner);
        assert!(bomb.len() < 64 << 10, "a small file");
        assert_eq!(read(&bomb), Err(MatError::TooLarge { at: 128, size: 0xffff_fff0 + 8, limit: MAX_BYTES }));
        // A tag declaring 16 bytes followed by 1 MiB: refused once past the 16.
        let mut inner = 14u32.to_le_bytes().to_vec();
        inner.extend(16u32.to_le_bytes());
        inner.resize(8 + (1 << 20), 0);
        assert_eq!(read(&compressed(&inner)), Err(MatError::Overlong { at: 128, declared: 16 }));
        // Sixteen elements of 1 MiB and an 8-byte tag each, every one as declared: the last one
        // takes the total past 16 MiB, with 1 MiB − 15 × 8 bytes left for it.
        let mut inner = 14u32.to_le_bytes().to_vec();
        inner.extend((1u32 << 20).to_le_bytes());
        inner.resize(8 + (1 << 20), 0);
        let one = compressed(&inner);
        let mut many = one.clone();
        for _ in 1..16 {
            many.extend(&one[128..]);
        }
        let last = 128 + 15 * (one.len() - 128);
        assert_eq!(read(&many), Err(MatError::TooLarge { at: last, size: (1 << 20) + 8, limit: (1 << 20) - 15 * 8 }));
        assert_eq!(read(&many[..last]).map(|v| v.len()), Ok(0), "fifteen fit (none is a numeric matrix)");
    }
}
