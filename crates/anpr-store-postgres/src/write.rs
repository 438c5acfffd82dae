//! Writes: `apply`, `annul`, audit entries, outbox marks and the benchmark baseline.
//!
//! Each operation is one READ COMMITTED transaction. What must hold under concurrency
//! is enforced with locks, always taken in this order so that transactions cannot wait
//! on each other in a cycle:
//!
//! 1. the municipality's row in `ultimo_id_comune` (one upsert takes the row lock and
//!    returns the previous last `idOperazioneComune`): operations of one municipality
//!    serialise from here to commit, so "greater than every earlier one" is checked
//!    against a value no one else can change meanwhile;
//! 2. one transaction-level advisory lock per record touched (sorted): one writer per
//!    record at a time, so timelines are read and closed by a transaction that cannot be
//!    overtaken, and an annulment's "newest operation" check sees every committed change;
//! 3. the current version rows (`FOR UPDATE`, sorted), belt and braces;
//! 4. the single `audit_testa` row, last of all and held only for the final insert and
//!    the commit: the audit chain's order is the commit order.
//!
//! The commit itself does not wait for the disk while the audit head is locked; the
//! caller is answered only after a second, synchronous commit has flushed the WAL past
//! it ([`confirm_durable`]), so the disk flushes of concurrent operations are shared.
//!
//! `apply` pipelines its statements (several requests in flight on the connection,
//! executed by the server in order) so that it costs six round trips instead of one per
//! statement; `annul`, which is rare, runs its steps one by one.
//!
//! The unique index allowing one open version per section backs (2) and (3): if two
//! writers ever got past them (e.g. a future code path that forgets the record lock),
//! the loser fails on the index instead of forking the timeline, and the whole
//! transaction is run again, as it is after a deadlock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use anpr_domain::audit::{concatena, NuovaVoceAudit, TestaCatena, VoceAudit};
use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune};
use anpr_domain::operazione::StatoOperazione;
use anpr_store::{
    EntityRef, FamilyIndex, IndexWrite, NewOperation, NewOutboxMessage, NuovaSospesa,
    OperazioneSospesa, ProcedimentoIndex, StoreError, SubjectIndex,
};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tokio_postgres::Statement;

use crate::error::{to_i64, to_u64, Context, Failure, Verdict, COMUNE_ID_UNIQUE, OPERATION_PK};
use crate::read::{col, entity, op_id, INDEX_SECTION};
use crate::PostgresStore;

/// Attempts before giving up on a transaction that keeps losing races. With the record
/// locks, retries are rare (deadlocks only); this bounds the pathological case.
const MAX_ATTEMPTS: u32 = 10;

/// The timestamps PostgreSQL keeps have microsecond precision. Audit hashes cover the
/// instant, so it is truncated *before* hashing: the entry read back from the database
/// is then identical to the one returned and verifies.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

pub(crate) fn normalised(mut entry: NuovaVoceAudit) -> NuovaVoceAudit {
    entry.istante = micros(entry.istante);
    entry
}

/// Advisory lock key of a record: FNV-1a over the schema, kind and id, so environments
/// sharing a database do not block each other. A collision only costs some waiting.
fn record_lock_key(schema: &str, e: EntityRef) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(schema.as_bytes());
    eat(e.kind().as_bytes());
    eat(&e.id().to_be_bytes());
    i64::from_be_bytes(h.to_be_bytes())
}

/// One version row to insert.
#[derive(Debug)]
struct NewVersion {
    entity: EntityRef,
    section: String,
    value: Option<serde_json::Value>,
    key: Option<String>,
    /// Replaced by a later write of the same section in the same operation: inserted
    /// already closed, zero-length, as the reference model does.
    superseded: bool,
}

/// Everything derived from a `NewOperation` before touching the database, so that the
/// retried transaction does not redo it and invalid requests never open a transaction.
#[derive(Debug)]
struct Plan {
    op_id: i64,
    comune_id: Option<(String, i64, IdOperazioneComune)>,
    registrata_il: DateTime<Utc>,
    versions: Vec<NewVersion>,
    /// Distinct (entity, section) written, in the operation's order.
    sections: Vec<(EntityRef, String)>,
    /// Distinct entities touched, sorted.
    entities: Vec<EntityRef>,
    /// Record lock keys, sorted and distinct.
    lock_keys: Vec<i64>,
    /// Index rows, one per record (the last one given wins, like its `_indice` version).
    subjects: Vec<SubjectIndex>,
    families: Vec<FamilyIndex>,
    procedimenti: Vec<ProcedimentoIndex>,
    /// The suspended operation this one completes (deleted in the same transaction).
    completa_sospesa: Option<i64>,
    audit: NuovaVoceAudit,
}

impl Plan {
    fn new(schema: &str, op: &NewOperation, annulment: bool) -> Result<Self, StoreError> {
        let has_changes = !op.writes.is_empty() || !op.indexes.is_empty();
        match op.stato {
            StatoOperazione::Annullata => {
                return Err(StoreError::Invalid(format!(
                    "operation {} cannot be stored already annulled",
                    op.id
                )))
            }
            StatoOperazione::Rifiutata if annulment => {
                return Err(StoreError::Invalid(format!(
                    "annulment {} must be executed; store a refused annulment with apply",
                    op.id
                )))
            }
            StatoOperazione::Rifiutata if has_changes => {
                return Err(StoreError::Invalid(format!(
                    "refused operation {} carries writes or index rows",
                    op.id
                )))
            }
            _ => {}
        }
        if annulment && has_changes {
            return Err(StoreError::Invalid(format!(
                "annulment {} carries writes or index rows of its own",
                op.id
            )));
        }
        if op.completa_sospesa.is_some() && (annulment || op.stato != StatoOperazione::Eseguita) {
            return Err(StoreError::Invalid(format!(
                "operation {} completes a suspended operation but is not an executed operation",
                op.id
            )));
        }
        let comune_id = match (&op.comune, op.id_operazione_comune) {
            (Some(c), Some(id)) => Some((
                c.as_str().to_owned(),
                to_i64(id.get(), "idOperazioneComune")?,
                id,
            )),
            (None, Some(id)) => {
                return Err(StoreError::Invalid(format!(
                    "operation {} has idOperazioneComune {id} but no municipality",
                    op.id
                )))
            }
            _ => None,
        };

        let mut versions = Vec::with_capacity(op.writes.len() + op.indexes.len());
        for w in &op.writes {
            if w.section.is_empty() || w.section.starts_with('_') {
                return Err(StoreError::Invalid(format!(
                    "section name {:?} is empty or reserved (leading underscore)",
                    w.section
                )));
            }
            versions.push(NewVersion {
                entity: w.entity,
                section: w.section.clone(),
                value: w.value.clone(),
                key: w.key.clone(),
                superseded: false,
            });
        }
        for i in &op.indexes {
            if let IndexWrite::Procedimento(p) = i {
                to_i64(p.id, "proceeding id")?;
            }
            let value = match i {
                IndexWrite::Soggetto(s) => serde_json::to_value(s),
                IndexWrite::Famiglia(f) => serde_json::to_value(f),
                IndexWrite::Procedimento(p) => serde_json::to_value(p),
            }
            .map_err(|e| StoreError::Invalid(format!("index row cannot be serialised: {e}")))?;
            versions.push(NewVersion {
                entity: i.entity(),
                section: INDEX_SECTION.to_owned(),
                value: Some(value),
                key: None,
                superseded: false,
            });
        }
        // Only the last write of a section in one operation stays open.
        let mut seen = HashSet::new();
        for v in versions.iter_mut().rev() {
            if !seen.insert((v.entity, v.section.clone())) {
                v.superseded = true;
            }
        }
        let mut sections = Vec::new();
        let mut seen = HashSet::new();
        for v in &versions {
            if seen.insert((v.entity, v.section.clone())) {
                sections.push((v.entity, v.section.clone()));
            }
        }
        let entities: Vec<EntityRef> = versions
            .iter()
            .map(|v| v.entity)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let lock_keys = lock_keys(schema, &entities);
        // Sorted by id, so that the projection rows are always written in the same order.
        let mut subjects: BTreeMap<IdAnprSoggetto, &SubjectIndex> = BTreeMap::new();
        let mut families: BTreeMap<IdAnprFamiglia, &FamilyIndex> = BTreeMap::new();
        let mut procedimenti: BTreeMap<u64, &ProcedimentoIndex> = BTreeMap::new();
        for i in &op.indexes {
            match i {
                IndexWrite::Soggetto(s) => subjects.insert(s.id, s).map(|_| ()),
                IndexWrite::Famiglia(f) => families.insert(f.id, f).map(|_| ()),
                IndexWrite::Procedimento(p) => procedimenti.insert(p.id, p).map(|_| ()),
            };
        }
        Ok(Self {
            op_id: to_i64(op.id.get(), "operation id")?,
            comune_id,
            registrata_il: micros(op.registrata_il),
            versions,
            sections,
            entities,
            lock_keys,
            subjects: subjects.into_values().cloned().collect(),
            families: families.into_values().cloned().collect(),
            procedimenti: procedimenti.into_values().cloned().collect(),
            completa_sospesa: op
                .completa_sospesa
                .map(|id| to_i64(id, "suspended operation id"))
                .transpose()?,
            audit: normalised(op.audit.clone()),
        })
    }
}

