//! The registry's storage contract.
//!
//! One [`Store`] holds one environment's data set (test, presubentro or produzione): the
//! append-only **operation log**, the **section versions** that make up every record's
//! full history, the **search indexes** (current projection), the **outbox**, the
//! hash-chained **audit log**, and the operators' **suspended operations** (a working
//! area outside the registry data, SPEC M-2.5). [`Store::apply`] writes all of an operation in one
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
#[cfg(feature = "conformance")]
pub mod conformance_elaborazioni;
#[cfg(feature = "conformance")]
pub mod conformance_sicurezza;
pub mod elaborazioni;
pub mod sicurezza;

pub use elaborazioni::{
    ConclusioneElaborazione, Elaborazione, FileElaborazione, IntervalloFamiglie,
    IntervalloIdComunale, NuovaElaborazione, QueryElaborazioni, QueryEstrazione,
    QueryVersioniCampo, StatoElaborazione,
};
use sicurezza::{
    CaSicurezza, CaricoSicurezza, EsitoMail, GettoneSicurezza, MailSicurezza, ModificaSicurezza,
    StatoMail,
};

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

/// A record the store keeps: a subject, a family/cohabitation, or an administrative
/// proceeding (*procedimento amministrativo*, service 1014; its id is the
/// `numeroPraticaAnpr`, allocated from [`Sequence::Procedimento`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityRef {
    Soggetto(IdAnprSoggetto),
    Famiglia(IdAnprFamiglia),
    Procedimento(u64),
}

