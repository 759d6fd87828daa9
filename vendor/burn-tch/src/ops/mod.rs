mod activation;
mod base;
mod bool_tensor;
mod int_tensor;
mod module;
#[cfg(pare_aten)]
mod pare_aten;
mod qtensor;
mod tensor;
mod transaction;

pub(crate) use base::*;