fn lock_keys(schema: &str, entities: &[EntityRef]) -> Vec<i64> {
    let keys: BTreeSet<i64> = entities
        .iter()
        .map(|e| record_lock_key(schema, *e))
        .collect();
    keys.into_iter().collect()
}

/// Runs `attempt` until it succeeds, fails for good, or keeps losing races.
pub(crate) async fn with_retries<T, F, Fut>(
    what: &str,
    seed: u64,
    mut attempt: F,
) -> Result<T, Verdict>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut n = 0u32;
    loop {
        n += 1;
        let failure = match attempt().await {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        match failure.classify() {
            Verdict::Retry(why) if n < MAX_ATTEMPTS => {
                tracing::debug!(what, attempt = n, reason = %why, "transaction lost a race; running it again");
                // Exponential with jitter, so that the same losers do not collide again.
                let jitter = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(n) % 8;
                tokio::time::sleep(Duration::from_millis((1u64 << n.min(5)) + jitter)).await;
            }
            Verdict::Retry(why) => {
                return Err(Verdict::Fail(StoreError::Backend(format!(
                    "{what}: gave up after {n} attempts: {why}"
                ))))
            }
            other => return Err(other),
        }
    }
}

/// Turns a unique violation into the conflict it means.
async fn unique_violation(
    store: &PostgresStore,
    op: &NewOperation,
    constraint: &str,
) -> StoreError {
    if constraint == OPERATION_PK {
        return StoreError::DuplicateOperationId(op.id);
    }
    if let (COMUNE_ID_UNIQUE, Some(c), Some(id)) = (constraint, &op.comune, op.id_operazione_comune)
    {
        // Only reachable if the municipality's counter lagged behind the log; the
        // existing operation is committed, so a fresh read finds it.
        return match crate::read::operation_by_comune_id(store, c, id).await {
            Ok(Some(existing)) => StoreError::DuplicateIdOperazioneComune {
                id,
                existing: existing.id,
            },
            Ok(None) => StoreError::Backend(format!(
                "idOperazioneComune {id} of {c} collided with a vanished operation"
            )),
            Err(e) => e.into_store_error(),
        };
    }
    StoreError::Backend(format!("unexpected unique violation on {constraint}"))
}

async fn finish(
    store: &PostgresStore,
    op: &NewOperation,
    outcome: Result<VoceAudit, Verdict>,
) -> Result<VoceAudit, StoreError> {
    match outcome {
        Ok(v) => Ok(v),
        Err(Verdict::Unique(constraint)) => Err(unique_violation(store, op, &constraint).await),
        Err(Verdict::Fail(e)) => Err(e),
        Err(Verdict::Retry(why)) => Err(StoreError::Backend(why)),
    }
}

pub(crate) async fn apply(
    store: &PostgresStore,
    op: NewOperation,
) -> Result<VoceAudit, StoreError> {
    let plan = Plan::new(store.schema(), &op, false)?;
    let outcome = with_retries("apply", op.id.get(), || apply_once(store, &op, &plan)).await;
    finish(store, &op, outcome).await
}

pub(crate) async fn annul(
    store: &PostgresStore,
    target: IdOperazioneAnpr,
    annulment: NewOperation,
) -> Result<VoceAudit, StoreError> {
    let plan = Plan::new(store.schema(), &annulment, true)?;
    let outcome = with_retries("annul", annulment.id.get(), || {
        annul_once(store, target, &annulment, &plan)
    })
    .await;
    finish(store, &annulment, outcome).await
}

pub(crate) async fn append_audit(
    store: &PostgresStore,
    entry: NuovaVoceAudit,
) -> Result<VoceAudit, StoreError> {
    let entry = normalised(entry);
    let outcome = with_retries("append_audit", 0, || async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("append_audit: begin")?;
        let st = Statements::prepare(&tx).await?;
        let (relaxed, head) = tokio::join!(relax_commit(&tx), lock_audit_head(&tx, &st));
        relaxed?;
        let voce = append_chained(&tx, &st, head?, entry.clone(), None).await?;
        tx.commit().await.ctx("append_audit: commit")?;
        confirm_durable(&client, "append_audit").await?;
        Ok(voce)
    })
    .await;
    match outcome {
        Ok(v) => Ok(v),
        Err(Verdict::Fail(e)) => Err(e),
        Err(Verdict::Unique(c)) => Err(StoreError::Backend(format!(
            "append_audit: unique violation on {c}"
        ))),
        Err(Verdict::Retry(why)) => Err(StoreError::Backend(why)),
    }
}

/// `Store::append_audit_batch`: the entries chained one after the other under one lock
/// of the audit head, in one transaction.
pub(crate) async fn append_audit_batch(
    store: &PostgresStore,
    entries: Vec<NuovaVoceAudit>,
) -> Result<Vec<VoceAudit>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<NuovaVoceAudit> = entries.into_iter().map(normalised).collect();
    let outcome = with_retries("append_audit_batch", 0, || async {
        let mut client = store.client().await?;
        let tx = client
            .transaction()
            .await
            .ctx("append_audit_batch: begin")?;
        let st = Statements::prepare(&tx).await?;
        let (relaxed, head) = tokio::join!(relax_commit(&tx), lock_audit_head(&tx, &st));
        relaxed?;
        let mut head = head?;
        let mut voci = Vec::with_capacity(entries.len());
        for entry in &entries {
            let voce = append_chained(&tx, &st, head, entry.clone(), None).await?;
            head = Some(TestaCatena {
                seq: voce.seq,
                hash: voce.hash.clone(),
            });
            voci.push(voce);
        }
        tx.commit().await.ctx("append_audit_batch: commit")?;
        confirm_durable(&client, "append_audit_batch").await?;
        Ok(voci)
    })
    .await;
    match outcome {
        Ok(v) => Ok(v),
        Err(Verdict::Fail(e)) => Err(e),
        Err(Verdict::Unique(c)) => Err(StoreError::Backend(format!(
            "append_audit_batch: unique violation on {c}"
        ))),
        Err(Verdict::Retry(why)) => Err(StoreError::Backend(why)),
    }
}

/// The statements of the write path, prepared (or taken from the connection's cache)
/// up front. Besides saving the parse, this is what makes pipelining safe: a pipelined
/// future then sends its request on its first poll, so requests reach the server in
/// the order the futures are listed, never reordered by a cache miss.
pub(crate) struct Statements {
    claim: Statement,
    insert_operation: Statement,
    lock_records: Statement,
    close_versions: Statement,
    insert_versions: Statement,
    upsert_subjects: Statement,
    upsert_families: Statement,
    upsert_procedimenti: Statement,
    link: Statement,
    outbox: Statement,
    audit_head: Statement,
    audit_append: Statement,
}

