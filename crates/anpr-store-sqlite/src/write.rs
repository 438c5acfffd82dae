//! The write side: what `apply`, `annul` and the other writes do inside the writer's
//! transaction.
//!
//! Requests are validated and serialised by the caller's task ([`PreparedOp::new`]), so
//! that the single writer thread only runs SQL. Each function here runs inside a
//! savepoint opened by the writer (see `writer.rs`): on error it simply returns, and
//! the writer rolls the savepoint back, so every request is all or nothing.

use std::collections::BTreeSet;

use anpr_domain::audit::{concatena, NuovaVoceAudit, VoceAudit};
use anpr_domain::ids::{CodiceIstatComune, IdOperazioneAnpr, IdOperazioneComune};
use anpr_domain::operazione::StatoOperazione;
use anpr_store::{
    EntityRef, FamilyIndex, IndexWrite, NewOperation, NuovaSospesa, OperazioneSospesa,
    ProcedimentoIndex, StoreError, SubjectIndex,
};
use chrono::Utc;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use crate::codec::{
    date_bound, date_from_sql, date_to_sql, json_from_sql, json_to_sql, timestamp_to_sql,
    truncate_micros, u64_to_sql, Context,
};

/// The internal section that versions a record's index rows, so that annulment can
/// restore them exactly.
pub(crate) const INDEX_SECTION: &str = "_indice";

/// One section write, ready for SQL.
#[derive(Debug)]
struct PreparedWrite {
    entity: EntityRef,
    section: String,
    value: Option<String>,
    key: Option<String>,
}

/// One index row, ready for SQL: the row for the projection and its JSON for the
/// `_indice` version.
#[derive(Debug)]
struct PreparedIndex {
    row: IndexWrite,
    json: String,
}

#[derive(Debug)]
struct PreparedOutbox {
    tipo: String,
    destinatario: String,
    payload: String,
}

/// A [`NewOperation`] validated and converted to its stored form.
#[derive(Debug)]
pub(crate) struct PreparedOp {
    id: IdOperazioneAnpr,
    codice_servizio: String,
    comune: Option<CodiceIstatComune>,
    id_operazione_comune: Option<IdOperazioneComune>,
    utente: String,
    postazione: Option<String>,
    canale: String,
    decorrenza: String,
    registrata_il: String,
    stato: StatoOperazione,
    richiesta: String,
    risposta: String,
    writes: Vec<PreparedWrite>,
    indexes: Vec<PreparedIndex>,
    outbox: Vec<PreparedOutbox>,
    completa_sospesa: Option<i64>,
    audit: NuovaVoceAudit,
}

