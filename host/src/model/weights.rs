//! Weights by tensor name, in PyTorch state-dict naming: importing pretrained safetensors,
//! and checkpoints (the same safetensors layout plus the architecture in the file's metadata,
//! so a pruned checkpoint reloads with no other input). Writes are atomic.

use super::{Arch, ConvBn, Dense, Net, Node};
use burn::module::{Param, RunningState};
use burn::nn::BatchNormConfig;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Named f32 tensors: name → (shape, values).
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Metadata key holding the architecture JSON in a checkpoint.
pub const ARCH_KEY: &str = "pare.arch";
/// Metadata key of the last completed training epoch.
pub const EPOCH_KEY: &str = "pare.epoch";
/// Metadata key of the optimiser steps taken so far.
pub const STEP_KEY: &str = "pare.step";
/// Metadata key of the pruning provenance (JSON of [`super::provenance::ProvenanceRecord`]).
pub const PROVENANCE_KEY: &str = "pare.provenance";

/// What a checkpoint carries besides its tensors and architecture, typed: the keys above are
/// written and read only here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckpointMeta {
    pub epoch: Option<usize>,
    pub step: Option<usize>,
    pub provenance: Option<super::provenance::ProvenanceRecord>,
}

impl CheckpointMeta {
    /// The metadata entries to write.
    pub fn pairs(&self) -> Result<Vec<(&'static str, String)>, serde_json::Error> {
        let mut v = vec![];
        if let Some(e) = self.epoch {
            v.push((EPOCH_KEY, e.to_string()));
        }
        if let Some(s) = self.step {
            v.push((STEP_KEY, s.to_string()));
        }
        if let Some(p) = &self.provenance {
            v.push((PROVENANCE_KEY, serde_json::to_string(p)?));
        }
        Ok(v)
    }

    /// Reads the entries of a file's metadata; a present but malformed value is an error
    /// naming its key, not a silent default.
    pub fn read(meta: &BTreeMap<String, String>, path: &Path) -> Result<Self, WeightsError> {
        let bad = |key: &str, reason: String| WeightsError::BadMeta { path: path.into(), key: key.into(), reason };
        let number = |key: &str| -> Result<Option<usize>, WeightsError> {
            meta.get(key).map(|v| v.trim().parse::<usize>().map_err(|e| bad(key, format!("{v:?}: {e}")))).transpose()
        };
        Ok(Self {
            epoch: number(EPOCH_KEY)?,
            step: number(STEP_KEY)?,
            provenance: meta
                .get(PROVENANCE_KEY)
                .map(|v| serde_json::from_str(v).map_err(|e| bad(PROVENANCE_KEY, e.to_string())))
                .transpose()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: not a safetensors file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error(
        "{path}: weights do not fit the model:{}{}{}",
        list("missing", missing),
        list("unexpected", unexpected),
        list("mis-shaped", misshaped)
    )]
    Mismatch { path: PathBuf, missing: Vec<String>, unexpected: Vec<String>, misshaped: Vec<String> },
    #[error("{path}: no architecture in this file; pass --model to load plain weights")]
    NoArch { path: PathBuf },
    #[error("{path}: invalid architecture: {reason}")]
    BadArch { path: PathBuf, reason: String },
    #[error("{path}: metadata `{key}` is malformed: {reason}")]
    BadMeta { path: PathBuf, key: String, reason: String },
    /// Not a regular file, larger than [`crate::input::MAX_FILE_BYTES`], or unreadable.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
}

fn list(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("\n  {what} ({}): {}", names.len(), names.join(", "))
    }
}

/// Expected tensors of an architecture: name → shape.
pub fn expected(arch: &Arch) -> Result<BTreeMap<String, Vec<usize>>, String> {
    let shapes = arch.shapes()?;
    let mut out = BTreeMap::new();
    for (i, node) in arch.nodes.iter().enumerate() {
        match node {
            Node::Conv { name, bn, input, kernel, .. } => {
                let cin = arch.in_channels(&shapes, *input);
                let c = shapes[i].c;
                out.insert(format!("{name}.weight"), vec![c, cin, *kernel, *kernel]);
                for t in ["weight", "bias", "running_mean", "running_var"] {
                    out.insert(format!("{bn}.{t}"), vec![c]);
                }
            }
            Node::Dense { name, input, out: o, .. } => {
                let cin = arch.dense_inputs(&shapes, *input);
                out.insert(format!("{name}.weight"), vec![*o, cin]);
                out.insert(format!("{name}.bias"), vec![*o]);
            }
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. } => {}
        }
    }
    Ok(out)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()
}

