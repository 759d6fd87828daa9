//! Image files to a [`Dataset`]: JPEG or PNG decoded, the shorter side resized to the model's
//! input size and the centre cropped square (the evaluation transform of torchvision's
//! `Resize(s) + CenterCrop(s)`), stored channel-planar. Decoded sets are cached under
//! `$PARE_CACHE/decoded`, keyed by the files' paths, sizes and modification times and the input
//! size, so a second run (and every epoch) reads pixels, not JPEGs.

use super::{DataError, Dataset};
use std::path::{Path, PathBuf};

/// Decodes one image to `size`×`size` RGB, planar (`[3][size][size]`).
pub fn decode(path: &Path, size: usize) -> Result<Vec<u8>, DataError> {
    let img = image::open(path).map_err(|e| DataError::Decode { path: path.into(), reason: e.to_string() })?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(DataError::Decode { path: path.into(), reason: "empty image".into() });
    }
    // Shorter side to `size`, then the centre `size`×`size`.
    let s = size as f64 / f64::from(w.min(h));
    let (nw, nh) =
        (((f64::from(w) * s).round() as u32).max(size as u32), ((f64::from(h) * s).round() as u32).max(size as u32));
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
    let images = match std::fs::read(&cache) {
        Ok(b) if b.len() == files.len() * n => b,
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
    let mut h = Vec::new();
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
