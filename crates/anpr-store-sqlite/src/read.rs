//! The read side: a small pool of read-only connections and the queries run on them.
//!
//! In WAL mode readers see the last committed state and never wait for the writer, so
//! reads scale with the pool. Queries are blocking calls and run on tokio's blocking
//! pool ([`Readers::run`]), never on an async worker thread. A semaphore with one permit
//! per connection bounds the blocking threads in use for reads.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anpr_domain::audit::{NuovaVoceAudit, TestaCatena, TipoEvento, VoceAudit};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune,
};
use anpr_domain::operazione::StatoOperazione;
use anpr_store::{
    EntityRef, FamilyIndex, NewOutboxMessage, OperationQuery, OperazioneSospesa, OutboxMessage,
    ProcedimentoIndex, ProcedimentoQuery, QueryNotifiche, QuerySospese, RecordSections,
    RecordTesto, StoreError, StoredOperation, StoredVersion, SubjectIndex, SubjectQuery,
};
use chrono::NaiveDate;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use tokio::sync::Semaphore;

use crate::codec::{
    date_bound, date_from_sql, json_from_sql, parse_stored, timestamp_bound, timestamp_from_sql,
    u64_bound, u64_from_sql, Context,
};
use crate::schema;
use crate::write::{
    domain_id_sql, entity_sql, linked_entities, op_id_from_sql, op_id_sql, INDEX_SECTION,
};

/// Most rows a search or an operation-log page returns, whatever the caller asks.
pub(crate) const MAX_ROWS: u32 = 1000;

/// The pool of read-only connections.
#[derive(Debug)]
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from the pool, put back when dropped (also on a panic).
struct Lease<'a> {
    pool: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl Readers {
    pub(crate) fn open(path: &Path, size: usize) -> Result<Arc<Self>, StoreError> {
        let conns = (0..size)
            .map(|_| schema::open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Self {
            idle: Mutex::new(conns),
            permits: Arc::new(Semaphore::new(size)),
        }))
    }

    /// Runs `f` on a pooled connection, on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the reader pool is closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // One permit per connection: with a permit there is always an idle one.
            let conn = pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let lease = Lease { pool: &pool, conn };
            match &lease.conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Backend("no idle reader connection".into())),
            }
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a read task failed: {e}")))?
    }

    /// Runs `f` on a pooled connection **on the calling task's thread**: for point reads
    /// by key (one or a few index probes, tens of microseconds), where handing the work
    /// to the blocking pool costs more than the read — two thread switches per read,
    /// several reads per operation; measured on the registration path, about a third
    /// of the process's CPU per operation (BENCHMARKS.md). Reads that may scan (searches,
    /// lists, pages, extractions) keep using [`Readers::run`].
    pub(crate) async fn run_inline<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("the reader pool is closed".into()))?;
        // One permit per connection: with a permit there is always an idle one.
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let lease = Lease { pool: self, conn };
        match &lease.conn {
            Some(conn) => f(conn),
            None => Err(StoreError::Backend("no idle reader connection".into())),
        }
    }
}

/// Runs `f` inside one read transaction, so that its queries see one snapshot.
fn snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .unchecked_transaction()
        .ctx("starting a read transaction")?;
    let out = f(&tx)?;
    tx.finish().ctx("ending a read transaction")?;
    Ok(out)
}

pub(crate) fn ping(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .ctx("ping")?;
    Ok(())
}

const OPERATION_COLUMNS: &str = "o.id, o.codice_servizio, o.comune, o.id_operazione_comune, o.utente, o.postazione, \
     o.canale, o.decorrenza, o.registrata_il, o.stato, o.annullata_da, o.annulla, o.richiesta, o.risposta";

/// An operation row as stored, before parsing.
struct RawOperation {
    id: i64,
    codice_servizio: String,
    comune: Option<String>,
    id_operazione_comune: Option<i64>,
    utente: String,
    postazione: Option<String>,
    canale: String,
    decorrenza: String,
    registrata_il: String,
    stato: String,
    annullata_da: Option<i64>,
    annulla: Option<i64>,
    richiesta: String,
    risposta: String,
}

