//! Options shared by several subcommands, and model loading.

use crate::model::{weights, zoo, Net};
use anyhow::{bail, Context};
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// Which compute device runs burn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceKind {
    /// The CPU, with the fastest backend this pare has: libtorch when built with `--features
    /// libtorch` (PyTorch's kernels, 1.2–1.3× faster training), burn-flex otherwise.
    Cpu,
    /// burn-flex on the CPU (pure Rust), whatever the build.
    Flex,
    /// libtorch on the CPU; needs a pare built with `--features libtorch`.
    Libtorch,
    /// burn-wgpu on the default GPU adapter (Vulkan, Metal or DX12). On a machine without a
    /// GPU, Mesa's lavapipe (`mesa-vulkan-drivers`) serves, slowly.
    Gpu,
}

impl DeviceKind {
    /// `cpu` resolved to the backend that serves it in this build.
    pub fn resolved(self) -> DeviceKind {
        match self {
            DeviceKind::Cpu if crate::libtorch::BUILT => DeviceKind::Libtorch,
            DeviceKind::Cpu => DeviceKind::Flex,
            DeviceKind::Flex | DeviceKind::Libtorch | DeviceKind::Gpu => self,
        }
    }

    /// The backend that serves this device, for reports.
    pub fn backend_name(self) -> &'static str {
        match self.resolved() {
            DeviceKind::Cpu | DeviceKind::Flex => "pare/burn-flex",
            DeviceKind::Libtorch => "pare/burn-tch",
            DeviceKind::Gpu => "pare/burn-wgpu",
        }
    }

    /// The burn device, opened and checked: an unusable GPU is an error here, not a panic later.
    pub fn device(self) -> anyhow::Result<Device> {
        match self.resolved() {
            DeviceKind::Cpu | DeviceKind::Flex => Ok(Device::flex()),
            DeviceKind::Libtorch => Ok(crate::libtorch::open()?),
            DeviceKind::Gpu => Ok(crate::gpu::open()?),
        }
    }
}

/// `--out` checked before any work: a folder (`prune`, `pipeline`) or a file (`train`,
/// `export`) that cannot be written fails here, named, not after an epoch.
pub fn check_out(path: &std::path::Path, is_dir: bool) -> anyhow::Result<()> {
    let probe = if is_dir { crate::atomic::check_writable_dir(path) } else { crate::atomic::check_writable_file(path) };
    probe.with_context(|| format!("--out {}: cannot write there", path.display()))
}

/// A count that must be at least 1 (`--limit`, `--samples`, `--batch-size`): 0 would do no
/// work and report an empty result as if it were one, or divide by zero.
pub fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("must be a whole number of at least 1 ({e})")),
    }
}

/// A number parsed for a range check: NaN and infinities are refused with the same words as
/// any other value outside the range.
fn number(s: &str, range: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) | Err(_) => Err(format!("must be {range}")),
    }
}

/// A finite number above zero (learning rates, temperatures, standard deviations).
pub fn finite_positive(s: &str) -> Result<f64, String> {
    const RANGE: &str = "a finite number above 0";
    number(s, RANGE).and_then(|v| if v > 0.0 { Ok(v) } else { Err(format!("must be {RANGE}")) })
}

/// A finite number of at least zero (weight decay, a ridge, an allowed accuracy drop).
pub fn non_negative(s: &str) -> Result<f64, String> {
    const RANGE: &str = "a finite number of at least 0";
    number(s, RANGE).and_then(|v| if v >= 0.0 { Ok(v) } else { Err(format!("must be {RANGE}")) })
}

/// A fraction strictly between 0 and 1 (`--target-flops`: 0 prunes nothing, 1 everything).
pub fn fraction_open(s: &str) -> Result<f64, String> {
    in_range(s, 0.0, false, 1.0, false)
}

/// A fraction in [0, 1], both ends included (`--mixup`, `--distill-weight`).
pub fn fraction(s: &str) -> Result<f64, String> {
    in_range(s, 0.0, true, 1.0, true)
}

/// A fraction in [0, 1) (`--min-width`, `--momentum`, `--label-smoothing`: 1 is degenerate).
pub fn fraction_below_one(s: &str) -> Result<f64, String> {
    in_range(s, 0.0, true, 1.0, false)
}

/// A fraction in (0, 1] (`--iteration-share`: 0 would never fine-tune).
pub fn fraction_above_zero(s: &str) -> Result<f64, String> {
    in_range(s, 0.0, false, 1.0, true)
}