impl Statements {
    pub(crate) async fn prepare(tx: &Transaction<'_>) -> Result<Self, Failure> {
        let p = |sql: &'static str| async move {
            tx.prepare_cached(sql).await.ctx("preparing a statement")
        };
        Ok(Self {
            claim: p(CLAIM).await?,
            insert_operation: p(INSERT_OPERATION).await?,
            lock_records: p(LOCK_RECORDS).await?,
            close_versions: p(CLOSE_VERSIONS).await?,
            insert_versions: p(INSERT_VERSIONS).await?,
            upsert_subjects: p(UPSERT_SUBJECTS).await?,
            upsert_families: p(UPSERT_FAMILIES).await?,
            upsert_procedimenti: p(UPSERT_PROCEDIMENTI).await?,
            link: p(LINK).await?,
            outbox: p(OUTBOX).await?,
            audit_head: p(AUDIT_HEAD).await?,
            audit_append: p(AUDIT_APPEND).await?,
        })
    }
}

// On conflict the row is locked (waiting for any holder) and re-read at its latest
// version; `precedente` returns the value it had before this statement.
const CLAIM: &str = "INSERT INTO ultimo_id_comune AS u (comune, ultimo) VALUES ($1, $2) \
     ON CONFLICT (comune) DO UPDATE SET precedente = u.ultimo, ultimo = EXCLUDED.ultimo \
     RETURNING precedente";

const INSERT_OPERATION: &str =
    "INSERT INTO operazioni (id, codice_servizio, comune, id_operazione_comune, utente, \
         postazione, canale, decorrenza, registrata_il, stato, annulla, richiesta, risposta) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

// The keys are sorted, and unnest yields them in array order, so every transaction
// takes its record locks in the same global order.
const LOCK_RECORDS: &str = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k";

// Versions that would end before they start are not touched; the caller then refuses
// the whole operation, and the rollback undoes the others.
//
// One index lookup per written section, locked as it is found; the caller passes the
// sections sorted, so the rows are locked in one global order. The lookup is a LATERAL
// subquery with LIMIT 1 (a section has at most one open version: `versioni_correnti`)
// because the planner cannot flatten that into a join: the plan stays a nested loop
// over the index whatever the statistics say. Written as a plain join, the generic plan
// a pooled connection settled on while the table was small (a fresh schema, as at every
// onboarding) hash-joined the arrays against *every* open version, and kept doing so as
// the table grew: 16-22 ms of server CPU per operation at 60,000 versions.
const CLOSE_VERSIONS: &str = "WITH correnti AS ( \
         SELECT v.id, v.kind, v.entita, v.sezione, v.valido_dal \
         FROM unnest($1::text[], $2::bigint[], $3::text[]) AS w(kind, entita, sezione) \
         CROSS JOIN LATERAL ( \
             SELECT c.id, c.kind, c.entita, c.sezione, c.valido_dal FROM versioni c \
             WHERE c.kind = w.kind AND c.entita = w.entita AND c.sezione = w.sezione \
               AND c.valido_al IS NULL \
             LIMIT 1 \
             FOR UPDATE \
         ) AS v \
     ), chiuse AS ( \
         UPDATE versioni SET valido_al = $4, chiusa_da = $5 \
         FROM correnti WHERE versioni.id = correnti.id AND correnti.valido_dal <= $4 \
     ) \
     SELECT kind, entita, sezione, valido_dal FROM correnti";

// ORDER BY the ordinality so that identity ids (the record order of a timeline) follow
// the operation's order.
const INSERT_VERSIONS: &str = "INSERT INTO versioni (kind, entita, sezione, valido_dal, valido_al, creata_da, \
         chiusa_da, valore, chiave) \
     SELECT w.kind, w.entita, w.sezione, $4, w.valido_al, $5, w.chiusa_da, w.valore, w.chiave \
     FROM unnest($1::text[], $2::bigint[], $3::text[], $6::date[], $7::bigint[], $8::jsonb[], $9::text[]) \
          WITH ORDINALITY AS w(kind, entita, sezione, valido_al, chiusa_da, valore, chiave, n) \
     ORDER BY w.n";

const UPSERT_SUBJECTS: &str = "INSERT INTO indice_soggetti (id, comune, posizione, codice_fiscale, cognome_key, \
         nome_key, sesso, data_nascita, id_comunale, id_famiglia, chiave_indirizzo) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                          $8::date[], $9::text[], $10::bigint[], $11::text[]) \
     ON CONFLICT (id) DO UPDATE SET comune = EXCLUDED.comune, posizione = EXCLUDED.posizione, \
         codice_fiscale = EXCLUDED.codice_fiscale, cognome_key = EXCLUDED.cognome_key, \
         nome_key = EXCLUDED.nome_key, sesso = EXCLUDED.sesso, data_nascita = EXCLUDED.data_nascita, \
         id_comunale = EXCLUDED.id_comunale, id_famiglia = EXCLUDED.id_famiglia, \
         chiave_indirizzo = EXCLUDED.chiave_indirizzo";

const UPSERT_FAMILIES: &str = "INSERT INTO indice_famiglie (id, comune, tipo, stato, id_comunale, chiave_indirizzo) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
     ON CONFLICT (id) DO UPDATE SET comune = EXCLUDED.comune, tipo = EXCLUDED.tipo, stato = EXCLUDED.stato, \
         id_comunale = EXCLUDED.id_comunale, chiave_indirizzo = EXCLUDED.chiave_indirizzo";

const UPSERT_PROCEDIMENTI: &str = "INSERT INTO indice_procedimenti (id, comune, numero_pratica_comune, stato, \
         aperto, motivo_avvio, data_avvio, data_stato, data_chiusura) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], \
                          $7::date[], $8::date[], $9::date[]) \
     ON CONFLICT (id) DO UPDATE SET comune = EXCLUDED.comune, \
         numero_pratica_comune = EXCLUDED.numero_pratica_comune, stato = EXCLUDED.stato, \
         aperto = EXCLUDED.aperto, motivo_avvio = EXCLUDED.motivo_avvio, data_avvio = EXCLUDED.data_avvio, \
         data_stato = EXCLUDED.data_stato, data_chiusura = EXCLUDED.data_chiusura";

const LINK: &str = "INSERT INTO operazioni_entita (op, kind, entita) \
     SELECT $1, x.kind, x.entita FROM unnest($2::text[], $3::bigint[]) AS x(kind, entita)";

// In the operation's order: the worker delivers oldest (lowest id) first. Queued at the
// operation's registration time, so a notification's age is the operation's.
const OUTBOX: &str = "INSERT INTO outbox (id_operazione_anpr, tipo, destinatario, payload, creato_il) \
     SELECT $1, x.tipo, x.destinatario, x.payload, $5 \
     FROM unnest($2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS x(tipo, destinatario, payload, n) \
     ORDER BY x.n";

// Through the primary key: the one live version is found via its HOT chain instead of
// scanning every page the row's dead versions may occupy.
const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_testa WHERE unica FOR UPDATE";

// One statement (one round trip while holding the head): the entry, which also records
// the operation's place in commit order, and the new head.
const AUDIT_APPEND: &str = "WITH voce AS ( \
         INSERT INTO audit (seq, istante, evento, azione, utente, comune, postazione, canale, oggetto, \
                            id_operazione_anpr, esito, hash_precedente, hash, operazione) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ) \
     UPDATE audit_testa SET seq = $1, hash = $13";

pub(crate) async fn query(
    tx: &Transaction<'_>,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, Failure> {
    let stmt = tx.prepare_cached(sql).await.ctx(what)?;
    tx.query(&stmt, params).await.ctx(what)
}

pub(crate) async fn exec(
    tx: &Transaction<'_>,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Failure> {
    let stmt = tx.prepare_cached(sql).await.ctx(what)?;
    tx.execute(&stmt, params).await.ctx(what)
}

