//! Datasets: CIFAR-10 binary files (folder or the official `.tar.gz`), a deterministic
//! synthetic set for download-free runs, and batching with augmentation.

mod batch;
mod cifar;
pub mod fetch;
mod synthetic;

pub use batch::{batch, Augment};
pub use cifar::{load_cifar, DataError};
pub use synthetic::synthetic;

/// Images as `u8`, channel-planar per image (`[n][c][h][w]`, the CIFAR record order).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub shape: [usize; 3],
    pub classes: usize,
    /// Where it came from, for reports.
    pub source: String,
    /// One name per class, for reports (and for a model trained from scratch on this data).
    pub class_names: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_bytes(&self) -> usize {
        self.shape.iter().product()
    }

    /// Image `i`, channel-planar.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_bytes();
        &self.images[i * n..(i + 1) * n]
    }

    /// Image `i` as HWC (interleaved) pixels, the layout devices take.
    pub fn image_hwc(&self, i: usize) -> Vec<u8> {
        let [c, h, w] = self.shape;
        let img = self.image(i);
        let mut out = vec![0u8; c * h * w];
        for ch in 0..c {
            for p in 0..h * w {
                out[p * c + ch] = img[ch * h * w + p];
            }
        }
        out
    }

    /// The first `n` images (or all).
    pub fn take(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * self.image_bytes());
        self.labels.truncate(n);
        self
    }
}

/// Loads `split` of the dataset at `data`: `synthetic` (built in) or a CIFAR-10 folder/archive.
pub fn load(data: &str, split: &str) -> Result<Dataset, DataError> {
    if data == "synthetic" {
        return synthetic(split);
    }
    load_cifar(std::path::Path::new(data), split)
}
