//! The iterative schedule: score, rank globally, remove the τ weakest channels (groups
//! together), repair, fine-tune, evaluate, checkpoint; until a target is met. Every iteration
//! is saved, so an interrupted run resumes where it stopped.
//!
//! [`run`] (`run.rs`) is the method step by step; each step and each value lives in a file of
//! its own:
//! - `config.rs`: [`PruneConfig`] and its parts, with their defaults;
//! - `run_data.rs`: the data a run uses ([`RunData`]);
//! - `context.rs`: what every step reads (the original model's numbers, teacher, board);
//! - `rank.rs`: scoring, normalisation per layer, reduction per space, cost-aware ranking;
//! - `select.rs`: the global ranking's choice of channels, under floors and rounding;
//! - `target.rs`: whether the target is met, and how many channels to remove (bisection);
//! - `repair.rs`: the removal itself and its repair (least squares, BatchNorm statistics);
//! - `board.rs`: measuring on the board and learning the latency model during a run;
//! - `phase.rs`: the fine-tune [`Budget`] and its phases;
//! - `finetune.rs`: the fine-tune step;
//! - `record.rs`: what a run records ([`Iteration`], [`RunState`]);
//! - `checkpoint.rs`: checkpoints and the state file, a fresh start and resuming;
//! - `error.rs`: [`ScheduleError`].

mod board;
mod checkpoint;
mod config;
mod context;
mod error;
mod finetune;
mod phase;
mod rank;
mod record;
mod repair;
mod run;
mod run_data;
mod select;
mod target;

pub use config::{Distill, Polish, PruneConfig, Rank, StepSize, Target, BUDGET_COST_EXPONENT};
pub use error::ScheduleError;
pub use phase::Budget;
pub use rank::{cost_per_channel, macs_per_channel, per_cost};
pub use record::{Iteration, RunState};
pub use run::run;
pub use run_data::RunData;
pub use select::{floors, prunable_channels, select};