impl RawOperation {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            codice_servizio: r.get(1)?,
            comune: r.get(2)?,
            id_operazione_comune: r.get(3)?,
            utente: r.get(4)?,
            postazione: r.get(5)?,
            canale: r.get(6)?,
            decorrenza: r.get(7)?,
            registrata_il: r.get(8)?,
            stato: r.get(9)?,
            annullata_da: r.get(10)?,
            annulla: r.get(11)?,
            richiesta: r.get(12)?,
            risposta: r.get(13)?,
        })
    }

    fn parse(self, entities: Vec<EntityRef>) -> Result<StoredOperation, StoreError> {
        let what = format!("operation {}", self.id);
        Ok(StoredOperation {
            id: op_id_from_sql(self.id)?,
            codice_servizio: parse_stored(&self.codice_servizio, &what)?,
            comune: self
                .comune
                .as_deref()
                .map(|c| parse_stored::<CodiceIstatComune>(c, &what))
                .transpose()?,
            id_operazione_comune: self
                .id_operazione_comune
                .map(|n| {
                    u64::try_from(n)
                        .ok()
                        .and_then(|n| IdOperazioneComune::new(n).ok())
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!("{what}: idOperazioneComune {n}"))
                        })
                })
                .transpose()?,
            utente: self.utente,
            postazione: self.postazione,
            canale: self.canale,
            decorrenza: date_from_sql(&self.decorrenza, &what)?,
            registrata_il: timestamp_from_sql(&self.registrata_il, &what)?,
            stato: StatoOperazione::parse(&self.stato)
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: state {:?}", self.stato)))?,
            annullata_da: self.annullata_da.map(op_id_from_sql).transpose()?,
            annulla: self.annulla.map(op_id_from_sql).transpose()?,
            richiesta: self.richiesta,
            risposta: self.risposta,
            entities,
        })
    }
}

/// Runs an operation query and completes each row with its entities.
fn load_operations(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<StoredOperation>, StoreError> {
    snapshot(conn, |conn| {
        let mut stmt = conn
            .prepare_cached(sql)
            .ctx("preparing an operation query")?;
        let raw = stmt
            .query_map(params_from_iter(params.iter()), RawOperation::from_row)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("reading operations")?;
        raw.into_iter()
            .map(|op| {
                let entities = linked_entities(conn, op.id)?;
                op.parse(entities)
            })
            .collect()
    })
}

pub(crate) fn operation(
    conn: &Connection,
    id: IdOperazioneAnpr,
) -> Result<Option<StoredOperation>, StoreError> {
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operazioni o WHERE o.id = ?1");
    Ok(load_operations(conn, &sql, &[SqlValue::Integer(op_id_sql(id))])?.pop())
}

pub(crate) fn operation_by_comune_id(
    conn: &Connection,
    comune: &CodiceIstatComune,
    id: IdOperazioneComune,
) -> Result<Option<StoredOperation>, StoreError> {
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operazioni o WHERE o.comune = ?1 AND o.id_operazione_comune = ?2");
    let params = [
        SqlValue::Text(comune.as_str().to_owned()),
        SqlValue::Integer(u64_bound(id.get())),
    ];
    Ok(load_operations(conn, &sql, &params)?.pop())
}

pub(crate) fn operations(
    conn: &Connection,
    q: &OperationQuery,
) -> Result<Vec<StoredOperation>, StoreError> {
    let mut sql = format!("SELECT {OPERATION_COLUMNS} FROM operazioni o WHERE 1 = 1");
    let mut params: Vec<SqlValue> = Vec::new();
    if let Some(comune) = &q.comune {
        sql.push_str(" AND o.comune = ?");
        params.push(SqlValue::Text(comune.as_str().to_owned()));
    }
    if let Some(codice) = &q.codice_servizio {
        sql.push_str(" AND o.codice_servizio = ?");
        params.push(SqlValue::Text(codice.as_str().to_owned()));
    }
    if let Some(stato) = q.stato {
        sql.push_str(" AND o.stato = ?");
        params.push(SqlValue::Text(stato.as_str().to_owned()));
    }
    if let Some(entity) = q.entity {
        sql.push_str(
            " AND o.id IN (SELECT op FROM operazioni_entita WHERE kind = ? AND entity = ?)",
        );
        params.push(SqlValue::Text(entity.kind().to_owned()));
        params.push(SqlValue::Integer(entity_sql(entity)));
    }
    if let Some(dal) = q.dal {
        sql.push_str(" AND o.registrata_il >= ?");
        params.push(SqlValue::Text(timestamp_bound(dal)));
    }
    if let Some(al) = q.al {
        sql.push_str(" AND o.registrata_il < ?");
        params.push(SqlValue::Text(timestamp_bound(al)));
    }
    if let Some(dopo) = q.dopo {
        sql.push_str(" AND o.id > ?");
        params.push(SqlValue::Integer(op_id_sql(dopo)));
    }
    sql.push_str(" ORDER BY o.id LIMIT ?");
    params.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    load_operations(conn, &sql, &params)
}

/// The SQL condition for "in force at `?3`" or, without a date, "current".
fn in_force(at: Option<NaiveDate>) -> (&'static str, Option<String>) {
    match at {
        // A version replaced on its own decorrenza (valido_al = valido_dal) matches
        // neither branch: it was never in force.
        Some(d) => (
            "valido_dal <= ?3 AND (valido_al IS NULL OR ?3 < valido_al)",
            Some(date_bound(d)),
        ),
        None => ("valido_al IS NULL", None),
    }
}

pub(crate) fn record(
    conn: &Connection,
    entity: EntityRef,
    at: Option<NaiveDate>,
) -> Result<Option<RecordSections>, StoreError> {
    let Some(raw) = record_testo(conn, entity, at)? else {
        return Ok(None);
    };
    let sections = raw
        .sections
        .into_iter()
        .map(|(section, value)| {
            // The error's context is formatted only on failure: this runs for every
            // section of every record read.
            let value = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("{entity}, section {section}: {e}")))?;
            Ok((section, value))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(RecordSections { sections }))
}