/// Applies an operation in six round trips: begin; everything up to the timeline check
/// (pipelined); the new versions, projections, links, outbox and the audit head lock
/// (pipelined); the audit entry; commit; durability confirmation.
async fn apply_once(
    store: &PostgresStore,
    op: &NewOperation,
    plan: &Plan,
) -> Result<VoceAudit, Failure> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.ctx("apply: begin")?;
    let st = Statements::prepare(&tx).await?;

    // Pipelined: each request is sent when its future is first polled, in this order,
    // and the server runs them in that order. After a failure the later ones fail too
    // (the transaction is aborted), so results are examined in order and the first
    // failure is the one reported.
    let (claimed, inserted, locked, closed, completed) = tokio::join!(
        claim_id_comune(&tx, &st, plan),
        insert_operation(&tx, &st, op, plan, None),
        lock_records(&tx, &st, &plan.lock_keys),
        close_current_versions(&tx, &st, op.decorrenza, plan),
        complete_sospesa(&tx, plan),
    );
    if let Some(taken) = claimed? {
        // The lookup must see operations committed after this transaction's snapshot,
        // so it runs after the rollback (queued by dropping the transaction).
        drop(tx);
        return Err(id_comune_taken(&client, taken).await);
    }
    inserted?;
    locked?;
    let closed = closed?;
    completed?;
    check_decorrenza(&closed, op.decorrenza, plan)?;

    // The audit head is locked last: the serialised part of the transaction is only
    // this round trip's tail, the append and the commit.
    let (versions, subjects, families, procedimenti, linked, queued, relaxed, head) = tokio::join!(
        insert_versions(&tx, &st, op.decorrenza, plan),
        upsert_subjects(&tx, &st, &plan.subjects),
        upsert_families(&tx, &st, &plan.families),
        upsert_procedimenti(&tx, &st, &plan.procedimenti),
        link_entities(&tx, &st, plan.op_id, &plan.entities),
        queue_outbox(&tx, &st, plan.op_id, &plan.registrata_il, &op.outbox),
        relax_commit(&tx),
        lock_audit_head(&tx, &st),
    );
    versions?;
    subjects?;
    families?;
    procedimenti?;
    linked?;
    queued?;
    relaxed?;
    let voce = append_chained(&tx, &st, head?, plan.audit.clone(), Some(plan.op_id)).await?;
    tx.commit().await.ctx("apply: commit")?;
    confirm_durable(&client, "apply").await?;
    Ok(voce)
}

/// Deletes the suspended operation the operation completes; fails the operation if it
/// is gone (completed by someone else meanwhile, or deleted by its owner).
async fn complete_sospesa(tx: &Transaction<'_>, plan: &Plan) -> Result<(), Failure> {
    let Some(id) = plan.completa_sospesa else {
        return Ok(());
    };
    let deleted = exec(
        tx,
        "completing the suspended operation",
        "DELETE FROM operazioni_sospese WHERE id = $1",
        &[&id],
    )
    .await?;
    if deleted == 0 {
        return Err(StoreError::SospesaNotFound(to_u64(id, "suspended operation id")?).into());
    }
    Ok(())
}

/// An `idOperazioneComune` not greater than the municipality's last one.
struct IdComuneTaken {
    comune: String,
    id: i64,
    typed: IdOperazioneComune,
    last: i64,
}

/// Takes the municipality's counter row lock and checks `idOperazioneComune` against
/// it; `Some` when refused.
async fn claim_id_comune(
    tx: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<Option<IdComuneTaken>, Failure> {
    let Some((comune, id, typed)) = &plan.comune_id else {
        return Ok(None);
    };
    let rows = tx
        .query(&st.claim, &[comune, id])
        .await
        .ctx("claiming idOperazioneComune")?;
    let last: i64 = match rows.first() {
        Some(r) => col(r, 0)?,
        None => {
            return Err(
                StoreError::Corrupt("upsert of ultimo_id_comune returned nothing".into()).into(),
            )
        }
    };
    if *id > last {
        return Ok(None);
    }
    // Refused: the transaction rolls back, and the counter with it.
    Ok(Some(IdComuneTaken {
        comune: comune.clone(),
        id: *id,
        typed: *typed,
        last,
    }))
}

/// Tells a replay (the id belongs to a stored operation) from an id out of order.
async fn id_comune_taken(client: &deadpool_postgres::Object, taken: IdComuneTaken) -> Failure {
    let found = client
        .query_opt(
            "SELECT id FROM operazioni WHERE comune = $1 AND id_operazione_comune = $2",
            &[&taken.comune, &taken.id],
        )
        .await
        .ctx("looking up an idOperazioneComune");
    let result = match found {
        Ok(Some(r)) => op_id_from(&r).map(|existing| StoreError::DuplicateIdOperazioneComune {
            id: taken.typed,
            existing,
        }),
        Ok(None) => to_u64(taken.last, "last idOperazioneComune").and_then(|last| {
            IdOperazioneComune::new(last)
                .map(|last| StoreError::IdOperazioneComuneNotIncreasing {
                    id: taken.typed,
                    last,
                })
                .map_err(|e| StoreError::Corrupt(format!("stored last idOperazioneComune: {e}")))
        }),
        Err(f) => return f,
    };
    match result {
        Ok(e) | Err(e) => e.into(),
    }
}

fn op_id_from(row: &Row) -> Result<IdOperazioneAnpr, StoreError> {
    op_id(col(row, 0)?)
}

async fn insert_operation(
    tx: &Transaction<'_>,
    st: &Statements,
    op: &NewOperation,
    plan: &Plan,
    annulla: Option<i64>,
) -> Result<(), Failure> {
    let comune = op.comune.as_ref().map(|c| c.as_str());
    let id_comune = plan.comune_id.as_ref().map(|c| c.1);
    tx.execute(
        &st.insert_operation,
        &[
            &plan.op_id,
            &op.codice_servizio.as_str(),
            &comune,
            &id_comune,
            &op.utente,
            &op.postazione,
            &op.canale,
            &op.decorrenza,
            &plan.registrata_il,
            &op.stato.as_str(),
            &annulla,
            &op.richiesta,
            &op.risposta,
        ],
    )
    .await
    .ctx("inserting the operation")?;
    Ok(())
}

/// One writer per record: waits for any other transaction writing these records.
async fn lock_records(tx: &Transaction<'_>, st: &Statements, keys: &[i64]) -> Result<(), Failure> {
    if keys.is_empty() {
        return Ok(());
    }
    tx.execute(&st.lock_records, &[&keys])
        .await
        .ctx("locking the records")?;
    Ok(())
}

type SectionKey = (String, i64, String);

fn section_key(e: EntityRef, section: &str) -> Result<SectionKey, StoreError> {
    Ok((
        e.kind().to_owned(),
        to_i64(e.id(), "entity id")?,
        section.to_owned(),
    ))
}

/// Closes the open versions of the written sections at the decorrenza (except those
/// that start after it); returns the `valido_dal` of every open version found.
async fn close_current_versions(
    tx: &Transaction<'_>,
    st: &Statements,
    decorrenza: NaiveDate,
    plan: &Plan,
) -> Result<HashMap<SectionKey, NaiveDate>, Failure> {
    if plan.sections.is_empty() {
        return Ok(HashMap::new());
    }
    // Sorted: the statement locks the rows in the order of its arrays.
    let mut sorted = plan
        .sections
        .iter()
        .map(|(e, s)| section_key(*e, s))
        .collect::<Result<Vec<_>, _>>()?;
    sorted.sort_unstable();
    let mut kinds = Vec::with_capacity(sorted.len());
    let mut ids = Vec::with_capacity(sorted.len());
    let mut names = Vec::with_capacity(sorted.len());
    for (kind, id, name) in &sorted {
        kinds.push(kind.as_str());
        ids.push(*id);
        names.push(name.as_str());
    }
    let rows = tx
        .query(
            &st.close_versions,
            &[&kinds, &ids, &names, &decorrenza, &plan.op_id],
        )
        .await
        .ctx("closing the current versions")?;
    let mut current = HashMap::with_capacity(rows.len());
    for r in &rows {
        current.insert((col(r, 0)?, col(r, 1)?, col(r, 2)?), col(r, 3)?);
    }
    Ok(current)
}

/// Refuses a decorrenza before the version it would replace, naming the first offending
/// write in the operation's order.
fn check_decorrenza(
    current: &HashMap<SectionKey, NaiveDate>,
    decorrenza: NaiveDate,
    plan: &Plan,
) -> Result<(), Failure> {
    for (e, s) in &plan.sections {
        if let Some(from) = current.get(&section_key(*e, s)?) {
            if decorrenza < *from {
                return Err(StoreError::DecorrenzaBeforeCurrent {
                    entity: *e,
                    section: s.clone(),
                    decorrenza,
                    current_from: *from,
                }
                .into());
            }
        }
    }
    Ok(())
}

async fn insert_versions(
    tx: &Transaction<'_>,
    st: &Statements,
    decorrenza: NaiveDate,
    plan: &Plan,
) -> Result<(), Failure> {
    if plan.versions.is_empty() {
        return Ok(());
    }
    let n = plan.versions.len();
    let (mut kinds, mut ids, mut names) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ends, mut closers, mut values, mut keys) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for v in &plan.versions {
        kinds.push(v.entity.kind());
        ids.push(to_i64(v.entity.id(), "entity id")?);
        names.push(v.section.as_str());
        ends.push(v.superseded.then_some(decorrenza));
        closers.push(v.superseded.then_some(plan.op_id));
        values.push(v.value.as_ref());
        keys.push(v.key.as_deref());
    }
    tx.execute(
        &st.insert_versions,
        &[
            &kinds,
            &ids,
            &names,
            &decorrenza,
            &plan.op_id,
            &ends,
            &closers,
            &values,
            &keys,
        ],
    )
    .await
    .ctx("inserting the new versions")?;
    Ok(())
}

