//! The tax agency (*Agenzia delle Entrate*, AE) as the registry sees it (SPEC M-3.2,
//! M-3.3).
//!
//! When the registry registers a person (services 1001, 1002, A001/A002) or changes their
//! generalities (5008) it calls the agency according to `gestioneCF`: `1` first
//! attribution of a code, `0` verification of the code and data, `2` request of an
//! omocode, `3` no call. The answer ([`EsitoAe`]) gives the code the record keeps, its
//! state ([`StatoCodiceFiscale`]), the person's linked codes and the agency's messages
//! (EAM9C, EAM15, EAM93, EAV31, EAV91, ... with their remedies; see [`codici`]).
//! Misalignments are resolved with "Conferma AE", "Conferma ANPR" and the link of two
//! codes ([`collegamento`]).
//!
//! - [`AgenziaEntrate`]: the port the registry's use cases call.
//! - [`Simulatore`]: the built-in agency for the test and pre-onboarding environments and
//!   for tests, with its own register seeded from CSV ([`seme`]) or code.
//! - [`ClientHttp`]: the adapter calling an agency over HTTP with our protocol
//!   ([`protocollo`]); [`router`] serves a simulator with the same protocol, so the two
//!   are tested against each other over real HTTP.
//!
//! [`StatoCodiceFiscale`]: anpr_domain::scheda::StatoCodiceFiscale
#![forbid(unsafe_code)]

use std::fmt::Debug;

use async_trait::async_trait;

mod client;
pub mod codici;
pub mod collegamento;
mod errore;
pub mod protocollo;
pub mod seme;
mod server;
mod simulatore;
mod tipi;

pub use client::{ClientHttp, ConfigurazioneClientHttp};
pub use collegamento::{controlla_lato_anpr, forme_collegamento, LatoAnprCollegamento};
pub use errore::ErroreAe;
pub use seme::{ErroreSeme, PosizioneSeme, StatoSeme};
pub use server::router;
pub use simulatore::{Simulatore, MAX_DATI_VARIATI};
pub use tipi::{
    DatiAnagraficiAe, EsitoAe, GestioneCf, PosizioneAe, RichiestaAe, RichiestaAllineamento,
    RichiestaCollegamento,
};

/// The tax agency, as the registry calls it.
///
/// `Ok` is an answer from the agency, which may refuse with blocking anomalies; `Err`
/// means no answer (unreachable, timeout, protocol): the registry refuses the operation
/// with [`ErroreAe::anomalia`] and the caller may retry.
#[async_trait]
pub trait AgenziaEntrate: Send + Sync + Debug + 'static {
    /// Attribution, verification or omocode request, by `req.gestione` (`3` answers
    /// without calling).
    async fn valida(&self, req: &RichiestaAe) -> Result<EsitoAe, ErroreAe>;

    /// The agency's position for a code ("Consultazione AE"); `None` when it has none
    /// (also for a code that cannot be read). Works in read-only mode.
    async fn consulta(&self, codice_fiscale: &str) -> Result<Option<PosizioneAe>, ErroreAe>;

    /// "Conferma AE": the registry will adopt the agency's data (returned in
    /// [`EsitoAe::dati_ae`]); the agency marks the code. The residence stays the
    /// registry's.
    async fn conferma_dati_ae(&self, req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe>;

    /// "Conferma ANPR": the agency rectifies its data with the registry's. More than
    /// [`MAX_DATI_VARIATI`] changed data answer EAM93. When the new data give another
    /// code, the agency issues it and links the old one to it: the record takes the new
    /// code ([`EsitoAe::codice_fiscale`]), validated, with the old among the linked ones.
    async fn conferma_dati_anpr(&self, req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe>;

    /// Links the registry's numeric provisional code to the person's alphanumeric code at
    /// the agency; on success the record takes the alphanumeric code, validated, with the
    /// numeric one linked. The agency-side rules are checked here; the registry-side ones
    /// (its code validated and marked, the alphanumeric one not in the registry) are the
    /// caller's: [`controlla_lato_anpr`].
    async fn collega(&self, req: &RichiestaCollegamento) -> Result<EsitoAe, ErroreAe>;

    /// Whether the agency is read-only here (pre-subentro): writes answer EV063.
    fn sola_lettura(&self) -> bool;

    /// Batch validation for the onboarding (subentro): for each code of `codici`, in
    /// order, whether the agency holds a position for it (a code that cannot be read is
    /// `false`), as [`AgenziaEntrate::consulta`] would answer `Some`. One call per batch
    /// of records instead of one per record; the default asks code by code, an adapter
    /// with a cheaper bulk path overrides it. Works in read-only mode.
    async fn presenti(&self, codici: &[String]) -> Result<Vec<bool>, ErroreAe> {
        let mut out = Vec::with_capacity(codici.len());
        for codice in codici {
            out.push(self.consulta(codice).await?.is_some());
        }
        Ok(out)
    }
}