/// The subjects `q` finds, each with its record as at `at` as stored text, in one read
/// transaction (one snapshot, one lock of the WAL index instead of one per query).
pub(crate) fn find_subject_records(
    conn: &Connection,
    q: &SubjectQuery,
    at: Option<NaiveDate>,
) -> Result<Vec<(SubjectIndex, Option<RecordTesto>)>, StoreError> {
    snapshot(conn, |c| {
        find_subjects(c, q)?
            .into_iter()
            .map(|row| {
                let record = record_testo(c, EntityRef::Soggetto(row.id), at)?;
                Ok((row, record))
            })
            .collect()
    })
}

/// The record's sections in force at `at` (or now) as stored JSON text; `None` when
/// none is.
pub(crate) fn record_testo(
    conn: &Connection,
    entity: EntityRef,
    at: Option<NaiveDate>,
) -> Result<Option<RecordTesto>, StoreError> {
    let (condition, date) = in_force(at);
    let sql = format!(
        "SELECT section, value FROM versioni
         WHERE kind = ?1 AND entity = ?2 AND {condition} AND section <> '{INDEX_SECTION}' AND value IS NOT NULL
         ORDER BY section"
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("preparing a record read")?;
    let params: Vec<SqlValue> = [
        SqlValue::Text(entity.kind().to_owned()),
        SqlValue::Integer(entity_sql(entity)),
    ]
    .into_iter()
    .chain(date.map(SqlValue::Text))
    .collect();
    let raw = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading a record")?;
    Ok((!raw.is_empty()).then_some(RecordTesto { sections: raw }))
}

pub(crate) fn history(
    conn: &Connection,
    entity: EntityRef,
    section: &str,
) -> Result<Vec<StoredVersion>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT valido_dal, valido_al, creata_da, chiusa_da, value FROM versioni
             WHERE kind = ?1 AND entity = ?2 AND section = ?3
             ORDER BY id",
        )
        .ctx("preparing a history read")?;
    type RawVersion = (String, Option<String>, i64, Option<i64>, Option<String>);
    let raw = stmt
        .query_map(params![entity.kind(), entity_sql(entity), section], |r| {
            Ok::<RawVersion, _>((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading a history")?;
    let what = format!("{entity}, section {section}");
    raw.into_iter()
        .map(|(dal, al, creata_da, chiusa_da, value)| {
            Ok(StoredVersion {
                entity,
                section: section.to_owned(),
                valido_dal: date_from_sql(&dal, &what)?,
                valido_al: al
                    .as_deref()
                    .map(|al| date_from_sql(al, &what))
                    .transpose()?,
                creata_da: op_id_from_sql(creata_da)?,
                chiusa_da: chiusa_da.map(op_id_from_sql).transpose()?,
                value: value
                    .as_deref()
                    .map(|v| json_from_sql(v, &what))
                    .transpose()?,
            })
        })
        .collect()
}

pub(crate) fn by_section_key(
    conn: &Connection,
    section: &str,
    key: &str,
    at: Option<NaiveDate>,
) -> Result<Vec<(EntityRef, serde_json::Value)>, StoreError> {
    let (condition, date) = in_force(at);
    let sql = format!(
        "SELECT kind, entity, value FROM versioni
         WHERE section = ?1 AND chiave = ?2 AND {condition} AND value IS NOT NULL
         ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("preparing a key lookup")?;
    let params: Vec<SqlValue> = [
        SqlValue::Text(section.to_owned()),
        SqlValue::Text(key.to_owned()),
    ]
    .into_iter()
    .chain(date.map(SqlValue::Text))
    .collect();
    let raw = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("looking up a section key")?;
    raw.into_iter()
        .map(|(kind, id, value)| {
            let entity = EntityRef::from_parts(&kind, u64_from_sql(id, "entity id")?)?;
            let value = json_from_sql(&value, &format!("{entity}, section {section}"))?;
            Ok((entity, value))
        })
        .collect()
}

/// The upper bound of a prefix range: every string starting with `prefix` is
/// `>= prefix` and `< prefix + U+10FFFF` (the largest code point sorts last in UTF-8
/// byte order). Range comparisons use the indexes and, unlike `LIKE`, give no meaning
/// to `%` or `_` in the input.
fn prefix_end(prefix: &str) -> String {
    let mut end = String::with_capacity(prefix.len() + 4);
    end.push_str(prefix);
    end.push(char::MAX);
    end
}

/// The SQL and parameters of a subject search.
fn subject_search_sql(q: &SubjectQuery) -> (String, Vec<SqlValue>) {
    let mut sql = String::from(
        "SELECT id, comune, posizione, codice_fiscale, cognome_key, nome_key, sesso, data_nascita, id_comunale,
                id_famiglia, chiave_indirizzo
         FROM indice_soggetti WHERE 1 = 1",
    );
    let mut params: Vec<SqlValue> = Vec::new();
    let mut equals = |column: &str, value: SqlValue| {
        sql.push_str(&format!(" AND {column} = ?"));
        params.push(value);
    };
    if let Some(id) = q.id {
        equals("id", SqlValue::Integer(domain_id_sql(id.get())));
    }
    if let Some(cf) = &q.codice_fiscale {
        equals("codice_fiscale", SqlValue::Text(cf.clone()));
    }
    if let Some(comune) = &q.comune {
        equals("comune", SqlValue::Text(comune.as_str().to_owned()));
    }
    if let Some(id_comunale) = &q.id_comunale {
        // In the terms of `indice_soggetti_id_comunale_ordine` (comune, length, id): a
        // municipal id is searched together with its municipality.
        let lunghezza = i64::try_from(id_comunale.chars().count()).unwrap_or(i64::MAX);
        equals("length(id_comunale)", SqlValue::Integer(lunghezza));
        equals("id_comunale", SqlValue::Text(id_comunale.clone()));
    }
    if let Some(data) = q.data_nascita {
        equals("data_nascita", SqlValue::Text(date_bound(data)));
    }
    if let Some(sesso) = &q.sesso {
        equals("sesso", SqlValue::Text(sesso.clone()));
    }
    if let Some(posizione) = &q.posizione {
        equals("posizione", SqlValue::Text(posizione.clone()));
    }
    if let Some(famiglia) = q.id_famiglia {
        equals(
            "id_famiglia",
            SqlValue::Integer(domain_id_sql(famiglia.get())),
        );
    }
    if let Some(chiave) = &q.chiave_indirizzo {
        equals("chiave_indirizzo", SqlValue::Text(chiave.clone()));
    }
    if !q.posizioni.is_empty() {
        // A short list of constants (at most the handful of positions there are).
        sql.push_str(" AND posizione IN (");
        for (i, posizione) in q.posizioni.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            params.push(SqlValue::Text(posizione.clone()));
        }
        sql.push(')');
    }
    if let Some(genitore) = q.genitore {
        // Written as the partial expression indexes of migration 6 are, so that each
        // branch is one index lookup.
        sql.push_str(
            " AND id IN (SELECT entity FROM versioni WHERE section = 'genitori' AND valido_al IS NULL
                         AND json_extract(value, '$.padre.idAnpr') = ?
                       UNION
                       SELECT entity FROM versioni WHERE section = 'genitori' AND valido_al IS NULL
                         AND json_extract(value, '$.madre.idAnpr') = ?)",
        );
        params.push(SqlValue::Text(genitore.to_string()));
        params.push(SqlValue::Text(genitore.to_string()));
    }
    for (column, prefix) in [
        ("cognome_key", &q.cognome_prefix),
        ("nome_key", &q.nome_prefix),
    ] {
        if let Some(prefix) = prefix {
            sql.push_str(&format!(" AND {column} >= ? AND {column} < ?"));
            params.push(SqlValue::Text(prefix.clone()));
            params.push(SqlValue::Text(prefix_end(prefix)));
        }
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    params.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    (sql, params)
}

pub(crate) fn find_subjects(
    conn: &Connection,
    q: &SubjectQuery,
) -> Result<Vec<SubjectIndex>, StoreError> {
    let (sql, params) = subject_search_sql(q);
    let mut stmt = conn
        .prepare_cached(&sql)
        .ctx("preparing a subject search")?;
    type RawSubject = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let raw = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok::<RawSubject, _>((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("searching subjects")?;
    raw.into_iter()
        .map(
            |(
                id,
                comune,
                posizione,
                cf,
                cognome,
                nome,
                sesso,
                nascita,
                id_comunale,
                famiglia,
                indirizzo,
            )| {
                let what = format!("subject index {id}");
                Ok(SubjectIndex {
                    id: parse_id::<IdAnprSoggetto>(id, &what)?,
                    comune: parse_stored(&comune, &what)?,
                    posizione,
                    codice_fiscale: cf,
                    cognome_key: cognome,
                    nome_key: nome,
                    sesso,
                    data_nascita: nascita
                        .as_deref()
                        .map(|d| date_from_sql(d, &what))
                        .transpose()?,
                    id_comunale,
                    id_famiglia: famiglia
                        .map(|f| parse_id::<IdAnprFamiglia>(f, &what))
                        .transpose()?,
                    chiave_indirizzo: indirizzo,
                })
            },
        )
        .collect()
}

/// Parses a stored registry id through its `FromStr` (which checks its range).
fn parse_id<T: std::str::FromStr>(v: i64, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    parse_stored(&v.to_string(), what)
}

pub(crate) fn family_index(
    conn: &Connection,
    id: IdAnprFamiglia,
) -> Result<Option<FamilyIndex>, StoreError> {
    type RawFamily = (String, String, String, Option<String>, Option<String>);
    let raw: Option<RawFamily> = conn
        .prepare_cached("SELECT comune, tipo, stato, id_comunale, chiave_indirizzo FROM indice_famiglie WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([domain_id_sql(id.get())], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()
        })
        .ctx("reading a family index")?;
    raw.map(|(comune, tipo, stato, id_comunale, chiave_indirizzo)| {
        Ok(FamilyIndex {
            id,
            comune: parse_stored(&comune, &format!("family index {id}"))?,
            tipo,
            stato,
            id_comunale,
            chiave_indirizzo,
        })
    })
    .transpose()
}

pub(crate) fn audit_page(
    conn: &Connection,
    after: u64,
    limit: u32,
) -> Result<Vec<VoceAudit>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, istante, evento, azione, utente, comune, postazione, canale, oggetto, id_operazione_anpr, esito,
                    hash_precedente, hash
             FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .ctx("preparing an audit read")?;
    let mut rows = stmt
        .query(params![u64_bound(after), i64::from(limit)])
        .ctx("reading the audit log")?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().ctx("reading the audit log")? {
        let seq: i64 = r.get(0).ctx("audit seq")?;
        let what = format!("audit entry {seq}");
        let istante: String = r.get(1).ctx(&what)?;
        let evento: String = r.get(2).ctx(&what)?;
        let id_op: Option<i64> = r.get(9).ctx(&what)?;
        out.push(VoceAudit {
            seq: u64_from_sql(seq, &what)?,
            voce: NuovaVoceAudit {
                istante: timestamp_from_sql(&istante, &what)?,
                evento: TipoEvento::parse(&evento)
                    .ok_or_else(|| StoreError::Corrupt(format!("{what}: event {evento:?}")))?,
                azione: r.get(3).ctx(&what)?,
                utente: r.get(4).ctx(&what)?,
                comune: r.get(5).ctx(&what)?,
                postazione: r.get(6).ctx(&what)?,
                canale: r.get(7).ctx(&what)?,
                oggetto: r.get(8).ctx(&what)?,
                id_operazione_anpr: id_op.map(|v| u64_from_sql(v, &what)).transpose()?,
                esito: r.get(10).ctx(&what)?,
            },
            hash_precedente: r.get(11).ctx(&what)?,
            hash: r.get(12).ctx(&what)?,
        });
    }
    Ok(out)
}

pub(crate) fn audit_head(conn: &Connection) -> Result<Option<TestaCatena>, StoreError> {
    let raw: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_testa WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("reading the audit head")?;
    raw.map(|(seq, hash)| {
        Ok(TestaCatena {
            seq: u64_from_sql(seq, "audit head")?,
            hash,
        })
    })
    .transpose()
}

const OUTBOX_COLUMNS: &str =
    "id, id_operazione_anpr, tipo, destinatario, payload, creato_il, tentativi, consegnato_il";

pub(crate) fn outbox_pending(
    conn: &Connection,
    limit: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE consegnato_il IS NULL ORDER BY id LIMIT ?"
    );
    load_outbox(conn, &sql, &[SqlValue::Integer(i64::from(limit))])
}

/// `Store::notifiche`.
pub(crate) fn notifiche(
    conn: &Connection,
    q: &QueryNotifiche,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE destinatario = ?");
    let mut params = vec![SqlValue::Text(q.destinatario.clone())];
    if let Some(tipo) = &q.tipo {
        sql.push_str(" AND tipo = ?");
        params.push(SqlValue::Text(tipo.clone()));
    }
    match q.prese {
        Some(true) => sql.push_str(" AND consegnato_il IS NOT NULL"),
        Some(false) => sql.push_str(" AND consegnato_il IS NULL"),
        None => {}
    }
    if let Some(dal) = q.dal {
        sql.push_str(" AND creato_il >= ?");
        params.push(SqlValue::Text(timestamp_bound(dal)));
    }
    if let Some(al) = q.al {
        sql.push_str(" AND creato_il < ?");
        params.push(SqlValue::Text(timestamp_bound(al)));
    }
    if let Some(da) = q.operazione_da {
        sql.push_str(" AND id_operazione_anpr >= ?");
        params.push(SqlValue::Integer(op_id_sql(da)));
    }
    if let Some(a) = q.operazione_a {
        sql.push_str(" AND id_operazione_anpr <= ?");
        params.push(SqlValue::Integer(op_id_sql(a)));
    }
    if let Some(dopo) = q.dopo {
        sql.push_str(" AND id > ?");
        params.push(SqlValue::Integer(i64::try_from(dopo).unwrap_or(i64::MAX)));
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    params.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    load_outbox(conn, &sql, &params)
}

fn load_outbox(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).ctx("preparing an outbox read")?;
    type RawMessage = (
        i64,
        Option<i64>,
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
    );
    let raw = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok::<RawMessage, _>((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading the outbox")?;
    raw.into_iter()
        .map(
            |(id, op, tipo, destinatario, payload, creato_il, tentativi, consegnato_il)| {
                let what = format!("outbox message {id}");
                Ok(OutboxMessage {
                    id: u64_from_sql(id, &what)?,
                    id_operazione_anpr: op.map(op_id_from_sql).transpose()?,
                    message: NewOutboxMessage {
                        tipo,
                        destinatario,
                        payload: json_from_sql(&payload, &what)?,
                    },
                    creato_il: timestamp_from_sql(&creato_il, &what)?,
                    tentativi: u32::try_from(tentativi).map_err(|_| {
                        StoreError::Corrupt(format!("{what}: attempts {tentativi}"))
                    })?,
                    consegnato_il: consegnato_il
                        .as_deref()
                        .map(|t| timestamp_from_sql(t, &what))
                        .transpose()?,
                })
            },
        )
        .collect()
}

const PROCEDIMENTO_COLUMNS: &str =
    "id, comune, numero_pratica_comune, stato, aperto, motivo_avvio, data_avvio, \
     data_stato, data_chiusura";

pub(crate) fn find_procedimenti(
    conn: &Connection,
    q: &ProcedimentoQuery,
) -> Result<Vec<ProcedimentoIndex>, StoreError> {
    let mut sql = format!("SELECT {PROCEDIMENTO_COLUMNS} FROM indice_procedimenti WHERE 1 = 1");
    let mut params: Vec<SqlValue> = Vec::new();
    let mut add = |clause: &str, value: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        params.push(value);
    };
    if let Some(id) = q.id {
        add("id = ?", SqlValue::Integer(u64_bound(id)));
    }
    if let Some(comune) = &q.comune {
        add("comune = ?", SqlValue::Text(comune.as_str().to_owned()));
    }
    if let Some(numero) = &q.numero_pratica_comune {
        add("numero_pratica_comune = ?", SqlValue::Text(numero.clone()));
    }
    if let Some(stato) = &q.stato {
        add("stato = ?", SqlValue::Text(stato.clone()));
    }
    if let Some(aperto) = q.aperto {
        add("aperto = ?", SqlValue::Integer(i64::from(aperto)));
    }
    if let Some(dal) = q.avviato_dal {
        add("data_avvio >= ?", SqlValue::Text(date_bound(dal)));
    }
    if let Some(al) = q.avviato_al {
        add("data_avvio <= ?", SqlValue::Text(date_bound(al)));
    }
    if let Some(soggetto) = q.soggetto {
        // The subject's link section in force now (see `anpr_domain::procedimento`).
        // One lookup in the (section, chiave) index.
        sql.push_str(
            " AND id IN (SELECT entity FROM versioni WHERE section = ? AND chiave = ?
                         AND kind = 'P' AND valido_al IS NULL AND value IS NOT NULL)",
        );
        params.push(SqlValue::Text(anpr_domain::procedimento::sezione_soggetto(
            soggetto,
        )));
        params.push(SqlValue::Text(soggetto.to_string()));
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    params.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    let mut stmt = conn
        .prepare_cached(&sql)
        .ctx("preparing a proceeding search")?;
    type RawProcedimento = (
        i64,
        String,
        Option<String>,
        String,
        bool,
        Option<String>,
        String,
        String,
        Option<String>,
    );
    let raw = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok::<RawProcedimento, _>((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("searching proceedings")?;
    raw.into_iter()
        .map(
            |(id, comune, numero, stato, aperto, motivo, avvio, data_stato, chiusura)| {
                let what = format!("proceeding index {id}");
                Ok(ProcedimentoIndex {
                    id: u64_from_sql(id, &what)?,
                    comune: parse_stored(&comune, &what)?,
                    numero_pratica_comune: numero,
                    stato,
                    aperto,
                    motivo_avvio: motivo,
                    data_avvio: date_from_sql(&avvio, &what)?,
                    data_stato: date_from_sql(&data_stato, &what)?,
                    data_chiusura: chiusura
                        .as_deref()
                        .map(|d| date_from_sql(d, &what))
                        .transpose()?,
                })
            },
        )
        .collect()
}

/// Columns of `operazioni_sospese`, in the order [`RawSospesa::from_row`] reads them.
pub(crate) const SOSPESA_COLUMNS: &str =
    "id, comune, codice_servizio, utente, creata_il, aggiornata_il, soggetto, \
     codice_fiscale, richiesta, note";

/// A suspended operation row as stored, before parsing.
pub(crate) struct RawSospesa {
    id: i64,
    comune: String,
    codice_servizio: String,
    utente: String,
    creata_il: String,
    aggiornata_il: String,
    soggetto: Option<i64>,
    codice_fiscale: Option<String>,
    richiesta: String,
    note: Option<String>,
}

impl RawSospesa {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            comune: r.get(1)?,
            codice_servizio: r.get(2)?,
            utente: r.get(3)?,
            creata_il: r.get(4)?,
            aggiornata_il: r.get(5)?,
            soggetto: r.get(6)?,
            codice_fiscale: r.get(7)?,
            richiesta: r.get(8)?,
            note: r.get(9)?,
        })
    }

    pub(crate) fn parse(self) -> Result<OperazioneSospesa, StoreError> {
        let what = format!("suspended operation {}", self.id);
        Ok(OperazioneSospesa {
            id: u64_from_sql(self.id, &what)?,
            comune: parse_stored(&self.comune, &what)?,
            codice_servizio: parse_stored(&self.codice_servizio, &what)?,
            utente: self.utente,
            creata_il: timestamp_from_sql(&self.creata_il, &what)?,
            aggiornata_il: timestamp_from_sql(&self.aggiornata_il, &what)?,
            soggetto: self
                .soggetto
                .map(|id| parse_id::<IdAnprSoggetto>(id, &what))
                .transpose()?,
            codice_fiscale: self.codice_fiscale,
            richiesta: json_from_sql(&self.richiesta, &what)?,
            note: self.note,
        })
    }
}

pub(crate) fn sospesa(conn: &Connection, id: u64) -> Result<Option<OperazioneSospesa>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {SOSPESA_COLUMNS} FROM operazioni_sospese WHERE id = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([u64_bound(id)], RawSospesa::from_row)
                .optional()
        })
        .ctx("reading a suspended operation")?;
    raw.map(RawSospesa::parse).transpose()
}

