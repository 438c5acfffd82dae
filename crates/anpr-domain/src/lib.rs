//! The registry's language as Rust types.
//!
//! Everything here is pure: no I/O, no clocks, no randomness. Values are parsed newtypes
//! whose constructors check their invariants, so a value that exists is valid. Records
//! serialise (serde) to the JSON documents the storage keeps per section; that format is
//! ours, not a wire format: the SOAP and REST edges have their own types.
#![forbid(unsafe_code)]

pub mod audit;
pub mod caller;
pub mod codice_fiscale;
pub mod error;
pub mod ids;
pub mod operazione;
pub mod procedimento;
pub mod scheda;
pub mod storia;
pub mod text;