/// A number in a range, each end included or not; the error names the range.
pub fn in_range(s: &str, lo: f64, lo_in: bool, hi: f64, hi_in: bool) -> Result<f64, String> {
    let range = format!("{}{lo}, {hi}{}", if lo_in { '[' } else { '(' }, if hi_in { ']' } else { ')' });
    let what = if (lo, hi) == (0.0, 1.0) { format!("a fraction in {range}") } else { format!("a number in {range}") };
    let v = number(s, &what)?;
    let above = if lo_in { v >= lo } else { v > lo };
    let below = if hi_in { v <= hi } else { v < hi };
    if above && below {
        Ok(v)
    } else {
        Err(format!("must be {what}"))
    }
}

/// `--max-accuracy-drop`: top-1 points in [0, 100].
pub fn accuracy_points(s: &str) -> Result<f64, String> {
    in_range(s, 0.0, true, 100.0, true)
}

/// `--calib-percentile`: the central share of values kept, in [50, 100] percent.
pub fn percentile(s: &str) -> Result<f64, String> {
    in_range(s, 50.0, true, 100.0, true)
}

/// `--iba-active-threshold`: a share of samples in [0, 1) (1 would mask every element), or -1
/// (no mask).
pub fn threshold_or_off(s: &str) -> Result<f64, String> {
    const RANGE: &str = "a fraction in [0, 1), or -1 to disable the mask";
    match number(s, RANGE) {
        Ok(v) if v == -1.0 || (0.0..1.0).contains(&v) => Ok(v),
        Ok(_) | Err(_) => Err(format!("must be {RANGE}")),
    }
}

/// Text from a model or dataset (labels, layer and model names from ONNX or checkpoint
/// metadata, class folder names) made safe to print: every control character but the newline
/// is written as an escape (`\u{1b}`), so an ESC sequence hidden in a label cannot move the
/// cursor, retitle the terminal or hide output.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() && c != '\n' { c.escape_unicode().to_string() } else { c.to_string() })
            .collect(),
    )
}

/// Refuses a model whose classifier has another number of classes than the data: training or
/// scoring would index past its outputs, and an evaluation would count nothing right.
pub fn check_classes(net: &crate::model::Net, ds: &crate::data::Dataset) -> anyhow::Result<()> {
    Ok(crate::train::check_classes(&net.arch, ds)?)
}

/// How to get a model: a zoo name, weights, or a checkpoint.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Zoo model: tiny, resnet8, resnet20/32/44/56, vgg16. Optional with a checkpoint.
    #[arg(long)]
    pub model: Option<String>,
    /// Weights: a pare checkpoint (architecture inside) or a safetensors file in PyTorch
    /// naming (then --model is required).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceKind,
    /// Input normalisation the model was trained with, per channel, on pixels scaled to [0, 1]
    /// (torchvision's convention): `--mean 0.485,0.456,0.406`. Sets or overrides the model's;
    /// stored in checkpoints and `.pare` files, so the board applies the same. Raw 0..255
    /// inputs: `--mean 0,0,0 --std 0.00392156862745098` (1/255).
    #[arg(long, allow_hyphen_values = true)]
    pub mean: Option<Channels>,
    /// Input standard deviation per channel (see --mean), each above 0; one value applies to
    /// every channel.
    #[arg(long, value_parser = positive_channels, allow_hyphen_values = true)]
    pub std: Option<Channels>,
}

/// One number per input channel, written `R,G,B` (or one value for all channels).
#[derive(Debug, Clone, PartialEq)]
pub struct Channels(pub Vec<f32>);

impl std::str::FromStr for Channels {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let v: Result<Vec<f32>, _> = s.split(',').map(|t| t.trim().parse::<f32>()).collect();
        match v {
            Ok(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => Ok(Channels(v)),
            _ => Err(format!("'{s}' is not a comma-separated list of numbers (e.g. 0.485,0.456,0.406)")),
        }
    }
}

/// [`Channels`] that must all be above zero (`--std`: a division).
pub fn positive_channels(s: &str) -> Result<Channels, String> {
    let c: Channels = s.parse()?;
    if c.0.iter().all(|&x| x > 0.0) {
        Ok(c)
    } else {
        Err("must be positive: one number above 0 per channel".into())
    }
}

/// Where data comes from.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// `synthetic` (built in); a CIFAR-10 folder or `cifar-10-binary.tar.gz`; Oxford Flowers-102
    /// in its official layout (`jpg/`, `imagelabels.mat`, `setid.mat`: splits train, val, test,
    /// trainval); or an image folder, `root/<split>/<class>/*.jpg|png` or `root/<class>/…`
    /// (splits all, train = 80 %, test or val = the other 20 %), classes named by folder.
    #[arg(long, default_value = "synthetic")]
    pub data: String,
    /// Input resolution for image datasets: shorter side resized, centre cropped to N×N
    /// [default: the model's input, else 64]. Decoded images are cached under $PARE_CACHE.
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    pub input_size: Option<usize>,
}

