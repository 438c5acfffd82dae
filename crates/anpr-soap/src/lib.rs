//! SOAP 1.1 web services compatible with the published ANPR WSDLs (issue 4).
//!
//! This crate is the wire layer only; it does no I/O and knows no use case. The HTTP
//! edge (`anpr-server`, module `soap`) reads the body, and this crate:
//!
//! 1. parses the envelope safely ([`xml`], [`busta`]): no DTDs, no entity expansion,
//!    UTF-8 only, depth and element count bounded;
//! 2. finds the operation in the catalogue read from the published WSDLs
//!    ([`catalogo`]) and checks the request against its XSD content model
//!    ([`schema`], a table derived from the XSDs by `tools/derive_schema.py`);
//! 3. converts the request into the input of the use case ([`richieste`]) — the same
//!    JSON document the REST edge takes, so both edges share one validation path;
//!    certificates, extractions and proceedings, answered outside the registry
//!    pipeline, have theirs in [`servizi`], the public bodies' services (E001, E002)
//!    in [`enti`], the consulates' AIRE queries (C001, C010) in [`consolati`], the
//!    municipality's requests and notifications read back (3003, 3005, 3007) in
//!    [`gestione`];
//! 4. writes the answer in the XSD's element order ([`risposte`]): `Risposta_Comune`,
//!    `RispostaNNNN_OK`, `RispostaMultipla7001` or `rispostaKO` with `listaErrori`, or
//!    a `soap:Fault` for messages that are not an ANPR request at all.
//!
//! Wire types stay here: the domain never sees an XML element.
#![forbid(unsafe_code)]

mod altre;
pub mod busta;
pub mod catalogo;
pub mod consolati;
pub mod enti;
pub mod gestione;
pub mod richieste;
pub mod risposte;
pub mod scheda;
pub mod schema;
pub mod servizi;
mod stato_civile;
pub mod xml;