impl PreparedOp {
    /// Checks what the store can check without reading (a refusal or an annulment
    /// carries no writes, sections are named, values fit) and serialises the JSON.
    pub(crate) fn new(op: NewOperation, is_annulment: bool) -> Result<Self, StoreError> {
        match op.stato {
            StatoOperazione::Eseguita => {}
            StatoOperazione::Rifiutata if is_annulment => {
                return Err(StoreError::Invalid(format!(
                    "annulment {} must be eseguita, not rifiutata",
                    op.id
                )));
            }
            StatoOperazione::Rifiutata => {
                if !op.writes.is_empty() || !op.indexes.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "refused operation {} carries writes or index rows",
                        op.id
                    )));
                }
            }
            StatoOperazione::Annullata => {
                return Err(StoreError::Invalid(format!(
                    "operation {} cannot be stored as already annulled",
                    op.id
                )));
            }
        }
        if op.completa_sospesa.is_some() && (is_annulment || op.stato != StatoOperazione::Eseguita)
        {
            return Err(StoreError::Invalid(format!(
                "operation {} completes a suspended operation but is not an executed operation",
                op.id
            )));
        }
        if is_annulment && (!op.writes.is_empty() || !op.indexes.is_empty()) {
            return Err(StoreError::Invalid(format!(
                "annulment {} carries writes or index rows",
                op.id
            )));
        }
        if op.id_operazione_comune.is_some() && op.comune.is_none() {
            // The ordering rule is per municipality: without one it cannot be enforced.
            return Err(StoreError::Invalid(format!(
                "operation {} has an idOperazioneComune but no comune",
                op.id
            )));
        }
        let writes = op
            .writes
            .into_iter()
            .map(|w| {
                if w.section.is_empty() || w.section == INDEX_SECTION {
                    return Err(StoreError::Invalid(format!(
                        "section name {:?} is reserved or empty",
                        w.section
                    )));
                }
                let value = w
                    .value
                    .as_ref()
                    .map(|v| json_to_sql(v, "section value"))
                    .transpose()?;
                Ok(PreparedWrite {
                    entity: w.entity,
                    section: w.section,
                    value,
                    key: w.key,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let indexes = op
            .indexes
            .into_iter()
            .map(|row| {
                let json = match &row {
                    IndexWrite::Soggetto(s) => {
                        if let Some(d) = s.data_nascita {
                            date_to_sql(d)?;
                        }
                        json_to_sql(s, "subject index")?
                    }
                    IndexWrite::Famiglia(f) => json_to_sql(f, "family index")?,
                    IndexWrite::Procedimento(p) => {
                        u64_to_sql(p.id, "proceeding id")?;
                        for d in [Some(p.data_avvio), Some(p.data_stato), p.data_chiusura]
                            .into_iter()
                            .flatten()
                        {
                            date_to_sql(d)?;
                        }
                        json_to_sql(p, "proceeding index")?
                    }
                };
                Ok(PreparedIndex { row, json })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let outbox = op
            .outbox
            .into_iter()
            .map(|m| {
                Ok(PreparedOutbox {
                    payload: json_to_sql(&m.payload, "outbox payload")?,
                    tipo: m.tipo,
                    destinatario: m.destinatario,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            id: op.id,
            codice_servizio: op.codice_servizio.as_str().to_owned(),
            comune: op.comune,
            id_operazione_comune: op.id_operazione_comune,
            utente: op.utente,
            postazione: op.postazione,
            canale: op.canale,
            decorrenza: date_to_sql(op.decorrenza)?,
            registrata_il: timestamp_to_sql(op.registrata_il)?,
            stato: op.stato,
            richiesta: op.richiesta,
            risposta: op.risposta,
            writes,
            indexes,
            outbox,
            completa_sospesa: op
                .completa_sospesa
                .map(|id| u64_to_sql(id, "suspended operation id"))
                .transpose()?,
            audit: prepare_audit(op.audit)?,
        })
    }

    /// The audit entry, normalised for hashing.
    pub(crate) fn audit(&self) -> &NuovaVoceAudit {
        &self.audit
    }

    /// Every record the operation writes or indexes, each once, in `EntityRef` order.
    fn entities(&self) -> BTreeSet<EntityRef> {
        self.writes
            .iter()
            .map(|w| w.entity)
            .chain(self.indexes.iter().map(|i| i.row.entity()))
            .collect()
    }
}

/// Normalises an audit entry to its stored form *before* it is hashed (see
/// `codec::truncate_micros`) and checks that it fits.
pub(crate) fn prepare_audit(mut voce: NuovaVoceAudit) -> Result<NuovaVoceAudit, StoreError> {
    voce.istante = truncate_micros(voce.istante);
    timestamp_to_sql(voce.istante)?;
    if let Some(id) = voce.id_operazione_anpr {
        u64_to_sql(id, "audit idOperazioneANPR")?;
    }
    Ok(voce)
}

/// A registry id (subject, family, operation) as an SQL integer. Their constructors cap
/// them at 16 or 18 decimal digits, always below `i64::MAX`, so this is exact.
pub(crate) fn domain_id_sql(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

pub(crate) fn op_id_sql(id: IdOperazioneAnpr) -> i64 {
    domain_id_sql(id.get())
}

/// `Store::apply`.
pub(crate) fn apply(conn: &Connection, op: &PreparedOp) -> Result<VoceAudit, StoreError> {
    if let Some(id) = op.completa_sospesa {
        // First, so that a suspended operation completed meanwhile (or deleted by its
        // owner) fails the operation before anything else is written.
        let deleted = conn
            .prepare_cached("DELETE FROM operazioni_sospese WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .ctx("completing the suspended operation")?;
        if deleted == 0 {
            return Err(StoreError::SospesaNotFound(crate::codec::u64_from_sql(
                id,
                "suspended operation id",
            )?));
        }
    }
    let ordine = insert_operation(conn, op, None)?;
    let op_id = op_id_sql(op.id);
    let mut correnti = VersioniCorrenti::default();
    for w in &op.writes {
        write_version(
            conn,
            &mut correnti,
            op_id,
            &op.decorrenza,
            w.entity,
            &w.section,
            w.value.as_deref(),
            w.key.as_deref(),
            false,
        )?;
    }
    for i in &op.indexes {
        // The index is a projection of the *current* state, versioned only so that
        // annulment can restore it. An operation may legitimately take effect before the
        // last index change (it changes a section that was not changed since), so an
        // `_indice` version starts no earlier than the current one instead of refusing.
        write_version(
            conn,
            &mut correnti,
            op_id,
            &op.decorrenza,
            i.row.entity(),
            INDEX_SECTION,
            Some(&i.json),
            None,
            true,
        )?;
        upsert_projection(conn, &i.row)?;
    }
    let entities = op.entities();
    link_entities(conn, &entities, ordine, op_id)?;
    insert_outbox(conn, op)?;
    chain_audit(conn, op.audit.clone())
}

/// `Store::annul`.
pub(crate) fn annul(
    conn: &Connection,
    target: IdOperazioneAnpr,
    annulment: &PreparedOp,
) -> Result<VoceAudit, StoreError> {
    let target_sql = op_id_sql(target);
    let row: Option<(i64, String, Option<i64>)> = conn
        .prepare_cached("SELECT ordine, stato, annulla FROM operazioni WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([target_sql], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .ctx("reading the operation to annul")?;
    let Some((target_ordine, stato, annulla)) = row else {
        return Err(StoreError::OperationNotFound(target));
    };
    match StatoOperazione::parse(&stato) {
        Some(StatoOperazione::Eseguita) => {}
        Some(_) => return Err(StoreError::OperationNotInForce(target)),
        None => {
            return Err(StoreError::Corrupt(format!(
                "operation {target}: state {stato:?}"
            )))
        }
    }
    if annulla.is_some() {
        // Its effects (removed versions) are gone for good: undoing an annulment is a new
        // operation that writes the data again, decided by the service layer.
        return Err(StoreError::Invalid(format!(
            "operation {target} is an annulment; annulments cannot be annulled"
        )));
    }
    let entities = linked_entities(conn, target_sql)?;
    for &entity in &entities {
        // Newest first, in order of application. Annulments (which link the entities of
        // what they annulled) and operations no longer in force do not count.
        let newer: Option<i64> = conn
            .prepare_cached(
                "SELECT oe.op FROM operazioni_entita oe JOIN operazioni o ON o.id = oe.op
                 WHERE oe.kind = ?1 AND oe.entity = ?2 AND oe.ordine > ?3
                   AND o.stato = 'eseguita' AND o.annulla IS NULL
                 ORDER BY oe.ordine DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![entity.kind(), entity_sql(entity), target_ordine],
                    |r| r.get(0),
                )
                .optional()
            })
            .ctx("looking for later operations")?;
        if let Some(newer) = newer {
            return Err(StoreError::NotNewest {
                op: target,
                entity,
                newer: op_id_from_sql(newer)?,
            });
        }
    }
    let ordine = insert_operation(conn, annulment, Some(target_sql))?;
    let annulment_sql = op_id_sql(annulment.id);
    for &entity in &entities {
        let (kind, id) = (entity.kind(), entity_sql(entity));
        let mut index_touched = false;
        {
            let mut deleted = conn
                .prepare_cached("DELETE FROM versioni WHERE kind = ?1 AND entity = ?2 AND creata_da = ?3 RETURNING section")
                .ctx("preparing to remove versions")?;
            let mut rows = deleted
                .query(params![kind, id, target_sql])
                .ctx("removing versions")?;
            while let Some(row) = rows.next().ctx("removing versions")? {
                let section: String = row.get(0).ctx("removing versions")?;
                index_touched |= section == INDEX_SECTION;
            }
        }
        conn.prepare_cached(
            "UPDATE versioni SET valido_al = NULL, chiusa_da = NULL WHERE kind = ?1 AND entity = ?2 AND chiusa_da = ?3",
        )
        .and_then(|mut s| s.execute(params![kind, id, target_sql]))
        .ctx("reopening versions")?;
        if index_touched {
            restore_projection(conn, entity)?;
        }
    }
    // The annulment touched the same records: linking them keeps "operations on this
    // record" complete for monitoring.
    link_entities(conn, &entities, ordine, annulment_sql)?;
    conn.prepare_cached(
        "UPDATE operazioni SET stato = 'annullata', annullata_da = ?1 WHERE id = ?2",
    )
    .and_then(|mut s| s.execute(params![annulment_sql, target_sql]))
    .ctx("marking the operation annulled")?;
    insert_outbox(conn, annulment)?;
    chain_audit(conn, annulment.audit.clone())
}

/// The last `idOperazioneComune` of a municipality: the municipality's last entry in the
/// UNIQUE (comune, id_operazione_comune) index, one descent (and no row of its own to
/// rewrite at every operation).
pub(crate) const LAST_ID_OPERAZIONE_COMUNE: &str = "SELECT id_operazione_comune FROM operazioni
     WHERE comune = ?1 AND id_operazione_comune IS NOT NULL
     ORDER BY id_operazione_comune DESC LIMIT 1";

/// Checks the operation id and `idOperazioneComune` and appends the operation to the
/// log. Returns its order of application.
pub(crate) fn insert_operation(
    conn: &Connection,
    op: &PreparedOp,
    annulla: Option<i64>,
) -> Result<i64, StoreError> {
    let op_id = op_id_sql(op.id);
    let id_comune = match (&op.comune, op.id_operazione_comune) {
        (Some(comune), Some(id)) => {
            let id_sql = u64_to_sql(id.get(), "idOperazioneComune")?;
            let last: Option<i64> = conn
                .prepare_cached(LAST_ID_OPERAZIONE_COMUNE)
                .and_then(|mut s| s.query_row([comune.as_str()], |r| r.get(0)).optional())
                .ctx("reading the last idOperazioneComune")?;
            if let Some(last) = last.filter(|&last| id_sql <= last) {
                // Not after the last one: either a replay of a used id, or out of order.
                // (Only here is the second lookup needed, so the usual case costs one.)
                let existing: Option<i64> = conn
                    .prepare_cached(
                        "SELECT id FROM operazioni WHERE comune = ?1 AND id_operazione_comune = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![comune.as_str(), id_sql], |r| r.get(0))
                            .optional()
                    })
                    .ctx("checking idOperazioneComune")?;
                if let Some(existing) = existing {
                    return Err(StoreError::DuplicateIdOperazioneComune {
                        id,
                        existing: op_id_from_sql(existing)?,
                    });
                }
                let last = u64::try_from(last)
                    .ok()
                    .and_then(|l| IdOperazioneComune::new(l).ok())
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("last idOperazioneComune of {comune}: {last}"))
                    })?;
                return Err(StoreError::IdOperazioneComuneNotIncreasing { id, last });
            }
            Some(id_sql)
        }
        _ => None,
    };
    // A reused operation id shows up as a primary key violation: no lookup beforehand.
    conn.prepare_cached(
        "INSERT INTO operazioni (id, ordine, codice_servizio, comune, id_operazione_comune, utente, postazione, canale,
                                 decorrenza, registrata_il, stato, annullata_da, annulla, richiesta, risposta)
         VALUES (?1, (SELECT COALESCE(MAX(ordine), 0) + 1 FROM operazioni), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL,
                 ?11, ?12, ?13)
         RETURNING ordine",
    )
    .and_then(|mut s| {
        s.query_row(
            params![
                op_id,
                op.codice_servizio,
                op.comune.as_ref().map(CodiceIstatComune::as_str),
                id_comune,
                op.utente,
                op.postazione,
                op.canale,
                op.decorrenza,
                op.registrata_il,
                op.stato.as_str(),
                annulla,
                op.richiesta,
                op.risposta,
            ],
            |r| r.get(0),
        )
    })
    .map_err(|e| match e.sqlite_error() {
        Some(f) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            StoreError::DuplicateOperationId(op.id)
        }
        _ => crate::codec::sql_error("inserting the operation", e),
    })
}

/// The open version (row id, start) of each section of the records an operation
/// writes, read once per record: one statement per record instead of one per section
/// written (a registration writes about ten sections of a record that has none yet).
#[derive(Debug, Default)]
struct VersioniCorrenti {
    records: Vec<(EntityRef, Vec<VersioneAperta>)>,
}

/// An open version: section, row id, start (`valido_dal`).
type VersioneAperta = (String, i64, String);

impl VersioniCorrenti {
    /// The open versions of `entity`, read from the database the first time.
    fn of(
        &mut self,
        conn: &Connection,
        entity: EntityRef,
    ) -> Result<&mut Vec<VersioneAperta>, StoreError> {
        let at = match self.records.iter().position(|(e, _)| *e == entity) {
            Some(at) => at,
            None => {
                let mut open: Vec<VersioneAperta> = Vec::new();
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT section, id, valido_dal FROM versioni
                         WHERE kind = ?1 AND entity = ?2 AND valido_al IS NULL",
                    )
                    .ctx("reading the current versions")?;
                let rows = stmt
                    .query_map(params![entity.kind(), entity_sql(entity)], |r| {
                        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
                    })
                    .ctx("reading the current versions")?;
                for row in rows {
                    let (section, id, from) = row.ctx("reading the current versions")?;
                    // At most one open version per section; should there be more, the
                    // newest is the current one (as the per-section lookup did).
                    match open.iter_mut().find(|(s, _, _)| *s == section) {
                        Some(cur) if cur.1 < id => *cur = (section, id, from),
                        Some(_) => {}
                        None => open.push((section, id, from)),
                    }
                }
                self.records.push((entity, open));
                self.records.len() - 1
            }
        };
        Ok(&mut self.records[at].1)
    }
}

