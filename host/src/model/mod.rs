//! Models: an architecture description ([`Arch`], plain data saved with every checkpoint
//! because pruning changes widths), the burn module that runs it ([`Net`]), and the zoo.

mod arch;
mod net;
pub mod onnx;
pub mod weights;
pub mod zoo;

pub use arch::{Arch, Node, Shape, Src};
pub use net::{ConvBn, Dense, Folded, Net};