pub(crate) fn sospese(
    conn: &Connection,
    q: &QuerySospese,
) -> Result<Vec<OperazioneSospesa>, StoreError> {
    let mut sql = format!("SELECT {SOSPESA_COLUMNS} FROM operazioni_sospese WHERE 1 = 1");
    let mut params: Vec<SqlValue> = Vec::new();
    let mut add = |clause: &str, value: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        params.push(value);
    };
    if let Some(comune) = &q.comune {
        add("comune = ?", SqlValue::Text(comune.as_str().to_owned()));
    }
    if let Some(utente) = &q.utente {
        add("utente = ?", SqlValue::Text(utente.clone()));
    }
    if let Some(soggetto) = q.soggetto {
        add(
            "soggetto = ?",
            SqlValue::Integer(domain_id_sql(soggetto.get())),
        );
    }
    if let Some(cf) = &q.codice_fiscale {
        add("codice_fiscale = ?", SqlValue::Text(cf.clone()));
    }
    if let Some(codice) = &q.codice_servizio {
        add(
            "codice_servizio = ?",
            SqlValue::Text(codice.as_str().to_owned()),
        );
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    params.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    let mut stmt = conn
        .prepare_cached(&sql)
        .ctx("preparing a suspended operations query")?;
    let raw = stmt
        .query_map(params_from_iter(params.iter()), RawSospesa::from_row)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading suspended operations")?;
    raw.into_iter().map(RawSospesa::parse).collect()
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::schema::{migrate, open_writer};
    use crate::write::LAST_ID_OPERAZIONE_COMUNE;

    /// The detail lines of `EXPLAIN QUERY PLAN` for `sql` with `params` bound.
    fn piano(conn: &Connection, sql: &str, params: &[SqlValue]) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let righe: Vec<String> = st
            .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        righe.join(" | ")
    }

    /// The lookups that replaced dropped indexes and tables (migration 10) are index
    /// searches, not scans, on a fresh database and once the planner has statistics.
    #[test]
    fn lookups_without_the_dropped_indexes_still_search_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("t.sqlite3")).unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        // Two municipalities, a few thousand subjects and operations.
        for i in 0..4000_i64 {
            let comune = if i % 2 == 0 { "015146" } else { "058091" };
            conn.execute(
                "INSERT INTO indice_soggetti (id, comune, posizione, id_comunale, id_famiglia)
                 VALUES (?1, ?2, 'R', ?3, ?1)",
                params![i + 1, comune, (i / 2).to_string()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO indice_famiglie (id, comune, tipo, stato, id_comunale)
                 VALUES (?1, ?2, 'F', 'A', ?3)",
                params![i + 1, comune, (i / 2).to_string()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO operazioni (id, ordine, codice_servizio, comune, id_operazione_comune, utente,
                                         canale, decorrenza, registrata_il, stato, richiesta, risposta)
                 VALUES (?1, ?1, '1002', ?2, ?3, 'u', 'rest', '2026-01-01', '2026-01-01', 'eseguita', '{}', '{}')",
                params![i + 1, comune, i / 2 + 1],
            )
            .unwrap();
        }
        let per_id_comunale = SubjectQuery {
            comune: Some("015146".parse().unwrap()),
            id_comunale: Some("1234".into()),
            limit: 10,
            ..SubjectQuery::default()
        };
        let per_comune = SubjectQuery {
            comune: Some("015146".parse().unwrap()),
            limit: 10,
            ..SubjectQuery::default()
        };
        for statistiche in [false, true] {
            if statistiche {
                conn.execute_batch("ANALYZE").unwrap();
                // New statistics are read by statements prepared afterwards.
                conn.flush_prepared_statement_cache();
            }
            let (sql, p) = subject_search_sql(&per_id_comunale);
            let plan = piano(&conn, &sql, &p);
            assert_eq!(
                plan,
                "SEARCH indice_soggetti USING INDEX indice_soggetti_id_comunale_ordine \
                 (comune=? AND <expr>=? AND id_comunale=?)",
                "municipal id, statistics {statistiche}"
            );
            let (sql, p) = subject_search_sql(&per_comune);
            let plan = piano(&conn, &sql, &p);
            assert!(
                plan.contains("SEARCH indice_soggetti USING INDEX indice_soggetti_estrazione"),
                "municipality, statistics {statistiche}: {plan}"
            );
            let plan = piano(
                &conn,
                LAST_ID_OPERAZIONE_COMUNE,
                &[SqlValue::Text("015146".into())],
            );
            assert!(
                plan.contains(
                    "SEARCH operazioni USING COVERING INDEX sqlite_autoindex_operazioni_2"
                ) && !plan.contains("TEMP B-TREE"),
                "last idOperazioneComune, statistics {statistiche}: {plan}"
            );
            let plan = piano(
                &conn,
                "SELECT id FROM indice_famiglie WHERE comune = ?1",
                &[SqlValue::Text("015146".into())],
            );
            assert!(
                plan.contains("USING COVERING INDEX indice_famiglie_comune"),
                "families of a municipality, statistics {statistiche}: {plan}"
            );
        }
        // And they find what the dropped tables held.
        assert_eq!(
            conn.query_row(LAST_ID_OPERAZIONE_COMUNE, ["058091"], |r| r
                .get::<_, i64>(0))
                .unwrap(),
            2000
        );
        let trovati = find_subjects(&conn, &per_id_comunale).unwrap();
        assert_eq!(trovati.len(), 1);
        assert_eq!(trovati[0].id.get(), 2469);
    }
}
