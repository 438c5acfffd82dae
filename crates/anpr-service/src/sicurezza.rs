//! Security console use cases (SPEC M-8): census, smart cards, workstation
//! certificates, the workstation register, municipality parameters, and the caller
//! identity proved by a client certificate or a daily password.
//!
//! The rules are in `anpr-sicurezza`; here every use case is authorised with the one
//! permission matrix ([`crate::authz`]), scoped to the caller's own body (a municipality
//! acts on its own users, cards and workstations; a prefecture on the cards of its
//! province; registry staff everywhere), applied to a copy of the directory, persisted,
//! swapped in, and audited. Every security event — card state change, certificate issue
//! and revocation, login, failed login, permission denied — is an audit entry of the
//! caller's environment.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, RwLock};

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::error::Anomalia;
use anpr_sicurezza::archivio;
use anpr_sicurezza::ca::AutoritaCertificazione;
use anpr_sicurezza::carta::{Effetto, EventoCarta};
use anpr_sicurezza::catena::Fiducia;
use anpr_sicurezza::direttorio::{Direttorio, MailInUscita, ParametriComune, Utente};
use anpr_sicurezza::mtls::VerificatoreClienti;
use anpr_sicurezza::passkey::{self, Passkey, RelyingParty};
use anpr_sicurezza::ErroreSicurezza;
use anpr_store::sicurezza::{CaSicurezza, GettoneSicurezza};
use anpr_store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::authz::{self, Permesso};
use crate::clock::{inizio_giorno_italiano, italian_date};
use crate::{Registry, ServiceError};

/// How often a process looks at the store for directory changes made by other
/// processes sharing it (a change made by this process is seen at once).
pub const INTERVALLO_AGGIORNAMENTO: std::time::Duration = std::time::Duration::from_secs(1);

/// Attempts at a console change losing the race against other processes.
const TENTATIVI_MODIFICA: u32 = 8;

/// The directory as last read from (or written to) the store, with its version.
#[derive(Debug)]
struct Istantanea {
    direttorio: Arc<Direttorio>,
    versione: u64,
}

/// The security state: our CA, the directory (kept in the `Store`, shared by every
/// process using it; this is a cache refreshed from the store), the current CRL and
/// the mutual-TLS verifier fed with it.
pub struct Sicurezza {
    store: Arc<dyn Store>,
    ca: AutoritaCertificazione,
    /// Serialises this process's changes; other processes' changes are serialised by
    /// the store's version check.
    scrittura: tokio::sync::Mutex<()>,
    stato: RwLock<Arc<Istantanea>>,
    /// Our CA and the current CRL (replaced, never changed, when the CRL is issued again:
    /// it remembers the certificates that passed the chain check against this CRL).
    fiducia: RwLock<Arc<Fiducia>>,
    /// When the CRL was last issued: it is issued again before its next update.
    crl_emessa: std::sync::Mutex<DateTime<Utc>>,
    verificatore: RwLock<Option<Arc<VerificatoreClienti>>>,
    intervallo: std::time::Duration,
    ultimo_controllo: std::sync::Mutex<Option<std::time::Instant>>,
    /// Reverse proxies allowed to name the client in `X-Forwarded-For`.
    proxy_fidati: Vec<std::net::IpAddr>,
    /// WebAuthn relying party (RP id and page origins), when passkeys are enabled.
    webauthn: Option<RelyingParty>,
}

impl fmt::Debug for Sicurezza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sicurezza")
            .field("store", &self.store)
            .field("ca", &self.ca)
            .field("versione", &leggi(&self.stato).versione)
            .finish_non_exhaustive()
    }
}

fn leggi<T: Clone>(l: &RwLock<T>) -> T {
    l.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn scrivi<T>(l: &RwLock<T>, v: T) {
    *l.write().unwrap_or_else(std::sync::PoisonError::into_inner) = v;
}

fn del_database(e: anpr_store::StoreError) -> ErroreSicurezza {
    ErroreSicurezza::Interno(format!("archivio della sicurezza: {e}"))
}

/// The CRL is issued again when older than this (its next update is one day).
const RINNOVO_CRL_ORE: i64 = 12;

impl Sicurezza {
    /// Opens the directory kept in `store`: the CA is the stored one (created now by the
    /// first process), the directory is read in full.
    pub async fn apri(
        store: Arc<dyn Store>,
        adesso: DateTime<Utc>,
    ) -> Result<Self, ErroreSicurezza> {
        let nuova = AutoritaCertificazione::nuova(adesso)?;
        Self::apri_con_ca(store, nuova, adesso).await
    }

    async fn apri_con_ca(
        store: Arc<dyn Store>,
        proposta: AutoritaCertificazione,
        adesso: DateTime<Utc>,
    ) -> Result<Self, ErroreSicurezza> {
        let salvata = store
            .sicurezza_ca(CaSicurezza {
                certificato_der: proposta.certificato_der().to_vec(),
                chiave_pem: proposta.chiave_pem(),
            })
            .await
            .map_err(del_database)?;
        let ca = AutoritaCertificazione::carica(salvata.certificato_der, &salvata.chiave_pem)?;
        let carico = store.sicurezza_carica(0).await.map_err(del_database)?;
        let versione = carico.versione;
        let mut direttorio = Direttorio::default();
        archivio::applica(&mut direttorio, carico)?;
        let crl = direttorio.crl(&ca, adesso)?;
        let fiducia = Arc::new(Fiducia::nuova(ca.certificato_der().to_vec(), crl));
        Ok(Self {
            store,
            ca,
            scrittura: tokio::sync::Mutex::new(()),
            stato: RwLock::new(Arc::new(Istantanea {
                direttorio: Arc::new(direttorio),
                versione,
            })),
            fiducia: RwLock::new(fiducia),
            crl_emessa: std::sync::Mutex::new(adesso),
            verificatore: RwLock::new(None),
            intervallo: INTERVALLO_AGGIORNAMENTO,
            ultimo_controllo: std::sync::Mutex::new(Some(std::time::Instant::now())),
            proxy_fidati: Vec::new(),
            webauthn: None,
        })
    }

    /// Like [`Sicurezza::apri`], first importing the security files an earlier version
    /// kept in `<data_dir>/sicurezza` (CA and `direttorio.json`) when the store has no
    /// CA and no directory yet. The imported file is renamed `direttorio.json.importato`.
    pub async fn apri_con_importazione(
        store: Arc<dyn Store>,
        data_dir: &std::path::Path,
        adesso: DateTime<Utc>,
    ) -> Result<Self, ErroreSicurezza> {
        let precedenti = archivio::leggi_file_precedenti(data_dir)?;
        let proposta = match &precedenti.ca {
            Some((der, pem)) => AutoritaCertificazione::carica(der.clone(), pem)?,
            None => AutoritaCertificazione::nuova(adesso)?,
        };
        let sic = Self::apri_con_ca(store, proposta, adesso).await?;
        if let Some(d) = &precedenti.direttorio {
            let base = sic.istantanea();
            if base.versione == 0 {
                let m = archivio::modifica(&base.direttorio, d, 0, adesso)?;
                let v = sic.store.sicurezza_salva(m).await.map_err(del_database)?;
                sic.installa(d.clone(), v, true, adesso)?;
                tracing::info!(file = %precedenti.file_direttorio.display(), "security directory imported into the store");
            }
            archivio::segna_importato(&precedenti)?;
        }
        Ok(sic)
    }

    /// Sets how often other processes' changes are looked for (zero: at every use).
    pub fn con_intervallo_aggiornamento(mut self, intervallo: std::time::Duration) -> Self {
        self.intervallo = intervallo;
        self
    }

    /// Trusts these reverse proxies to name the client in `X-Forwarded-For` (the
    /// authorised-IP check then uses the address they forward).
    pub fn con_proxy_fidati(mut self, proxy: Vec<std::net::IpAddr>) -> Self {
        self.proxy_fidati = proxy.into_iter().map(|i| i.to_canonical()).collect();
        self
    }

    /// Enables passkeys for this relying party (RP id = the domain operators reach us
    /// on; origins = where the pages run, e.g. `https://anpr.comune.example.it`).
    pub fn con_webauthn(mut self, rp: RelyingParty) -> Self {
        self.webauthn = Some(rp);
        self
    }

    /// The trusted reverse proxies.
    pub fn proxy_fidati(&self) -> &[std::net::IpAddr] {
        &self.proxy_fidati
    }

    pub fn ca(&self) -> &AutoritaCertificazione {
        &self.ca
    }

    /// The store keeping the directory.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current CRL (DER).
    pub fn crl(&self) -> Vec<u8> {
        leggi(&self.fiducia).crl_der.clone()
    }

    /// Our CA and current CRL, for message-signature checks.
    pub fn fiducia(&self) -> Arc<Fiducia> {
        leggi(&self.fiducia)
    }

    fn istantanea(&self) -> Arc<Istantanea> {
        leggi(&self.stato)
    }

    /// The directory as last seen (call [`Sicurezza::aggiorna`] first where another
    /// process's change must be seen).
    pub fn direttorio(&self) -> Arc<Direttorio> {
        self.istantanea().direttorio.clone()
    }

    /// The directory version this process has.
    pub fn versione(&self) -> u64 {
        self.istantanea().versione
    }

    /// The mutual-TLS verifier, created on first call; later revocations update it.
    pub fn verificatore_tls(&self) -> Result<Arc<VerificatoreClienti>, ErroreSicurezza> {
        if let Some(v) = leggi(&self.verificatore) {
            return Ok(v);
        }
        let v = VerificatoreClienti::nuovo(self.ca.certificato_der(), &self.crl())?;
        scrivi(&self.verificatore, Some(v.clone()));
        Ok(v)
    }

    /// Sees the changes other processes made, at most once per interval: reads the
    /// store's version and, when it moved, the rows written since ours. Also issues the
    /// CRL again when it is getting old.
    pub async fn aggiorna(&self, adesso: DateTime<Utc>) -> Result<(), ErroreSicurezza> {
        {
            let mut ultimo = self
                .ultimo_controllo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ora = std::time::Instant::now();
            if ultimo.is_some_and(|u| ora.duration_since(u) < self.intervallo) {
                return Ok(());
            }
            *ultimo = Some(ora);
        }
        self.ricarica(adesso).await
    }

    /// Reads what other processes changed, now.
    pub async fn ricarica(&self, adesso: DateTime<Utc>) -> Result<(), ErroreSicurezza> {
        let base = self.istantanea();
        let versione = self
            .store
            .sicurezza_versione()
            .await
            .map_err(del_database)?;
        if versione != base.versione {
            let carico = self
                .store
                .sicurezza_carica(base.versione)
                .await
                .map_err(del_database)?;
            let v = carico.versione;
            let mut d = (*base.direttorio).clone();
            archivio::applica(&mut d, carico)?;
            let crl_cambiata = d.revoche != base.direttorio.revoche;
            self.installa(d, v, crl_cambiata, adesso)?;
        }
        let vecchia = *self
            .crl_emessa
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if adesso - vecchia > chrono::Duration::hours(RINNOVO_CRL_ORE) {
            let d = self.istantanea();
            self.pubblica_crl(&d.direttorio, adesso)?;
        }
        Ok(())
    }

    /// Installs directory `d` at version `v` (unless a newer one is already installed)
    /// and issues the CRL again when the revocations changed.
    fn installa(
        &self,
        mut d: Direttorio,
        v: u64,
        crl_cambiata: bool,
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        d.posta.clear();
        let d = Arc::new(d);
        {
            let mut stato = self
                .stato
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stato.versione >= v {
                return Ok(());
            }
            *stato = Arc::new(Istantanea {
                direttorio: d.clone(),
                versione: v,
            });
        }
        if crl_cambiata {
            self.pubblica_crl(&d, adesso)?;
        }
        Ok(())
    }

    fn pubblica_crl(&self, d: &Direttorio, adesso: DateTime<Utc>) -> Result<(), ErroreSicurezza> {
        let crl = d.crl(&self.ca, adesso)?;
        if let Some(v) = leggi(&self.verificatore) {
            v.aggiorna_crl(&crl)?;
        }
        scrivi(
            &self.fiducia,
            Arc::new(Fiducia::nuova(self.ca.certificato_der().to_vec(), crl)),
        );
        *self
            .crl_emessa
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = adesso;
        Ok(())
    }
}

/// Failed daily-password logins of one holder that lock them out...
pub const TENTATIVI_MASSIMI_PASSWORD: u32 = 5;
/// ...within this many minutes.
pub const FINESTRA_TENTATIVI_MINUTI: i64 = 15;

/// Kind of the session tokens in the store.
const TIPO_SESSIONE: &str = "sessione";

/// An open session: the token (shown once; only its SHA-256 is stored), when it stops,
/// and who it is.
#[derive(Debug, Clone)]
pub struct Sessione {
    pub token: String,
    pub scade: DateTime<Utc>,
    pub ctx: CallerContext,
}

/// 32 random bytes as hex: a session token or a challenge.
fn segreto_casuale() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b);
    hex::encode(b)
}