/// Closes the current version of a section at `decorrenza` and appends the new one.
/// With `clamp`, a decorrenza before the current version starts the new version when
/// the current one starts (used for `_indice`); otherwise it is refused.
#[allow(clippy::too_many_arguments)]
fn write_version(
    conn: &Connection,
    correnti: &mut VersioniCorrenti,
    op_id: i64,
    decorrenza: &str,
    entity: EntityRef,
    section: &str,
    value: Option<&str>,
    key: Option<&str>,
    clamp: bool,
) -> Result<(), StoreError> {
    let (kind, id) = (entity.kind(), entity_sql(entity));
    let open = correnti.of(conn, entity)?;
    let current = open.iter().position(|(s, _, _)| s == section);
    let mut from = decorrenza.to_owned();
    if let Some(at) = current {
        let (_, version, current_from) = &open[at];
        // Fixed-width ISO dates: text order is date order.
        if from < *current_from {
            if clamp {
                from.clone_from(current_from);
            } else {
                return Err(StoreError::DecorrenzaBeforeCurrent {
                    entity,
                    section: section.to_owned(),
                    decorrenza: date_from_sql(decorrenza, "decorrenza")?,
                    current_from: date_from_sql(current_from, "valido_dal")?,
                });
            }
        }
        conn.prepare_cached("UPDATE versioni SET valido_al = ?1, chiusa_da = ?2 WHERE id = ?3")
            .and_then(|mut s| s.execute(params![from, op_id, version]))
            .ctx("closing the current version")?;
    }
    conn.prepare_cached(
        "INSERT INTO versioni (kind, entity, section, valido_dal, valido_al, creata_da, chiusa_da, value, chiave)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, NULL, ?6, ?7)",
    )
    .and_then(|mut s| s.execute(params![kind, id, section, from, op_id, value, key]))
    .ctx("inserting a version")?;
    let version = conn.last_insert_rowid();
    match current {
        Some(at) => {
            open[at].1 = version;
            open[at].2 = from;
        }
        None => open.push((section.to_owned(), version, from)),
    }
    Ok(())
}