impl EntityRef {
    /// Storage kind letter: `S` subject, `F` family/cohabitation, `P` proceeding.
    pub fn kind(self) -> &'static str {
        match self {
            EntityRef::Soggetto(_) => "S",
            EntityRef::Famiglia(_) => "F",
            EntityRef::Procedimento(_) => "P",
        }
    }

    pub fn id(self) -> u64 {
        match self {
            EntityRef::Soggetto(id) => id.get(),
            EntityRef::Famiglia(id) => id.get(),
            EntityRef::Procedimento(id) => id,
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
            // Sequences start at 1; the largest id must fit a signed 64-bit column.
            "P" if id >= 1 && i64::try_from(id).is_ok() => Ok(EntityRef::Procedimento(id)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityRef::Soggetto(id) => write!(f, "soggetto {id}"),
            EntityRef::Famiglia(id) => write!(f, "famiglia {id}"),
            EntityRef::Procedimento(id) => write!(f, "procedimento {id}"),
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

/// Search projection of an administrative proceeding: what proceeding searches filter
/// on (municipality, state, municipal case number, period). Its links to subjects and
/// operations are not here: they are sections of the proceeding with a search key
/// (`soggetto.<idANPR>` / `evento.<idOperazioneANPR>`), found with
/// [`Store::by_section_key`], so that linking is a write of its own that never
/// rewrites a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedimentoIndex {
    /// The proceeding's national number (`numeroPraticaAnpr`).
    pub id: u64,
    pub comune: CodiceIstatComune,
    /// The municipality's own case number (`numeroPraticaComune`), unique per
    /// municipality (checked by the service).
    pub numero_pratica_comune: Option<String>,
    /// Current state, code of the table "Stato procedimento amministrativo".
    pub stato: String,
    /// False once closed (archived).
    pub aperto: bool,
    /// Code of the table "Innesco procedimento amministrativo".
    pub motivo_avvio: Option<String>,
    pub data_avvio: NaiveDate,
    pub data_stato: NaiveDate,
    pub data_chiusura: Option<NaiveDate>,
}

/// A new index row for a record. Records leave the indexes only through annulment of
/// the operation that indexed them (an annulled registration makes the subject
/// disappear); a removed subject stays indexed with its position `C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexWrite {
    Soggetto(SubjectIndex),
    Famiglia(FamilyIndex),
    Procedimento(ProcedimentoIndex),
}

impl IndexWrite {
    pub fn entity(&self) -> EntityRef {
        match self {
            IndexWrite::Soggetto(s) => EntityRef::Soggetto(s.id),
            IndexWrite::Famiglia(f) => EntityRef::Famiglia(f.id),
            IndexWrite::Procedimento(p) => EntityRef::Procedimento(p.id),
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
    /// The suspended operation this operation completes (SPEC M-2.5): deleted in the
    /// same transaction; if it no longer exists, nothing is written and `apply` fails
    /// with [`StoreError::SospesaNotFound`]. Only for `Eseguita` operations.
    pub completa_sospesa: Option<u64>,
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

/// A record's sections as stored: the JSON text of each section, for readers that
/// deserialise them straight into their own types (no intermediate JSON tree).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordTesto {
    pub sections: Vec<(String, String)>,
}

impl RecordTesto {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sections.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Id sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    Operazione,
    Soggetto,
    Famiglia,
    /// Administrative proceedings (`numeroPraticaAnpr`).
    Procedimento,
    /// Suspended operations.
    Sospesa,
}

impl Sequence {
    pub const ALL: [Sequence; 5] = [
        Sequence::Operazione,
        Sequence::Soggetto,
        Sequence::Famiglia,
        Sequence::Procedimento,
        Sequence::Sospesa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sequence::Operazione => "operazione",
            Sequence::Soggetto => "soggetto",
            Sequence::Famiglia => "famiglia",
            Sequence::Procedimento => "procedimento",
            Sequence::Sospesa => "sospesa",
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
    /// A municipal id (`idSchedaSoggettoComune`) is unique only within its municipality:
    /// search it with `comune` (the stores' indexes are by municipality, then id).
    pub id_comunale: Option<String>,
    pub cognome_prefix: Option<String>,
    pub nome_prefix: Option<String>,
    pub data_nascita: Option<NaiveDate>,
    pub sesso: Option<String>,
    pub posizione: Option<String>,
    /// Any of these positions (empty: no restriction). With [`SubjectQuery::posizione`]
    /// both must hold. One query for several positions instead of one query each.
    pub posizioni: Vec<String>,
    pub id_famiglia: Option<IdAnprFamiglia>,
    pub chiave_indirizzo: Option<String>,
    /// Children of this parent: subjects whose current `genitori` section names it as
    /// father or mother (`padre.idAnpr` / `madre.idAnpr`).
    pub genitore: Option<IdAnprSoggetto>,
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

/// Filter for the notifications addressed to a municipality (outbox messages whose
/// recipient is its ISTAT code: N010 and the like), as services 3003/3007/3005 and
/// the web application's "Notifiche" read them. All given criteria must match;
/// results are in ascending message id order (the order they were queued in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryNotifiche {
    /// The recipient, exactly as queued (an ISTAT code).
    pub destinatario: String,
    /// Only this kind (`N010`...).
    pub tipo: Option<String>,
    /// `Some(false)`: not yet taken (delivered); `Some(true)`: taken; `None`: both.
    pub prese: Option<bool>,
    /// Queuing time range, inclusive start, exclusive end.
    pub dal: Option<DateTime<Utc>>,
    pub al: Option<DateTime<Utc>>,
    /// Range of the ids of the operations that produced them, both ends inclusive.
    pub operazione_da: Option<IdOperazioneAnpr>,
    pub operazione_a: Option<IdOperazioneAnpr>,
    /// Keyset pagination: only message ids greater than this.
    pub dopo: Option<u64>,
    /// At most this many rows (the store caps it at 1000; `0` returns none).
    pub limit: u32,
}

/// Filter for proceeding searches (current projection); all given criteria must match.
/// Results are ordered by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcedimentoQuery {
    pub id: Option<u64>,
    pub comune: Option<CodiceIstatComune>,
    pub numero_pratica_comune: Option<String>,
    pub stato: Option<String>,
    pub aperto: Option<bool>,
    /// Opening date range (`data_avvio`), both ends inclusive.
    pub avviato_dal: Option<NaiveDate>,
    pub avviato_al: Option<NaiveDate>,
    /// Only proceedings this subject is linked to now (its link section
    /// `soggetto.<idANPR>` is in force).
    pub soggetto: Option<IdAnprSoggetto>,
    /// At most this many rows (the store caps it at 1000; `0` returns none).
    pub limit: u32,
}

/// A suspended operation to save (SPEC M-2.5): registrations (1001, 1002, A001,
/// A002) and "change all data" (5008) saved part-way with what the operator has
/// confirmed so far.
#[derive(Debug, Clone, PartialEq)]
pub struct NuovaSospesa {
    /// `None` inserts a new one (id from [`Sequence::Sospesa`]); `Some` updates that
    /// one, which must exist with the same municipality and service (its owner and
    /// creation time are kept).
    pub id: Option<u64>,
    pub comune: CodiceIstatComune,
    pub codice_servizio: CodiceServizio,
    /// The operator who saved it (user CF).
    pub utente: String,
    /// Creation time on insert, update time on update.
    pub istante: DateTime<Utc>,
    /// The subject it concerns, when already known (changes; a registration has none yet).
    pub soggetto: Option<IdAnprSoggetto>,
    /// The subject's codice fiscale, when known.
    pub codice_fiscale: Option<String>,
    /// The partial request (a JSON object).
    pub richiesta: serde_json::Value,
    pub note: Option<String>,
    /// The audit entry of the save, chained in the same transaction. On insert the id
    /// is not known beforehand: an entry without `oggetto` gets `sospesa:<id>`.
    pub audit: NuovaVoceAudit,
}

impl NuovaSospesa {
    /// The audit entry to chain once the id is known (see [`NuovaSospesa::audit`]).
    pub fn audit_for(&self, id: u64) -> NuovaVoceAudit {
        let mut audit = self.audit.clone();
        if audit.oggetto.is_none() {
            audit.oggetto = Some(format!("sospesa:{id}"));
        }
        audit
    }
}

/// A stored suspended operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperazioneSospesa {
    pub id: u64,
    pub comune: CodiceIstatComune,
    pub codice_servizio: CodiceServizio,
    pub utente: String,
    pub creata_il: DateTime<Utc>,
    pub aggiornata_il: DateTime<Utc>,
    pub soggetto: Option<IdAnprSoggetto>,
    pub codice_fiscale: Option<String>,
    pub richiesta: serde_json::Value,
    pub note: Option<String>,
}

/// Filter for suspended operations; all given criteria must match. Ordered by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuerySospese {
    pub comune: Option<CodiceIstatComune>,
    pub utente: Option<String>,
    pub soggetto: Option<IdAnprSoggetto>,
    pub codice_fiscale: Option<String>,
    pub codice_servizio: Option<CodiceServizio>,
    /// At most this many rows (the store caps it at 1000; `0` returns none).
    pub limit: u32,
}

/// Kinds of issued document (M-4): certificates and paper identity cards share the
/// municipality's protocol register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TipoDocumento {
    Certificato,
    CartaIdentita,
}

