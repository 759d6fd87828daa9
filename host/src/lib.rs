//! pare, host side: models, data, training, pruning, export and the CLI behind `pare`.

pub mod cli;
pub mod data;
pub mod model;
pub mod progress;
pub mod report;
pub mod train;
