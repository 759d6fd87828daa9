//! What a pipeline run is asked to do: [`PipelineRequest`], with the defaults of `pare
//! pipeline` in its [`Default`] (the command's flags take theirs from it).

use crate::budget::LatencyLimit;
use crate::model::Net;
use crate::prune::criteria::{Criterion, ScorerSettings};
use crate::prune::schedule::{Budget, StepSize};
use burn::tensor::Device;
use std::path::PathBuf;

/// The zoo model trained when no model is given.
pub const DEFAULT_MODEL: &str = "tiny";

/// Where the model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A model already loaded (a checkpoint or an ONNX import) on the request's device; its
    /// input size decides the datasets' resolution.
    Loaded(Net),
    /// A zoo model built for the training split's classes and resolution, then trained for
    /// [`PipelineRequest::epochs`].
    Zoo {
        /// A zoo name ([`crate::model::zoo::NAMES`]).
        name: String,
        /// Input normalisation per channel (one value: every channel); `None`: the zoo's.
        mean: Option<Vec<f32>>,
        /// Input standard deviation per channel, each above 0; `None`: the zoo's.
        std: Option<Vec<f32>>,
    },
}

/// Board budgets to prune to (`--max-latency`, `--max-arena`, `--max-flash`); none given:
/// prune to a FLOPs target instead.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BoardBudgets {
    /// Latency on the board, as a count, a time or a share of the unpruned model.
    pub max_latency: Option<LatencyLimit>,
    /// Largest activation arena (RAM) in bytes.
    pub max_arena: Option<u64>,
    /// Largest flash for the int8 model plus the runtime's code, in bytes.
    pub max_flash: Option<u64>,
}

impl BoardBudgets {
    /// Whether any budget is set.
    pub fn any(&self) -> bool {
        self.max_latency.is_some() || self.max_arena.is_some() || self.max_flash.is_some()
    }
}

/// One pipeline run: train (or take) a model, prune it with fine-tuning, export it as int8,
/// emulate it on the host, check it on a board and report, writing into `out`.
#[derive(Debug, Clone)]
pub struct PipelineRequest {
    pub model: ModelSource,
    /// The burn device that trains and fine-tunes.
    pub device: Device,
    /// Epochs when training a zoo model from scratch.
    pub epochs: usize,
    /// The dataset: `synthetic`, or a path ([`crate::data::load_sized`]).
    pub data: String,
    /// Input resolution for image datasets; `None`: the model's input, else the dataset's own.
    pub input_size: Option<usize>,
    /// Split for training and fine-tuning.
    pub train_split: String,
    /// Split the pruning run's fine-tunes draw from (the original model labels each image);
    /// `None`: the split `train_split` was drawn from when the dataset has one, else
    /// `train_split`.
    pub distill_split: Option<String>,
    /// Split for accuracy, host emulation and the board's samples.
    pub eval_split: String,
    /// Evaluate on the first this many images of `eval_split` only.
    pub eval_limit: Option<usize>,
    /// Calibration images (the first of `train`) for scoring and int8 quantisation.
    pub calib_samples: usize,
    pub criterion: Criterion,
    pub scorer: ScorerSettings,
    /// FLOPs reduction to reach, in (0, 1); `None`: 0.5 without board budgets, else none.
    pub target_flops: Option<f64>,
    pub budgets: BoardBudgets,
    /// Channels removed per iteration; `None`: [`crate::prune::schedule::PruneConfig::default_step`].
    pub step: Option<StepSize>,
    /// Fine-tuning budget of the pruning run; `None`: [`DEFAULT_BUDGET_EPOCHS`] epochs of the
    /// fine-tuning split, at most [`DEFAULT_BUDGET_STEPS`] steps.
    pub budget: Option<Budget>,
    /// The board for the check and for board budgets ([`crate::boards::BOARDS`]).
    pub board: String,
    /// Samples run on the board.
    pub samples: usize,
    /// Output folder: `model.pare`, `board.json`, `report.md`, plots, and the pruning run in
    /// `prune/`.
    pub out: PathBuf,
    /// Also write the summary as JSON here (docs/json.md).
    pub json: Option<PathBuf>,
}

/// The default fine-tuning budget: this many epochs of the fine-tuning split …
pub const DEFAULT_BUDGET_EPOCHS: usize = 9;
/// … but no more steps than this: on CIFAR's 50,000 images the README's resnet20 job stays
/// inside 10 minutes on 2 cores (3,600 steps took 10 min 6 s, −0.90 points; BENCHMARKS.md).
pub const DEFAULT_BUDGET_STEPS: usize = 3200;

impl Default for PipelineRequest {
    /// `pare pipeline`'s defaults: `tiny` trained for 3 epochs on the built-in synthetic data,
    /// attribution-pruned to half the FLOPs, checked on the default board over 100 samples.
    fn default() -> Self {
        PipelineRequest {
            model: ModelSource::Zoo { name: DEFAULT_MODEL.into(), mean: None, std: None },
            device: Device::flex(),
            epochs: 3,
            data: "synthetic".into(),
            input_size: None,
            train_split: "train".into(),
            distill_split: None,
            eval_split: "test".into(),
            eval_limit: None,
            calib_samples: 256,
            criterion: Criterion::Attribution,
            scorer: ScorerSettings::default(),
            target_flops: None,
            budgets: BoardBudgets::default(),
            step: None,
            budget: None,
            board: crate::boards::DEFAULT_BOARD.into(),
            samples: 100,
            out: PathBuf::from("runs/pipeline"),
            json: None,
        }
    }
}
