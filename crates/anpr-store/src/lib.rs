//! The registry's storage contract.
//!
//! One [`Store`] holds one environment's data set (test, presubentro or produzione): the
//! append-only **operation log**, the **section versions** that make up every record's
//! full history, the **search indexes** (current projection), the **outbox** and the
//! hash-chained **audit log**. [`Store::apply`] writes all of an operation in one
//! transaction: it either applies completely or not at all, and once it returns `Ok` the
//! operation is durable.
//!
//! Backends (`anpr-store-sqlite`, `anpr-store-postgres`) own their schema and migrations
//! and must pass the conformance suite in [`conformance`] (feature `conformance`).
//!
//! The store knows records only as sections of JSON (produced by `anpr-domain`) plus the
//! typed index rows below; it never interprets section content. Business rules live in
//! the service layer; the store enforces only what must hold under concurrency:
//! idempotency and ordering of `idOperazioneComune`, append-only history (no change
//! before the current version), newest-first annulment, and the audit chain.
#![forbid(unsafe_code)]

use std::fmt;

use anpr_domain::audit::{NuovaVoceAudit, TestaCatena, VoceAudit};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune,
};
use anpr_domain::operazione::{CodiceServizio, StatoOperazione};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "conformance")]
pub mod conformance;

/// Which backend a store runs on (shown by `/healthz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A record the store keeps: a subject or a family/cohabitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityRef {
    Soggetto(IdAnprSoggetto),
    Famiglia(IdAnprFamiglia),
}

impl EntityRef {
    /// Storage kind letter: `S` subject, `F` family/cohabitation.
    pub fn kind(self) -> &'static str {
        match self {
            EntityRef::Soggetto(_) => "S",
            EntityRef::Famiglia(_) => "F",
        }
    }

    pub fn id(self) -> u64 {
        match self {
            EntityRef::Soggetto(id) => id.get(),
            EntityRef::Famiglia(id) => id.get(),
        }
    }

    /// Rebuilds a reference from its stored kind and id.
    pub fn from_parts(kind: &str, id: u64) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupt(format!("entity {kind}:{id}"));
        match kind {
            "S" => IdAnprSoggetto::new(id)
                .map(EntityRef::Soggetto)
                .map_err(|_| bad()),
            "F" => IdAnprFamiglia::new(id)
                .map(EntityRef::Famiglia)
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityRef::Soggetto(id) => write!(f, "soggetto {id}"),
            EntityRef::Famiglia(id) => write!(f, "famiglia {id}"),
        }
    }
}

/// One section replaced by an operation from its decorrenza on.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionWrite {
    pub entity: EntityRef,
    /// Section key (`SezioneSoggetto::key` / `SezioneFamiglia::key`).
    pub section: String,
    /// New value; `None` removes the datum from the decorrenza on.
    pub value: Option<serde_json::Value>,
    /// Optional search key of the version (e.g. the family id of a `legame`), so that
    /// "members of family F as at D" is an index lookup.
    pub key: Option<String>,
}

/// Search projection of a subject: what searches filter on. Kept current by `apply`
/// and restored by annulment (it is versioned like a section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectIndex {
    pub id: IdAnprSoggetto,
    pub comune: CodiceIstatComune,
    /// `R` resident, `A` AIRE, `C` removed.
    pub posizione: String,
    pub codice_fiscale: Option<String>,
    /// Folded surname and name (`anpr_domain::text::fold_key`).
    pub cognome_key: Option<String>,
    pub nome_key: Option<String>,
    pub sesso: Option<String>,
    pub data_nascita: Option<NaiveDate>,
    pub id_comunale: Option<String>,
    pub id_famiglia: Option<IdAnprFamiglia>,
    /// Folded building key of the residence address.
    pub chiave_indirizzo: Option<String>,
}

/// Search projection of a family or cohabitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyIndex {
    pub id: IdAnprFamiglia,
    pub comune: CodiceIstatComune,
    /// `F` family, `C` cohabitation.
    pub tipo: String,
    /// `A` active, `X` archived.
    pub stato: String,
    pub id_comunale: Option<String>,
    pub chiave_indirizzo: Option<String>,
}

/// A new index row for a record. Records leave the indexes only through annulment of
/// the operation that indexed them (an annulled registration makes the subject
/// disappear); a removed subject stays indexed with its position `C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexWrite {
    Soggetto(SubjectIndex),
    Famiglia(FamilyIndex),
}

impl IndexWrite {
    pub fn entity(&self) -> EntityRef {
        match self {
            IndexWrite::Soggetto(s) => EntityRef::Soggetto(s.id),
            IndexWrite::Famiglia(f) => EntityRef::Famiglia(f.id),
        }
    }
}

/// A message for the outbox, delivered after commit by a worker (notifications to
/// municipalities, mails, webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOutboxMessage {
    /// Kind, e.g. `N010` (residence transfer notification) or `mail`.
    pub tipo: String,
    /// Recipient: a municipality ISTAT code, an address, a URL.
    pub destinatario: String,
    pub payload: serde_json::Value,
}