/// All tensors of a model by name.
pub fn to_tensors(net: &Net) -> Tensors {
    let mut out = Tensors::new();
    let (mut convs, mut dense) = (net.convs.iter(), net.dense.iter());
    for node in &net.arch.nodes {
        match node {
            Node::Conv { name, bn, .. } => {
                let Some(cb) = convs.next() else { break };
                out.insert(format!("{name}.weight"), (cb.weight.dims().to_vec(), values(cb.weight.val())));
                let c = vec![cb.bn.gamma.dims()[0]];
                out.insert(format!("{bn}.weight"), (c.clone(), values(cb.bn.gamma.val())));
                out.insert(format!("{bn}.bias"), (c.clone(), values(cb.bn.beta.val())));
                out.insert(format!("{bn}.running_mean"), (c.clone(), values(cb.bn.running_mean.value())));
                out.insert(format!("{bn}.running_var"), (c, values(cb.bn.running_var.value())));
            }
            Node::Dense { name, .. } => {
                let Some(d) = dense.next() else { break };
                out.insert(format!("{name}.weight"), (d.weight.dims().to_vec(), values(d.weight.val())));
                out.insert(format!("{name}.bias"), (d.bias.dims().to_vec(), values(d.bias.val())));
            }
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. } => {}
        }
    }
    out
}

fn tensor<const D: usize>(t: &Tensors, name: &str, device: &Device) -> Tensor<D> {
    let (shape, v) = &t[name];
    Tensor::from_data(TensorData::new(v.clone(), shape.clone()), device)
}

/// Builds a model from named tensors that [`check`] accepted.
pub fn from_tensors(arch: &Arch, t: &Tensors, device: &Device) -> Result<Net, String> {
    arch.shapes()?;
    let mut convs = vec![];
    let mut dense = vec![];
    for node in &arch.nodes {
        match node {
            Node::Conv { name, bn, out, .. } => {
                let mut b = BatchNormConfig::new(*out).with_epsilon(1e-5).with_momentum(0.1).init(device);
                b.gamma = Param::from_tensor(tensor(t, &format!("{bn}.weight"), device));
                b.beta = Param::from_tensor(tensor(t, &format!("{bn}.bias"), device));
                b.running_mean = RunningState::new(tensor(t, &format!("{bn}.running_mean"), device));
                b.running_var = RunningState::new(tensor(t, &format!("{bn}.running_var"), device));
                convs.push(ConvBn { weight: Param::from_tensor(tensor(t, &format!("{name}.weight"), device)), bn: b });
            }
            Node::Dense { name, .. } => {
                dense.push(Dense {
                    weight: Param::from_tensor(tensor(t, &format!("{name}.weight"), device)),
                    bias: Param::from_tensor(tensor(t, &format!("{name}.bias"), device)),
                });
            }
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. } => {}
        }
    }
    if dense.is_empty() {
        return Err("no classifier".into());
    }
    Ok(Net { convs, dense, arch: arch.clone() })
}

/// Compares tensors with what `arch` expects; BatchNorm's `num_batches_tracked` is ignored.
pub fn check(arch: &Arch, t: &Tensors, path: &Path) -> Result<(), WeightsError> {
    let want = expected(arch).map_err(|reason| WeightsError::BadArch { path: path.into(), reason })?;
    let missing: Vec<String> = want.keys().filter(|k| !t.contains_key(*k)).cloned().collect();
    let unexpected: Vec<String> =
        t.keys().filter(|k| !want.contains_key(*k) && !k.ends_with("num_batches_tracked")).cloned().collect();
    let misshaped: Vec<String> = want
        .iter()
        .filter_map(|(k, s)| {
            let (got, _) = t.get(k)?;
            (got != s).then(|| format!("{k} is {got:?}, expected {s:?}"))
        })
        .collect();
    if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
        Ok(())
    } else {
        Err(WeightsError::Mismatch { path: path.into(), missing, unexpected, misshaped })
    }
}

