//! CIFAR-10 binary format: records of 1 label byte + 3072 pixel bytes (R, G, B planes).
//! Splits: `train` = `data_batch_*.bin`, `test` = `test_batch.bin`, any other name = `NAME.bin`;
//! where `NAME.bin` is absent but `NAME_indices.txt` lists original indices (one per line), the
//! split is those images of the split named before the first `_` (e.g. `train_lossless`: the
//! bit-exact training images of `../shared/data/cifar10`).
//! Reads a folder or the official `cifar-10-binary.tar.gz` directly, its decompressed stream
//! capped at [`MAX_ARCHIVE_BYTES`].

use super::Dataset;
use crate::input::{read_regular, InputError, MAX_FILE_BYTES};
use std::io::Read;
use std::path::{Path, PathBuf};

const RECORD: usize = 3073;

/// The most a `.tar.gz` dataset archive may decompress to: 1 GiB (the official CIFAR-10 archive
/// holds 184 MB), so a small archive that inflates without end is an error, not a full memory
/// or disk.
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// The largest text file read beside the data (split index lists, class names): 64 MiB.
const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Why data could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {len} bytes is not a whole number of 3073-byte CIFAR records")]
    BadSize { path: PathBuf, len: usize },
    #[error("{path}: label {label} at byte offset {offset} is outside 0..=9")]
    BadLabel { path: PathBuf, offset: usize, label: u8 },
    #[error("no files for split '{split}' in {path} (expected {expected})")]
    NoFiles { path: PathBuf, split: String, expected: String },
    #[error("{path}:{line}: {reason}")]
    BadIndex { path: PathBuf, line: usize, reason: String },
    #[error("split '{split}' in {path} is incomplete: {} missing (a split is used whole or not at all)", missing.join(", "))]
    Incomplete { path: PathBuf, split: String, missing: Vec<String> },
    #[error("unknown synthetic split '{0}' (use train or test)")]
    UnknownSplit(String),
    #[error("{path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: {cause}")]
    Mat { path: PathBuf, cause: super::mat5::MatError },
    #[error("{path}: unknown split '{split}' (use {known})")]
    UnknownNamedSplit { path: PathBuf, split: String, known: String },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    /// Not a regular file, too large, or unreadable (every file read whole goes through
    /// [`crate::input::read_regular`]).
    #[error(transparent)]
    Input(#[from] InputError),
    /// Compressed data that would decompress past its cap.
    #[error("{path}: {what} needs {size} bytes or more once decompressed, over the {limit}-byte cap")]
    Inflated { path: PathBuf, what: String, size: u64, limit: u64 },
    /// A split with no images where images are needed (an accuracy over nothing is not 0 %).
    #[error("split '{split}' of {data} has no images")]
    Empty { data: String, split: String },
    /// An image whose file ends before its data does.
    #[error("{path}: truncated {format} (no {marker} after the image data): the file is cut short")]
    Truncated { path: PathBuf, format: &'static str, marker: &'static str },
    /// An image too large to decode or to resize to the input size.
    #[error(
        "{path}: a {width}×{height} image needs {pixels} pixels{at}, more than the {limit} an image may have",
        at = if *resized { " once resized to the input size" } else { "" }
    )]
    ImageSize { path: PathBuf, width: u32, height: u32, pixels: u64, resized: bool, limit: u64 },
}

fn split_files(split: &str) -> (Vec<String>, String) {
    match split {
        "train" => ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), "data_batch_1..5.bin".into()),
        "test" => (vec!["test_batch.bin".into()], "test_batch.bin".into()),
        other => (vec![format!("{other}.bin")], format!("{other}.bin")),
    }
}

/// Parses one file's bytes, appending to `ds`.
fn parse(path: &Path, bytes: &[u8], ds: &mut Dataset) -> Result<(), DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::BadSize { path: path.into(), len: bytes.len() });
    }
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::BadLabel { path: path.into(), offset: i * RECORD, label: rec[0] });
        }
        ds.labels.push(rec[0]);
        ds.images.extend_from_slice(&rec[1..]);
    }
    Ok(())
}

