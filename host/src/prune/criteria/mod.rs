//! Filter importance. Every criterion returns one score per output filter of every conv node
//! (keyed by node index); [`normalize`] and [`group_scores`] turn them into per-space scores.
//!
//! Scoring runs in inference mode (BatchNorm running statistics) on calibration images in
//! dataset order without augmentation; L is the batch-mean cross-entropy.
//!
//! One file per criterion (`taylor.rs` holds both Taylor variants); `normalize.rs` holds the
//! normalisation per layer and the reduction per space, `spearman.rs` the rank statistics,
//! `support.rs` what the criteria share. This file is the dispatch: [`Criterion`] and
//! [`score`].

mod attribution;
mod bn_scale;
mod l1;
mod normalize;
mod random;
mod spearman;
mod sss;
mod support;
mod taylor;
mod variational;

pub use attribution::{bottleneck_node, capacity, capacity_grad, IbaConfig, SiteStats};
pub use normalize::{group_scores, normalize, GroupReduce, Normalize};
pub use spearman::spearman;
pub use sss::{soft_threshold, SssConfig};
pub use variational::{gaussian_kl, variational_objective, VariationalConfig};

use crate::data::Dataset;
use crate::model::Net;
use burn::tensor::Device;
use std::collections::BTreeMap;

/// Importance criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// Information Bottleneck Attribution (Schulz et al. 2020): bits per filter.
    Attribution,
    /// |mean over (n, h, w) of a·∂L/∂a| per batch, averaged (Molchanov et al. 2017).
    TaylorGuided,
    /// Per sample (Σ_hw a·∂L_n/∂a)², averaged (Molchanov et al. 2019).
    Taylor,
    /// Σ|W| of the filter (Li et al. 2017).
    L1,
    /// |γ| of the BatchNorm (network slimming).
    BnScale,
    /// Uniform random, seeded.
    Random,
    /// Variational channel saliency, after Zhao et al. 2019: a Gaussian gate per channel on
    /// each conv output, learned by reparameterised samples against a zero-mean Gaussian prior
    /// on the calibration set (weights fixed); a channel's score is its gate's signal-to-noise
    /// ratio μ²/σ², low for channels the loss lets the prior pull to zero.
    Variational,
    /// Sparse structure selection (Huang & Wang 2018): the BatchNorm scales trained with an L1
    /// penalty by proximal gradient (soft-thresholding after each step) on the calibration
    /// set; the scales' magnitudes afterwards, channels driven to zero scoring lowest.
    Sss,
}

impl Criterion {
    pub fn name(self) -> &'static str {
        match self {
            Criterion::Attribution => "attribution",
            Criterion::TaylorGuided => "taylor-guided",
            Criterion::Taylor => "taylor",
            Criterion::L1 => "l1",
            Criterion::BnScale => "bn-scale",
            Criterion::Random => "random",
            Criterion::Sss => "sss",
            Criterion::Variational => "variational",
        }
    }

    /// L2 normalisation per layer is the default for all but `taylor`, `sss` and `variational`.
    pub fn default_normalize(self) -> Normalize {
        // SSS thresholds its scales globally, as the method does; Taylor's scores are already
        // on one scale.
        if matches!(self, Criterion::Taylor | Criterion::Sss | Criterion::Variational) {
            Normalize::None
        } else {
            Normalize::L2
        }
    }
}

/// The criteria's own settings, one value for `score`, `prune` and `pipeline` (and recorded in
/// a prune run's state, so `--resume` scores as the run began).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ScorerSettings {
    pub iba: IbaConfig,
    pub sss: SssConfig,
    pub variational: VariationalConfig,
}

/// Scoring inputs.
pub struct ScoreConfig<'a> {
    pub criterion: Criterion,
    pub calib: &'a Dataset,
    pub batch_size: usize,
    pub seed: u64,
    pub iba: IbaConfig,
    pub sss: SssConfig,
    pub variational: VariationalConfig,
}

/// Raw scores: conv node index → one score per filter.
pub type Scores = BTreeMap<usize, Vec<f64>>;

/// Scores every filter of every conv node.
pub fn score(net: &Net, cfg: &ScoreConfig<'_>, device: &Device) -> Scores {
    match cfg.criterion {
        Criterion::L1 => l1::l1(net),
        Criterion::BnScale => bn_scale::bn_scale(net),
        Criterion::Random => random::random(net, cfg.seed),
        Criterion::TaylorGuided | Criterion::Taylor => taylor::taylor(net, cfg, device),
        Criterion::Attribution => attribution::attribution(net, cfg, device),
        Criterion::Sss => sss::sss(net, cfg, device),
        Criterion::Variational => variational::variational(net, cfg, device),
    }
}
