//! The pare device runtime: decodes a `.pare` file in place and runs it over a caller-provided
//! arena. No allocator, no panics reachable from input: every slice access is checked, and a
//! model that passed [`pare_format::Model::validate`] never reaches the `Internal` error paths.
//! The host runs this same code for emulation (`pare run`).
//!
//! `unsafe` is confined to `ops::simd` and compiled only for Cortex-M with the DSP extension
//! (`cfg(pare_dsp)`, set by `build.rs`): inline `asm!` in twelve `unsafe` blocks — five single
//! instructions on registers (SXTB16 and SXTAB16, each also with rotation, and SMLAD) and the
//! assembly loops that read and write slices through raw pointers (`pack_rows_unchecked`,
//! `widen_groups`, `mac_rows_checked`, `requant_fast`, `requant_folded`, `add_doubled_n`), each
//! block with a `SAFETY` comment stating the bounds it relies on. Every other build, the host's
//! included, compiles the portable twins and no `unsafe` at all.
#![no_std]
// Denied crate-wide; `ops::simd` alone allows it, for the DSP `asm!` blocks above.
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