impl DataArgs {
    /// `--data` as an input that no output may overwrite (a dataset archive or folder).
    pub fn input(&self) -> (&'static str, &Path) {
        ("--data", Path::new(&self.data))
    }

    /// A split at --input-size (or the dataset's default).
    pub fn load(&self, split: &str) -> Result<crate::data::Dataset, crate::data::DataError> {
        crate::data::load_sized(&self.data, split, self.input_size)
    }

    /// The split the fine-tunes run on while distilling: `explicit` (`--distill-split`), else
    /// the larger split `train_split` was drawn from when the dataset has one (the teacher labels
    /// every image, so JPEG-recovered ones teach as well as exact ones), else `train_split`.
    pub fn distill_split(&self, train_split: &str, explicit: Option<&str>) -> String {
        match explicit {
            Some(s) => s.to_string(),
            None => crate::data::superset_split(&self.data, train_split).unwrap_or_else(|| train_split.to_string()),
        }
    }

    /// A split at --input-size, else at the model's input size `size`.
    pub fn load_at(&self, split: &str, size: usize) -> Result<crate::data::Dataset, crate::data::DataError> {
        crate::data::load_sized(&self.data, split, self.input_size.or(Some(size)))
    }
}

impl ModelArgs {
    /// `--weights`, when given, as an input that no output may overwrite.
    pub fn inputs(&self) -> Vec<(&'static str, &Path)> {
        self.weights.iter().map(|w| ("--weights", w.as_path())).collect()
    }

    /// The model for data of `classes` classes at `size`×`size`: the checkpoint when given,
    /// else the zoo model built for that data (ImageNet stems above 32×32).
    pub fn load_for(&self, device: &Device, classes: usize, size: usize) -> anyhow::Result<Net> {
        match (&self.model, &self.weights) {
            (Some(name), None) => {
                let arch = crate::model::zoo::for_input(name, classes, size).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown model '{name}' (or no layout of it at {size}×{size}); available: {}",
                        crate::model::zoo::NAMES.join(", ")
                    )
                })?;
                self.normalised(Net::init(&arch, device).map_err(anyhow::Error::msg)?)
            }
            _ => self.load(device),
        }
    }

    /// The model with --mean/--std applied.
    fn normalised(&self, net: Net) -> anyhow::Result<Net> {
        let (mean, std) = (self.mean.as_ref().map(|m| m.0.as_slice()), self.std.as_ref().map(|s| s.0.as_slice()));
        Ok(crate::pipeline::normalised(net, mean, std)?)
    }

    /// Loads or initialises the model on `device`.
    pub fn load(&self, device: &Device) -> anyhow::Result<Net> {
        Ok(self.load_with_metadata(device)?.0)
    }

    /// [`ModelArgs::load`], also returning the weights file's metadata (empty without one).
    pub fn load_with_metadata(&self, device: &Device) -> anyhow::Result<(Net, weights::CheckpointMeta)> {
        let (net, meta) = self.load_raw(device)?;
        Ok((self.normalised(net)?, meta))
    }

    fn load_raw(&self, device: &Device) -> anyhow::Result<(Net, weights::CheckpointMeta)> {
        if let Some(path) =
            self.weights.as_ref().filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx")))
        {
            // The graph is the architecture: --model is not needed (and not checked).
            let net = crate::model::onnx::import_file(path, device)
                .with_context(|| format!("importing {}", path.display()))?;
            return Ok((net, weights::CheckpointMeta::default()));
        }
        match (&self.model, &self.weights) {
            (model, Some(path)) => {
                let fallback = model.as_deref().map(zoo_arch).transpose()?;
                let (net, meta) = weights::load_file(path, fallback.as_ref(), device).map_err(|e| match e {
                    weights::WeightsError::NoArch { path } => anyhow::anyhow!(
                        "{} has plain weights without an architecture: say which with --model",
                        path.display()
                    ),
                    e => e.into(),
                })?;
                if let Some(m) = model {
                    if &net.arch.name != m {
                        bail!("{} holds a {} checkpoint, not {m}", path.display(), net.arch.name);
                    }
                }
                Ok((net, meta))
            }
            (Some(name), None) => Ok((
                Net::init(&zoo_arch(name)?, device).map_err(anyhow::Error::msg)?,
                weights::CheckpointMeta::default(),
            )),
            (None, None) => bail!("give --model NAME, --weights FILE, or both"),
        }
    }
}