pub(crate) fn upsert_projection(conn: &Connection, row: &IndexWrite) -> Result<(), StoreError> {
    match row {
        IndexWrite::Soggetto(s) => upsert_subject(conn, s),
        IndexWrite::Famiglia(f) => upsert_family(conn, f),
        IndexWrite::Procedimento(p) => upsert_procedimento(conn, p),
    }
}

fn upsert_procedimento(conn: &Connection, p: &ProcedimentoIndex) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO indice_procedimenti (id, comune, numero_pratica_comune, stato, aperto, motivo_avvio, data_avvio,
                                          data_stato, data_chiusura)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET
             comune = excluded.comune, numero_pratica_comune = excluded.numero_pratica_comune,
             stato = excluded.stato, aperto = excluded.aperto, motivo_avvio = excluded.motivo_avvio,
             data_avvio = excluded.data_avvio, data_stato = excluded.data_stato,
             data_chiusura = excluded.data_chiusura",
    )
    .and_then(|mut st| {
        st.execute(params![
            domain_id_sql(p.id),
            p.comune.as_str(),
            p.numero_pratica_comune,
            p.stato,
            p.aperto,
            p.motivo_avvio,
            date_bound(p.data_avvio),
            date_bound(p.data_stato),
            p.data_chiusura.map(date_bound),
        ])
    })
    .ctx("writing the proceeding index")?;
    Ok(())
}

