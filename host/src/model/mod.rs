//! Models: an architecture description ([`Arch`], plain data saved with every checkpoint
//! because pruning changes widths), the burn module that runs it ([`Net`]), and the zoo.

mod arch;
mod net;
pub mod onnx;
pub mod provenance;
pub mod weights;
pub mod zoo;

pub use arch::{Arch, Node, Shape, Src};

/// ONNX metadata key of the per-channel input mean (comma-separated), written by the ONNX
/// exporter and read by the importer.
pub const MEAN_KEY: &str = "pare.mean";
/// ONNX metadata key of the per-channel input std, as [`MEAN_KEY`].
pub const STD_KEY: &str = "pare.std";
pub use net::{ConvBn, Dense, Folded, Net};