/// What the store keeps of a secret: its SHA-256 (hex).
fn impronta(segreto: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(segreto.as_bytes()))
}

/// Kind of the WebAuthn challenges in the store.
const TIPO_SFIDA: &str = "sfidaWebauthn";

/// How long a WebAuthn challenge may be answered.
const DURATA_SFIDA_MINUTI: i64 = 5;

/// What a console use case did, for the audit entry.
struct Esito<T> {
    valore: T,
    oggetto: String,
}

fn rifiuto(registry: &Registry, e: ErroreSicurezza) -> ServiceError {
    match e {
        ErroreSicurezza::Interno(causa) => registry.interno(causa),
        e => ServiceError::Rifiutata {
            anomalie: vec![Anomalia::errore(e.codice(), e.to_string())],
            riferimento: registry.riferimento(None),
        },
    }
}

/// Our code for identities that do not agree (same as the HTTP edge's).
pub const CODICE_IDENTITA_NON_AMMESSA: &str = "EA402";

/// Our code for a security console used without the security component configured.
pub const CODICE_SICUREZZA_NON_CONFIGURATA: &str = "EV248";

/// A card event as the console names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzioneCarta {
    AvvioProduzione,
    ArrivoInPrefettura,
    Consegna,
    Registrazione,
    Blocco,
    Sblocco,
    Revoca,
    Sostituzione,
}

impl AzioneCarta {
    /// The permission each action needs.
    pub fn permesso(self) -> Permesso {
        match self {
            AzioneCarta::AvvioProduzione | AzioneCarta::ArrivoInPrefettura => {
                Permesso::ProduzioneCarte
            }
            AzioneCarta::Consegna => Permesso::ConsegnaCarte,
            _ => Permesso::GestioneCarte,
        }
    }

    pub fn nome(self) -> &'static str {
        match self {
            AzioneCarta::AvvioProduzione => "cartaInProduzione",
            AzioneCarta::ArrivoInPrefettura => "cartaInPrefettura",
            AzioneCarta::Consegna => "cartaConsegnata",
            AzioneCarta::Registrazione => "cartaRegistrata",
            AzioneCarta::Blocco => "cartaBloccata",
            AzioneCarta::Sblocco => "cartaSbloccata",
            AzioneCarta::Revoca => "cartaRevocata",
            AzioneCarta::Sostituzione => "cartaSostituita",
        }
    }
}

/// The answer to a card event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsitoCarta {
    pub numero: String,
    pub stato: String,
    /// The replacement card, when the event was a replacement.
    pub nuova_carta: Option<String>,
    /// Recipients of the mails queued (delivered by the mail worker).
    pub mail_inviate: Vec<String>,
    /// At activation: the first halves of PIN and PUK, shown once to whoever hands the
    /// card over (the holder gets the second halves by mail).
    pub prime_meta: Option<PrimeMeta>,
}

/// The first halves of a card's PIN and PUK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrimeMeta {
    pub pin: String,
    pub puk: String,
}

/// A card's PIN (8 digits) and PUK (10 digits), drawn at activation and split in
/// halves: the first halves go with the card, the second by mail. We have no chip to
/// keep them in, so they are not stored anywhere: the mail's copy is removed from the
/// outbox once delivered.
struct CodiciCarta {
    pin: String,
    puk: String,
}

impl CodiciCarta {
    fn nuovi() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        let mut cifre = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect()
        };
        Self {
            pin: cifre(8),
            puk: cifre(10),
        }
    }

    fn prime_meta(&self) -> PrimeMeta {
        PrimeMeta {
            pin: self.pin[..4].to_owned(),
            puk: self.puk[..5].to_owned(),
        }
    }

    fn corpo_mail(&self, numero: &str, titolare: &str) -> String {
        format!(
            "Gentile titolare ({titolare}),\n\n\
             la carta ANPR n. {numero} è stata attivata.\n\n\
             {INIZIO_SEGRETO}\n\
             Seconda metà del PIN: {}\n\
             Seconda metà del PUK: {}\n\
             {FINE_SEGRETO}\n\n\
             La prima metà le è stata consegnata con la carta. Non risponda a questo messaggio.\n",
            &self.pin[4..],
            &self.puk[5..]
        )
    }
}

/// Markers around the secret part of a security mail: the mail worker removes what is
/// between them once the mail has been delivered (or given up).
pub const INIZIO_SEGRETO: &str = "-----INIZIO CODICI-----";
pub const FINE_SEGRETO: &str = "-----FINE CODICI-----";