/// A stored outbox message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: u64,
    pub id_operazione_anpr: Option<IdOperazioneAnpr>,
    pub message: NewOutboxMessage,
    pub creato_il: DateTime<Utc>,
    pub tentativi: u32,
    pub consegnato_il: Option<DateTime<Utc>>,
}

/// Everything one operation writes, applied atomically by [`Store::apply`].
#[derive(Debug, Clone)]
pub struct NewOperation {
    /// Allocated beforehand with [`Store::next_id`] (`Sequence::Operazione`), so the
    /// response document can name it.
    pub id: IdOperazioneAnpr,
    pub codice_servizio: CodiceServizio,
    pub comune: Option<CodiceIstatComune>,
    pub id_operazione_comune: Option<IdOperazioneComune>,
    pub utente: String,
    pub postazione: Option<String>,
    pub canale: String,
    pub decorrenza: NaiveDate,
    pub registrata_il: DateTime<Utc>,
    /// `Eseguita` or `Rifiutata` (a refusal is stored for idempotent replay; it must not
    /// carry writes).
    pub stato: StatoOperazione,
    pub richiesta: String,
    pub risposta: String,
    pub writes: Vec<SectionWrite>,
    pub indexes: Vec<IndexWrite>,
    pub outbox: Vec<NewOutboxMessage>,
    /// The audit entry for this operation, chained inside the same transaction.
    pub audit: NuovaVoceAudit,
}

/// A stored operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOperation {
    pub id: IdOperazioneAnpr,
    pub codice_servizio: CodiceServizio,
    pub comune: Option<CodiceIstatComune>,
    pub id_operazione_comune: Option<IdOperazioneComune>,
    pub utente: String,
    pub postazione: Option<String>,
    pub canale: String,
    pub decorrenza: NaiveDate,
    pub registrata_il: DateTime<Utc>,
    pub stato: StatoOperazione,
    pub annullata_da: Option<IdOperazioneAnpr>,
    /// The operation this one annulled, for annulments.
    pub annulla: Option<IdOperazioneAnpr>,
    pub richiesta: String,
    pub risposta: String,
    /// Records the operation touched.
    pub entities: Vec<EntityRef>,
}

/// A version of a section, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredVersion {
    pub entity: EntityRef,
    pub section: String,
    pub valido_dal: NaiveDate,
    pub valido_al: Option<NaiveDate>,
    pub creata_da: IdOperazioneAnpr,
    pub chiusa_da: Option<IdOperazioneAnpr>,
    pub value: Option<serde_json::Value>,
}

/// A record's sections as read at a date (or now): only sections with a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordSections {
    pub sections: Vec<(String, serde_json::Value)>,
}

impl RecordSections {
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.sections.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.sections.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Id sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    Operazione,
    Soggetto,
    Famiglia,
}

impl Sequence {
    pub fn name(self) -> &'static str {
        match self {
            Sequence::Operazione => "operazione",
            Sequence::Soggetto => "soggetto",
            Sequence::Famiglia => "famiglia",
        }
    }
}

/// Filter for subject searches; all given criteria must match. Name keys match as
/// prefixes of the folded keys (partial keys, `tipoRicercaChiaveParziale`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectQuery {
    pub id: Option<IdAnprSoggetto>,
    pub codice_fiscale: Option<String>,
    pub comune: Option<CodiceIstatComune>,
    pub id_comunale: Option<String>,
    pub cognome_prefix: Option<String>,
    pub nome_prefix: Option<String>,
    pub data_nascita: Option<NaiveDate>,
    pub sesso: Option<String>,
    pub posizione: Option<String>,
    pub id_famiglia: Option<IdAnprFamiglia>,
    pub chiave_indirizzo: Option<String>,
    /// At most this many rows (the store caps it at 1000; `0` returns none).
    pub limit: u32,
}

/// Filter for the operation log (monitoring, M-5.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationQuery {
    pub comune: Option<CodiceIstatComune>,
    pub codice_servizio: Option<CodiceServizio>,
    pub stato: Option<StatoOperazione>,
    pub entity: Option<EntityRef>,
    /// Registration time range, inclusive start, exclusive end.
    pub dal: Option<DateTime<Utc>>,
    pub al: Option<DateTime<Utc>>,
    /// Keyset pagination: only ids greater than this.
    pub dopo: Option<IdOperazioneAnpr>,
    pub limit: u32,
}

