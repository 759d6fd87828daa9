//! Image files to a [`Dataset`]: JPEG or PNG decoded, the shorter side resized to the model's
//! input size and the centre cropped square (the evaluation transform of torchvision's
//! `Resize(s) + CenterCrop(s)`), stored channel-planar. Decoded sets are cached under
//! `$PARE_CACHE/decoded`, keyed by the files' paths, sizes and modification times and the input
//! size, so a second run (and every epoch) reads pixels, not JPEGs.
//!
//! Every image is checked before it is decoded: a regular file of at most [`MAX_FILE_BYTES`],
//! at most [`MAX_PIXELS`] pixels as stored and once resized (from its header), and whole (a JPEG
//! ends its last scan with an end-of-image marker, a PNG has its IEND chunk: the decoder would
//! fill a cut-off image with gray without a word).

use super::{DataError, Dataset};
use std::path::{Path, PathBuf};

/// The largest image file read: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The most pixels an image may have, as stored and once its shorter side is resized to the
/// input size: 2²⁶ (67 million; an 8192×8192 photo), at most 192 MB of RGB.
pub const MAX_PIXELS: u64 = 1 << 26;

/// The size the shorter side of a `w`×`h` image resizes to `size` gives (the longer side in
/// proportion, rounded, never below `size`).
fn resized_dims(w: u32, h: u32, size: usize) -> (u64, u64) {
    let s = size as f64 / f64::from(w.min(h));
    let side = |v: u32| ((f64::from(v) * s).round() as u64).max(size as u64);
    (side(w), side(h))
}

/// Whether the image file `bytes` of `format` ends its data properly: a JPEG has an end-of-image
/// marker (FF D9) after the start of its last scan (FF DA), a PNG its IEND chunk.
fn check_complete(path: &Path, bytes: &[u8], format: Option<image::ImageFormat>) -> Result<(), DataError> {
    let last = |pattern: &[u8]| bytes.windows(pattern.len()).rposition(|w| w == pattern);
    let (whole, format, marker) = match format {
        Some(image::ImageFormat::Jpeg) => {
            let (scan, end) = (last(&[0xff, 0xda]), last(&[0xff, 0xd9]));
            (end.is_some_and(|e| scan.is_none_or(|s| e > s)), "JPEG", "end-of-image marker FF D9")
        }
        Some(image::ImageFormat::Png) => (last(b"\0\0\0\0IEND").is_some(), "PNG", "IEND chunk"),
        // Only JPEG and PNG are decoded; anything else fails in the decoder, naming the file.
        _ => return Ok(()),
    };
    if whole {
        Ok(())
    } else {
        Err(DataError::Truncated { path: path.into(), format, marker })
    }
}

/// Decodes one image to `size`×`size` RGB, planar (`[3][size][size]`).
pub fn decode(path: &Path, size: usize) -> Result<Vec<u8>, DataError> {
    let bytes = crate::input::read_regular(path, "image", MAX_FILE_BYTES)?;
    let bad = |e: image::ImageError| DataError::Decode { path: path.into(), reason: e.to_string() };
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .map_err(|e| DataError::Decode { path: path.into(), reason: e.to_string() })
    };
    // The header's dimensions, before anything is decoded or allocated for the pixels.
    let (w, h) = reader()?.into_dimensions().map_err(bad)?;
    if w == 0 || h == 0 {
        return Err(DataError::Decode { path: path.into(), reason: "empty image".into() });
    }
    let too_large = |pixels: u64, resized: bool| DataError::ImageSize {
        path: path.into(),
        width: w,
        height: h,
        pixels,
        resized,
        limit: MAX_PIXELS,
    };
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(too_large(u64::from(w) * u64::from(h), false));
    }
    let (nw, nh) = resized_dims(w, h, size);
    if nw.saturating_mul(nh) > MAX_PIXELS {
        return Err(too_large(nw.saturating_mul(nh), true));
    }
    // Both sides are at most MAX_PIXELS here.
    let (nw, nh) = (nw as u32, nh as u32);
    let mut reader = reader()?;
    check_complete(path, &bytes, reader.format())?;
    let mut limits = image::Limits::default();
    (limits.max_image_width, limits.max_image_height) = (Some(w), Some(h));
    reader.limits(limits);
    let rgb = reader.decode().map_err(bad)?.to_rgb8();
    if rgb.dimensions() != (w, h) {
        return Err(DataError::Decode {
            path: path.into(),
            reason: format!("decoded {:?}, the header said {w}×{h}", rgb.dimensions()),
        });
    }
    // Shorter side to `size`, then the centre `size`×`size`.
    let resized = if (nw, nh) == (w, h) {
        rgb
    } else {
        image::imageops::resize(&rgb, nw, nh, image::imageops::FilterType::Triangle)
    };
    let (x0, y0) = ((nw - size as u32) / 2, (nh - size as u32) / 2);
    let mut out = vec![0u8; 3 * size * size];
    for y in 0..size {
        for x in 0..size {
            let p = resized.get_pixel(x0 + x as u32, y0 + y as u32);
            for c in 0..3 {
                out[c * size * size + y * size + x] = p[c];
            }
        }
    }
    Ok(out)
}

/// A dataset from `(file, label)` pairs at `size`×`size`, decoded once and cached.
pub fn load(
    files: &[(PathBuf, u8)],
    size: usize,
    classes: usize,
    class_names: Vec<String>,
    source: String,
) -> Result<Dataset, DataError> {
    let key = cache_key(files, size);
    let cache = crate::boards::build_dir().join("decoded").join(format!("{key:016x}.bin"));
    let n = 3 * size * size;
    let want = files.len() * n;
    let images = match crate::input::read_regular(&cache, "decoded-image cache", want as u64) {
        Ok(b) if b.len() == want => b,
        _ => {
            let bar = crate::progress::steps(files.len() as u64, "decoding");
            let mut images = Vec::with_capacity(files.len() * n);
            for (f, _) in files {
                images.extend(decode(f, size)?);
                bar.inc(1);
            }
            bar.finish_and_clear();
            // A cache that cannot be written only costs the next run a decode.
            if let Some(d) = cache.parent() {
                let _ = std::fs::create_dir_all(d).and_then(|_| crate::atomic::write(&cache, &images));
            }
            images
        }
    };
    Ok(Dataset {
        images,
        labels: files.iter().map(|(_, l)| *l).collect(),
        shape: [3, size, size],
        classes,
        source,
        class_names,
    })
}

fn cache_key(files: &[(PathBuf, u8)], size: usize) -> u64 {
    // The version of the checks a cached set passed: a set decoded before cut-off images were
    // refused is decoded again.
    let mut h = b"checked-2".to_vec();
    h.extend_from_slice(&(size as u64).to_le_bytes());
    for (f, l) in files {
        h.extend_from_slice(f.to_string_lossy().as_bytes());
        h.push(*l);
        if let Ok(m) = std::fs::metadata(f) {
            h.extend_from_slice(&m.len().to_le_bytes());
            let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            h.extend_from_slice(&t.map_or(0, |d| d.as_nanos()).to_le_bytes());
        }
    }
    crate::hash::fnv(&h)
}

/// Whether `p` names a JPEG or PNG file.
pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}