/// The zoo architecture called `name` (10 classes).
pub fn zoo_arch(name: &str) -> anyhow::Result<crate::model::Arch> {
    zoo::by_name(name, 10).with_context(|| format!("unknown model '{name}'; the zoo has: {}", zoo::NAMES.join(", ")))
}

/// A run stopped by Ctrl-C after saving what it had: `pare` exits 130 (128 + SIGINT), as shells
/// expect of an interrupted command, so `pare … && deploy` does not go on with half a result.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// The exit status for an error: 130 for [`Interrupted`], 1 otherwise.
pub fn exit_status(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<Interrupted>().is_some() {
        130
    } else {
        1
    }
}

/// The criteria's settings on the command line, shared by `score`, `prune` and `pipeline`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScorerArgs {
    /// Attribution: optimisation steps of the bottleneck.
    #[arg(long, default_value_t = crate::prune::criteria::IbaConfig::default().steps, value_parser = positive, allow_negative_numbers = true)]
    pub iba_steps: usize,
    /// Attribution: the bottleneck's Adam learning rate.
    #[arg(long, default_value_t = crate::prune::criteria::IbaConfig::default().lr, value_parser = finite_positive, allow_negative_numbers = true)]
    pub iba_lr: f64,
    /// Attribution: β, the information term's weight.
    #[arg(long, default_value_t = crate::prune::criteria::IbaConfig::default().beta, value_parser = finite_positive, allow_negative_numbers = true)]
    pub iba_beta: f64,
    /// Attribution: floor of the per-element std [default: 0.01, the IBA authors' value].
    #[arg(long, value_parser = finite_positive, allow_negative_numbers = true)]
    pub iba_min_std: Option<f64>,
    /// Attribution: elements non-zero in at most this share of calibration samples get no
    /// capacity [default: 0.01; 0 keeps every element that was ever non-zero, -1 disables].
    #[arg(long, value_parser = threshold_or_off, allow_negative_numbers = true)]
    pub iba_active_threshold: Option<f64>,
    /// SSS: proximal-gradient steps on the calibration set.
    #[arg(long, default_value_t = crate::prune::criteria::SssConfig::default().steps, value_parser = positive, allow_negative_numbers = true)]
    pub sss_steps: usize,
    /// SSS: learning rate.
    #[arg(long, default_value_t = crate::prune::criteria::SssConfig::default().lr, value_parser = finite_positive, allow_negative_numbers = true)]
    pub sss_lr: f64,
    /// SSS: λ, the L1 weight on the BatchNorm scales.
    #[arg(long, default_value_t = crate::prune::criteria::SssConfig::default().lambda, value_parser = non_negative, allow_negative_numbers = true)]
    pub sss_lambda: f64,
    /// Variational: gate-training steps on the calibration set.
    #[arg(long, default_value_t = crate::prune::criteria::VariationalConfig::default().steps, value_parser = positive, allow_negative_numbers = true)]
    pub variational_steps: usize,
    /// Variational: learning rate of the gates.
    #[arg(long, default_value_t = crate::prune::criteria::VariationalConfig::default().lr, value_parser = finite_positive, allow_negative_numbers = true)]
    pub variational_lr: f64,
    /// Variational: the prior's standard deviation (smaller pulls harder toward zero).
    #[arg(long, default_value_t = crate::prune::criteria::VariationalConfig::default().prior_std, value_parser = finite_positive, allow_negative_numbers = true)]
    pub variational_prior_std: f64,
}

impl ScorerArgs {
    /// The settings these flags give; `per_layer` is `score`'s own IBA mode flag.
    pub fn settings(&self, per_layer: bool) -> crate::prune::criteria::ScorerSettings {
        use crate::prune::criteria::{IbaConfig, ScorerSettings, SssConfig, VariationalConfig};
        let iba = IbaConfig::default();
        ScorerSettings {
            iba: IbaConfig {
                steps: self.iba_steps,
                lr: self.iba_lr,
                beta: self.iba_beta,
                per_layer,
                min_std: self.iba_min_std.unwrap_or(iba.min_std),
                active_threshold: self.iba_active_threshold.unwrap_or(iba.active_threshold),
            },
            sss: SssConfig { steps: self.sss_steps, lr: self.sss_lr, lambda: self.sss_lambda, ..SssConfig::default() },
            variational: VariationalConfig {
                steps: self.variational_steps,
                lr: self.variational_lr,
                prior_std: self.variational_prior_std,
                ..VariationalConfig::default()
            },
        }
    }
}