async fn upsert_subjects(
    tx: &Transaction<'_>,
    st: &Statements,
    rows: &[SubjectIndex],
) -> Result<(), Failure> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows
        .iter()
        .map(|s| to_i64(s.id.get(), "subject id"))
        .collect::<Result<_, _>>()?;
    let comuni: Vec<&str> = rows.iter().map(|s| s.comune.as_str()).collect();
    let posizioni: Vec<&str> = rows.iter().map(|s| s.posizione.as_str()).collect();
    let cf: Vec<Option<&str>> = rows.iter().map(|s| s.codice_fiscale.as_deref()).collect();
    let cognomi: Vec<Option<&str>> = rows.iter().map(|s| s.cognome_key.as_deref()).collect();
    let nomi: Vec<Option<&str>> = rows.iter().map(|s| s.nome_key.as_deref()).collect();
    let sessi: Vec<Option<&str>> = rows.iter().map(|s| s.sesso.as_deref()).collect();
    let nascite: Vec<Option<NaiveDate>> = rows.iter().map(|s| s.data_nascita).collect();
    let id_comunali: Vec<Option<&str>> = rows.iter().map(|s| s.id_comunale.as_deref()).collect();
    let famiglie: Vec<Option<i64>> = rows
        .iter()
        .map(|s| {
            s.id_famiglia
                .map(|f| to_i64(f.get(), "family id"))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    let indirizzi: Vec<Option<&str>> = rows.iter().map(|s| s.chiave_indirizzo.as_deref()).collect();
    tx.execute(
        &st.upsert_subjects,
        &[
            &ids,
            &comuni,
            &posizioni,
            &cf,
            &cognomi,
            &nomi,
            &sessi,
            &nascite,
            &id_comunali,
            &famiglie,
            &indirizzi,
        ],
    )
    .await
    .ctx("writing the subject index")?;
    Ok(())
}

async fn upsert_families(
    tx: &Transaction<'_>,
    st: &Statements,
    rows: &[FamilyIndex],
) -> Result<(), Failure> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows
        .iter()
        .map(|f| to_i64(f.id.get(), "family id"))
        .collect::<Result<_, _>>()?;
    let comuni: Vec<&str> = rows.iter().map(|f| f.comune.as_str()).collect();
    let tipi: Vec<&str> = rows.iter().map(|f| f.tipo.as_str()).collect();
    let stati: Vec<&str> = rows.iter().map(|f| f.stato.as_str()).collect();
    let id_comunali: Vec<Option<&str>> = rows.iter().map(|f| f.id_comunale.as_deref()).collect();
    let indirizzi: Vec<Option<&str>> = rows.iter().map(|f| f.chiave_indirizzo.as_deref()).collect();
    tx.execute(
        &st.upsert_families,
        &[&ids, &comuni, &tipi, &stati, &id_comunali, &indirizzi],
    )
    .await
    .ctx("writing the family index")?;
    Ok(())
}

async fn upsert_procedimenti(
    tx: &Transaction<'_>,
    st: &Statements,
    rows: &[ProcedimentoIndex],
) -> Result<(), Failure> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows
        .iter()
        .map(|p| to_i64(p.id, "proceeding id"))
        .collect::<Result<_, _>>()?;
    let comuni: Vec<&str> = rows.iter().map(|p| p.comune.as_str()).collect();
    let numeri: Vec<Option<&str>> = rows
        .iter()
        .map(|p| p.numero_pratica_comune.as_deref())
        .collect();
    let stati: Vec<&str> = rows.iter().map(|p| p.stato.as_str()).collect();
    let aperti: Vec<bool> = rows.iter().map(|p| p.aperto).collect();
    let motivi: Vec<Option<&str>> = rows.iter().map(|p| p.motivo_avvio.as_deref()).collect();
    let avvii: Vec<NaiveDate> = rows.iter().map(|p| p.data_avvio).collect();
    let date_stato: Vec<NaiveDate> = rows.iter().map(|p| p.data_stato).collect();
    let chiusure: Vec<Option<NaiveDate>> = rows.iter().map(|p| p.data_chiusura).collect();
    tx.execute(
        &st.upsert_procedimenti,
        &[
            &ids,
            &comuni,
            &numeri,
            &stati,
            &aperti,
            &motivi,
            &avvii,
            &date_stato,
            &chiusure,
        ],
    )
    .await
    .ctx("writing the proceeding index")?;
    Ok(())
}

async fn link_entities(
    tx: &Transaction<'_>,
    st: &Statements,
    op: i64,
    entities: &[EntityRef],
) -> Result<(), Failure> {
    if entities.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = entities.iter().map(|e| e.kind()).collect();
    let ids: Vec<i64> = entities
        .iter()
        .map(|e| to_i64(e.id(), "entity id"))
        .collect::<Result<_, _>>()?;
    tx.execute(&st.link, &[&op, &kinds, &ids])
        .await
        .ctx("linking the operation to its records")?;
    Ok(())
}

async fn queue_outbox(
    tx: &Transaction<'_>,
    st: &Statements,
    op: i64,
    registrata_il: &DateTime<Utc>,
    messages: &[NewOutboxMessage],
) -> Result<(), Failure> {
    if messages.is_empty() {
        return Ok(());
    }
    let tipi: Vec<&str> = messages.iter().map(|m| m.tipo.as_str()).collect();
    let destinatari: Vec<&str> = messages.iter().map(|m| m.destinatario.as_str()).collect();
    let payloads: Vec<&serde_json::Value> = messages.iter().map(|m| &m.payload).collect();
    tx.execute(
        &st.outbox,
        &[&op, &tipi, &destinatari, &payloads, registrata_il],
    )
    .await
    .ctx("queueing outbox messages")?;
    Ok(())
}

/// Makes this transaction's commit return without waiting for the disk; see
/// [`confirm_durable`], which every caller runs before answering.
pub(crate) async fn relax_commit(tx: &Transaction<'_>) -> Result<(), Failure> {
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await
        .ctx("relaxing the commit wait")
}

/// Locks the audit head until commit and reads it. Every other writer queues here, so
/// only the append and the commit may follow.
pub(crate) async fn lock_audit_head(
    tx: &Transaction<'_>,
    st: &Statements,
) -> Result<Option<TestaCatena>, Failure> {
    let rows = tx
        .query(&st.audit_head, &[])
        .await
        .ctx("locking the audit head")?;
    let Some(head) = rows.first() else {
        return Err(StoreError::Corrupt("the audit head row is missing".into()).into());
    };
    let seq = to_u64(col(head, 0)?, "audit head seq")?;
    if seq == 0 {
        return Ok(None);
    }
    Ok(Some(TestaCatena {
        seq,
        hash: col(head, 1)?,
    }))
}