impl TipoDocumento {
    pub fn as_str(self) -> &'static str {
        match self {
            TipoDocumento::Certificato => "certificato",
            TipoDocumento::CartaIdentita => "cartaIdentita",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "certificato" => Some(TipoDocumento::Certificato),
            "cartaIdentita" => Some(TipoDocumento::CartaIdentita),
            _ => None,
        }
    }
}

/// A document to issue (certificate or paper identity card, M-4). The store gives it
/// the next protocol number of its municipality and year, in the same transaction as
/// the insert and the audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NuovoDocumento {
    /// Unguessable id (32 lowercase hex digits of 16 random bytes).
    pub id: String,
    pub tipo: TipoDocumento,
    pub comune: CodiceIstatComune,
    /// Protocol year (the issue date's).
    pub anno: i32,
    pub soggetto: Option<IdAnprSoggetto>,
    pub emesso_il: DateTime<Utc>,
    /// The issuing operator (user CF).
    pub utente: String,
    /// What the document says and costs, as the service layer composed it.
    pub contenuto: serde_json::Value,
    /// Audit entry of the issue; an entry without `oggetto` gets `documento:<id>`.
    pub audit: NuovaVoceAudit,
}

/// An issued document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentoEmesso {
    pub id: String,
    pub tipo: TipoDocumento,
    pub comune: CodiceIstatComune,
    pub anno: i32,
    /// Protocol number within the municipality and year, from 1.
    pub protocollo: u64,
    pub soggetto: Option<IdAnprSoggetto>,
    pub emesso_il: DateTime<Utc>,
    pub utente: String,
    pub contenuto: serde_json::Value,
    pub annullato_il: Option<DateTime<Utc>>,
    pub motivo_annullamento: Option<String>,
}