/// The municipality (6 digits) a card number belongs to, or the province (3 digits).
fn ente_carta(numero: &str) -> &str {
    anpr_sicurezza::carta::ente_della_carta(numero)
}

/// EV208 unless certificate `seriale` was issued to `ente`.
fn certificato_dell_ente(d: &Direttorio, seriale: u64, ente: &str) -> Result<(), ErroreSicurezza> {
    match d.certificati.get(&seriale) {
        Some(c) if c.ente == ente => Ok(()),
        _ => Err(ErroreSicurezza::NonTrovato {
            codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
            cosa: format!("certificato {seriale} dell'ente {ente}"),
        }),
    }
}

/// EV208 unless `cf` is censused for `ente`.
fn utente_dell_ente(d: &Direttorio, cf: &str, ente: &str) -> Result<(), ErroreSicurezza> {
    if d.utenti.get(cf).is_some_and(|u| u.ruoli.contains_key(ente)) {
        Ok(())
    } else {
        Err(ErroreSicurezza::NonTrovato {
            codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
            cosa: format!("utente {cf} dell'ente {ente}"),
        })
    }
}

impl Registry {
    fn sicurezza(&self) -> Result<&Arc<Sicurezza>, ServiceError> {
        self.sicurezza
            .as_ref()
            .ok_or_else(|| ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(
                    CODICE_SICUREZZA_NON_CONFIGURATA,
                    "Componente di sicurezza non configurato su questo server",
                )],
                riferimento: self.riferimento(None),
            })
    }

    /// The security component with the changes other processes made seen (at most
    /// [`INTERVALLO_AGGIORNAMENTO`] late).
    pub async fn sicurezza_aggiornata(&self) -> Result<&Arc<Sicurezza>, ServiceError> {
        let sic = self.sicurezza()?;
        sic.aggiorna(self.clock().now())
            .await
            .map_err(|e| rifiuto(self, e))?;
        Ok(sic)
    }

    /// Whether `ctx` may act on body `ente` with `permesso`: its own municipality; for a
    /// prefecture administrator, the prefecture it is censused for and the
    /// municipalities of its province; everything for national profiles.
    fn nel_proprio_ambito(
        &self,
        ctx: &CallerContext,
        ente: &str,
        permesso: Permesso,
        d: &Direttorio,
    ) -> bool {
        if authz::ambito_nazionale(ctx) {
            return true;
        }
        if ctx.comune.as_ref().is_some_and(|c| c.to_string() == ente) {
            return true;
        }
        // A prefecture acts for its province only through the prefecture profile.
        ctx.has(Profilo::AmministratorePrefettura)
            && matches!(
                permesso,
                Permesso::ConsegnaCarte | Permesso::CensimentoUtenti
            )
            && d.utenti.get(&ctx.utente).is_some_and(|u| {
                u.ruoli.iter().any(|(pref, profili)| {
                    pref.len() == 3
                        && profili.contains(&Profilo::AmministratorePrefettura)
                        && ente.starts_with(pref.as_str())
                })
            })
    }

    /// Runs one console change: authorise, then (against the latest directory, again
    /// if another process changed it meanwhile) scope, apply to a copy, store the rows
    /// that changed with the mails it queued in one transaction, install it (with a new
    /// CRL when revocations changed); audit.
    async fn modifica_sicurezza<T>(
        &self,
        ctx: &CallerContext,
        permesso: Permesso,
        azione: &str,
        ente: &str,
        f: impl FnMut(
            &mut Direttorio,
            &AutoritaCertificazione,
            DateTime<Utc>,
        ) -> Result<Esito<T>, ErroreSicurezza>,
    ) -> Result<T, ServiceError> {
        self.autorizza(ctx, permesso, azione).await?;
        self.modifica_interna(ctx, Some((permesso, ente)), azione, f)
            .await
    }

    /// The change loop of [`Registry::modifica_sicurezza`], with the scope check when
    /// `ambito` is given; without it, for self-service changes whose authorisation is
    /// the caller's own proof (a passkey registered by its card holder, a passkey's
    /// counter after a login).
    async fn modifica_interna<T>(
        &self,
        ctx: &CallerContext,
        ambito: Option<(Permesso, &str)>,
        azione: &str,
        mut f: impl FnMut(
            &mut Direttorio,
            &AutoritaCertificazione,
            DateTime<Utc>,
        ) -> Result<Esito<T>, ErroreSicurezza>,
    ) -> Result<T, ServiceError> {
        let sic = self.sicurezza()?.clone();
        let _scrittura = sic.scrittura.lock().await;
        for _ in 0..TENTATIVI_MODIFICA {
            let adesso = self.clock().now();
            sic.ricarica(adesso).await.map_err(|e| rifiuto(self, e))?;
            let base = sic.istantanea();
            if let Some((permesso, ente)) = ambito {
                if !self.nel_proprio_ambito(ctx, ente, permesso, &base.direttorio) {
                    return Err(self.nega(ctx, permesso, azione).await);
                }
            }
            let mut nuovo = (*base.direttorio).clone();
            nuovo.posta.clear();
            let esito = f(&mut nuovo, &sic.ca, adesso).map_err(|e| rifiuto(self, e))?;
            let crl_cambiata = nuovo.revoche != base.direttorio.revoche;
            if crl_cambiata {
                nuovo.numero_crl += 1;
            }
            let m = archivio::modifica(&base.direttorio, &nuovo, base.versione, adesso)
                .map_err(|e| rifiuto(self, e))?;
            match sic.store.sicurezza_salva(m).await {
                Ok(v) => {
                    sic.installa(nuovo, v, crl_cambiata, adesso)
                        .map_err(|e| rifiuto(self, e))?;
                    self.audit_sicurezza(ctx, azione, Some(esito.oggetto), "ok")
                        .await?;
                    return Ok(esito.valore);
                }
                Err(anpr_store::StoreError::ConflittoSicurezza { .. }) => {
                    tracing::debug!(
                        azione,
                        "security directory changed by another process; trying again"
                    );
                }
                Err(e) => return Err(self.interno(e)),
            }
        }
        Err(self.interno(format!(
            "{azione}: the security directory kept changing ({TENTATIVI_MODIFICA} attempts)"
        )))
    }

    async fn audit_sicurezza(
        &self,
        ctx: &CallerContext,
        azione: &str,
        oggetto: Option<String>,
        esito: &str,
    ) -> Result<(), ServiceError> {
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Amministrazione,
            azione,
            oggetto,
            esito.into(),
        );
        self.store(ctx.ambiente)?
            .append_audit(voce)
            .await
            .map(|_| ())
            .map_err(|e| self.interno(e))
    }

    /// Census (or update) a user of `ente` with `profili` there.
    pub async fn censisci_utente(
        &self,
        ctx: &CallerContext,
        ente: &str,
        utente: Utente,
        profili: BTreeSet<Profilo>,
    ) -> Result<(), ServiceError> {
        let cf = utente.codice_fiscale.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "utenteCensito",
            ente,
            |d, _, _| {
                d.censisci(ente, utente.clone(), profili.clone())?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("utente:{cf}@{ente}"),
                })
            },
        )
        .await
    }

    /// Deletes a user: their card and its certificate are revoked at once.
    pub async fn cancella_utente(
        &self,
        ctx: &CallerContext,
        ente: &str,
        cf: &str,
    ) -> Result<(), ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "utenteCancellato",
            ente,
            |d, _, adesso| {
                utente_dell_ente(d, cf, ente)?;
                d.cancella_utente(cf, adesso)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("utente:{cf}@{ente}"),
                })
            },
        )
        .await
    }

    /// Declares the number of workstations of `ente` (census).
    pub async fn dichiara_postazioni(
        &self,
        ctx: &CallerContext,
        ente: &str,
        numero: u32,
    ) -> Result<(), ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "postazioniDichiarate",
            ente,
            |d, _, _| {
                d.dichiara_postazioni(ente, numero)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("postazioni:{ente}={numero}"),
                })
            },
        )
        .await
    }

    /// Requests the card of a censused user of `ente`; returns its number.
    pub async fn richiedi_carta(
        &self,
        ctx: &CallerContext,
        ente: &str,
        cf: &str,
    ) -> Result<String, ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "cartaRichiesta",
            ente,
            |d, _, adesso| {
                let n = d.richiedi_carta(ente, cf, adesso)?;
                Ok(Esito {
                    oggetto: format!("carta:{n}"),
                    valore: n,
                })
            },
        )
        .await
    }

    /// Applies a lifecycle event to a card. Production also issues the card's
    /// certificate; activation mails the holder the PIN/PUK halves.
    pub async fn evento_carta(
        &self,
        ctx: &CallerContext,
        numero: &str,
        azione: AzioneCarta,
    ) -> Result<EsitoCarta, ServiceError> {
        let ente = ente_carta(numero).to_owned();
        let sindaco_ctx = ctx.has(Profilo::Sindaco);
        let d = self.sicurezza_aggiornata().await?.direttorio();
        // The mayor's own card is the one that becomes active at delivery; which card
        // that is comes from the directory (the holder censused as ASC).
        let del_sindaco = d
            .carta(numero)
            .ok()
            .and_then(|c| d.utenti.get(&c.titolare))
            .is_some_and(|u| {
                u.ruoli
                    .get(&ente)
                    .is_some_and(|p| p.contains(&Profilo::Sindaco))
            });
        // The mayor may register only the ALS's card; the ALS registers the others.
        if azione == AzioneCarta::Registrazione
            && sindaco_ctx
            && !ctx.has(Profilo::AmministratoreSicurezza)
        {
            let e_als = d
                .carta(numero)
                .ok()
                .and_then(|c| d.utenti.get(&c.titolare))
                .is_some_and(|u| {
                    u.ruoli
                        .get(&ente)
                        .is_some_and(|p| p.contains(&Profilo::AmministratoreSicurezza))
                });
            if !e_als {
                return Err(self.nega(ctx, Permesso::GestioneCarte, azione.nome()).await);
            }
        }
        let evento = match azione {
            AzioneCarta::AvvioProduzione => EventoCarta::AvvioProduzione,
            AzioneCarta::ArrivoInPrefettura => EventoCarta::ArrivoInPrefettura,
            AzioneCarta::Consegna => EventoCarta::Consegna { del_sindaco },
            AzioneCarta::Registrazione => EventoCarta::Registrazione,
            AzioneCarta::Blocco => EventoCarta::Blocco,
            AzioneCarta::Sblocco => EventoCarta::Sblocco,
            AzioneCarta::Revoca => EventoCarta::Revoca,
            AzioneCarta::Sostituzione => EventoCarta::Sostituzione,
        };
        self.modifica_sicurezza(
            ctx,
            azione.permesso(),
            azione.nome(),
            &ente,
            |d, ca, adesso| {
                let (effetti, nuova) = d.evento_carta(numero, evento, adesso)?;
                if evento == EventoCarta::AvvioProduzione {
                    d.emetti_certificato_carta(ca, numero, adesso)?;
                }
                if let Some(n) = &nuova {
                    // The replacement is produced at once: same holder, new key.
                    d.evento_carta(n, EventoCarta::AvvioProduzione, adesso)?;
                    d.emetti_certificato_carta(ca, n, adesso)?;
                }
                let mut mail = Vec::new();
                let mut prime_meta = None;
                for e in effetti {
                    let Effetto::MailSecondaMetaPin { numero, titolare } = e;
                    let email = d
                        .utenti
                        .get(&titolare)
                        .map(|u| u.email.clone())
                        .unwrap_or_default();
                    let codici = CodiciCarta::nuovi();
                    d.posta.push(MailInUscita {
                        destinatario: email.clone(),
                        oggetto: format!(
                            "ANPR: carta {numero} attivata - seconda metà di PIN e PUK"
                        ),
                        corpo: codici.corpo_mail(&numero, &titolare),
                        carta: numero,
                    });
                    prime_meta = Some(codici.prime_meta());
                    mail.push(email);
                }
                let carta = d.carta(numero)?;
                Ok(Esito {
                    oggetto: format!("carta:{numero}:{}", carta.stato.nome()),
                    valore: EsitoCarta {
                        numero: numero.to_owned(),
                        stato: carta.stato.nome().to_owned(),
                        nuova_carta: nuova,
                        mail_inviate: mail,
                        prime_meta: prime_meta.clone(),
                    },
                })
            },
        )
        .await
    }

    /// The content of a card's chip, as a PKCS#12 bundle (its certificate and key)
    /// protected by `password`: we have no physical cards, so whoever hands cards over
    /// (the prefecture to the mayor, the mayor or ALS to the holders) hands this over.
    pub async fn materiale_carta(
        &self,
        ctx: &CallerContext,
        numero: &str,
        password: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        let ente = ente_carta(numero).to_owned();
        let permesso = if authz::autorizza(ctx, Permesso::GestioneCarte).is_ok() {
            Permesso::GestioneCarte
        } else {
            Permesso::ConsegnaCarte
        };
        self.modifica_sicurezza(
            ctx,
            permesso,
            "cartaConsegnataAlTitolare",
            &ente,
            |d, ca, _| {
                let carta = d.carta(numero)?;
                let seriale =
                    carta
                        .seriale_certificato
                        .ok_or_else(|| ErroreSicurezza::Certificato {
                            codice: anpr_sicurezza::errore::CODICE_CERTIFICATO_NON_VALIDO,
                            messaggio: format!("La carta {numero} non è ancora stata prodotta"),
                        })?;
                let cert = &d
                    .certificati
                    .get(&seriale)
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("certificato {seriale}"),
                    })?
                    .emesso;
                Ok(Esito {
                    valore: ca.pkcs12(cert, password)?,
                    oggetto: format!("carta:{numero}"),
                })
            },
        )
        .await
    }

    /// Grants a daily password to a holder of `ente` (ALS); returns it (shown once).
    pub async fn concedi_password_giornaliera(
        &self,
        ctx: &CallerContext,
        ente: &str,
        cf: &str,
    ) -> Result<String, ServiceError> {
        let fine = inizio_giorno_italiano(italian_date(self.clock().now()) + chrono::Days::new(1));
        self.modifica_sicurezza(
            ctx,
            Permesso::GestioneCarte,
            "passwordGiornalieraConcessa",
            ente,
            |d, _, _| {
                utente_dell_ente(d, cf, ente)?;
                let pw = d.concedi_password_giornaliera(cf, fine)?;
                Ok(Esito {
                    valore: pw,
                    oggetto: format!("utente:{cf}"),
                })
            },
        )
        .await
    }

    /// Issues the missing workstation certificates and the server certificate of
    /// `ente`; returns their serials.
    pub async fn emetti_certificati_postazione(
        &self,
        ctx: &CallerContext,
        ente: &str,
    ) -> Result<Vec<u64>, ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatiEmessi",
            ente,
            |d, ca, adesso| {
                let v = d.emetti_certificati_postazione(ca, ente, &operatore, adesso)?;
                Ok(Esito {
                    oggetto: format!("certificati:{ente}:{v:?}"),
                    valore: v,
                })
            },
        )
        .await
    }

    /// A PKCS#12 bundle of a certificate of `ente`, protected by `password`; the
    /// download is recorded in the workstation register.
    pub async fn scarica_certificato(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
        password: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatoScaricato",
            ente,
            |d, ca, adesso| {
                let c = d
                    .certificati
                    .get(&seriale)
                    .filter(|c| {
                        c.ente == ente
                            && c.emesso.tipo != anpr_sicurezza::ca::TipoCertificato::Utente
                    })
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("certificato {seriale} dell'ente {ente}"),
                    })?;
                if c.stato != anpr_sicurezza::direttorio::StatoCertificato::Valido {
                    return Err(ErroreSicurezza::Certificato {
                        codice: anpr_sicurezza::errore::CODICE_CERTIFICATO_REVOCATO,
                        messaggio: format!("Certificato {seriale} revocato o bloccato"),
                    });
                }
                let p12 = ca.pkcs12(&c.emesso, password)?;
                let cn = c.emesso.cn.clone();
                d.registro.aggiungi(anpr_sicurezza::registro::DatiVoce {
                    istante: adesso,
                    evento: anpr_sicurezza::registro::EventoPostazione::Scaricato,
                    postazione: cn.clone(),
                    seriale,
                    mac: None,
                    nome_computer: None,
                    operatore: operatore.clone(),
                });
                Ok(Esito {
                    valore: p12,
                    oggetto: format!("certificato:{seriale}:{cn}"),
                })
            },
        )
        .await
    }

    /// Records where a certificate of `ente` was installed.
    pub async fn registra_installazione(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
        mac: &str,
        nome_computer: &str,
    ) -> Result<(), ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatoInstallato",
            ente,
            |d, _, adesso| {
                certificato_dell_ente(d, seriale, ente)?;
                d.registra_installazione(seriale, mac, nome_computer, &operatore, adesso)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("certificato:{seriale}:{nome_computer}"),
                })
            },
        )
        .await
    }

    /// Revokes (or blocks) a workstation or server certificate of `ente`.
    pub async fn revoca_certificato(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
        bloccato: bool,
    ) -> Result<(), ServiceError> {
        let operatore = ctx.utente.clone();
        let azione = if bloccato {
            "certificatoBloccato"
        } else {
            "certificatoRevocato"
        };
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            azione,
            ente,
            |d, _, adesso| {
                certificato_dell_ente(d, seriale, ente)?;
                d.revoca_certificato(seriale, bloccato, &operatore, adesso)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("certificato:{seriale}"),
                })
            },
        )
        .await
    }

    /// Renews a certificate of `ente`: a new one replaces it, the old one is revoked.
    pub async fn rinnova_certificato(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
    ) -> Result<u64, ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatoRinnovato",
            ente,
            |d, ca, adesso| {
                certificato_dell_ente(d, seriale, ente)?;
                let nuovo = d.rinnova_certificato(ca, seriale, &operatore, adesso)?;
                Ok(Esito {
                    valore: nuovo,
                    oggetto: format!("certificato:{seriale}->{nuovo}"),
                })
            },
        )
        .await
    }

    /// Sets the municipality parameters.
    pub async fn imposta_parametri(
        &self,
        ctx: &CallerContext,
        ente: &str,
        parametri: ParametriComune,
    ) -> Result<(), ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::ParametriComune,
            "parametriComune",
            ente,
            |d, _, _| {
                // The authorised IPs are the security administrator's
                // (`imposta_indirizzi_autorizzati`): they are kept as they are.
                let mut p = parametri.clone();
                p.ip_autorizzati = d
                    .parametri
                    .get(ente)
                    .map(|v| v.ip_autorizzati.clone())
                    .unwrap_or_default();
                d.parametri.insert(ente.to_owned(), p);
                Ok(Esito {
                    valore: (),
                    oggetto: format!("parametri:{ente}"),
                })
            },
        )
        .await
    }

    /// Sets the authorised IP addresses of municipality `ente` (its security
    /// administrator); an empty list lifts the restriction. Callers of that
    /// municipality from any other address are then refused at the HTTP edge (EV233).
    pub async fn imposta_indirizzi_autorizzati(
        &self,
        ctx: &CallerContext,
        ente: &str,
        indirizzi: Vec<std::net::IpAddr>,
    ) -> Result<(), ServiceError> {
        let mut indirizzi: Vec<std::net::IpAddr> =
            indirizzi.into_iter().map(|i| i.to_canonical()).collect();
        indirizzi.sort_unstable();
        indirizzi.dedup();
        self.modifica_sicurezza(
            ctx,
            Permesso::IndirizziAutorizzati,
            "indirizziAutorizzati",
            ente,
            |d, _, _| {
                if ente.len() != 6 || !ente.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("comune {ente:?}"),
                    });
                }
                d.parametri
                    .entry(ente.to_owned())
                    .or_default()
                    .ip_autorizzati = indirizzi.clone();
                Ok(Esito {
                    valore: (),
                    oggetto: format!(
                        "ip:{ente}={}",
                        indirizzi
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                })
            },
        )
        .await
    }

    /// The authorised IP addresses of a municipality (empty: unrestricted).
    pub async fn indirizzi_autorizzati(
        &self,
        ctx: &CallerContext,
        ente: &str,
    ) -> Result<Vec<std::net::IpAddr>, ServiceError> {
        self.autorizza(
            ctx,
            Permesso::IndirizziAutorizzati,
            "leggiIndirizziAutorizzati",
        )
        .await?;
        let d = self.sicurezza_aggiornata().await?.direttorio();
        if !self.nel_proprio_ambito(ctx, ente, Permesso::IndirizziAutorizzati, &d) {
            return Err(self
                .nega(
                    ctx,
                    Permesso::IndirizziAutorizzati,
                    "leggiIndirizziAutorizzati",
                )
                .await);
        }
        Ok(d.parametri
            .get(ente)
            .map(|p| p.ip_autorizzati.clone())
            .unwrap_or_default())
    }

    /// The edge's check of where a caller connects from: when the caller's
    /// municipality declared authorised addresses, `ip` (the peer address, or the one a
    /// trusted proxy forwarded) must be one of them, else EV233, audited as a failed
    /// login. An unknown address never passes a restriction.
    pub async fn verifica_indirizzo(
        &self,
        ctx: &CallerContext,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), ServiceError> {
        let (Some(comune), Some(sic)) = (ctx.comune.as_ref(), self.sicurezza.as_ref()) else {
            return Ok(());
        };
        let d = sic.direttorio();
        let Some(ammessi) = d
            .parametri
            .get(comune.as_str())
            .filter(|p| !p.ip_autorizzati.is_empty())
        else {
            return Ok(());
        };
        if ip.is_some_and(|ip| ammessi.ip_autorizzati.contains(&ip.to_canonical())) {
            return Ok(());
        }
        let trovato = ip.map_or_else(|| "sconosciuto".to_owned(), |ip| ip.to_string());
        self.audit_sicurezza(
            ctx,
            "accessoFallito",
            Some(format!(
                "ip:{trovato}:{}",
                anpr_sicurezza::errore::CODICE_IP_NON_AUTORIZZATO
            )),
            "negato",
        )
        .await?;
        Err(ServiceError::Rifiutata {
            anomalie: vec![Anomalia::errore(
                anpr_sicurezza::errore::CODICE_IP_NON_AUTORIZZATO,
                format!("Indirizzo IP {trovato} non autorizzato per il comune {comune}"),
            )
            .campo("indirizzoIp")
            .valore(trovato)
            .atteso(
                ammessi
                    .ip_autorizzati
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            )],
            riferimento: self.riferimento(None),
        })
    }

    /// Verifies the workstation register's chain (the workstation administrator of any
    /// municipality, or audit staff); returns the number of entries.
    pub async fn verifica_registro_postazioni(
        &self,
        ctx: &CallerContext,
    ) -> Result<usize, ServiceError> {
        if authz::autorizza(ctx, Permesso::GestionePostazioni).is_err() {
            self.autorizza(ctx, Permesso::VerificaAudit, "verificaRegistroPostazioni")
                .await?;
        }
        self.sicurezza_aggiornata()
            .await?
            .direttorio()
            .registro
            .verifica()
            .map_err(|e| rifiuto(self, e))
    }

    /// The caller proved by a verified TLS client certificate: a smart-card certificate
    /// gives the holder with their profiles for the card's body (if the card is active
    /// and the certificate is the card's current one); a workstation or server
    /// certificate gives the municipality and workstation, with no profile (the user
    /// comes from the signed message). Failed card logins are audited.
    pub async fn chiamante_da_certificato(
        &self,
        ambiente: Ambiente,
        der: &[u8],
        canale: Canale,
    ) -> Result<CallerContext, ServiceError> {
        let sic = self.sicurezza_aggiornata().await?.clone();
        let id = anpr_sicurezza::ca::identita(der).map_err(|e| rifiuto(self, e))?;
        let anonimo = |utente: String| CallerContext {
            ambiente,
            comune: None,
            utente,
            profili: BTreeSet::new(),
            postazione: None,
            canale,
        };
        let d = sic.direttorio();
        let Some(numero) = id.ou.clone().filter(|ou| ou.len() == 10) else {
            // Workstation or server certificate: still valid now (it may have been
            // revoked or blocked since the connection's handshake).
            let mut ctx = anonimo(id.cn.clone());
            ctx.comune = id.ou.as_deref().and_then(|c| c.parse().ok());
            ctx.postazione = Some(id.cn.clone());
            self.postazione_ancora_valida(&ctx, id.seriale, &d).await?;
            return Ok(ctx);
        };
        let esito = d
            .carta(&numero)
            .and_then(|c| {
                if c.seriale_certificato != Some(id.seriale) || c.titolare != id.cn {
                    return Err(ErroreSicurezza::Certificato {
                        codice: anpr_sicurezza::errore::CODICE_CERTIFICATO_REVOCATO,
                        messaggio: "Certificato non più associato alla carta".into(),
                    });
                }
                c.consente_accesso(self.clock().now())
            })
            .and_then(|_| {
                d.utenti
                    .get(&id.cn)
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("utente {}", id.cn),
                    })
            });
        let ente = ente_carta(&numero).to_owned();
        match esito {
            Ok(u) => {
                let mut ctx = anonimo(id.cn.clone());
                ctx.profili = u.ruoli.get(&ente).cloned().unwrap_or_default();
                ctx.comune = ente.parse().ok();
                Ok(ctx)
            }
            Err(e) => {
                let ctx = anonimo(id.cn.clone());
                self.audit_sicurezza(
                    &ctx,
                    "accessoFallito",
                    Some(format!("carta:{numero}:{}", e.codice())),
                    "negato",
                )
                .await?;
                Err(rifiuto(self, e))
            }
        }
    }

    /// EV209 (audited as a failed login) when the workstation or server certificate
    /// `seriale` is revoked or blocked in the directory.
    async fn postazione_ancora_valida(
        &self,
        ctx: &CallerContext,
        seriale: u64,
        d: &Direttorio,
    ) -> Result<(), ServiceError> {
        let revocato = d
            .certificati
            .get(&seriale)
            .is_some_and(|c| c.stato != anpr_sicurezza::direttorio::StatoCertificato::Valido);
        if !revocato {
            return Ok(());
        }
        let codice = anpr_sicurezza::errore::CODICE_CERTIFICATO_REVOCATO;
        self.audit_sicurezza(
            ctx,
            "accessoFallito",
            Some(format!("certificato:{seriale}:{codice}")),
            "negato",
        )
        .await?;
        Err(ServiceError::Rifiutata {
            anomalie: vec![Anomalia::errore(
                codice,
                format!(
                    "Certificato di postazione {} revocato o bloccato",
                    ctx.postazione.as_deref().unwrap_or("")
                ),
            )
            .campo("certificatoClient")
            .valore(seriale.to_string())],
            riferimento: self.riferimento(None),
        })
    }

    /// The workstation a verified TLS client certificate names, for a caller
    /// identified otherwise (a signed message, a session): `Ok(None)` for a card
    /// certificate of the same person; the workstation id when it is a workstation or
    /// server certificate of the caller's municipality and still valid (EV209,
    /// audited, when revoked or blocked since the handshake); EA402 when it belongs to
    /// another municipality or another person.
    pub async fn postazione_da_certificato(
        &self,
        ctx: &CallerContext,
        der: &[u8],
    ) -> Result<Option<String>, ServiceError> {
        let sic = self.sicurezza_aggiornata().await?.clone();
        let id = anpr_sicurezza::ca::identita(der).map_err(|e| rifiuto(self, e))?;
        let conflitto = |testo: String| ServiceError::Rifiutata {
            anomalie: vec![
                Anomalia::errore(CODICE_IDENTITA_NON_AMMESSA, testo).campo("certificatoClient")
            ],
            riferimento: self.riferimento(None),
        };
        match id.ou.as_deref() {
            Some(ou) if ou.len() == 10 => {
                if id.cn == ctx.utente {
                    Ok(None)
                } else {
                    Err(conflitto(format!(
                        "La connessione è della carta di {}, il messaggio dell'utente {}",
                        id.cn, ctx.utente
                    )))
                }
            }
            ou => {
                if ctx.comune.as_ref().map(|c| c.as_str()) != ou {
                    return Err(conflitto(format!(
                        "Certificato di postazione {} di un altro comune",
                        id.cn
                    )));
                }
                let mut c = ctx.clone();
                c.postazione = Some(id.cn.clone());
                self.postazione_ancora_valida(&c, id.seriale, &sic.direttorio())
                    .await?;
                Ok(Some(id.cn))
            }
        }
    }

    /// Records a failed login of an unidentified sender (a refused signed request).
    pub async fn registra_accesso_fallito(
        &self,
        ambiente: Ambiente,
        motivo: &str,
    ) -> Result<(), ServiceError> {
        let ctx = CallerContext {
            ambiente,
            comune: None,
            utente: "anonimo".into(),
            profili: BTreeSet::new(),
            postazione: None,
            canale: Canale::Rest,
        };
        self.audit_sicurezza(&ctx, "accessoFallito", Some(motivo.to_owned()), "negato")
            .await
    }

    /// Records a refused access of an identified caller (`motivo`: what was missing,
    /// with its code, e.g. `postazione:EV234`) as a failed login.
    pub async fn registra_accesso_rifiutato(
        &self,
        ctx: &CallerContext,
        motivo: &str,
    ) -> Result<(), ServiceError> {
        self.audit_sicurezza(ctx, "accessoFallito", Some(motivo.to_owned()), "negato")
            .await
    }

    /// Records a login (a new TLS connection with a card, a daily password use).
    pub async fn registra_accesso(&self, ctx: &CallerContext) -> Result<(), ServiceError> {
        self.audit_sicurezza(ctx, "accesso", None, "ok").await
    }

    /// Login with a daily password: the holder's identity for `ente`, or EV206 (audited
    /// as a failed login) when wrong or past midnight, EV213 when the holder is not
    /// censused for `ente`.
    pub async fn accedi_con_password(
        &self,
        ambiente: Ambiente,
        ente: &str,
        cf: &str,
        password: &str,
        canale: Canale,
    ) -> Result<CallerContext, ServiceError> {
        let d = self.sicurezza_aggiornata().await?.direttorio();
        let mut ctx = CallerContext {
            ambiente,
            comune: None,
            utente: cf.to_owned(),
            profili: BTreeSet::new(),
            postazione: None,
            canale,
        };
        let esito = d
            .verifica_password_giornaliera(cf, password, self.clock().now())
            .and_then(|()| {
                d.utenti
                    .get(cf)
                    .and_then(|u| u.ruoli.get(ente).cloned())
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| ErroreSicurezza::Censimento {
                        codice: anpr_sicurezza::errore::CODICE_RUOLO_MANCANTE,
                        messaggio: format!("Utente {cf} non censito per l'ente {ente}"),
                    })
            });
        match esito {
            Ok(profili) => {
                ctx.profili = profili;
                ctx.comune = ente.parse().ok();
                self.audit_sicurezza(&ctx, "accessoPasswordGiornaliera", None, "ok")
                    .await?;
                Ok(ctx)
            }
            Err(e) => {
                self.audit_sicurezza(
                    &ctx,
                    "accessoFallito",
                    Some(format!("password:{}", e.codice())),
                    "negato",
                )
                .await?;
                Err(rifiuto(self, e))
            }
        }
    }

    /// Opens a session with a daily password (see [`Registry::accedi_con_password`]):
    /// a random token, valid until the password itself stops (midnight, Italian civil
    /// time), kept in the store as its SHA-256 so that any process accepts it. After
    /// [`TENTATIVI_MASSIMI_PASSWORD`] failures within [`FINESTRA_TENTATIVI_MINUTI`]
    /// minutes the holder is locked out (EV214, audited) until the oldest ages out.
    pub async fn apri_sessione_password(
        &self,
        ambiente: Ambiente,
        ente: &str,
        cf: &str,
        password: &str,
        canale: Canale,
    ) -> Result<Sessione, ServiceError> {
        let sic = self.sicurezza_aggiornata().await?.clone();
        let adesso = self.clock().now();
        let chiave = format!("password:{cf}");
        let dal = adesso - chrono::Duration::minutes(FINESTRA_TENTATIVI_MINUTI);
        let falliti = sic
            .store
            .sicurezza_accessi_falliti(&chiave, dal)
            .await
            .map_err(|e| self.interno(e))?;
        if falliti >= TENTATIVI_MASSIMI_PASSWORD {
            let ctx = CallerContext {
                ambiente,
                comune: None,
                utente: cf.to_owned(),
                profili: BTreeSet::new(),
                postazione: None,
                canale,
            };
            self.audit_sicurezza(
                &ctx,
                "accessoFallito",
                Some(format!(
                    "password:{}",
                    anpr_sicurezza::errore::CODICE_TROPPI_TENTATIVI
                )),
                "negato",
            )
            .await?;
            return Err(ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(
                    anpr_sicurezza::errore::CODICE_TROPPI_TENTATIVI,
                    format!(
                        "Troppi tentativi falliti per {cf}: accesso sospeso per {FINESTRA_TENTATIVI_MINUTI} minuti"
                    ),
                )
                .campo("codiceFiscale")
                .atteso(format!(
                    "al più {TENTATIVI_MASSIMI_PASSWORD} tentativi errati in {FINESTRA_TENTATIVI_MINUTI} minuti"
                ))],
                riferimento: self.riferimento(None),
            });
        }
        let ctx = match self
            .accedi_con_password(ambiente, ente, cf, password, canale)
            .await
        {
            Ok(ctx) => ctx,
            Err(e) => {
                if matches!(e, ServiceError::Rifiutata { .. }) {
                    sic.store
                        .sicurezza_accesso_fallito(&chiave, adesso, dal)
                        .await
                        .map_err(|e| self.interno(e))?;
                }
                return Err(e);
            }
        };
        sic.store
            .sicurezza_azzera_accessi_falliti(&chiave)
            .await
            .map_err(|e| self.interno(e))?;
        let scade = sic
            .direttorio()
            .password_giornaliere
            .iter()
            .find(|p| p.titolare == cf)
            .map_or(adesso, |p| p.scade);
        let token = segreto_casuale();
        sic.store
            .sicurezza_gettone_crea(GettoneSicurezza {
                impronta: impronta(&token),
                tipo: TIPO_SESSIONE.into(),
                titolare: Some(cf.to_owned()),
                ente: Some(ente.to_owned()),
                dati: serde_json::json!({"canale": canale.as_str(), "accesso": "passwordGiornaliera"}),
                creato_il: adesso,
                scade_il: scade,
            })
            .await
            .map_err(|e| self.interno(e))?;
        Ok(Sessione { token, scade, ctx })
    }

    /// The caller of a request carrying a session token: the holder with their current
    /// profiles for the session's body. Unknown, expired or orphaned tokens are EV215,
    /// audited as failed logins.
    pub async fn chiamante_da_sessione(
        &self,
        ambiente: Ambiente,
        token: &str,
        canale: Canale,
    ) -> Result<CallerContext, ServiceError> {
        let sic = self.sicurezza_aggiornata().await?.clone();
        let adesso = self.clock().now();
        let g = sic
            .store
            .sicurezza_gettone(&impronta(token), TIPO_SESSIONE, adesso)
            .await
            .map_err(|e| self.interno(e))?;
        let d = sic.direttorio();
        let trovato = g.as_ref().and_then(|g| {
            let cf = g.titolare.clone()?;
            let ente = g.ente.clone()?;
            // A passkey session lasts only while the bound card gives access.
            if g.dati["accesso"] == "passkey" {
                let pk = d.passkey.get(g.dati["passkey"].as_str()?)?;
                let carta = self.carta_attiva(&d, &cf).ok()?;
                if carta.numero != pk.carta {
                    return None;
                }
            }
            let profili = d
                .utenti
                .get(&cf)?
                .ruoli
                .get(&ente)
                .filter(|p| !p.is_empty())?
                .clone();
            Some((cf, ente, profili))
        });
        match trovato {
            Some((cf, ente, profili)) => Ok(CallerContext {
                ambiente,
                comune: ente.parse().ok(),
                utente: cf,
                profili,
                postazione: None,
                canale,
            }),
            None => {
                let ctx = CallerContext {
                    ambiente,
                    comune: None,
                    utente: g
                        .and_then(|g| g.titolare)
                        .unwrap_or_else(|| "anonimo".into()),
                    profili: BTreeSet::new(),
                    postazione: None,
                    canale,
                };
                self.audit_sicurezza(
                    &ctx,
                    "accessoFallito",
                    Some(format!(
                        "sessione:{}",
                        anpr_sicurezza::errore::CODICE_SESSIONE_NON_VALIDA
                    )),
                    "negato",
                )
                .await?;
                Err(ServiceError::Rifiutata {
                    anomalie: vec![Anomalia::errore(
                        anpr_sicurezza::errore::CODICE_SESSIONE_NON_VALIDA,
                        "Sessione non valida o scaduta (vale fino alla mezzanotte del giorno di accesso): accedere di nuovo",
                    )
                    .campo("Authorization")],
                    riferimento: self.riferimento(None),
                })
            }
        }
    }

    /// Ends a session (logout); `false` when the token was not a live session.
    pub async fn chiudi_sessione(
        &self,
        ctx: &CallerContext,
        token: &str,
    ) -> Result<bool, ServiceError> {
        let sic = self.sicurezza()?.clone();
        let chiusa = sic
            .store
            .sicurezza_gettone_consuma(&impronta(token), TIPO_SESSIONE, self.clock().now())
            .await
            .map_err(|e| self.interno(e))?
            .is_some();
        if chiusa {
            self.audit_sicurezza(ctx, "uscita", None, "ok").await?;
        }
        Ok(chiusa)
    }

    fn rp(&self) -> Result<(Arc<Sicurezza>, RelyingParty), ServiceError> {
        let sic = self.sicurezza()?.clone();
        let rp = sic
            .webauthn
            .clone()
            .ok_or_else(|| ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(
                    CODICE_SICUREZZA_NON_CONFIGURATA,
                    "Passkey (WebAuthn) non configurate su questo server",
                )],
                riferimento: self.riferimento(None),
            })?;
        Ok((sic, rp))
    }

    /// A WebAuthn failure: audited as a failed login, returned with its code.
    async fn passkey_rifiutata(&self, ctx: &CallerContext, e: ErroreSicurezza) -> ServiceError {
        if let Err(err) = self
            .audit_sicurezza(
                ctx,
                "accessoFallito",
                Some(format!("passkey:{}", e.codice())),
                "negato",
            )
            .await
        {
            return err;
        }
        rifiuto(self, e)
    }

    async fn nuova_sfida(
        &self,
        sic: &Sicurezza,
        titolare: Option<&str>,
        ente: Option<&str>,
        dati: serde_json::Value,
    ) -> Result<String, ServiceError> {
        let mut b = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut b);
        let sfida = passkey::b64url(&b);
        let adesso = self.clock().now();
        sic.store
            .sicurezza_gettone_crea(GettoneSicurezza {
                impronta: impronta(&sfida),
                tipo: TIPO_SFIDA.into(),
                titolare: titolare.map(str::to_owned),
                ente: ente.map(str::to_owned),
                dati,
                creato_il: adesso,
                scade_il: adesso + chrono::Duration::minutes(DURATA_SFIDA_MINUTI),
            })
            .await
            .map_err(|e| self.interno(e))?;
        Ok(sfida)
    }

    /// The holder's current card, if it gives access now (EV205 otherwise).
    fn carta_attiva(
        &self,
        d: &Direttorio,
        cf: &str,
    ) -> Result<anpr_sicurezza::carta::Carta, ErroreSicurezza> {
        let carta = d
            .carta_di(cf)
            .cloned()
            .ok_or_else(|| ErroreSicurezza::Censimento {
                codice: anpr_sicurezza::errore::CODICE_CARTA_NON_ATTIVA,
                messaggio: format!("Nessuna carta per {cf}"),
            })?;
        carta.consente_accesso(self.clock().now())?;
        Ok(carta)
    }

    /// Options of a passkey registration for the caller, who must hold an active card
    /// (the passkey is bound to it): the `PublicKeyCredentialCreationOptions` for
    /// `navigator.credentials.create`.
    pub async fn opzioni_registrazione_passkey(
        &self,
        ctx: &CallerContext,
    ) -> Result<serde_json::Value, ServiceError> {
        let (sic, rp) = self.rp()?;
        sic.aggiorna(self.clock().now())
            .await
            .map_err(|e| rifiuto(self, e))?;
        let d = sic.direttorio();
        let carta = match self.carta_attiva(&d, &ctx.utente) {
            Ok(c) => c,
            Err(e) => return Err(self.passkey_rifiutata(ctx, e).await),
        };
        let esistenti: Vec<serde_json::Value> = d
            .passkey
            .values()
            .filter(|p| p.titolare == ctx.utente)
            .map(|p| serde_json::json!({"type": "public-key", "id": p.id}))
            .collect();
        let sfida = self
            .nuova_sfida(
                &sic,
                Some(&ctx.utente),
                None,
                serde_json::json!({"scopo": "registrazione", "carta": carta.numero}),
            )
            .await?;
        Ok(serde_json::json!({
            "challenge": sfida,
            "rp": {"id": rp.id, "name": "ANPR"},
            "user": {"id": passkey::b64url(ctx.utente.as_bytes()), "name": ctx.utente, "displayName": ctx.utente},
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "timeout": DURATA_SFIDA_MINUTI * 60_000,
            "attestation": "none",
            "excludeCredentials": esistenti,
            "authenticatorSelection": {"residentKey": "preferred", "userVerification": "required"}
        }))
    }

    /// Registers the passkey of a registration response (`id`, `clientDataJSON`,
    /// `attestationObject`, base64url) for the caller, bound to their active card.
    pub async fn registra_passkey(
        &self,
        ctx: &CallerContext,
        id: &str,
        client_data_json: &str,
        attestation_object: &str,
    ) -> Result<String, ServiceError> {
        let (sic, rp) = self.rp()?;
        let verificata = passkey::da_b64url(client_data_json, "clientDataJSON")
            .and_then(|cd| {
                let att = passkey::da_b64url(attestation_object, "attestationObject")?;
                passkey::verifica_registrazione(&cd, &att, &rp)
            })
            .and_then(|r| {
                if passkey::b64url(&r.id) == id.trim_end_matches('=') {
                    Ok(r)
                } else {
                    Err(ErroreSicurezza::Messaggio {
                        codice: passkey::CODICE_AUTENTICATORE,
                        messaggio: "id diverso da quello della credenziale attestata".into(),
                    })
                }
            });
        let r = match verificata {
            Ok(r) => r,
            Err(e) => return Err(self.passkey_rifiutata(ctx, e).await),
        };
        let sfida = sic
            .store
            .sicurezza_gettone_consuma(&impronta(&r.sfida), TIPO_SFIDA, self.clock().now())
            .await
            .map_err(|e| self.interno(e))?
            .filter(|g| {
                g.titolare.as_deref() == Some(ctx.utente.as_str())
                    && g.dati["scopo"] == "registrazione"
            });
        let Some(sfida) = sfida else {
            let e = ErroreSicurezza::Messaggio {
                codice: passkey::CODICE_CLIENT_DATA,
                messaggio: "sfida sconosciuta, scaduta, già usata o di un altro utente".into(),
            };
            return Err(self.passkey_rifiutata(ctx, e).await);
        };
        let carta = sfida.dati["carta"].as_str().unwrap_or_default().to_owned();
        let id = passkey::b64url(&r.id);
        let titolare = ctx.utente.clone();
        let adesso = self.clock().now();
        self.modifica_interna(ctx, None, "passkeyRegistrata", |d, _, _| {
            let attuale = self.carta_attiva(d, &titolare)?;
            if attuale.numero != carta {
                return Err(ErroreSicurezza::Censimento {
                    codice: anpr_sicurezza::errore::CODICE_CARTA_NON_ATTIVA,
                    messaggio: format!("La carta {carta} non è più quella del titolare"),
                });
            }
            if d.passkey.contains_key(&id) {
                return Err(ErroreSicurezza::Messaggio {
                    codice: passkey::CODICE_AUTENTICATORE,
                    messaggio: "passkey già registrata".into(),
                });
            }
            d.passkey.insert(
                id.clone(),
                Passkey {
                    id: id.clone(),
                    titolare: titolare.clone(),
                    carta: carta.clone(),
                    chiave_pubblica: r.chiave_pubblica.clone(),
                    contatore: r.contatore,
                    registrata: adesso,
                    ultimo_uso: None,
                },
            );
            Ok(Esito {
                valore: id.clone(),
                oggetto: format!("passkey:{id}:carta:{carta}"),
            })
        })
        .await
    }

    /// Options of a passkey login (`PublicKeyCredentialRequestOptions`): a challenge,
    /// and the holder's passkeys when the CF is given.
    pub async fn opzioni_accesso_passkey(
        &self,
        ente: &str,
        cf: Option<&str>,
    ) -> Result<serde_json::Value, ServiceError> {
        let (sic, rp) = self.rp()?;
        sic.aggiorna(self.clock().now())
            .await
            .map_err(|e| rifiuto(self, e))?;
        let consentite: Vec<serde_json::Value> = cf.map_or_else(Vec::new, |cf| {
            sic.direttorio()
                .passkey
                .values()
                .filter(|p| p.titolare == cf)
                .map(|p| serde_json::json!({"type": "public-key", "id": p.id}))
                .collect()
        });
        let sfida = self
            .nuova_sfida(
                &sic,
                cf,
                Some(ente),
                serde_json::json!({"scopo": "accesso"}),
            )
            .await?;
        Ok(serde_json::json!({
            "challenge": sfida,
            "rpId": rp.id,
            "timeout": DURATA_SFIDA_MINUTI * 60_000,
            "userVerification": "required",
            "allowCredentials": consentite
        }))
    }

    /// Login with a passkey: verifies the assertion (signature, RP, origin, our
    /// single-use challenge, growing counter), requires the bound card to be the
    /// holder's current one and to give access now (a blocked, revoked or replaced card
    /// disables its passkeys: EV205), then opens a session as the daily password does.
    #[allow(clippy::too_many_arguments)]
    pub async fn apri_sessione_passkey(
        &self,
        ambiente: Ambiente,
        ente: &str,
        id: &str,
        client_data_json: &str,
        authenticator_data: &str,
        firma: &str,
        canale: Canale,
    ) -> Result<Sessione, ServiceError> {
        let (sic, rp) = self.rp()?;
        sic.aggiorna(self.clock().now())
            .await
            .map_err(|e| rifiuto(self, e))?;
        let d = sic.direttorio();
        let id = id.trim_end_matches('=').to_owned();
        let mut ctx = CallerContext {
            ambiente,
            comune: None,
            utente: "anonimo".into(),
            profili: BTreeSet::new(),
            postazione: None,
            canale,
        };
        let Some(pk) = d.passkey.get(&id).cloned() else {
            let e = ErroreSicurezza::NonTrovato {
                codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                cosa: "passkey".into(),
            };
            return Err(self.passkey_rifiutata(&ctx, e).await);
        };
        ctx.utente = pk.titolare.clone();
        let verificata = (|| {
            let cd = passkey::da_b64url(client_data_json, "clientDataJSON")?;
            let ad = passkey::da_b64url(authenticator_data, "authenticatorData")?;
            let sig = passkey::da_b64url(firma, "signature")?;
            passkey::verifica_asserzione(&pk, &cd, &ad, &sig, &rp)
        })();
        let a = match verificata {
            Ok(a) => a,
            Err(e) => return Err(self.passkey_rifiutata(&ctx, e).await),
        };
        let sfida = sic
            .store
            .sicurezza_gettone_consuma(&impronta(&a.sfida), TIPO_SFIDA, self.clock().now())
            .await
            .map_err(|e| self.interno(e))?
            .filter(|g| {
                g.dati["scopo"] == "accesso"
                    && g.ente.as_deref() == Some(ente)
                    && g.titolare.as_deref().is_none_or(|t| t == pk.titolare)
            });
        if sfida.is_none() {
            let e = ErroreSicurezza::Messaggio {
                codice: passkey::CODICE_CLIENT_DATA,
                messaggio: "sfida sconosciuta, scaduta, già usata o per un altro ente".into(),
            };
            return Err(self.passkey_rifiutata(&ctx, e).await);
        }
        let controllo = self.carta_attiva(&d, &pk.titolare).and_then(|c| {
            if c.numero == pk.carta {
                Ok(c)
            } else {
                Err(ErroreSicurezza::Censimento {
                    codice: anpr_sicurezza::errore::CODICE_CARTA_NON_ATTIVA,
                    messaggio: format!(
                        "La passkey è legata alla carta {}, non più in uso",
                        pk.carta
                    ),
                })
            }
        });
        let carta = match controllo {
            Ok(c) => c,
            Err(e) => return Err(self.passkey_rifiutata(&ctx, e).await),
        };
        let profili = d
            .utenti
            .get(&pk.titolare)
            .and_then(|u| u.ruoli.get(ente).cloned())
            .filter(|p| !p.is_empty());
        let Some(profili) = profili else {
            let e = ErroreSicurezza::Censimento {
                codice: anpr_sicurezza::errore::CODICE_RUOLO_MANCANTE,
                messaggio: format!("Utente {} non censito per l'ente {ente}", pk.titolare),
            };
            return Err(self.passkey_rifiutata(&ctx, e).await);
        };
        // The counter is stored before the session exists: a concurrent login with a
        // cloned authenticator loses here.
        let adesso = self.clock().now();
        let nuovo = a.contatore;
        let esito = self
            .modifica_interna(&ctx, None, "passkeyUsata", |d, _, _| {
                let p = d
                    .passkey
                    .get_mut(&id)
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: "passkey".into(),
                    })?;
                if (nuovo != 0 || p.contatore != 0) && nuovo <= p.contatore {
                    return Err(ErroreSicurezza::Messaggio {
                        codice: passkey::CODICE_CONTATORE,
                        messaggio: "contatore non crescente: possibile clone".into(),
                    });
                }
                p.contatore = nuovo;
                p.ultimo_uso = Some(adesso);
                Ok(Esito {
                    valore: (),
                    oggetto: format!("passkey:{id}"),
                })
            })
            .await;
        if let Err(e) = esito {
            let _ = self
                .audit_sicurezza(
                    &ctx,
                    "accessoFallito",
                    Some("passkey:contatore".into()),
                    "negato",
                )
                .await;
            return Err(e);
        }
        ctx.comune = ente.parse().ok();
        ctx.profili = profili;
        self.audit_sicurezza(&ctx, "accessoPasskey", Some(format!("passkey:{id}")), "ok")
            .await?;
        let fine_giorno = inizio_giorno_italiano(italian_date(adesso) + chrono::Days::new(1));
        let scade = carta.scadenza.map_or(fine_giorno, |s| s.min(fine_giorno));
        let token = segreto_casuale();
        sic.store
            .sicurezza_gettone_crea(GettoneSicurezza {
                impronta: impronta(&token),
                tipo: TIPO_SESSIONE.into(),
                titolare: Some(pk.titolare.clone()),
                ente: Some(ente.to_owned()),
                dati: serde_json::json!({"canale": canale.as_str(), "accesso": "passkey", "passkey": id}),
                creato_il: adesso,
                scade_il: scade,
            })
            .await
            .map_err(|e| self.interno(e))?;
        Ok(Sessione { token, scade, ctx })
    }
}
