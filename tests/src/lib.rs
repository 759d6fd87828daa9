//! End-to-end tests across pare's crates live in `tests/`; shared helpers come from
//! `pare::testing`.

pub use pare::testing::{random_net, shared};