/// Reads a safetensors file: its f32 tensors and its metadata. Only a regular file of at most
/// [`crate::input::MAX_FILE_BYTES`] is read (`/dev/zero` is an error, not an endless read).
pub fn read(path: &Path) -> Result<(Tensors, BTreeMap<String, String>), WeightsError> {
    let bytes = crate::input::read_regular(path, "checkpoint", crate::input::MAX_FILE_BYTES)?;
    let format = |reason: String| WeightsError::Format { path: path.into(), reason };
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let mut out = Tensors::new();
    for (name, view) in st.tensors() {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(format(format!("tensor {name} is {:?}, only F32 is supported", view.dtype())));
        }
        let (chunks, _) = view.data().as_chunks::<4>();
        let v: Vec<f32> = chunks.iter().map(|c| f32::from_le_bytes(*c)).collect();
        out.insert(name.strip_prefix("module.").unwrap_or(&name).to_string(), (view.shape().to_vec(), v));
    }
    let metadata = meta.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok((out, metadata))
}

/// Loads weights for a known architecture (pretrained files, or checkpoints of the same arch).
pub fn load_weights(arch: &Arch, path: &Path, device: &Device) -> Result<Net, WeightsError> {
    let (t, _) = read(path)?;
    build(arch, &t, path, device)
}

/// Loads a checkpoint: the architecture comes from the file.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(Net, CheckpointMeta), WeightsError> {
    load_file(path, None, device)
}

/// Reads `path` once: a checkpoint's own architecture when it has one, otherwise `fallback`
/// (plain pretrained weights). Returns the model and the file's metadata.
pub fn load_file(path: &Path, fallback: Option<&Arch>, device: &Device) -> Result<(Net, CheckpointMeta), WeightsError> {
    let (t, meta) = read(path)?;
    let typed = CheckpointMeta::read(&meta, path)?;
    let arch = match meta.get(ARCH_KEY) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| WeightsError::BadArch { path: path.into(), reason: e.to_string() })?,
        None => fallback.cloned().ok_or_else(|| WeightsError::NoArch { path: path.into() })?,
    };
    Ok((build(&arch, &t, path, device)?, typed))
}

fn build(arch: &Arch, t: &Tensors, path: &Path, device: &Device) -> Result<Net, WeightsError> {
    check(arch, t, path)?;
    from_tensors(arch, t, device).map_err(|reason| WeightsError::BadArch { path: path.into(), reason })
}

/// Writes a checkpoint atomically (temporary file in the same folder, then rename).
pub fn save_checkpoint(net: &Net, extra: &CheckpointMeta, path: &Path) -> Result<(), WeightsError> {
    let io = |e: std::io::Error| WeightsError::Io { path: path.into(), cause: e };
    let tensors = to_tensors(net);
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, (s, v))| (k.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect(), s.clone()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, b, s)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map_err(|e| WeightsError::Format { path: path.into(), reason: e.to_string() })?;
            Ok((k.clone(), view))
        })
        .collect::<Result<_, WeightsError>>()?;
    let bad = |key: &str, e: serde_json::Error| WeightsError::BadMeta {
        path: path.into(),
        key: key.into(),
        reason: e.to_string(),
    };
    let pairs = extra.pairs().map_err(|e| bad(PROVENANCE_KEY, e))?;
    let mut meta: std::collections::HashMap<String, String> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    // An architecture that cannot be written is an error, never an empty entry.
    meta.insert(ARCH_KEY.into(), serde_json::to_string(&net.arch).map_err(|e| bad(ARCH_KEY, e))?);
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| WeightsError::Format { path: path.into(), reason: e.to_string() })?;
    crate::atomic::write(path, &data).map_err(io)
}
