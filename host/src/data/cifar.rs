//! CIFAR-10 binary format: records of 1 label byte + 3072 pixel bytes (R, G, B planes).
//! Splits: `train` = `data_batch_*.bin`, `test` = `test_batch.bin`, any other name = `NAME.bin`;
//! where `NAME.bin` is absent but `NAME_indices.txt` lists original indices (one per line), the
//! split is those images of the split named before the first `_` (e.g. `train_lossless`: the
//! bit-exact training images of `../shared/data/cifar10`).
//! Reads a folder or the official `cifar-10-binary.tar.gz` directly.

use super::Dataset;
use std::io::Read;
use std::path::{Path, PathBuf};

const RECORD: usize = 3073;

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

/// The images of `ds` listed in `index_file`, in file order.
fn select(ds: Dataset, index_file: &Path, split: &str) -> Result<Dataset, DataError> {
    let text = std::fs::read_to_string(index_file).map_err(|e| DataError::Io { path: index_file.into(), cause: e })?;
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
        class_names: class_names(path),
    };
    let io = |e| DataError::Io { path: path.into(), cause: e };
    if path.is_file() {
        // The official archive: cifar-10-batches-bin/<name>.bin inside a gzipped tar.
        let file = std::fs::File::open(path).map_err(io)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut found: Vec<(String, Vec<u8>)> = vec![];
        for entry in archive.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            let name = entry.path().map_err(io)?.file_name().map(|s| s.to_string_lossy().into_owned());
            if let Some(name) = name.filter(|n| names.contains(n)) {
                let mut bytes = vec![];
                entry.read_to_end(&mut bytes).map_err(io)?;
                found.push((name, bytes));
            }
        }
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
                let bytes = std::fs::read(&file).map_err(|e| DataError::Io { path: file.clone(), cause: e })?;
                parse(&file, &bytes, &mut ds)?;
            }
        }
    }
    if ds.is_empty() {
        return Err(DataError::NoFiles { path: path.into(), split: split.into(), expected });
    }
    Ok(ds)
}

/// Class names from `batches.meta.txt` beside the batches (one per line), or CIFAR-10's.
fn class_names(path: &Path) -> Vec<String> {
    let from_file = path.is_dir().then(|| std::fs::read_to_string(path.join("batches.meta.txt")).ok()).flatten();
    let names: Vec<String> =
        from_file.iter().flat_map(|t| t.lines()).map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() == 10 {
        names
    } else {
        crate::model::zoo::CIFAR10_LABELS.iter().map(|s| s.to_string()).collect()
    }
}