/// The split `split` is a subset of (`train` for `train_lossless`), when it is one: a folder
/// with `split_indices.txt` and no `split.bin`.
pub fn superset(path: &Path, split: &str) -> Option<String> {
    let listed = path.join(format!("{split}_indices.txt")).is_file() && !path.join(format!("{split}.bin")).exists();
    listed.then(|| split.split_once('_').map(|(base, _)| base.to_string())).flatten()
}

/// Loads a split from a folder of `.bin` files or from the official `.tar.gz`.
pub fn load_cifar(path: &Path, split: &str) -> Result<Dataset, DataError> {
    let index_file = path.join(format!("{split}_indices.txt"));
    if path.is_dir() && !path.join(format!("{split}.bin")).exists() && index_file.is_file() {
        if let Some((base, _)) = split.split_once('_') {
            let ds = load_cifar(path, base)?;
            return select(ds, &index_file, split);
        }
    }
    load_files(path, split)
}

/// Reads a text file beside the data (an index list, class names): regular, at most
/// [`MAX_TEXT_BYTES`], UTF-8.
fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = read_regular(path, "text file", MAX_TEXT_BYTES)?;
    String::from_utf8(bytes).map_err(|e| DataError::Layout { path: path.into(), reason: format!("not UTF-8: {e}") })
}

/// The images of `ds` listed in `index_file`, in file order.
fn select(ds: Dataset, index_file: &Path, split: &str) -> Result<Dataset, DataError> {
    let text = read_text(index_file)?;
    let n = ds.image_bytes();
    let mut out = Dataset {
        images: vec![],
        labels: vec![],
        source: format!("{}:{split}", ds.source.rsplit_once(':').map_or("", |(a, _)| a)),
        ..ds.clone()
    };
    for (line, t) in text.lines().enumerate().filter(|(_, t)| !t.trim().is_empty()) {
        let bad = |reason: String| DataError::BadIndex { path: index_file.into(), line: line + 1, reason };
        let i: usize = t.trim().parse().map_err(|_| bad(format!("'{}' is not an index", t.trim())))?;
        if i >= ds.len() {
            return Err(bad(format!("index {i} is past the {} images of the base split", ds.len())));
        }
        out.labels.push(ds.labels[i]);
        out.images.extend_from_slice(&ds.images[i * n..(i + 1) * n]);
    }
    if out.is_empty() {
        return Err(DataError::Empty { data: index_file.display().to_string(), split: split.into() });
    }
    Ok(out)
}

fn load_files(path: &Path, split: &str) -> Result<Dataset, DataError> {
    let (names, expected) = split_files(split);
    let mut ds = Dataset {
        images: vec![],
        labels: vec![],
        shape: [3, 32, 32],
        classes: 10,
        source: format!("{}:{split}", path.display()),
        class_names: class_names(path)?,
    };
    if path.is_file() {
        let mut found = archive_files(path, &names, MAX_ARCHIVE_BYTES)?;
        found.sort_by_key(|(n, _)| names.iter().position(|x| x == n));
        let missing: Vec<String> = names.iter().filter(|n| !found.iter().any(|(f, _)| f == *n)).cloned().collect();
        if !found.is_empty() && !missing.is_empty() {
            return Err(DataError::Incomplete { path: path.into(), split: split.into(), missing });
        }
        for (name, bytes) in &found {
            parse(&path.join(name), bytes, &mut ds)?;
        }
    } else {
        // A folder: the files themselves, or the archive's cifar-10-batches-bin/ inside it.
        let dir =
            if path.join("cifar-10-batches-bin").is_dir() { path.join("cifar-10-batches-bin") } else { path.into() };
        if !dir.is_dir() {
            return Err(DataError::Io { path: path.into(), cause: std::io::Error::from(std::io::ErrorKind::NotFound) });
        }
        let missing: Vec<String> = names.iter().filter(|n| !dir.join(n).is_file()).cloned().collect();
        if missing.len() < names.len() && !missing.is_empty() {
            return Err(DataError::Incomplete { path: dir, split: split.into(), missing });
        }
        for name in &names {
            let file = dir.join(name);
            if file.is_file() {
                let bytes = read_regular(&file, "CIFAR batch", MAX_FILE_BYTES)?;
                parse(&file, &bytes, &mut ds)?;
            }
        }
    }
    if ds.is_empty() {
        return Err(DataError::NoFiles { path: path.into(), split: split.into(), expected });
    }
    Ok(ds)
}

