//! A generic image folder: `root/<split>/<class>/*.jpg|png` (splits as folders), or
//! `root/<class>/*` (one pool: split `all` is everything, `train` every image but each class's
//! every fifth, `test`/`val` those fifths: a fixed 80/20 split). Classes are the sorted folder
//! names (over all split folders, so labels agree between splits); files are read in name order.
//! A folder name need not be UTF-8: every distinct folder is a distinct class (its report name
//! shows bytes that are not UTF-8 as `\xNN`).

use super::{images, DataError, Dataset};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The entries of folder `p` passing `keep`, sorted; an entry that cannot be read is an error,
/// never a silent gap.
fn entries(p: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, DataError> {
    let io = |cause| DataError::Io { path: p.into(), cause };
    let mut v = vec![];
    for e in std::fs::read_dir(p).map_err(io)? {
        let path = e.map_err(io)?.path();
        if keep(&path) {
            v.push(path);
        }
    }
    v.sort();
    Ok(v)
}

fn dirs(p: &Path) -> Result<Vec<PathBuf>, DataError> {
    entries(p, |p| p.is_dir())
}

fn files(p: &Path) -> Result<Vec<PathBuf>, DataError> {
    entries(p, |p| p.is_file() && images::is_image(p))
}

fn name(p: &Path) -> OsString {
    p.file_name().map_or_else(OsString::new, OsStr::to_os_string)
}

/// A folder name for reports: as is when it is UTF-8, else its valid parts with every other byte
/// as `\xNN` (distinct names stay distinct, where a lossy conversion would make them all `�`).
pub fn display_name(name: &OsStr) -> String {
    if let Some(s) = name.to_str() {
        return s.to_string();
    }
    let mut out = String::new();
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
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
    let mut classes: Vec<OsString> = if pooled {
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
    let class_names: Vec<String> = classes.iter().map(|c| display_name(c)).collect();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = class_names.iter().find(|n| !seen.insert(n.as_str())) {
        // Two folders whose names differ only in how they are shown (`a\xFF` spelled out and an
        // actual 0xFF byte): the reports could not tell them apart.
        return Err(DataError::Layout {
            path: root.into(),
            reason: format!("two class folders both read as `{twice}`"),
        });
    }
    // Images beside the class folders have no class: refused, not left out.
    let top = if pooled { root.to_path_buf() } else { split_dir.clone() };
    if let Some(stray) = files(&top)?.first() {
        return Err(DataError::Layout {
            path: stray.clone(),
            reason: "an image outside any class folder (each image goes in <class>/)".into(),
        });
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
    images::load(&list, size, n, class_names, format!("{} {split} ({size}×{size})", root.display()))
}
