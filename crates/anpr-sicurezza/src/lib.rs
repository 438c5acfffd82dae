//! Security of the registry (SPEC M-8): the directory of users, profiles and smart
//! cards, our certification authority with workstation certificates, the CRL and the
//! tamper-evident workstation register, the mutual-TLS server configuration, and the
//! verification of WS-Security signed SOAP messages.
//!
//! Everything except [`archivio`]'s import of earlier files is free of I/O: rules are functions over values, so the
//! service layer decides, persists and audits. Errors are [`ErroreSicurezza`], each with
//! a stable code of our range EV200–EV249.
#![forbid(unsafe_code)]

pub mod archivio;
pub mod ca;
pub mod carta;
pub mod catena;
pub mod direttorio;
pub mod errore;
pub mod jws;
pub mod mtls;
pub mod passkey;
pub mod registro;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wssec;
pub mod xml;

pub use errore::ErroreSicurezza;
