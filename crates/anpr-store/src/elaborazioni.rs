//! Asynchronous requests (*richieste asincrone*: extractions 4001, bulk lookup 4002,
//! ISTAT statistics 4003, support lists 4004; SPEC M-5.3, M-5.4) and the reads they
//! need.
//!
//! A request is stored as soon as it is validated ([`NuovaElaborazione`], state
//! `inserita`) and its id returned to the caller at once; a worker then claims it
//! ([`crate::Store::prendi_elaborazione`]) with a lease, produces the result and
//! concludes it ([`crate::Store::concludi_elaborazione`]). The queue is durable: a
//! request accepted before a restart is still `inserita` (or `inElaborazione` with a
//! lease that expires) after it, and the next worker takes it up. Claims are atomic, so
//! several workers (or processes on one PostgreSQL database) never run one request
//! twice at the same time; a worker whose lease expired cannot overwrite the result of
//! the one that took over (the attempt number must match).

use anpr_domain::audit::NuovaVoceAudit;
use anpr_domain::ids::CodiceIstatComune;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Processing state of an asynchronous request (`tipoStatoRichiesta` of 4005: 0, 1, 2,
/// 3, 99).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoElaborazione {
    /// Queued, not yet taken by a worker (0).
    Inserita,
    /// A worker holds it (1).
    InElaborazione,
    /// Done, result available (2).
    Completata,
    /// Done with a negative outcome, e.g. over the 2,000-subject cap (3).
    Rifiutata,
    /// Ended by an internal failure (99); the cause is in the server log.
    Errore,
}

impl StatoElaborazione {
    pub const ALL: [StatoElaborazione; 5] = [
        StatoElaborazione::Inserita,
        StatoElaborazione::InElaborazione,
        StatoElaborazione::Completata,
        StatoElaborazione::Rifiutata,
        StatoElaborazione::Errore,
    ];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            StatoElaborazione::Inserita => "inserita",
            StatoElaborazione::InElaborazione => "inElaborazione",
            StatoElaborazione::Completata => "completata",
            StatoElaborazione::Rifiutata => "rifiutata",
            StatoElaborazione::Errore => "errore",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The code of `tipoStatoRichiesta` (4005).
    pub fn codice(self) -> &'static str {
        match self {
            StatoElaborazione::Inserita => "0",
            StatoElaborazione::InElaborazione => "1",
            StatoElaborazione::Completata => "2",
            StatoElaborazione::Rifiutata => "3",
            StatoElaborazione::Errore => "99",
        }
    }

    /// True once the request will not change any more.
    pub fn conclusa(self) -> bool {
        matches!(
            self,
            StatoElaborazione::Completata
                | StatoElaborazione::Rifiutata
                | StatoElaborazione::Errore
        )
    }
}

/// A validated request to queue. Its id is an `idOperazioneANPR` (allocated from
/// [`crate::Sequence::Operazione`], so it never collides with an operation's).
#[derive(Debug, Clone, PartialEq)]
pub struct NuovaElaborazione {
    pub id: u64,
    /// Service code: `4001`, `4002`, `4003` or `4004`.
    pub servizio: String,
    pub comune: CodiceIstatComune,
    /// The municipality's own request id, when given: a second request with the same
    /// id returns the first one (idempotent resubmission).
    pub id_operazione_comune: Option<u64>,
    pub utente: String,
    pub postazione: Option<String>,
    pub canale: String,
    /// The validated request (criteria, format, caller's profiles...), as the service
    /// layer needs it to run the request later.
    pub richiesta: serde_json::Value,
    pub creata_il: DateTime<Utc>,
    /// Audit entry of the submission, chained in the same transaction as the insert
    /// (an entry without `oggetto` gets `elaborazione:<id>`).
    pub audit: NuovaVoceAudit,
}

/// A stored request (without the result file's bytes: see
/// [`crate::Store::file_elaborazione`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elaborazione {
    pub id: u64,
    pub servizio: String,
    pub comune: CodiceIstatComune,
    pub id_operazione_comune: Option<u64>,
    pub utente: String,
    pub postazione: Option<String>,
    pub canale: String,
    pub richiesta: serde_json::Value,
    pub stato: StatoElaborazione,
    pub creata_il: DateTime<Utc>,
    /// When the current (or last) worker took it.
    pub presa_il: Option<DateTime<Utc>>,
    /// Until when that worker holds it; past this, another may take it over.
    pub scadenza_presa: Option<DateTime<Utc>>,
    /// How many times a worker took it (1 for a request run once).
    pub tentativi: u32,
    pub conclusa_il: Option<DateTime<Utc>>,
    /// The outcome: counts, coded anomalies of a refusal, or the computed table.
    pub esito: Option<serde_json::Value>,
    /// Result file, if any: name, format (`csv`, `xlsx`), size in bytes, SHA-256 (hex).
    pub file_nome: Option<String>,
    pub file_formato: Option<String>,
    pub file_byte: Option<u64>,
    pub file_sha256: Option<String>,
}

