//! Datasets: CIFAR-10 binary files (folder or the official `.tar.gz`), Oxford Flowers-102 in
//! its official layout, any image folder, a deterministic synthetic set for download-free runs,
//! and batching with augmentation.

mod batch;
mod cifar;
pub mod fetch;
pub mod flowers;
pub mod folder;
pub mod images;
pub mod mat5;
mod synthetic;

pub use batch::{batch, Augment};
pub use cifar::{load_cifar, DataError, MAX_ARCHIVE_BYTES};
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

    /// `n` images spread evenly over the set (image ⌊i·len/n⌋ for i < n), or all: a sample of
    /// a split stored class by class (Flowers-102's test ids) that still covers its classes.
    pub fn spread(self, n: usize) -> Self {
        let len = self.len();
        if n >= len {
            return self;
        }
        let size = self.image_bytes();
        let picks: Vec<usize> = (0..n).map(|i| i * len / n).collect();
        Dataset {
            images: picks.iter().flat_map(|&i| self.images[i * size..(i + 1) * size].iter().copied()).collect(),
            labels: picks.iter().map(|&i| self.labels[i]).collect(),
            ..self
        }
    }

    /// A copy of the first `n` images (or all), leaving `self` as it is.
    pub fn head(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.image_bytes()].to_vec(),
            labels: self.labels[..n].to_vec(),
            shape: self.shape,
            classes: self.classes,
            source: self.source.clone(),
            class_names: self.class_names.clone(),
        }
    }

    /// The first `n` images (or all).
    pub fn take(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * self.image_bytes());
        self.labels.truncate(n);
        self
    }
}

/// Input size of image datasets when neither `--input-size` nor a model says otherwise.
pub const DEFAULT_IMAGE_SIZE: usize = 64;

/// The larger split that `split` of the dataset at `data` was drawn from, if the dataset says
/// so (CIFAR's `train_lossless`, the bit-exact 7,728 of `train`'s 50,000 images).
pub fn superset_split(data: &str, split: &str) -> Option<String> {
    let path = std::path::Path::new(data);
    (path.is_dir() && !flowers::is_flowers(path)).then(|| cifar::superset(path, split)).flatten()
}

/// Loads `split` of the dataset at `data`: `synthetic` (built in) or a CIFAR-10 folder/archive,
/// at their native 32×32; image datasets at [`DEFAULT_IMAGE_SIZE`].
pub fn load(data: &str, split: &str) -> Result<Dataset, DataError> {
    load_sized(data, split, None)
}

/// [`load`] at `size`×`size` (image datasets are resized and centre-cropped to it; the 32×32
/// sets refuse any other size). A split without images is an error naming it, never a dataset
/// that every command would take for a real one (an accuracy of 0 % over nothing).
pub fn load_sized(data: &str, split: &str, size: Option<usize>) -> Result<Dataset, DataError> {
    match load_any(data, split, size)? {
        ds if ds.is_empty() => Err(DataError::Empty { data: data.into(), split: split.into() }),
        ds => Ok(ds),
    }
}

fn load_any(data: &str, split: &str, size: Option<usize>) -> Result<Dataset, DataError> {
    let path = std::path::Path::new(data);
    let fixed = |ds: Result<Dataset, DataError>| match (ds, size) {
        (Ok(ds), Some(s)) if s != ds.shape[1] => Err(DataError::Layout {
            path: path.into(),
            reason: format!("this dataset is {}×{}; --input-size {s} needs an image dataset", ds.shape[1], ds.shape[2]),
        }),
        (ds, _) => ds,
    };
    if data == "synthetic" {
        return fixed(synthetic(split));
    }
    let size = size.unwrap_or(DEFAULT_IMAGE_SIZE);
    if size == 0 || size > 1024 {
        return Err(DataError::Layout { path: path.into(), reason: format!("input size {size} is outside 1..=1024") });
    }
    if path.is_dir() && flowers::is_flowers(path) {
        return flowers::load_flowers(path, split, size);
    }
    let cifar_like = path.is_file()
        || path.join("data_batch_1.bin").exists()
        || path.join("test_batch.bin").exists()
        || path.join(format!("{split}.bin")).exists()
        || path.join(format!("{split}_indices.txt")).exists();
    if path.is_dir() && !cifar_like && folder::is_folder(path) {
        return folder::load_folder(path, split, size);
    }
    fixed(load_cifar(path, split))
}
