//! The registry's use cases.
//!
//! [`Registry`] is the one entry point the edges (REST, SOAP, web, CLI) call. Every use
//! case takes a [`CallerContext`], is authorised first (deny by default, see [`authz`]),
//! then validates, decides, persists through the environment's [`Store`] and audits.
//! This is the only crate that combines domain, decoding tables, storage and adapters.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anpr_domain::audit::{NuovaVoceAudit, TipoEvento};
use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::ids::IdOperazioneAnpr;
use anpr_store::Store;
use anpr_tables::Tables;

pub mod ae;
pub mod aire;
pub mod annullamento;
pub mod audit;
pub mod authz;
pub mod cancellazione;
pub mod carte_identita;
pub mod certificabilita;
pub mod certificati;
pub mod clock;
pub mod codice_fiscale;
pub mod consultazione;
pub mod error;
pub mod estrazioni;
pub mod famiglia;
pub mod iscrizione;
pub mod lavoro;
pub mod monitoraggio;
pub mod mutazione;
pub mod notifiche;
pub mod operazioni;
pub mod parametri;
pub mod poligamia;
pub mod procedimenti;
pub mod residenza;
pub mod ricerca;
pub mod sicurezza;
pub mod sospese;
pub mod statistiche;
pub mod tabelle;
pub mod validazione;

pub use error::{RiferimentoSupporto, ServiceError};

use authz::Permesso;
use clock::Clock;

/// The registry: one store per environment, the decoding tables and a clock.
pub struct Registry {
    stores: BTreeMap<Ambiente, Arc<dyn Store>>,
    tables: &'static Tables,
    clock: Arc<dyn Clock>,
    request_seq: AtomicU64,
    /// The tax agency of each environment (M-3.2): a simulator unless configured.
    agenzia_entrate: BTreeMap<Ambiente, Arc<dyn anpr_ae::AgenziaEntrate>>,
    /// Certificate signing key and verification URL (M-4.1).
    certificati: Arc<certificati::ConfigurazioneCertificati>,
    /// Users, cards, CA and certificates (security issue); `None` until configured.
    sicurezza: Option<Arc<sicurezza::Sicurezza>>,
    /// Wakes the asynchronous-request worker when a request is queued (`estrazioni`).
    pub(crate) risveglio: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("ambienti", &self.stores.keys().collect::<Vec<_>>())
            .field("tables", &self.tables.version().to_string())
            .finish()
    }
}