/// Filter for issued documents; all given criteria must match. Ordered by issue time
/// then id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryDocumenti {
    pub comune: Option<CodiceIstatComune>,
    pub tipo: Option<TipoDocumento>,
    pub soggetto: Option<IdAnprSoggetto>,
    /// Issue time range, inclusive start, exclusive end.
    pub dal: Option<DateTime<Utc>>,
    pub al: Option<DateTime<Utc>>,
    /// At most this many rows (the store caps it at 1000; `0` returns none).
    pub limit: u32,
}

/// Most bytes of a municipality's logo the store accepts (the service checks the image
/// itself and keeps a tighter bound).
pub const LOGO_MAX_BYTES: usize = 512 * 1024;

/// The parameters a municipality sets for its documents (SPEC M-4.1, M-8.6): logo,
/// virtual-stamp authorisation, fees, second language, signing officer. The service
/// layer owns the shape of `valori`; the logo is kept as uploaded, beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct NuoviParametriComune {
    pub comune: CodiceIstatComune,
    pub valori: serde_json::Value,
    /// The logo image as uploaded (at most [`LOGO_MAX_BYTES`]); `None` = no logo.
    pub logo: Option<Vec<u8>>,
    pub istante: DateTime<Utc>,
    /// Who saved them (user CF).
    pub utente: String,
    /// Audit entry of the change, chained in the same transaction; an entry without
    /// `oggetto` gets `parametri:<comune>`.
    pub audit: NuovaVoceAudit,
}

/// A municipality's stored parameters: the last version saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParametriComune {
    pub comune: CodiceIstatComune,
    pub valori: serde_json::Value,
    pub logo: Option<Vec<u8>>,
    pub aggiornato_il: DateTime<Utc>,
    pub utente: String,
    /// 1 on the first save, then incremented by each save.
    pub versione: u64,
}

/// One record of a subentro bulk load ([`Store::carica_subentro`]): every section it
/// starts with, already serialised, and its index row. All its sections are valid
/// from `valido_dal` (the record's own origin date, so "as at" reads before the
/// onboarding work).
#[derive(Debug, Clone)]
pub struct RecordSubentro {
    pub entity: EntityRef,
    pub valido_dal: NaiveDate,
    pub sections: Vec<SezioneSubentro>,
    pub index: IndexWrite,
}

/// One section of a [`RecordSubentro`]: key, JSON text, optional search key.
#[derive(Debug, Clone)]
pub struct SezioneSubentro {
    pub section: &'static str,
    pub json: String,
    pub key: Option<String>,
}

/// A subentro file as the store records it (SPEC M-6.3 file state list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSubentro {
    pub comune: CodiceIstatComune,
    pub nome_file: String,
    /// SHA-256 of the file's bytes (hex): the same content sent twice is recognised.
    pub sha256: String,
    /// Processing state (`ELABORATO`, `INSERITO KO`, `SCARTATO`).
    pub stato: String,
    pub id_operazione: Option<IdOperazioneAnpr>,
    pub registrato_il: DateTime<Utc>,
    pub soggetti: u64,
    pub famiglie: u64,
}

