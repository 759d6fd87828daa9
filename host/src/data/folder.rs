//! A generic image folder: `root/<split>/<class>/*.jpg|png` (splits as folders), or
//! `root/<class>/*` (one pool: split `all` is everything, `train` every image but each class's
//! every fifth, `test`/`val` those fifths: a fixed 80/20 split). Classes are the sorted folder
//! names (over all split folders, so labels agree between splits); files are read in name order.

use super::{images, DataError, Dataset};
use std::path::{Path, PathBuf};

fn dirs(p: &Path) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(p).map_err(|cause| DataError::Io { path: p.into(), cause })?;
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    v.sort();
    Ok(v)
}

fn files(p: &Path) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(p).map_err(|cause| DataError::Io { path: p.into(), cause })?;
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file() && images::is_image(p)).collect();
    v.sort();
    Ok(v)
}

fn name(p: &Path) -> String {
    p.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// Whether `root` looks like an image folder (a sub-folder holding images, one or two levels down).
pub fn is_folder(root: &Path) -> bool {
    dirs(root).unwrap_or_default().iter().any(|d| {
        files(d).is_ok_and(|f| !f.is_empty())
            || dirs(d).unwrap_or_default().iter().any(|c| files(c).is_ok_and(|f| !f.is_empty()))
    })
}

/// Loads `split` at `size`×`size`.
pub fn load_folder(root: &Path, split: &str, size: usize) -> Result<Dataset, DataError> {
    let split_dir = root.join(split);
    let pooled = !split_dir.is_dir();
    // Class names: the class folders of the pool, or the union over every split folder.
    let mut classes: Vec<String> = if pooled {
        dirs(root)?.iter().map(|d| name(d)).collect()
    } else {
        let mut all = vec![];
        for s in dirs(root)? {
            all.extend(dirs(&s)?.iter().map(|d| name(d)));
        }
        all
    };
    classes.sort();
    classes.dedup();
    if classes.is_empty() {
        return Err(DataError::Layout { path: root.into(), reason: "no class folders".into() });
    }
    if classes.len() > 256 {
        return Err(DataError::Layout { path: root.into(), reason: format!("{} classes; at most 256", classes.len()) });
    }
    let mut list = vec![];
    for (label, class) in classes.iter().enumerate() {
        let dir = if pooled { root.join(class) } else { split_dir.join(class) };
        if !dir.is_dir() {
            continue;
        }
        let f = files(&dir)?;
        let keep = |i: usize| match (pooled, split) {
            (false, _) | (true, "all") => true,
            (true, "train") => i % 5 != 4,
            (true, "test" | "val") => i % 5 == 4,
            _ => false,
        };
        if pooled && !matches!(split, "all" | "train" | "test" | "val") {
            return Err(DataError::UnknownNamedSplit {
                path: root.into(),
                split: split.into(),
                known: "all, train (80 %), test or val (the other 20 %), or a split folder".into(),
            });
        }
        list.extend(f.into_iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, p)| (p, label as u8)));
    }
    if list.is_empty() {
        return Err(DataError::NoFiles {
            path: root.into(),
            split: split.into(),
            expected: "*.jpg, *.jpeg or *.png in class folders".into(),
        });
    }
    let n = classes.len();
    images::load(&list, size, n, classes, format!("{} {split} ({size}×{size})", root.display()))
}