/// Chains `entry` after `head` (read under lock by [`lock_audit_head`]) and stores it.
pub(crate) async fn append_chained(
    tx: &Transaction<'_>,
    st: &Statements,
    head: Option<TestaCatena>,
    entry: NuovaVoceAudit,
    op: Option<i64>,
) -> Result<VoceAudit, Failure> {
    let voce = concatena(head.as_ref(), entry);
    let id_operazione = voce
        .voce
        .id_operazione_anpr
        .map(|v| to_i64(v, "audit id_operazione_anpr"))
        .transpose()?;
    tx.execute(
        &st.audit_append,
        &[
            &to_i64(voce.seq, "audit seq")?,
            &voce.voce.istante,
            &voce.voce.evento.as_str(),
            &voce.voce.azione,
            &voce.voce.utente,
            &voce.voce.comune,
            &voce.voce.postazione,
            &voce.voce.canale,
            &voce.voce.oggetto,
            &id_operazione,
            &voce.voce.esito,
            &voce.hash_precedente,
            &voce.hash,
            &op,
        ],
    )
    .await
    .ctx("appending to the audit log")?;
    Ok(voce)
}

/// Returns once everything this session committed is durable.
///
/// Every write transaction ends holding the audit head's row lock, and PostgreSQL
/// releases row locks only after the commit record is flushed: with synchronous commit,
/// the chain would advance at most once per disk flush, whatever the number of
/// connections. So those transactions commit with `synchronous_commit = off`, which
/// releases the lock as soon as the commit record is in the WAL buffers, and then this
/// function commits a tiny transaction with the session's normal setting. Its commit
/// record comes after ours in the WAL, and a WAL flush covers everything before the
/// flushed position, so when it returns our commit is flushed (and replicated, with
/// synchronous replication) too; and these flushes of concurrent sessions are batched
/// by group commit instead of queueing behind the lock.
///
/// The caller is acknowledged only after this, so "acknowledged = durable" holds. What
/// changes: for a few milliseconds another session can see a commit not yet on disk; a
/// crash then loses it together with everything chained after it (the WAL is a prefix),
/// and every later write or audited read confirms it the same way before answering.
pub(crate) async fn confirm_durable(
    client: &deadpool_postgres::Object,
    what: &'static str,
) -> Result<(), Failure> {
    // Allocating a transaction id is what makes the commit write (and flush) a record.
    let outcome = match client.prepare_cached("SELECT pg_current_xact_id()").await {
        Ok(stmt) => client.execute(&stmt, &[]).await.map(|_| ()),
        Err(e) => Err(e),
    };
    // Never retried: the operation is committed, only its durability is unconfirmed.
    outcome.map_err(|e| {
        StoreError::Backend(format!(
            "{what}: committed, but could not confirm it reached the disk: {}",
            crate::error::describe("confirming durability", &e)
        ))
        .into()
    })
}