fn upsert_subject(conn: &Connection, s: &SubjectIndex) -> Result<(), StoreError> {
    let data_nascita = s.data_nascita.map(date_to_sql).transpose()?;
    let id_famiglia = s.id_famiglia.map(|f| domain_id_sql(f.get()));
    upsert_changed(
        conn,
        "indice_soggetti",
        domain_id_sql(s.id.get()),
        &[
            ("comune", Value::Text(s.comune.as_str().to_owned())),
            ("posizione", Value::from(s.posizione.clone())),
            ("codice_fiscale", Value::from(s.codice_fiscale.clone())),
            ("cognome_key", Value::from(s.cognome_key.clone())),
            ("nome_key", Value::from(s.nome_key.clone())),
            ("sesso", Value::from(s.sesso.clone())),
            ("data_nascita", Value::from(data_nascita)),
            ("id_comunale", Value::from(s.id_comunale.clone())),
            ("id_famiglia", Value::from(id_famiglia)),
            ("chiave_indirizzo", Value::from(s.chiave_indirizzo.clone())),
        ],
    )
    .ctx("writing the subject index")
}

fn upsert_family(conn: &Connection, f: &FamilyIndex) -> Result<(), StoreError> {
    upsert_changed(
        conn,
        "indice_famiglie",
        domain_id_sql(f.id.get()),
        &[
            ("comune", Value::Text(f.comune.as_str().to_owned())),
            ("tipo", Value::from(f.tipo.clone())),
            ("stato", Value::from(f.stato.clone())),
            ("id_comunale", Value::from(f.id_comunale.clone())),
            ("chiave_indirizzo", Value::from(f.chiave_indirizzo.clone())),
        ],
    )
    .ctx("writing the family index")
}

