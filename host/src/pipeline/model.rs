//! The pipeline's first stage: its datasets, and the model: the one given, or a zoo model built
//! for the data and trained on the training split.

use super::{ModelSource, PipelineError, PipelineRequest};
use crate::data::Dataset;
use crate::model::Net;
use crate::train::{check_classes, train, TrainConfig};
use burn::module::Module;

/// The model to prune and the data it was trained and is evaluated on.
pub(super) struct Prepared {
    pub net: Net,
    pub train: Dataset,
    pub eval: Dataset,
}

/// Loads the training and evaluation splits (at a given model's input size) and returns the
/// given model, checked against the data's classes, or a zoo model trained on the data.
pub(super) fn prepare(req: &PipelineRequest) -> Result<Prepared, PipelineError> {
    // A checkpoint fixes the input size; a zoo model is built for the data.
    let loaded = match &req.model {
        ModelSource::Loaded(net) => Some(net),
        ModelSource::Zoo { .. } => None,
    };
    let size = req.input_size.or(loaded.map(|n| n.arch.input.h));
    let train_ds = crate::data::load_sized(&req.data, &req.train_split, size)?;
    let mut eval_ds = crate::data::load_sized(&req.data, &req.eval_split, size)?;
    if let Some(n) = req.eval_limit {
        eval_ds = eval_ds.take(n);
    }
    let net = match &req.model {
        ModelSource::Loaded(net) => {
            check_classes(&net.arch, &train_ds)?;
            check_classes(&net.arch, &eval_ds)?;
            net.clone()
        }
        ModelSource::Zoo { name, mean, std } => train_zoo(req, name, mean.as_deref(), std.as_deref(), &train_ds)?,
    };
    Ok(Prepared { net, train: train_ds, eval: eval_ds })
}

/// The zoo model `name` built for `ds` (classes and resolution), normalised, trained for the
/// request's epochs.
fn train_zoo(
    req: &PipelineRequest,
    name: &str,
    mean: Option<&[f32]>,
    std: Option<&[f32]>,
    ds: &Dataset,
) -> Result<Net, PipelineError> {
    crate::say!("[1/5] training {name} on {} for {} epochs", ds.source, req.epochs);
    let ad = req.device.clone().autodiff();
    let size = ds.shape[1];
    let arch = crate::model::zoo::for_input(name, ds.classes, size)
        .ok_or_else(|| PipelineError::UnknownModel { name: name.into(), size })?;
    let mut net = normalised(Net::init(&arch, &ad).map_err(PipelineError::Arch)?, mean, std)?;
    net.name_classes(&ds.class_names);
    let cfg = TrainConfig { epochs: req.epochs, ..TrainConfig::default() };
    // Not stoppable: a Ctrl-C while training ends the `pare` process (its handler is installed
    // when pruning starts).
    let stop = std::sync::atomic::AtomicBool::new(false);
    let trained = train(net, ds, &cfg, Default::default(), &ad, &stop, &mut |_, s, _| {
        crate::say!("  epoch {}: loss {:.3}, train acc {:.1} %", s.epoch, s.loss, 100.0 * s.accuracy)
    });
    Ok(trained.valid())
}

/// `net` with the input normalisation `mean` and `std` (one value for every channel, or one
/// per channel), where given: `--mean`/`--std` for the pipeline and every command.
pub(crate) fn normalised(mut net: Net, mean: Option<&[f32]>, std: Option<&[f32]>) -> Result<Net, PipelineError> {
    let c = net.arch.input.c;
    let spread = |v: &[f32], what: &str| match v.len() {
        1 => Ok(vec![v[0]; c]),
        n if n == c => Ok(v.to_vec()),
        n => Err(PipelineError::Normalisation(format!("--{what} has {n} values; the model has {c} input channels"))),
    };
    if let Some(m) = mean {
        net.arch.mean = spread(m, "mean")?;
    }
    if let Some(s) = std {
        let s = spread(s, "std")?;
        if s.iter().any(|&x| x <= 0.0) {
            return Err(PipelineError::Normalisation("--std must be positive".into()));
        }
        net.arch.std = s;
    }
    Ok(net)
}