/// Annulment: rare, so written as plain sequential steps.
async fn annul_once(
    store: &PostgresStore,
    target: IdOperazioneAnpr,
    ann: &NewOperation,
    plan: &Plan,
) -> Result<VoceAudit, Failure> {
    let target_id = to_i64(target.get(), "operation id")?;
    let mut client = store.client().await?;
    let tx = client.transaction().await.ctx("annul: begin")?;
    let st = Statements::prepare(&tx).await?;
    // Same lock order as apply: municipality first (the annulment's own
    // idOperazioneComune, so that a replayed annulment is recognised as a duplicate).
    if let Some(taken) = claim_id_comune(&tx, &st, plan).await? {
        drop(tx);
        return Err(id_comune_taken(&client, taken).await);
    }
    // Concurrent annulments of the same operation queue here.
    let rows = query(
        &tx,
        "reading the operation to annul",
        "SELECT o.stato, o.annulla, a.seq FROM operazioni o LEFT JOIN audit a ON a.operazione = o.id \
         WHERE o.id = $1 FOR NO KEY UPDATE OF o",
        &[&target_id],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::OperationNotFound(target).into());
    };
    let stato: String = col(row, 0)?;
    if stato != StatoOperazione::Eseguita.as_str() {
        return Err(StoreError::OperationNotInForce(target).into());
    }
    if col::<Option<i64>>(row, 1)?.is_some() {
        return Err(StoreError::Invalid(format!(
            "operation {target} is an annulment and cannot itself be annulled"
        ))
        .into());
    }
    let Some(target_seq) = col::<Option<i64>>(row, 2)? else {
        return Err(StoreError::Corrupt(format!("operation {target} has no audit entry")).into());
    };

    let links = query(
        &tx,
        "reading the records of the operation to annul",
        "SELECT kind, entita FROM operazioni_entita WHERE op = $1",
        &[&target_id],
    )
    .await?;
    let mut entities = links
        .iter()
        .map(|r| {
            let kind: String = col(r, 0)?;
            entity(&kind, col(r, 1)?)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    entities.sort();
    entities.dedup();
    lock_records(&tx, &st, &lock_keys(store.schema(), &entities)).await?;

    if !entities.is_empty() {
        let kinds: Vec<&str> = entities.iter().map(|e| e.kind()).collect();
        let ids: Vec<i64> = entities
            .iter()
            .map(|e| to_i64(e.id(), "entity id"))
            .collect::<Result<_, _>>()?;
        // "Later" is commit order (the audit seq), not id order: ids are allocated
        // before applying. Annulments are excluded: they change no timeline themselves.
        let newer = query(
            &tx,
            "checking for newer operations",
            "SELECT oe.kind, oe.entita, o.id \
             FROM operazioni_entita oe \
             JOIN operazioni o ON o.id = oe.op \
             JOIN audit a ON a.operazione = o.id \
             WHERE (oe.kind, oe.entita) IN (SELECT * FROM unnest($1::text[], $2::bigint[])) \
               AND o.id <> $3 AND o.stato = 'eseguita' AND o.annulla IS NULL AND a.seq > $4 \
             ORDER BY a.seq DESC, oe.kind DESC, oe.entita \
             LIMIT 1",
            &[&kinds, &ids, &target_id, &target_seq],
        )
        .await?;
        if let Some(r) = newer.first() {
            let kind: String = col(r, 0)?;
            return Err(StoreError::NotNewest {
                op: target,
                entity: entity(&kind, col(r, 1)?)?,
                newer: op_id(col(r, 2)?)?,
            }
            .into());
        }
    }

    insert_operation(&tx, &st, ann, plan, Some(target_id)).await?;
    let deleted = query(
        &tx,
        "removing the versions of the annulled operation",
        "DELETE FROM versioni WHERE creata_da = $1 RETURNING kind, entita, sezione",
        &[&target_id],
    )
    .await?;
    exec(
        &tx,
        "reopening the versions the annulled operation closed",
        "UPDATE versioni SET valido_al = NULL, chiusa_da = NULL WHERE chiusa_da = $1",
        &[&target_id],
    )
    .await?;
    let mut reindex = BTreeSet::new();
    for r in &deleted {
        let section: String = col(r, 2)?;
        if section == INDEX_SECTION {
            let kind: String = col(r, 0)?;
            reindex.insert(entity(&kind, col(r, 1)?)?);
        }
    }
    restore_indexes(&tx, &st, &reindex).await?;
    exec(
        &tx,
        "marking the operation annulled",
        "UPDATE operazioni SET stato = 'annullata', annullata_da = $2 WHERE id = $1",
        &[&target_id, &plan.op_id],
    )
    .await?;
    link_entities(&tx, &st, plan.op_id, &entities).await?;
    queue_outbox(&tx, &st, plan.op_id, &plan.registrata_il, &ann.outbox).await?;
    relax_commit(&tx).await?;
    let head = lock_audit_head(&tx, &st).await?;
    let voce = append_chained(&tx, &st, head, plan.audit.clone(), Some(plan.op_id)).await?;
    tx.commit().await.ctx("annul: commit")?;
    confirm_durable(&client, "annul").await?;
    Ok(voce)
}

/// Rebuilds the projections of `entities` from their open `_indice` versions; an entity
/// with none (an annulled registration) leaves the indexes.
async fn restore_indexes(
    tx: &Transaction<'_>,
    st: &Statements,
    entities: &BTreeSet<EntityRef>,
) -> Result<(), Failure> {
    if entities.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = entities.iter().map(|e| e.kind()).collect();
    let ids: Vec<i64> = entities
        .iter()
        .map(|e| to_i64(e.id(), "entity id"))
        .collect::<Result<_, _>>()?;
    let rows = query(
        tx,
        "reading the restored index versions",
        "SELECT kind, entita, valore FROM versioni \
         WHERE sezione = '_indice' AND valido_al IS NULL \
           AND (kind, entita) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))",
        &[&kinds, &ids],
    )
    .await?;
    let mut current: HashMap<EntityRef, Option<serde_json::Value>> = HashMap::new();
    for r in &rows {
        let kind: String = col(r, 0)?;
        current.insert(entity(&kind, col(r, 1)?)?, col(r, 2)?);
    }
    let (mut subjects, mut families, mut gone_subjects, mut gone_families) =
        (vec![], vec![], vec![], vec![]);
    let (mut procedimenti, mut gone_procedimenti) = (vec![], vec![]);
    for e in entities {
        let corrupt = |err: serde_json::Error| {
            StoreError::Corrupt(format!("{e}: stored index version: {err}"))
        };
        match (e, current.remove(e).flatten()) {
            (EntityRef::Soggetto(id), Some(v)) => {
                let index: SubjectIndex = serde_json::from_value(v).map_err(corrupt)?;
                if index.id != *id {
                    return Err(StoreError::Corrupt(format!(
                        "{e}: index version names subject {}",
                        index.id
                    ))
                    .into());
                }
                subjects.push(index);
            }
            (EntityRef::Famiglia(id), Some(v)) => {
                let index: FamilyIndex = serde_json::from_value(v).map_err(corrupt)?;
                if index.id != *id {
                    return Err(StoreError::Corrupt(format!(
                        "{e}: index version names family {}",
                        index.id
                    ))
                    .into());
                }
                families.push(index);
            }
            (EntityRef::Procedimento(id), Some(v)) => {
                let index: ProcedimentoIndex = serde_json::from_value(v).map_err(corrupt)?;
                if index.id != *id {
                    return Err(StoreError::Corrupt(format!(
                        "{e}: index version names proceeding {}",
                        index.id
                    ))
                    .into());
                }
                procedimenti.push(index);
            }
            (EntityRef::Procedimento(id), None) => {
                gone_procedimenti.push(to_i64(*id, "proceeding id")?);
            }
            (EntityRef::Soggetto(id), None) => gone_subjects.push(to_i64(id.get(), "subject id")?),
            (EntityRef::Famiglia(id), None) => gone_families.push(to_i64(id.get(), "family id")?),
        }
    }
    upsert_subjects(tx, st, &subjects).await?;
    upsert_families(tx, st, &families).await?;
    upsert_procedimenti(tx, st, &procedimenti).await?;
    if !gone_procedimenti.is_empty() {
        exec(
            tx,
            "removing proceedings from the index",
            "DELETE FROM indice_procedimenti WHERE id = ANY($1)",
            &[&gone_procedimenti],
        )
        .await?;
    }
    if !gone_subjects.is_empty() {
        exec(
            tx,
            "removing subjects from the index",
            "DELETE FROM indice_soggetti WHERE id = ANY($1)",
            &[&gone_subjects],
        )
        .await?;
    }
    if !gone_families.is_empty() {
        exec(
            tx,
            "removing families from the index",
            "DELETE FROM indice_famiglie WHERE id = ANY($1)",
            &[&gone_families],
        )
        .await?;
    }
    Ok(())
}

/// `Store::salva_sospesa` (the id already allocated for an insert): the row and the
/// audit entry in one transaction.
pub(crate) async fn salva_sospesa(
    store: &PostgresStore,
    s: NuovaSospesa,
    id: u64,
) -> Result<OperazioneSospesa, StoreError> {
    let id_sql = to_i64(id, "suspended operation id")?;
    let soggetto = s
        .soggetto
        .map(|v| to_i64(v.get(), "subject id"))
        .transpose()?;
    let istante = micros(s.istante);
    let audit = normalised(s.audit_for(id));
    let update = s.id.is_some();
    let outcome = with_retries("salva_sospesa", id, || async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("salva_sospesa: begin")?;
        let st = Statements::prepare(&tx).await?;
        let rows = if update {
            query(
                &tx,
                "updating a suspended operation",
                &format!(
                    "UPDATE operazioni_sospese SET aggiornata_il = $2, soggetto = $3, codice_fiscale = $4, \
                         richiesta = $5, note = $6 \
                     WHERE id = $1 AND comune = $7 AND codice_servizio = $8 \
                     RETURNING {}",
                    crate::read::SOSPESA_COLUMNS
                ),
                &[
                    &id_sql,
                    &istante,
                    &soggetto,
                    &s.codice_fiscale,
                    &s.richiesta,
                    &s.note,
                    &s.comune.as_str(),
                    &s.codice_servizio.as_str(),
                ],
            )
            .await?
        } else {
            query(
                &tx,
                "inserting a suspended operation",
                &format!(
                    "INSERT INTO operazioni_sospese (id, comune, codice_servizio, utente, creata_il, aggiornata_il, \
                         soggetto, codice_fiscale, richiesta, note) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9) \
                     RETURNING {}",
                    crate::read::SOSPESA_COLUMNS
                ),
                &[
                    &id_sql,
                    &s.comune.as_str(),
                    &s.codice_servizio.as_str(),
                    &s.utente,
                    &istante,
                    &soggetto,
                    &s.codice_fiscale,
                    &s.richiesta,
                    &s.note,
                ],
            )
            .await?
        };
        let Some(row) = rows.first() else {
            return Err(StoreError::SospesaNotFound(id).into());
        };
        let stored = crate::read::sospesa_from_row(row)?;
        relax_commit(&tx).await?;
        let head = lock_audit_head(&tx, &st).await?;
        append_chained(&tx, &st, head, audit.clone(), None).await?;
        tx.commit().await.ctx("salva_sospesa: commit")?;
        confirm_durable(&client, "salva_sospesa").await?;
        Ok(stored)
    })
    .await;
    plain_outcome("salva_sospesa", outcome)
}

/// `Store::elimina_sospesa`: the delete and, if there was a row, the audit entry.
pub(crate) async fn elimina_sospesa(
    store: &PostgresStore,
    id: u64,
    audit: NuovaVoceAudit,
) -> Result<bool, StoreError> {
    let Ok(id_sql) = i64::try_from(id) else {
        return Ok(false);
    };
    let audit = normalised(audit);
    let outcome = with_retries("elimina_sospesa", id, || async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("elimina_sospesa: begin")?;
        let st = Statements::prepare(&tx).await?;
        let deleted = exec(
            &tx,
            "deleting a suspended operation",
            "DELETE FROM operazioni_sospese WHERE id = $1",
            &[&id_sql],
        )
        .await?;
        if deleted == 0 {
            return Ok(false);
        }
        relax_commit(&tx).await?;
        let head = lock_audit_head(&tx, &st).await?;
        append_chained(&tx, &st, head, audit.clone(), None).await?;
        tx.commit().await.ctx("elimina_sospesa: commit")?;
        confirm_durable(&client, "elimina_sospesa").await?;
        Ok(true)
    })
    .await;
    plain_outcome("elimina_sospesa", outcome)
}

/// The result of a write that is not an operation: no constraint violation of its own
/// is expected, so one is a backend failure.
pub(crate) fn plain_outcome<T>(what: &str, outcome: Result<T, Verdict>) -> Result<T, StoreError> {
    match outcome {
        Ok(v) => Ok(v),
        Err(Verdict::Fail(e)) => Err(e),
        Err(Verdict::Unique(c)) => Err(StoreError::Backend(format!(
            "{what}: unique violation on {c}"
        ))),
        Err(Verdict::Retry(why)) => Err(StoreError::Backend(why)),
    }
}

