//! The registry's language as Rust types.
//!
//! Everything here is pure: no I/O, no clocks, no randomness. Values are parsed newtypes
//! whose constructors check their invariants, so a value that exists is valid.
#![forbid(unsafe_code)]

pub mod codice_fiscale;
pub mod ids;
pub mod text;
