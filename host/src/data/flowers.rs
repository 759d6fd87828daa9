//! Oxford Flowers-102 in its official layout: `jpg/image_NNNNN.jpg`, labels 1..102 in
//! `imagelabels.mat` (variable `labels`), the split in `setid.mat` (`trnid`, `valid`, `tstid`,
//! 1-based image ids). Splits `train`, `val`, `test`, and `trainval` (train then val). The
//! 64×64 thumbnails of `../shared/data/flowers102-64` and the full-resolution release read alike.

use super::{images, mat5, DataError, Dataset};
use std::path::Path;

/// Whether `root` holds the official layout.
pub fn is_flowers(root: &Path) -> bool {
    root.join("jpg").is_dir() && root.join("imagelabels.mat").is_file() && root.join("setid.mat").is_file()
}

fn mat(path: &Path) -> Result<std::collections::BTreeMap<String, mat5::Matrix>, DataError> {
    let bytes = crate::input::read_regular(path, "MAT-file", mat5::MAX_BYTES)?;
    mat5::read(&bytes).map_err(|cause| DataError::Mat { path: path.into(), cause })
}

/// Image ids (1-based) and labels (0-based) of a split.
pub fn split_ids(root: &Path, split: &str) -> Result<Vec<(usize, u8)>, DataError> {
    let (lp, sp) = (root.join("imagelabels.mat"), root.join("setid.mat"));
    let labels = mat5::integers(&mat(&lp)?, "labels").map_err(|cause| DataError::Mat { path: lp.clone(), cause })?;
    let set = mat(&sp)?;
    let ids = |v: &str| mat5::integers(&set, v).map_err(|cause| DataError::Mat { path: sp.clone(), cause });
    let ids = match split {
        "train" => ids("trnid")?,
        "val" => ids("valid")?,
        "test" => ids("tstid")?,
        "trainval" => [ids("trnid")?, ids("valid")?].concat(),
        _ => {
            return Err(DataError::UnknownNamedSplit {
                path: root.into(),
                split: split.into(),
                known: "train, val, test or trainval".into(),
            })
        }
    };
    ids.iter()
        .map(|&id| {
            let l = id.checked_sub(1).and_then(|i| labels.get(i)).copied();
            match l {
                Some(l @ 1..=102) => Ok((id, (l - 1) as u8)),
                _ => Err(DataError::Layout {
                    path: lp.clone(),
                    reason: format!("image id {id} has no label in 1..=102 (labels has {} entries)", labels.len()),
                }),
            }
        })
        .collect()
}

/// A split at `size`×`size`.
pub fn load_flowers(root: &Path, split: &str, size: usize) -> Result<Dataset, DataError> {
    let files: Vec<_> = split_ids(root, split)?
        .into_iter()
        .map(|(id, l)| (root.join("jpg").join(format!("image_{id:05}.jpg")), l))
        .collect();
    let names = (1..=102).map(|c| format!("class {c}")).collect();
    images::load(&files, size, 102, names, format!("Flowers-102 {split} ({}, {size}×{size})", root.display()))
}