/// Inserts a projection row, or updates only the columns whose value changed (nothing
/// when none did). SQLite rewrites every index on a column named in an UPDATE's SET
/// list, changed or not: the subject projection has ten indexes, and a change of
/// address changes one column of it.
fn upsert_changed(
    conn: &Connection,
    table: &str,
    id: i64,
    cols: &[(&str, Value)],
) -> rusqlite::Result<()> {
    let names = cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
    let current: Option<Vec<Value>> = conn
        .prepare_cached(&format!("SELECT {names} FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| (0..cols.len()).map(|i| r.get(i)).collect())
        .optional()?;
    let Some(current) = current else {
        let marks = (2..=cols.len() + 1)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let values = std::iter::once(Value::Integer(id)).chain(cols.iter().map(|(_, v)| v.clone()));
        conn.prepare_cached(&format!(
            "INSERT INTO {table} (id, {names}) VALUES (?1, {marks})"
        ))?
        .execute(rusqlite::params_from_iter(values))?;
        return Ok(());
    };
    let changed: Vec<&(&str, Value)> = cols
        .iter()
        .zip(&current)
        .filter(|((_, new), old)| new != *old)
        .map(|(c, _)| c)
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let set = changed
        .iter()
        .enumerate()
        .map(|(k, (c, _))| format!("{c} = ?{}", k + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let values = std::iter::once(Value::Integer(id)).chain(changed.iter().map(|(_, v)| v.clone()));
    conn.prepare_cached(&format!("UPDATE {table} SET {set} WHERE id = ?1"))?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Rebuilds an entity's projection row from its current `_indice` version, or removes
/// it when there is none (e.g. an annulled registration).
fn restore_projection(conn: &Connection, entity: EntityRef) -> Result<(), StoreError> {
    let current: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT value FROM versioni
             WHERE kind = ?1 AND entity = ?2 AND section = ?3 AND valido_al IS NULL
             ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(
                params![entity.kind(), entity_sql(entity), INDEX_SECTION],
                |r| r.get(0),
            )
            .optional()
        })
        .ctx("reading the current index version")?;
    let what = format!("index version of {entity}");
    match (entity, current.flatten()) {
        (EntityRef::Soggetto(id), Some(json)) => {
            let row: SubjectIndex = json_from_sql(&json, &what)?;
            if row.id != id {
                return Err(StoreError::Corrupt(format!(
                    "{what} names subject {}",
                    row.id
                )));
            }
            upsert_subject(conn, &row)
        }
        (EntityRef::Famiglia(id), Some(json)) => {
            let row: FamilyIndex = json_from_sql(&json, &what)?;
            if row.id != id {
                return Err(StoreError::Corrupt(format!(
                    "{what} names family {}",
                    row.id
                )));
            }
            upsert_family(conn, &row)
        }
        (EntityRef::Procedimento(id), Some(json)) => {
            let row: ProcedimentoIndex = json_from_sql(&json, &what)?;
            if row.id != id {
                return Err(StoreError::Corrupt(format!(
                    "{what} names proceeding {}",
                    row.id
                )));
            }
            upsert_procedimento(conn, &row)
        }
        (EntityRef::Procedimento(_), None) => conn
            .prepare_cached("DELETE FROM indice_procedimenti WHERE id = ?1")
            .and_then(|mut s| s.execute([entity_sql(entity)]))
            .map(drop)
            .ctx("removing the proceeding index"),
        (EntityRef::Soggetto(_), None) => conn
            .prepare_cached("DELETE FROM indice_soggetti WHERE id = ?1")
            .and_then(|mut s| s.execute([entity_sql(entity)]))
            .map(drop)
            .ctx("removing the subject index"),
        (EntityRef::Famiglia(_), None) => conn
            .prepare_cached("DELETE FROM indice_famiglie WHERE id = ?1")
            .and_then(|mut s| s.execute([entity_sql(entity)]))
            .map(drop)
            .ctx("removing the family index"),
    }
}

fn link_entities<'a>(
    conn: &Connection,
    entities: impl IntoIterator<Item = &'a EntityRef>,
    ordine: i64,
    op_id: i64,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO operazioni_entita (kind, entity, ordine, op) VALUES (?1, ?2, ?3, ?4)",
        )
        .ctx("preparing entity links")?;
    for &e in entities {
        stmt.execute(params![e.kind(), entity_sql(e), ordine, op_id])
            .ctx("linking an entity")?;
    }
    Ok(())
}

/// The records an operation touched, in `EntityRef` order.
pub(crate) fn linked_entities(conn: &Connection, op_id: i64) -> Result<Vec<EntityRef>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT kind, entity FROM operazioni_entita WHERE op = ?1")
        .ctx("preparing entity links")?;
    let raw = stmt
        .query_map([op_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading entity links")?;
    let mut out = raw
        .into_iter()
        .map(|(kind, id)| {
            EntityRef::from_parts(&kind, crate::codec::u64_from_sql(id, "entity id")?)
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub(crate) fn insert_outbox(conn: &Connection, op: &PreparedOp) -> Result<(), StoreError> {
    if op.outbox.is_empty() {
        return Ok(());
    }
    // Queued at the operation's registration time: a notification's age is the
    // operation's.
    let now = &op.registrata_il;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO outbox (id_operazione_anpr, tipo, destinatario, payload, creato_il) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .ctx("preparing the outbox")?;
    for m in &op.outbox {
        stmt.execute(params![
            op_id_sql(op.id),
            m.tipo,
            m.destinatario,
            m.payload,
            now
        ])
        .ctx("queuing an outbox message")?;
    }
    Ok(())
}

/// Chains an audit entry (already normalised by [`prepare_audit`]) after the current
/// head and moves the head.
pub(crate) fn chain_audit(
    conn: &Connection,
    voce: NuovaVoceAudit,
) -> Result<VoceAudit, StoreError> {
    let head = crate::read::audit_head(conn)?;
    let entry = concatena(head.as_ref(), voce);
    let v = &entry.voce;
    let id_op = v
        .id_operazione_anpr
        .map(|id| u64_to_sql(id, "audit idOperazioneANPR"))
        .transpose()?;
    let seq = u64_to_sql(entry.seq, "audit seq")?;
    conn.prepare_cached(
        "INSERT INTO audit (seq, istante, evento, azione, utente, comune, postazione, canale, oggetto, id_operazione_anpr,
                            esito, hash_precedente, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            // Formatting cannot fail here: prepare_audit checked the range.
            v.istante.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            v.evento.as_str(),
            v.azione,
            v.utente,
            v.comune,
            v.postazione,
            v.canale,
            v.oggetto,
            id_op,
            v.esito,
            entry.hash_precedente,
            entry.hash,
        ])
    })
    .ctx("appending the audit entry")?;
    // The head lives apart from the entries: removing entries from the chain's end
    // leaves it pointing past them, which `audit verify` reports.
    conn.prepare_cached(
        "INSERT INTO audit_testa (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .and_then(|mut s| s.execute(params![seq, entry.hash]))
    .ctx("moving the audit head")?;
    Ok(entry)
}

/// Reserves `count` ids of a sequence; returns the first and one past the last.
pub(crate) fn reserve_ids(
    conn: &Connection,
    sequence: &str,
    count: u64,
) -> Result<(u64, u64), StoreError> {
    let count_sql = u64_to_sql(count, "block size")?;
    let next: i64 = conn
        .prepare_cached(
            "INSERT INTO sequenze (nome, prossimo) VALUES (?1, 1 + ?2)
             ON CONFLICT (nome) DO UPDATE SET prossimo = prossimo + ?2
             RETURNING prossimo",
        )
        .and_then(|mut s| s.query_row(params![sequence, count_sql], |r| r.get(0)))
        .ctx("reserving ids")?;
    let end = crate::codec::u64_from_sql(next, "sequence")?;
    let start = end
        .checked_sub(count)
        .filter(|&s| s > 0)
        .ok_or_else(|| StoreError::Corrupt(format!("sequence {sequence}: next id {end}")))?;
    Ok((start, end))
}

/// `Store::outbox_mark`.
pub(crate) fn outbox_mark(conn: &Connection, id: u64, delivered: bool) -> Result<(), StoreError> {
    let now = timestamp_to_sql(Utc::now())?;
    let changed = conn
        .prepare_cached(
            "UPDATE outbox SET tentativi = tentativi + 1,
                               consegnato_il = CASE WHEN ?2 THEN COALESCE(consegnato_il, ?3) ELSE consegnato_il END
             WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![crate::codec::u64_bound(id), delivered, now]))
        .ctx("recording a delivery attempt")?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!(
            "outbox message {id} does not exist"
        )));
    }
    Ok(())
}