/// The files of the gzipped tar at `path` whose names are in `names` (the official archive:
/// `cifar-10-batches-bin/<name>.bin`), the whole stream decompressing to at most `limit` bytes.
fn archive_files(path: &Path, names: &[String], limit: u64) -> Result<Vec<(String, Vec<u8>)>, DataError> {
    let (file, _) = crate::input::open_regular(path, "dataset archive", MAX_FILE_BYTES)?;
    let (stream, cap) = crate::input::Capped::new(flate2::read::GzDecoder::new(file), limit);
    let inflated = |what: &str, size: u64| DataError::Inflated { path: path.into(), what: what.into(), size, limit };
    // A read error after the cap was hit is the cap's doing, however the tar reader words it.
    let io = |cause: std::io::Error| {
        if cap.exceeded() {
            inflated("the archive", limit.saturating_add(1))
        } else {
            DataError::Io { path: path.into(), cause }
        }
    };
    let mut archive = tar::Archive::new(stream);
    let mut found: Vec<(String, Vec<u8>)> = vec![];
    let mut kept = 0u64;
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.file_name().map(|s| s.to_string_lossy().into_owned());
        if let Some(name) = name.filter(|n| names.contains(n)) {
            // The size the entry declares, checked before anything is allocated for it.
            let size = entry.header().size().map_err(io)?;
            kept = kept.saturating_add(size);
            if kept > limit {
                return Err(inflated(&name, size));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut bytes).map_err(io)?;
            found.push((name, bytes));
        }
    }
    Ok(found)
}

/// Class names from `batches.meta.txt` beside the batches (one per line), or CIFAR-10's.
fn class_names(path: &Path) -> Result<Vec<String>, DataError> {
    let file = path.join("batches.meta.txt");
    let from_file = if path.is_dir() && file.exists() { Some(read_text(&file)?) } else { None };
    let names: Vec<String> =
        from_file.iter().flat_map(|t| t.lines()).map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    Ok(if names.len() == 10 {
        names
    } else {
        crate::model::zoo::CIFAR10_LABELS.iter().map(|s| s.to_string()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped tar of one `name` holding `bytes`.
    fn tar_gz(name: &str, bytes: &[u8]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), bytes).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archives_stop_at_the_decompression_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz");
        // 4 MiB of zeros in a file that is not read (the stream still inflates through it):
        // under a 1 MiB cap, an error naming the archive; under 8 MiB, read through.
        std::fs::write(&path, tar_gz("readme.html", &vec![0u8; 4 << 20])).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 64 << 10, "the test archive is a small bomb");
        let names = vec!["test_batch.bin".to_string()];
        match archive_files(&path, &names, 1 << 20) {
            Err(DataError::Inflated { path: p, size, limit, .. }) => {
                assert_eq!((p, size, limit), (path.clone(), (1 << 20) + 1, 1 << 20))
            }
            other => panic!("{other:?}"),
        }
        assert!(archive_files(&path, &names, 8 << 20).unwrap().is_empty());
        // A kept file larger than the cap is refused by its declared size.
        std::fs::write(&path, tar_gz("test_batch.bin", &vec![0u8; 2 << 20])).unwrap();
        match archive_files(&path, &names, 1 << 20) {
            Err(DataError::Inflated { what, size, .. }) => {
                assert_eq!((what.as_str(), size), ("test_batch.bin", 2 << 20))
            }
            other => panic!("{other:?}"),
        }
    }
}