/// The start of a bulk load: the subentro operation (without writes or index rows; its
/// response, outbox and audit come with [`FineSubentro`]), whether the
/// municipality's earlier data must be removed first (a repeated pre-subentro), and how
/// many subjects and families the supply declares. The expected counts only guide how
/// the store loads (e.g. whether rebuilding an index at the end is cheaper than keeping
/// it up to date row by row); they are never checked against what arrives.
#[derive(Debug, Clone)]
pub struct InizioSubentro {
    pub operazione: NewOperation,
    pub azzera_comune: bool,
    pub soggetti_previsti: u64,
    pub famiglie_previste: u64,
}

/// The end of a bulk load. With `esito_positivo` the records sent are committed
/// together with the operation; otherwise they are all rolled back and only the
/// refused operation, its files' states, outbox and audit entry are stored.
#[derive(Debug, Clone)]
pub struct FineSubentro {
    pub esito_positivo: bool,
    pub risposta: String,
    pub outbox: Vec<NewOutboxMessage>,
    pub audit: NuovaVoceAudit,
    pub files: Vec<FileSubentro>,
}

/// What a bulk load receives, in order: batches of records, then one `Fine`. A channel
/// closed without `Fine` (the producer failed) rolls everything back.
#[derive(Debug)]
pub enum MessaggioSubentro {
    Lotto(Vec<RecordSubentro>),
    /// Sections added to records already sent in this load (e.g. the anomalies known
    /// only at the end of the file): plain versions, no index row, no link.
    Sezioni(Vec<(EntityRef, NaiveDate, SezioneSubentro)>),
    Fine(FineSubentro),
}

/// A subject already in the store with a given tax code (duplicate checks at subentro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodiceFiscalePresente {
    pub codice_fiscale: String,
    pub comune: CodiceIstatComune,
    pub posizione: String,
}

