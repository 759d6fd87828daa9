//! The bundle: the files the check firmware embeds (model, samples, labels, host predictions and
//! raw outputs, arena size), written where the firmware build reads them (`PARE_BUNDLE`).

use super::error::io;
use super::FlashError;
use crate::data::Dataset;
use std::path::{Path, PathBuf};

/// Everything the firmware embeds.
pub struct Bundle {
    pub dir: PathBuf,
    pub samples: usize,
    pub arena: u32,
    pub model_bytes: usize,
}

/// Writes the bundle: model, HWC samples, labels, host-emulated predictions, arena size.
pub fn write_bundle(model: &[u8], ds: &Dataset, dir: &Path) -> Result<Bundle, FlashError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    let em = crate::emulate::emulate(model, ds)?;
    let rt = pare_device::Runtime::from_bytes(model)?;
    let samples: Vec<u8> = (0..ds.len()).flat_map(|i| ds.image_hwc(i)).collect();
    let expected: Vec<u8> = em.evaluation.predictions.iter().map(|&p| p as u8).collect();
    let files: [(&str, Vec<u8>); 6] = [
        ("model.pare", model.to_vec()),
        ("samples.bin", samples),
        ("labels.bin", ds.labels.clone()),
        ("expected.bin", expected),
        ("outputs.bin", em.raw_outputs.concat()),
        ("arena.txt", rt.arena_bytes().to_string().into_bytes()),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(path.display()))?;
    }
    Ok(Bundle { dir: dir.into(), samples: ds.len(), arena: rt.arena_bytes(), model_bytes: model.len() })
}
