//! ONNX import (`--weights model.onnx`): the graph becomes pare's architecture, the initializers
//! its weights. Every attribute of every op is read: one the importer implements is honoured
//! exactly, any other value is refused with the node's name, the attribute and its value — a
//! model never imports with numbers that differ from what ONNX means. The op table and what
//! each op accepts is in [`graph`]; the protobuf reader in [`proto`]; the folding of constant
//! shape subgraphs in [`fold`].

mod fold;
mod graph;
mod proto;

use super::{weights, Arch, Net};
use std::path::Path;

/// The largest ONNX file read (weights inline): 4 GiB, ONNX's own protobuf limit is 2 GiB.
pub const MAX_ONNX_BYTES: u64 = crate::input::MAX_FILE_BYTES;

/// Why an ONNX file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(transparent)]
    Read(#[from] crate::input::InputError),
    #[error("not a valid ONNX protobuf: {0}")]
    Protobuf(String),
    #[error("node {index} `{name}` ({op}): {reason}")]
    Unsupported { index: usize, name: String, op: String, reason: String },
    #[error("the graph: {0}")]
    Graph(String),
    #[error("external data `{location}`: {reason}")]
    ExternalData { location: String, reason: String },
}

/// The model in ONNX `bytes`, with its weights (inline only: [`import_file`] reads external
/// data files too).
pub fn import(bytes: &[u8], device: &burn::tensor::Device) -> Result<Net, OnnxError> {
    let (arch, tensors) = import_arch(bytes)?;
    weights::from_tensors(&arch, &tensors, device).map_err(OnnxError::Graph)
}

/// The model in the ONNX file `path`; weights stored as external data (PyTorch's default
/// exporter writes `model.onnx.data` beside the model) are read from the model's own folder.
pub fn import_file(path: &Path, device: &burn::tensor::Device) -> Result<Net, OnnxError> {
    let bytes = crate::input::read_regular(path, "ONNX model", MAX_ONNX_BYTES)?;
    let dir = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
    let (arch, tensors) = graph::map(&bytes, dir)?;
    weights::from_tensors(&arch, &tensors, device).map_err(OnnxError::Graph)
}

/// The architecture and weights (pare's tensor names) of ONNX `bytes` (weights inline).
pub fn import_arch(bytes: &[u8]) -> Result<(Arch, weights::Tensors), OnnxError> {
    graph::map(bytes, None)
}