/// The result of one attempt, written by [`crate::Store::concludi_elaborazione`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConclusioneElaborazione {
    pub id: u64,
    /// The attempt the worker ran ([`Elaborazione::tentativi`] when it took the
    /// request): a worker that lost its lease to another cannot conclude.
    pub tentativo: u32,
    /// `Completata`, `Rifiutata` or `Errore`.
    pub stato: StatoElaborazione,
    pub conclusa_il: DateTime<Utc>,
    pub esito: serde_json::Value,
    pub file: Option<FileElaborazione>,
    /// Audit entry of the outcome, chained in the same transaction (an entry without
    /// `oggetto` gets `elaborazione:<id>`).
    pub audit: NuovaVoceAudit,
}

/// A result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileElaborazione {
    pub nome: String,
    pub formato: String,
    pub contenuto: Vec<u8>,
}

/// Filter for the requests of a municipality (4005 `ricercaElenchiRichieste`). All
/// given criteria must match; ascending by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryElaborazioni {
    pub comune: Option<CodiceIstatComune>,
    pub servizio: Option<String>,
    pub stato: Option<StatoElaborazione>,
    /// Submission time range, inclusive start, exclusive end.
    pub dal: Option<DateTime<Utc>>,
    pub al: Option<DateTime<Utc>>,
    /// Id range, both inclusive.
    pub id_da: Option<u64>,
    pub id_a: Option<u64>,
    /// Keyset pagination: only ids greater than this.
    pub dopo: Option<u64>,
    /// At most this many rows (the store caps it at 1000; `0` returns none).
    pub limit: u32,
}

/// A range of municipal identifiers (`identificativoComuneDa`/`A`). Identifiers are
/// ordered by length first, then character by character, so numeric identifiers
/// (without leading zeros) compare as numbers: `9 < 10 < 100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalloIdComunale {
    pub da: String,
    pub a: String,
}

/// Which records a family-level range selects: the members of the families (`F`) or
/// cohabitations (`C`) whose ids fall in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalloFamiglie {
    /// `F` family, `C` cohabitation.
    pub tipo: String,
    /// National ids, both inclusive.
    pub id_da: Option<u64>,
    pub id_a: Option<u64>,
    /// Municipal ids of the family/cohabitation record.
    pub id_comunale: Option<IntervalloIdComunale>,
}

/// Stage one of an extraction: the subjects of the current search projection matching
/// every given criterion, ascending by id (keyset pagination with `dopo`). What the
/// projection does not hold (citizenship, civil status, ...) the service filters on the
/// records afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryEstrazione {
    pub comune: Option<CodiceIstatComune>,
    /// Positions admitted (`R`, `A`, `C`); empty admits every position.
    pub posizioni: Vec<String>,
    /// Subject national ids, both inclusive.
    pub id_da: Option<u64>,
    pub id_a: Option<u64>,
    /// Only these subjects (e.g. those touched by the operations of a period).
    pub solo_id: Option<Vec<u64>>,
    pub id_comunale: Option<IntervalloIdComunale>,
    pub famiglie: Option<IntervalloFamiglie>,
    pub sesso: Option<String>,
    /// Birth date range, both inclusive (age bands).
    pub nascita_dal: Option<NaiveDate>,
    pub nascita_al: Option<NaiveDate>,
    /// Subjects without surname / without name.
    pub senza_cognome: bool,
    pub senza_nome: bool,
    /// Prefix of the folded building key of the residence (street, number).
    pub prefisso_indirizzo: Option<String>,
    /// Keyset pagination: only ids greater than this.
    pub dopo: Option<u64>,
    /// At most this many rows (the store caps it at 10,000; `0` returns none).
    pub limit: u32,
}

/// Most rows one page of [`crate::Store::soggetti_per_estrazione`] returns.
pub const MAX_RIGHE_ESTRAZIONE: u32 = 10_000;

/// Versions of one section whose top-level text field `campo` equals `valore` and
/// that were in force at some day of [`dal`, `al`] (both inclusive): for the ISTAT
/// tables, every `competenza` of a municipality around a period — those in force at
/// its start, those beginning or ending in it. Indexed for `competenza`/`comune`; other
/// pairs are answered by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryVersioniCampo {
    /// Section key: letters only.
    pub sezione: String,
    /// Top-level field of the section's JSON value: letters only.
    pub campo: String,
    pub valore: String,
    pub dal: NaiveDate,
    pub al: NaiveDate,
}

impl QueryVersioniCampo {
    /// Section and field names are inlined in the SQL (so that expression indexes
    /// apply): only ASCII letters are admitted.
    pub fn nomi_validi(&self) -> bool {
        let ok =
            |s: &str| !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphabetic());
        ok(&self.sezione) && ok(&self.campo)
    }
}

/// Most entities one call of [`crate::Store::sezioni_di`] reads.
pub const MAX_ENTITA_SEZIONI: usize = 5_000;
