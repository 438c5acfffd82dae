//! Subentro: onboarding a whole municipality from its bulk file (SPEC M-6).
//!
//! - [`parser`]: the streaming reader of `subentro.xsd` files (no DTD, bounded, element
//!   paths in errors);
//! - [`nome_file`]: the file name convention and its checks;
//! - [`controlli`]: per-record checks and conversion to registry records;
//! - `appoggio`: the run's working state on disk (tax codes seen, families, deferred
//!   anomalies), so that a run's memory does not grow with the supply;
//! - [`importa`]: the pipeline (file checks, declared vs counted totals, batches to the
//!   store's all-or-nothing bulk load, tax agency and cross-municipality checks);
//! - [`esiti`]: the outcome files;
//! - [`registro_ae`]: a compact, presence-only view of a tax-agency register file, for
//!   onboarding a big municipality from the command line in bounded memory;
//! - [`servizio`]: the authorised entry point for the edges (REST upload, SOAP S001),
//!   one load at a time per municipality;
//! - [`consegna`]: a supply delivered file by file (SOAP S001): compressed parts
//!   checked, staged, and loaded when complete.
#![forbid(unsafe_code)]

mod appoggio;
pub mod consegna;
pub mod controlli;
pub mod esiti;
pub mod importa;
pub mod nome_file;
pub mod parser;
pub mod registro_ae;
pub mod servizio;

pub use importa::{
    importa, Avanzamento, ErroreSubentro, EsitoSubentro, FileIngresso, Opzioni, StatoSubentro,
};
pub use registro_ae::RegistroCodiciAe;