/// A [`NuovaSospesa`] validated and converted to its stored form, its id allocated.
#[derive(Debug)]
pub(crate) struct PreparedSospesa {
    id: i64,
    update: bool,
    comune: String,
    codice_servizio: String,
    utente: String,
    istante: String,
    soggetto: Option<i64>,
    codice_fiscale: Option<String>,
    richiesta: String,
    note: Option<String>,
    audit: NuovaVoceAudit,
}

impl PreparedSospesa {
    /// `id` is the one given, or a freshly allocated one for an insert.
    pub(crate) fn new(s: NuovaSospesa, id: u64) -> Result<Self, StoreError> {
        let audit = prepare_audit(s.audit_for(id))?;
        Ok(Self {
            id: u64_to_sql(id, "suspended operation id")?,
            update: s.id.is_some(),
            comune: s.comune.as_str().to_owned(),
            codice_servizio: s.codice_servizio.as_str().to_owned(),
            utente: s.utente,
            istante: timestamp_to_sql(s.istante)?,
            soggetto: s.soggetto.map(|id| domain_id_sql(id.get())),
            codice_fiscale: s.codice_fiscale,
            richiesta: json_to_sql(&s.richiesta, "suspended request")?,
            note: s.note,
            audit,
        })
    }
}

/// `Store::salva_sospesa`: insert or update, then chain the audit entry.
pub(crate) fn salva_sospesa(
    conn: &Connection,
    s: &PreparedSospesa,
) -> Result<OperazioneSospesa, StoreError> {
    let row = if s.update {
        conn.prepare_cached(&format!(
            "UPDATE operazioni_sospese SET aggiornata_il = ?2, soggetto = ?3, codice_fiscale = ?4, richiesta = ?5,
                                           note = ?6
             WHERE id = ?1 AND comune = ?7 AND codice_servizio = ?8
             RETURNING {}",
            crate::read::SOSPESA_COLUMNS
        ))
        .and_then(|mut st| {
            st.query_row(
                params![
                    s.id,
                    s.istante,
                    s.soggetto,
                    s.codice_fiscale,
                    s.richiesta,
                    s.note,
                    s.comune,
                    s.codice_servizio
                ],
                crate::read::RawSospesa::from_row,
            )
            .optional()
        })
        .ctx("updating a suspended operation")?
    } else {
        conn.prepare_cached(&format!(
            "INSERT INTO operazioni_sospese (id, comune, codice_servizio, utente, creata_il, aggiornata_il, soggetto,
                                             codice_fiscale, richiesta, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9)
             RETURNING {}",
            crate::read::SOSPESA_COLUMNS
        ))
        .and_then(|mut st| {
            st.query_row(
                params![
                    s.id,
                    s.comune,
                    s.codice_servizio,
                    s.utente,
                    s.istante,
                    s.soggetto,
                    s.codice_fiscale,
                    s.richiesta,
                    s.note
                ],
                crate::read::RawSospesa::from_row,
            )
            .optional()
        })
        .ctx("inserting a suspended operation")?
    };
    let Some(row) = row else {
        return Err(StoreError::SospesaNotFound(crate::codec::u64_from_sql(
            s.id,
            "suspended operation id",
        )?));
    };
    let stored = row.parse()?;
    chain_audit(conn, s.audit.clone())?;
    Ok(stored)
}

