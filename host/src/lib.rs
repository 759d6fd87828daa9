//! pare, host side: models, data, training, pruning, export and the CLI behind `pare`.

pub mod atomic;
pub mod boards;
pub mod budget;
pub mod channels;
pub mod cli;
pub mod data;
pub mod emulate;
pub mod export;
pub mod flash;
pub mod gpu;
pub mod hash;
pub mod input;
pub mod libtorch;
pub mod model;
pub mod pare_file;
pub mod pipeline;
pub mod plots;
pub mod progress;
pub mod prune;
pub mod report;
#[doc(hidden)]
pub mod testing;
pub mod train;