pub(crate) async fn outbox_mark(
    store: &PostgresStore,
    id: u64,
    delivered: bool,
) -> Result<(), Failure> {
    let client = store.client().await?;
    // A delivery is an attempt too; a message once delivered stays delivered.
    let stmt = client
        .prepare_cached(
            "UPDATE outbox SET tentativi = tentativi + 1, \
                 consegnato_il = CASE WHEN $2 THEN coalesce(consegnato_il, now()) ELSE consegnato_il END \
             WHERE id = $1",
        )
        .await
        .ctx("marking an outbox message")?;
    let n = client
        .execute(&stmt, &[&to_i64(id, "outbox id")?, &delivered])
        .await
        .ctx("marking an outbox message")?;
    if n == 0 {
        return Err(StoreError::Invalid(format!("outbox message {id} does not exist")).into());
    }
    Ok(())
}

pub(crate) async fn baseline_raw_insert(store: &PostgresStore, rows: u32) -> Result<(), Failure> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("INSERT INTO baseline_scratch (valore) VALUES ($1)")
        .await
        .ctx("baseline insert")?;
    // Autocommit: each INSERT is its own durable transaction, like each apply.
    for i in 0..rows {
        client
            .execute(&stmt, &[&format!("riga {i}")])
            .await
            .ctx("baseline insert")?;
    }
    Ok(())
}

/// `Store::emetti_documento`: the protocol number comes from an upsert on the
/// (municipality, year) row, which also serialises concurrent issues of one
/// municipality, in the same transaction as the insert and the audit entry.
pub(crate) async fn emetti_documento(
    store: &PostgresStore,
    mut doc: anpr_store::NuovoDocumento,
) -> Result<anpr_store::DocumentoEmesso, StoreError> {
    if doc.audit.oggetto.is_none() {
        doc.audit.oggetto = Some(format!("documento:{}", doc.id));
    }
    doc.audit = normalised(doc.audit);
    let soggetto = doc
        .soggetto
        .map(|s| to_i64(s.get(), "subject id"))
        .transpose()?;
    let outcome = with_retries("emetti_documento", 0, || async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("emetti_documento: begin")?;
        let st = Statements::prepare(&tx).await?;
        let rows = query(
            &tx,
            "allocating a protocol number",
            "INSERT INTO protocolli (comune, anno, ultimo) VALUES ($1, $2, 1)
             ON CONFLICT (comune, anno) DO UPDATE SET ultimo = protocolli.ultimo + 1
             RETURNING ultimo",
            &[&doc.comune.as_str(), &doc.anno],
        )
        .await?;
        let protocollo: i64 = match rows.first() {
            Some(r) => col(r, 0)?,
            None => return Err(StoreError::Corrupt("no protocol number".into()).into()),
        };
        let rows = query(
            &tx,
            "inserting an issued document",
            &format!(
                "INSERT INTO documenti (id, tipo, comune, anno, protocollo, soggetto, emesso_il, utente, contenuto)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 RETURNING {}",
                crate::read::DOCUMENTO_COLUMNS
            ),
            &[
                &doc.id,
                &doc.tipo.as_str(),
                &doc.comune.as_str(),
                &doc.anno,
                &protocollo,
                &soggetto,
                &doc.emesso_il,
                &doc.utente,
                &doc.contenuto,
            ],
        )
        .await?;
        let emesso = match rows.first() {
            Some(r) => crate::read::documento_from_row(r)?,
            None => return Err(StoreError::Corrupt("issued document vanished".into()).into()),
        };
        relax_commit(&tx).await?;
        let head = lock_audit_head(&tx, &st).await?;
        append_chained(&tx, &st, head, doc.audit.clone(), None).await?;
        tx.commit().await.ctx("emetti_documento: commit")?;
        confirm_durable(&client, "emetti_documento").await?;
        Ok(emesso)
    })
    .await;
    plain_outcome("emetti_documento", outcome)
}

/// `Store::annulla_documento`.
pub(crate) async fn annulla_documento(
    store: &PostgresStore,
    id: &str,
    istante: chrono::DateTime<chrono::Utc>,
    motivo: String,
    audit: NuovaVoceAudit,
) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
    if id.contains('\0') || motivo.contains('\0') {
        return Ok(None);
    }
    let audit = normalised(audit);
    let outcome = with_retries("annulla_documento", 0, || async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("annulla_documento: begin")?;
        let st = Statements::prepare(&tx).await?;
        let changed = exec(
            &tx,
            "annulling a document",
            "UPDATE documenti SET annullato_il = $2, motivo_annullamento = $3
             WHERE id = $1 AND annullato_il IS NULL",
            &[&id, &istante, &motivo],
        )
        .await?;
        if changed > 0 {
            relax_commit(&tx).await?;
            let head = lock_audit_head(&tx, &st).await?;
            append_chained(&tx, &st, head, audit.clone(), None).await?;
        }
        let rows = query(
            &tx,
            "reading an issued document",
            &format!(
                "SELECT {} FROM documenti WHERE id = $1",
                crate::read::DOCUMENTO_COLUMNS
            ),
            &[&id],
        )
        .await?;
        let doc = rows
            .first()
            .map(crate::read::documento_from_row)
            .transpose()?;
        tx.commit().await.ctx("annulla_documento: commit")?;
        if changed > 0 {
            confirm_durable(&client, "annulla_documento").await?;
        }
        Ok(doc)
    })
    .await;
    plain_outcome("annulla_documento", outcome)
}

/// `Store::salva_parametri_comune`: an upsert of the municipality's row and its audit
/// entry in one transaction.
pub(crate) async fn salva_parametri_comune(
    store: &PostgresStore,
    mut p: anpr_store::NuoviParametriComune,
) -> Result<anpr_store::ParametriComune, StoreError> {
    if p.logo
        .as_ref()
        .is_some_and(|l| l.len() > anpr_store::LOGO_MAX_BYTES)
    {
        return Err(StoreError::Invalid(format!(
            "logo over {} bytes",
            anpr_store::LOGO_MAX_BYTES
        )));
    }
    if p.utente.contains('\0') || p.valori.to_string().contains("\\u0000") {
        return Err(StoreError::Invalid(
            "municipality parameters hold a NUL character".into(),
        ));
    }
    if p.audit.oggetto.is_none() {
        p.audit.oggetto = Some(format!("parametri:{}", p.comune));
    }
    p.audit = normalised(p.audit);
    let outcome = with_retries("salva_parametri_comune", 0, || async {
        let mut client = store.client().await?;
        let tx = client
            .transaction()
            .await
            .ctx("salva_parametri_comune: begin")?;
        let st = Statements::prepare(&tx).await?;
        let rows = query(
            &tx,
            "saving municipality parameters",
            &format!(
                "INSERT INTO parametri_comune (comune, valori, logo, aggiornato_il, utente, versione)
                 VALUES ($1, $2, $3, $4, $5, 1)
                 ON CONFLICT (comune) DO UPDATE SET valori = EXCLUDED.valori, logo = EXCLUDED.logo,
                     aggiornato_il = EXCLUDED.aggiornato_il, utente = EXCLUDED.utente,
                     versione = parametri_comune.versione + 1
                 RETURNING {}",
                crate::read::PARAMETRI_COLUMNS
            ),
            &[
                &p.comune.as_str(),
                &p.valori,
                &p.logo,
                &p.istante,
                &p.utente,
            ],
        )
        .await?;
        let salvati = match rows.first() {
            Some(r) => crate::read::parametri_from_row(r)?,
            None => {
                return Err(StoreError::Corrupt("saved parameters vanished".into()).into())
            }
        };
        relax_commit(&tx).await?;
        let head = lock_audit_head(&tx, &st).await?;
        append_chained(&tx, &st, head, p.audit.clone(), None).await?;
        tx.commit()
            .await
            .ctx("salva_parametri_comune: commit")?;
        confirm_durable(&client, "salva_parametri_comune").await?;
        Ok(salvati)
    })
    .await;
    plain_outcome("salva_parametri_comune", outcome)
}