/// Unsupported optional capability of a store (bulk subentro on a test double).
fn non_supportato(what: &str) -> StoreError {
    StoreError::Invalid(format!("{what} is not supported by this store"))
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
    #[error("suspended operation {0} not found")]
    SospesaNotFound(u64),
    /// The security directory changed since the version a change was computed from:
    /// reload and try again.
    #[error("the security directory is at version {trovata}, not {attesa}")]
    ConflittoSicurezza { attesa: u64, trovata: u64 },
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// A figure of a storage backend for monitoring (`GET /metrics`, one series per
/// environment).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricaStore {
    /// Prometheus metric name.
    pub nome: &'static str,
    /// Its help text.
    pub aiuto: &'static str,
    /// A counter (grows for the store's life) rather than a gauge (a current value).
    pub contatore: bool,
    pub valore: f64,
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

    /// Returns once everything committed before the call is durable. Both backends let
    /// other readers see a commit a moment before it is on disk (the writer is answered
    /// only after); a use case that answers with data it only read, without a write of
    /// its own that would confirm it (the replay of an operation already received),
    /// calls this first, so that its answer too means "durable".
    async fn conferma_durevole(&self) -> Result<(), StoreError>;

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

    /// The subjects `query` finds (as [`Store::find_subjects`]), each with its record as
    /// at `at` (as [`Store::record`], `None` when nothing is in force then) as stored
    /// JSON text: the consultation's hot path. A backend that can reads both in one
    /// snapshot (SQLite: one read transaction); this default reads them one after the
    /// other.
    async fn find_subject_records(
        &self,
        query: &SubjectQuery,
        at: Option<NaiveDate>,
    ) -> Result<Vec<(SubjectIndex, Option<RecordTesto>)>, StoreError> {
        let rows = self.find_subjects(query).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let record = self
                .record(EntityRef::Soggetto(row.id), at)
                .await?
                .map(|r| RecordTesto {
                    sections: r
                        .sections
                        .into_iter()
                        .map(|(k, v)| (k, v.to_string()))
                        .collect(),
                });
            out.push((row, record));
        }
        Ok(out)
    }

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

    /// Proceedings matching the filter (current projection), ascending by id.
    async fn find_procedimenti(
        &self,
        query: &ProcedimentoQuery,
    ) -> Result<Vec<ProcedimentoIndex>, StoreError>;

    /// Saves a suspended operation (insert, or update when `id` is given) and chains
    /// its audit entry, in one transaction. Updating one that does not exist (or
    /// belongs to another municipality or service) fails with
    /// [`StoreError::SospesaNotFound`] and writes nothing.
    async fn salva_sospesa(&self, sospesa: NuovaSospesa) -> Result<OperazioneSospesa, StoreError>;

    async fn sospesa(&self, id: u64) -> Result<Option<OperazioneSospesa>, StoreError>;

    /// Suspended operations matching the filter, ascending by id.
    async fn sospese(&self, query: &QuerySospese) -> Result<Vec<OperazioneSospesa>, StoreError>;

    /// Deletes a suspended operation and chains `audit`, in one transaction. `false`
    /// (and nothing written) when it did not exist.
    async fn elimina_sospesa(&self, id: u64, audit: NuovaVoceAudit) -> Result<bool, StoreError>;

    /// Issues a document: allocates the next protocol number of (`comune`, `anno`),
    /// inserts it and chains its audit entry, in one transaction.
    async fn emetti_documento(&self, doc: NuovoDocumento) -> Result<DocumentoEmesso, StoreError>;

    async fn documento(&self, id: &str) -> Result<Option<DocumentoEmesso>, StoreError>;

    async fn documenti(&self, query: &QueryDocumenti) -> Result<Vec<DocumentoEmesso>, StoreError>;

    /// Annuls an issued document (material error) and chains `audit`, in one
    /// transaction. `None` (nothing written) when it does not exist; an already annulled
    /// one is returned unchanged, without chaining `audit`.
    async fn annulla_documento(
        &self,
        id: &str,
        istante: DateTime<Utc>,
        motivo: String,
        audit: NuovaVoceAudit,
    ) -> Result<Option<DocumentoEmesso>, StoreError>;

    /// A municipality's document parameters, `None` when never set.
    async fn parametri_comune(
        &self,
        comune: &CodiceIstatComune,
    ) -> Result<Option<ParametriComune>, StoreError>;

    /// Replaces a municipality's document parameters and chains `audit`, in one
    /// transaction. A logo over [`LOGO_MAX_BYTES`] is refused with
    /// [`StoreError::Invalid`] and nothing is written.
    async fn salva_parametri_comune(
        &self,
        parametri: NuoviParametriComune,
    ) -> Result<ParametriComune, StoreError>;

    /// Appends an audit entry that belongs to no operation (e.g. a read).
    async fn append_audit(&self, entry: NuovaVoceAudit) -> Result<VoceAudit, StoreError>;

    /// Appends several audit entries that belong to no operation, chained in the order
    /// given, in one transaction: all of them or none. What one request reads (a search
    /// and every record it returns) is audited with one durable write instead of one
    /// per record. Returns the chained entries in the same order; an empty batch
    /// writes nothing.
    async fn append_audit_batch(
        &self,
        entries: Vec<NuovaVoceAudit>,
    ) -> Result<Vec<VoceAudit>, StoreError>;

    /// Audit entries with `seq > after`, ascending, at most `limit`.
    async fn audit_page(&self, after: u64, limit: u32) -> Result<Vec<VoceAudit>, StoreError>;

    async fn audit_head(&self) -> Result<Option<TestaCatena>, StoreError>;

    /// Undelivered outbox messages, oldest first.
    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Records a delivery attempt: delivered, or failed (attempt counted).
    async fn outbox_mark(&self, id: u64, delivered: bool) -> Result<(), StoreError>;

    /// The outbox messages addressed to a municipality that match `query` (see
    /// [`QueryNotifiche`]), delivered or not.
    async fn notifiche(&self, _query: &QueryNotifiche) -> Result<Vec<OutboxMessage>, StoreError> {
        Err(non_supportato("notifications by recipient"))
    }

    /// Cheap liveness check of the backend.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The backend's own figures for monitoring; none unless the backend has some.
    fn metriche(&self) -> Vec<MetricaStore> {
        Vec::new()
    }

    /// Allocates `count` ids of a sequence at once (bulk loads). The default asks one
    /// at a time; backends reserve a block.
    async fn next_ids(&self, sequence: Sequence, count: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            out.push(self.next_id(sequence).await?);
        }
        Ok(out)
    }

    /// The subentro files recorded for a municipality, oldest first.
    async fn file_subentro(
        &self,
        _comune: &CodiceIstatComune,
    ) -> Result<Vec<FileSubentro>, StoreError> {
        Err(non_supportato("subentro"))
    }

    /// Subjects indexed with any of these tax codes (any municipality, any position).
    async fn codici_fiscali_presenti(
        &self,
        _codici: &[String],
    ) -> Result<Vec<CodiceFiscalePresente>, StoreError> {
        Err(non_supportato("subentro"))
    }

    /// Bulk-loads a municipality (SPEC M-6): one transaction holding the operation,
    /// every record received, their index rows and links, the file states, the
    /// outbox and the audit entry, committed only on a positive [`FineSubentro`].
    /// A crash at any point leaves nothing of it. Returns the chained audit entry.
    async fn carica_subentro(
        &self,
        _inizio: InizioSubentro,
        _records: tokio::sync::mpsc::Receiver<MessaggioSubentro>,
    ) -> Result<VoceAudit, StoreError> {
        Err(non_supportato("subentro"))
    }

    /// Our CA: the stored one, or `proposta` stored now when there is none yet (the
    /// first process to start creates it; every other one gets the same).
    async fn sicurezza_ca(&self, _proposta: CaSicurezza) -> Result<CaSicurezza, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// The security directory's current version (0 when empty). Cheap: processes poll it.
    async fn sicurezza_versione(&self) -> Result<u64, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// The directory rows and register entries written after version `dopo` (all of
    /// them for 0), with the current version and counters, read consistently.
    async fn sicurezza_carica(&self, _dopo: u64) -> Result<CaricoSicurezza, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Applies a directory change atomically if the directory is still at
    /// `versione_attesa` (else [`StoreError::ConflittoSicurezza`], nothing written):
    /// rows, register entries (which must continue the chain: number and previous hash,
    /// else [`StoreError::Invalid`]), counters and mails. Returns the new version.
    async fn sicurezza_salva(&self, _modifica: ModificaSicurezza) -> Result<u64, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Takes up to `limit` queued mails due at `adesso` for delivery, oldest first, and
    /// leases them until `adesso + lease` (their next attempt time), so that another
    /// worker does not send them too.
    async fn sicurezza_posta_prendi(
        &self,
        _adesso: DateTime<Utc>,
        _lease: chrono::Duration,
        _limit: u32,
    ) -> Result<Vec<MailSicurezza>, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Records the outcome of a delivery attempt (counted). Unknown id: `Invalid`.
    async fn sicurezza_posta_esito(&self, _id: u64, _esito: EsitoMail) -> Result<(), StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Queued mails (any state, or only `stato`), ascending by id, at most `limit`.
    async fn sicurezza_posta(
        &self,
        _stato: Option<StatoMail>,
        _limit: u32,
    ) -> Result<Vec<MailSicurezza>, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Stores a token (its fingerprint is the key; an existing one is replaced) and
    /// removes the tokens expired before its creation.
    async fn sicurezza_gettone_crea(&self, _gettone: GettoneSicurezza) -> Result<(), StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// The token with that fingerprint of that kind, if not expired at `adesso`.
    async fn sicurezza_gettone(
        &self,
        _impronta: &str,
        _tipo: &str,
        _adesso: DateTime<Utc>,
    ) -> Result<Option<GettoneSicurezza>, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Removes the token and returns it if it was of that kind and not expired at
    /// `adesso`: single use (a WebAuthn challenge, a logout).
    async fn sicurezza_gettone_consuma(
        &self,
        _impronta: &str,
        _tipo: &str,
        _adesso: DateTime<Utc>,
    ) -> Result<Option<GettoneSicurezza>, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Records a failed login for `chiave` (e.g. `password:<CF>`) and returns how many
    /// were recorded for it since `dal` (this one included). Entries older than `dal`
    /// are removed.
    async fn sicurezza_accesso_fallito(
        &self,
        _chiave: &str,
        _istante: DateTime<Utc>,
        _dal: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Failed logins recorded for `chiave` since `dal`.
    async fn sicurezza_accessi_falliti(
        &self,
        _chiave: &str,
        _dal: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        Err(non_supportato("the security directory"))
    }

    /// Forgets the failed logins of `chiave` (after a successful one).
    async fn sicurezza_azzera_accessi_falliti(&self, _chiave: &str) -> Result<(), StoreError> {
        Err(non_supportato("the security directory"))
    }

    // ------------------------------------------------ asynchronous requests (M-5.3, M-5.4)

    /// Queues a validated asynchronous request and chains its audit entry, in one
    /// transaction. A request of the same municipality with the same
    /// `id_operazione_comune` already stored is returned instead (with `false`), and
    /// nothing is written.
    async fn inserisci_elaborazione(
        &self,
        _nuova: NuovaElaborazione,
    ) -> Result<(Elaborazione, bool), StoreError> {
        Err(non_supportato("asynchronous requests"))
    }

    /// Atomically takes the oldest request that is `inserita`, or `inElaborazione` with
    /// a lease expired before `istante`: it becomes `inElaborazione`, held until
    /// `scadenza`, its attempt count increased. `None` when there is none.
    async fn prendi_elaborazione(
        &self,
        _istante: DateTime<Utc>,
        _scadenza: DateTime<Utc>,
    ) -> Result<Option<Elaborazione>, StoreError> {
        Err(non_supportato("asynchronous requests"))
    }

    /// Records the outcome of an attempt (state, outcome, file) and chains its audit
    /// entry, in one transaction; only while the request is `inElaborazione` with the
    /// same attempt number. `false` (nothing written) otherwise.
    async fn concludi_elaborazione(
        &self,
        _conclusione: ConclusioneElaborazione,
    ) -> Result<bool, StoreError> {
        Err(non_supportato("asynchronous requests"))
    }

    async fn elaborazione(&self, _id: u64) -> Result<Option<Elaborazione>, StoreError> {
        Err(non_supportato("asynchronous requests"))
    }

    /// The result file of a request, if it has one.
    async fn file_elaborazione(&self, _id: u64) -> Result<Option<FileElaborazione>, StoreError> {
        Err(non_supportato("asynchronous requests"))
    }

    /// Requests matching the filter, ascending by id.
    async fn elaborazioni(
        &self,
        _query: &QueryElaborazioni,
    ) -> Result<Vec<Elaborazione>, StoreError> {
        Err(non_supportato("asynchronous requests"))
    }

    /// Stage one of an extraction over the subject projection, see [`QueryEstrazione`].
    async fn soggetti_per_estrazione(
        &self,
        _query: &QueryEstrazione,
    ) -> Result<Vec<SubjectIndex>, StoreError> {
        Err(non_supportato("extractions"))
    }

    /// The given sections of many records at once, in force at `at` (or current), in
    /// the order of `entita` (records with none of them are left out). At most
    /// [`elaborazioni::MAX_ENTITA_SEZIONI`] entities per call.
    async fn sezioni_di(
        &self,
        _entita: &[EntityRef],
        _sezioni: &[String],
        _at: Option<NaiveDate>,
    ) -> Result<Vec<(EntityRef, RecordSections)>, StoreError> {
        Err(non_supportato("extractions"))
    }

    /// Versions of a section by the value of one of its fields, see
    /// [`QueryVersioniCampo`]; ordered by entity, then valid-from date.
    async fn versioni_per_campo(
        &self,
        _query: &QueryVersioniCampo,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        Err(non_supportato("statistics"))
    }

    /// Benchmark baseline: inserts `rows` minimal rows into a scratch table in one
    /// durable transaction each, with no registry logic. Used to put the cost of
    /// [`Store::apply`] in proportion on the same machine in the same run.
    async fn baseline_raw_insert(&self, rows: u32) -> Result<(), StoreError>;
}
