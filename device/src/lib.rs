//! The pare device runtime: decodes a `.pare` file in place and runs it over a caller-provided
//! arena. No allocator, no `unsafe`, no panics reachable from input: every slice access is
//! checked, and a model that passed [`pare_format::Model::validate`] never reaches the
//! `Internal` error paths. The host runs this same code for emulation (`pare run`).
#![no_std]
// The only `unsafe` is the DSP inline assembly in `ops::simd`, each block with its proof.
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod arena;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod input;
pub mod ops;
pub mod quant;
mod runtime;

pub use error::Error;
pub use input::prepare_input;
pub use pare_format as format;
pub use runtime::{LayerTrace, Runtime};