/// `Store::elimina_sospesa`: delete, and chain the audit entry only if it existed.
pub(crate) fn elimina_sospesa(
    conn: &Connection,
    id: u64,
    audit: &NuovaVoceAudit,
) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM operazioni_sospese WHERE id = ?1")
        .and_then(|mut s| s.execute([crate::codec::u64_bound(id)]))
        .ctx("deleting a suspended operation")?;
    if deleted == 0 {
        return Ok(false);
    }
    chain_audit(conn, audit.clone())?;
    Ok(true)
}

/// One row of `Store::baseline_raw_insert`: the cheapest durable write there is.
pub(crate) fn baseline_insert(conn: &Connection) -> Result<(), StoreError> {
    let now = timestamp_to_sql(Utc::now())?;
    conn.prepare_cached("INSERT INTO baseline_raw (creato_il, payload) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![now, "{\"baseline\":true}"]))
        .ctx("inserting a baseline row")?;
    Ok(())
}

pub(crate) fn entity_sql(e: EntityRef) -> i64 {
    domain_id_sql(e.id())
}

pub(crate) fn op_id_from_sql(v: i64) -> Result<IdOperazioneAnpr, StoreError> {
    u64::try_from(v)
        .ok()
        .and_then(|v| IdOperazioneAnpr::new(v).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("operation id {v}")))
}
