//! The security directory's part of the storage contract (SPEC M-8): users and their
//! profiles, smart cards, certificates with their revocation state, daily passwords,
//! per-body data (declared workstations, card counters, parameters with the authorised
//! IP addresses and the mayor), passkeys, the hash-chained workstation register, the
//! CA, the security mail outbox, session tokens and WebAuthn challenges, and the failed
//! login counters.
//!
//! The directory is one shared state for every process using the same database: each
//! change is a [`ModificaSicurezza`] applied atomically **only if** the directory is
//! still at the version the change was computed from (optimistic concurrency); the
//! loser of a race gets [`StoreError::ConflittoSicurezza`], reloads the rows changed
//! since its version ([`Store::sicurezza_carica`]) and tries again. Every row carries
//! the directory version that last wrote it, so a reload reads only what changed.
//!
//! The store does not interpret the records' JSON (the rules are in `anpr-sicurezza`);
//! it enforces what must hold under concurrency: the version check, and that the
//! workstation register only grows at its end, each new entry linked to the previous
//! one's hash (a concurrent writer can never fork the chain).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The directory tables sharing one shape: a key, optional owner columns for lookups,
/// the record as JSON, and the version that last wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TabellaSicurezza {
    /// Key: codice fiscale. The user with their profiles per body.
    Utenti,
    /// Key: card number; `ente` the body, `titolare` the holder's CF.
    Carte,
    /// Key: serial (decimal); `ente` the body it was issued to.
    Certificati,
    /// Key: holder's CF. The salted hash of the holder's daily password.
    PasswordGiornaliere,
    /// Key: body code. Declared workstations, card progressive, parameters.
    Enti,
    /// Key: credential id (base64url); `titolare` the holder's CF.
    Passkey,
}

impl TabellaSicurezza {
    pub const ALL: [TabellaSicurezza; 6] = [
        TabellaSicurezza::Utenti,
        TabellaSicurezza::Carte,
        TabellaSicurezza::Certificati,
        TabellaSicurezza::PasswordGiornaliere,
        TabellaSicurezza::Enti,
        TabellaSicurezza::Passkey,
    ];

    /// The SQL table (a fixed name: safe to put in a statement).
    pub fn tabella_sql(self) -> &'static str {
        match self {
            TabellaSicurezza::Utenti => "sicurezza_utenti",
            TabellaSicurezza::Carte => "sicurezza_carte",
            TabellaSicurezza::Certificati => "sicurezza_certificati",
            TabellaSicurezza::PasswordGiornaliere => "sicurezza_password_giornaliere",
            TabellaSicurezza::Enti => "sicurezza_enti",
            TabellaSicurezza::Passkey => "sicurezza_passkey",
        }
    }
}

/// One row of a directory table. `dati: None` is a deletion (kept as a tombstone with
/// its version, so that other processes learn of it on reload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RigaSicurezza {
    pub tabella: TabellaSicurezza,
    pub chiave: String,
    pub ente: Option<String>,
    pub titolare: Option<String>,
    pub dati: Option<serde_json::Value>,
}

/// One entry of the workstation register, chained by the caller: `hash_precedente` must
/// be the hash of entry `numero - 1` (or the chain's start for the first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoceRegistroSicurezza {
    pub numero: u64,
    /// The entry's data (instant, event, workstation, serial, MAC, computer, operator).
    pub dati: serde_json::Value,
    pub hash_precedente: String,
    pub hash: String,
}

/// A mail to deliver (PIN/PUK halves, card registered...), queued in the same
/// transaction as the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NuovaMailSicurezza {
    pub destinatario: String,
    pub oggetto: String,
    pub corpo: String,
    pub creata_il: DateTime<Utc>,
}

/// Delivery state of a queued mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoMail {
    /// Waiting for (another) attempt.
    InCoda,
    Consegnata,
    /// Given up after too many attempts or refused for good by the relay.
    Fallita,
}

impl StatoMail {
    pub fn as_str(self) -> &'static str {
        match self {
            StatoMail::InCoda => "inCoda",
            StatoMail::Consegnata => "consegnata",
            StatoMail::Fallita => "fallita",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inCoda" => Some(StatoMail::InCoda),
            "consegnata" => Some(StatoMail::Consegnata),
            "fallita" => Some(StatoMail::Fallita),
            _ => None,
        }
    }
}

/// A queued mail as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailSicurezza {
    pub id: u64,
    pub mail: NuovaMailSicurezza,
    pub stato: StatoMail,
    pub tentativi: u32,
    /// Not before this instant (backoff after a failed attempt).
    pub prossimo_tentativo: DateTime<Utc>,
    pub ultimo_errore: Option<String>,
    pub consegnata_il: Option<DateTime<Utc>>,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsitoMail {
    Consegnata {
        istante: DateTime<Utc>,
        /// The body as kept after delivery: secrets (PIN/PUK halves) are removed once
        /// the mail has left.
        corpo_conservato: String,
    },
    /// Failed this time; try again not before `riprova_dal`.
    Riprova {
        errore: String,
        riprova_dal: DateTime<Utc>,
    },
    /// Failed for good.
    Fallita {
        errore: String,
        corpo_conservato: String,
    },
}

/// A change of the directory, applied atomically if the directory is still at
/// `versione_attesa`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModificaSicurezza {
    pub versione_attesa: u64,
    /// Rows to insert or replace (or tombstone, `dati: None`).
    pub righe: Vec<RigaSicurezza>,
    /// Register entries to append, in order, starting right after the last one.
    pub registro: Vec<VoceRegistroSicurezza>,
    /// Last certificate serial handed out.
    pub ultimo_seriale: u64,
    /// Number of the last CRL issued.
    pub numero_crl: u64,
    pub posta: Vec<NuovaMailSicurezza>,
}

/// What changed in the directory after a version: every row and register entry written
/// by a later change, and the counters now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaricoSicurezza {
    pub versione: u64,
    pub ultimo_seriale: u64,
    pub numero_crl: u64,
    pub righe: Vec<RigaSicurezza>,
    /// Ascending by number.
    pub registro: Vec<VoceRegistroSicurezza>,
}

/// Our certification authority: certificate and private key (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct CaSicurezza {
    pub certificato_der: Vec<u8>,
    pub chiave_pem: String,
}

impl std::fmt::Debug for CaSicurezza {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSicurezza")
            .field("certificato_der", &self.certificato_der.len())
            .field("chiave_pem", &"<redatta>")
            .finish()
    }
}

/// A short-lived secret the security layer hands out and checks later from any process:
/// a session token (daily-password login) or a WebAuthn challenge. Only the SHA-256 of
/// the secret is stored (`impronta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GettoneSicurezza {
    /// Hex SHA-256 of the secret.
    pub impronta: String,
    /// `sessione` or `sfidaWebauthn`.
    pub tipo: String,
    pub titolare: Option<String>,
    pub ente: Option<String>,
    pub dati: serde_json::Value,
    pub creato_il: DateTime<Utc>,
    pub scade_il: DateTime<Utc>,
}
