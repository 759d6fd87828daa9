//! `pare flash`: bundle a model with samples and host-emulated predictions, build the board's
//! firmware with them, run it (QEMU) or flash it (probe-rs), decode the defmt stream, report.
//!
//! One concept per file: [`fit`] (does it fit the board), [`bundle`] (what the firmware embeds),
//! [`build`] (the firmware build and its lock), [`runner`] (QEMU or probe-rs), [`defmt`]
//! (decoding the stream), [`protocol`] (the lines the host reads), [`result`] (the report and
//! its pass rule), [`macs`] (MACs per op), [`board`], the check that runs them in order, and
//! [`request`]: [`run`], the whole check from a model file as a library call.

pub mod board;
pub mod build;
pub mod bundle;
pub mod defmt;
pub mod error;
pub mod fit;
pub mod macs;
pub mod protocol;
pub mod request;
pub mod result;
pub mod runner;

pub use board::{run_on_board, run_on_board_with};
pub use build::{build_command, elf_path, target_dir};
pub use bundle::{write_bundle, Bundle};
pub use defmt::decode_defmt;
pub use error::FlashError;
pub use fit::{check_fit, sample_bytes};
pub use macs::{layer_macs, macs_of};
pub use protocol::{parse_lines, ProtocolError, PROTOCOL};
pub use request::{run, FlashReport, FlashRequest};
pub use result::{BoardResult, LayerCount};
pub use runner::{qemu_program, render, run_command, which};