impl Registry {
    /// Builds the registry over the given environments' stores.
    pub fn new(stores: BTreeMap<Ambiente, Arc<dyn Store>>, clock: Arc<dyn Clock>) -> Self {
        // Each environment gets its own simulated tax agency; in presubentro the agency
        // is read-only, as in the real system.
        let agenzia_entrate = stores
            .keys()
            .map(|a| {
                let sim = anpr_ae::Simulatore::new();
                sim.imposta_sola_lettura(*a == Ambiente::Presubentro);
                (*a, Arc::new(sim) as Arc<dyn anpr_ae::AgenziaEntrate>)
            })
            .collect();
        Self {
            stores,
            tables: anpr_tables::tables(),
            clock,
            request_seq: AtomicU64::new(1),
            agenzia_entrate,
            // An in-memory key until `con_certificati` sets the persistent one.
            certificati: Arc::new(certificati::ConfigurazioneCertificati::effimera()),
            sicurezza: None,
            risveglio: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Uses `cfg` (the persistent signing key and the public verification URL) for
    /// certificates.
    pub fn con_certificati(mut self, cfg: certificati::ConfigurazioneCertificati) -> Self {
        self.certificati = Arc::new(cfg);
        self
    }

    /// The certificate configuration.
    pub fn certificati(&self) -> &certificati::ConfigurazioneCertificati {
        &self.certificati
    }

    /// Uses `s` for users, cards and certificates (the security console, mutual TLS,
    /// signed messages).
    pub fn con_sicurezza(mut self, s: Arc<sicurezza::Sicurezza>) -> Self {
        self.sicurezza = Some(s);
        self
    }

    /// The security component, when configured.
    pub fn sicurezza_configurata(&self) -> Option<&Arc<sicurezza::Sicurezza>> {
        self.sicurezza.as_ref()
    }

    /// Uses `ae` as the tax agency of `ambiente` (an HTTP client of the real service, or
    /// a seeded simulator).
    pub fn con_agenzia_entrate(
        mut self,
        ambiente: Ambiente,
        ae: Arc<dyn anpr_ae::AgenziaEntrate>,
    ) -> Self {
        self.agenzia_entrate.insert(ambiente, ae);
        self
    }

    /// The tax agency of an environment.
    pub fn agenzia_entrate(&self, ambiente: Ambiente) -> Option<&Arc<dyn anpr_ae::AgenziaEntrate>> {
        self.agenzia_entrate.get(&ambiente)
    }

    /// Environments this registry serves.
    pub fn ambienti(&self) -> Vec<Ambiente> {
        self.stores.keys().copied().collect()
    }

    /// The store of an environment. The edges choose the environment; a caller asking
    /// for one this process does not serve is refused with a coded error.
    pub fn store(&self, ambiente: Ambiente) -> Result<&Arc<dyn Store>, ServiceError> {
        self.stores
            .get(&ambiente)
            .ok_or_else(|| ServiceError::Rifiutata {
                anomalie: vec![anpr_domain::error::Anomalia::errore(
                    CODICE_AMBIENTE_NON_DISPONIBILE,
                    format!("Ambiente {ambiente} non disponibile su questo server"),
                )
                .campo("ambiente")
                .valore(ambiente.as_str())
                .atteso(
                    self.ambienti()
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )],
                riferimento: self.riferimento(None),
            })
    }

    pub fn tables(&self) -> &'static Tables {
        self.tables
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// A support reference for the current call.
    pub fn riferimento(&self, op: Option<IdOperazioneAnpr>) -> RiferimentoSupporto {
        let id = match op {
            Some(op) => op.to_string(),
            None => format!(
                "R{}-{}",
                self.clock.now().timestamp(),
                self.request_seq.fetch_add(1, Ordering::Relaxed)
            ),
        };
        RiferimentoSupporto {
            data: self.clock.now(),
            id,
        }
    }

    /// Authorises `ctx` for `permesso`; a denial is audited and returned coded.
    pub async fn autorizza(
        &self,
        ctx: &CallerContext,
        permesso: Permesso,
        azione: &str,
    ) -> Result<(), ServiceError> {
        match authz::autorizza(ctx, permesso) {
            Ok(()) => Ok(()),
            Err(denied) => Err(self.nega(ctx, denied.permesso, azione).await),
        }
    }

    /// Denies `ctx` the use of `permesso` for `azione`: logs it, appends the
    /// `accessoNegato` audit entry and returns the coded error. Also used when the
    /// permission is held but not over the requested scope (e.g. another municipality).
    pub async fn nega(
        &self,
        ctx: &CallerContext,
        permesso: Permesso,
        azione: &str,
    ) -> ServiceError {
        tracing::warn!(utente = %ctx.utente, ?permesso, azione, "access denied");
        let voce = self.voce_audit(
            ctx,
            TipoEvento::AccessoNegato,
            azione,
            None,
            "negato".into(),
        );
        if let Ok(store) = self.store(ctx.ambiente) {
            if let Err(e) = store.append_audit(voce).await {
                return self.interno(e);
            }
        }
        ServiceError::AccessoNegato {
            permesso,
            riferimento: self.riferimento(None),
        }
    }

    /// An audit entry for `ctx` doing `azione` on `oggetto`.
    pub fn voce_audit(
        &self,
        ctx: &CallerContext,
        evento: TipoEvento,
        azione: &str,
        oggetto: Option<String>,
        esito: String,
    ) -> NuovaVoceAudit {
        NuovaVoceAudit {
            istante: self.clock.now(),
            evento,
            azione: azione.to_owned(),
            utente: ctx.utente.clone(),
            comune: ctx.comune.as_ref().map(ToString::to_string),
            postazione: ctx.postazione.clone(),
            canale: ctx.canale.as_str().to_owned(),
            oggetto,
            id_operazione_anpr: None,
            esito,
        }
    }

    /// Logs an internal failure and returns the opaque error the caller sees.
    pub fn interno(&self, cause: impl fmt::Display) -> ServiceError {
        let riferimento = self.riferimento(None);
        tracing::error!(riferimento = %riferimento, error = %cause, "internal error");
        ServiceError::Interno { riferimento }
    }
}

/// Our code for a request addressed to an environment this server does not serve.
pub const CODICE_AMBIENTE_NON_DISPONIBILE: &str = "EV010";
