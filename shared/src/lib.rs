//! The pare model file format.
//!
//! One file carries a quantised or float CNN as an ordered list of ops over numbered activation
//! buffers, with its weights, metadata and a static memory plan computed on the host. Reading a
//! file ([`decode`]) never allocates and never copies weights: [`Model`] borrows from the input
//! slice, so the same code runs on a microcontroller. [`Model::validate`] proves the graph is
//! executable before anyone runs it. The byte-level layout is described in `docs/format.md`.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "alloc")]
mod builder;
mod envelope;
mod error;
mod graph;
mod table;
mod validate;

#[cfg(feature = "alloc")]
pub use builder::{frame, plan_memory, ModelBuilder};
pub use envelope::{decode, Header, CHECKSUM, HEADER_LEN, MAGIC, VERSION};
pub use error::{Error, GraphError};
pub use graph::{
    Add, AddQuant, Buffer, ChannelPlace, Conv2d, DType, Dense, InputSpec, Meta, Model, Op, Params, Plan, PlanEntry,
    Pool, Provenance, Unary,
};
pub use table::{Record, Seq, SeqIter, Table};