/// Storage failures. Conflicts are the caller's business (they map to ANPR codes);
/// `Backend` and `Corrupt` are ours and must never leak details to callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("idOperazioneComune {id} already used by operation {existing}")]
    DuplicateIdOperazioneComune {
        id: IdOperazioneComune,
        existing: IdOperazioneAnpr,
    },
    #[error("idOperazioneComune {id} is not greater than the last one seen, {last}")]
    IdOperazioneComuneNotIncreasing {
        id: IdOperazioneComune,
        last: IdOperazioneComune,
    },
    #[error("{entity}, section {section}: decorrenza {decorrenza} precedes the current version, valid from {current_from}")]
    DecorrenzaBeforeCurrent {
        entity: EntityRef,
        section: String,
        decorrenza: NaiveDate,
        current_from: NaiveDate,
    },
    #[error("operation {op} cannot be annulled: {entity} was changed later by operation {newer}")]
    NotNewest {
        op: IdOperazioneAnpr,
        entity: EntityRef,
        newer: IdOperazioneAnpr,
    },
    #[error("operation {0} not found")]
    OperationNotFound(IdOperazioneAnpr),
    #[error("operation {0} is not in force (already annulled or refused)")]
    OperationNotInForce(IdOperazioneAnpr),
    #[error("operation id {0} already exists")]
    DuplicateOperationId(IdOperazioneAnpr),
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// The storage contract of one environment's data set.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    fn backend(&self) -> Backend;

    /// Allocates the next id of a sequence. Ids are never reused; gaps are allowed.
    async fn next_id(&self, sequence: Sequence) -> Result<u64, StoreError>;

    /// Applies an operation atomically: checks `idOperazioneComune` (unused, and greater
    /// than every earlier one of the same municipality), appends the operation, closes
    /// the current versions of the written sections at the decorrenza and inserts the
    /// new ones, writes the index rows (as current projection and as versioned
    /// `_indice` sections), links the touched entities, queues the outbox messages and
    /// chains the audit entry. Returns the chained audit entry.
    async fn apply(&self, op: NewOperation) -> Result<VoceAudit, StoreError>;

    /// Annuls operation `target` by applying `annulment` (whose own `writes` and
    /// `indexes` must be empty): `target` must be in force and the newest in-force
    /// operation on every entity it touched. Its versions are removed from the
    /// timelines, the versions it closed are reopened, and the index projections are
    /// restored from the reopened `_indice` versions (an entity with none left, e.g. an
    /// annulled registration, disappears from the indexes). `target` becomes
    /// `Annullata` with `annullata_da = annulment.id`.
    async fn annul(
        &self,
        target: IdOperazioneAnpr,
        annulment: NewOperation,
    ) -> Result<VoceAudit, StoreError>;

    async fn operation(&self, id: IdOperazioneAnpr) -> Result<Option<StoredOperation>, StoreError>;

    async fn operation_by_comune_id(
        &self,
        comune: &CodiceIstatComune,
        id: IdOperazioneComune,
    ) -> Result<Option<StoredOperation>, StoreError>;

    /// Operations matching the filter, ascending by id.
    async fn operations(&self, query: &OperationQuery) -> Result<Vec<StoredOperation>, StoreError>;

    /// The record's sections in force at `at` (valid time), or the current ones.
    /// `None` when the record has no section in force then (unknown, or not yet/no
    /// longer existing). Internal sections (`_indice`) are not returned.
    async fn record(
        &self,
        entity: EntityRef,
        at: Option<NaiveDate>,
    ) -> Result<Option<RecordSections>, StoreError>;

    /// The full timeline of one section of a record, in record order (annulled versions
    /// are gone).
    async fn history(
        &self,
        entity: EntityRef,
        section: &str,
    ) -> Result<Vec<StoredVersion>, StoreError>;

    /// Entities having a version of `section` with search key `key` in force at `at`
    /// (or now), with that version's value. E.g. the members of a family.
    async fn by_section_key(
        &self,
        section: &str,
        key: &str,
        at: Option<NaiveDate>,
    ) -> Result<Vec<(EntityRef, serde_json::Value)>, StoreError>;

    async fn find_subjects(&self, query: &SubjectQuery) -> Result<Vec<SubjectIndex>, StoreError>;

    async fn family_index(&self, id: IdAnprFamiglia) -> Result<Option<FamilyIndex>, StoreError>;

    /// Appends an audit entry that belongs to no operation (e.g. a read).
    async fn append_audit(&self, entry: NuovaVoceAudit) -> Result<VoceAudit, StoreError>;

    /// Audit entries with `seq > after`, ascending, at most `limit`.
    async fn audit_page(&self, after: u64, limit: u32) -> Result<Vec<VoceAudit>, StoreError>;

    async fn audit_head(&self) -> Result<Option<TestaCatena>, StoreError>;

    /// Undelivered outbox messages, oldest first.
    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Records a delivery attempt: delivered, or failed (attempt counted).
    async fn outbox_mark(&self, id: u64, delivered: bool) -> Result<(), StoreError>;

    /// Cheap liveness check of the backend.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Benchmark baseline: inserts `rows` minimal rows into a scratch table in one
    /// durable transaction each, with no registry logic. Used to put the cost of
    /// [`Store::apply`] in proportion on the same machine in the same run.
    async fn baseline_raw_insert(&self, rows: u32) -> Result<(), StoreError>;
}
