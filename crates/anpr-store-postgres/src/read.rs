//! Reads: single statements against the log, the timelines and the projections.
//!
//! Rows are decoded with `try_get` and every stored code is parsed back into its domain
//! type, so a damaged row surfaces as `StoreError::Corrupt` instead of a panic or a value
//! that breaks an invariant further up.

use std::collections::HashMap;

use anpr_domain::audit::{NuovaVoceAudit, TestaCatena, TipoEvento, VoceAudit};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune,
};
use anpr_domain::operazione::{CodiceServizio, StatoOperazione};
use anpr_store::{
    EntityRef, FamilyIndex, NewOutboxMessage, OperationQuery, OperazioneSospesa, OutboxMessage,
    ProcedimentoIndex, ProcedimentoQuery, QueryNotifiche, QuerySospese, RecordSections, StoreError,
    StoredOperation, StoredVersion, SubjectIndex, SubjectQuery,
};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;

use crate::error::{to_i64, to_u64, Context, Failure};
use crate::PostgresStore;

/// Section holding a record's versioned search projection; never shown to callers.
pub(crate) const INDEX_SECTION: &str = "_indice";

/// Largest page any listing returns, whatever the caller asks.
pub(crate) const MAX_ROWS: u32 = 1000;

/// Largest audit page: verification streams the log in pages, so pages can be larger
/// than listings, but still bounded.
const MAX_AUDIT_ROWS: u32 = 10_000;

/// Reads column `idx`, turning a type mismatch or NULL-into-non-Option into `Corrupt`.
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx).map_err(|e| {
        let name = row.columns().get(idx).map_or("?", |c| c.name());
        StoreError::Corrupt(format!("column {name}: {e}"))
    })
}

pub(crate) fn op_id(value: i64) -> Result<IdOperazioneAnpr, StoreError> {
    IdOperazioneAnpr::new(to_u64(value, "idOperazioneANPR")?)
        .map_err(|e| StoreError::Corrupt(format!("stored operation id: {e}")))
}

fn comune(value: String) -> Result<CodiceIstatComune, StoreError> {
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("stored municipality: {e}")))
}

pub(crate) fn entity(kind: &str, id: i64) -> Result<EntityRef, StoreError> {
    EntityRef::from_parts(kind, to_u64(id, "entity id")?)
}

pub(crate) const OPERATION_COLUMNS: &str =
    "id, codice_servizio, comune, id_operazione_comune, utente, postazione, \
     canale, decorrenza, registrata_il, stato, annullata_da, annulla, richiesta, risposta";

/// Decodes a row selected with [`OPERATION_COLUMNS`]; `entities` is left empty.
fn operation_from_row(row: &Row) -> Result<StoredOperation, StoreError> {
    let codice: String = col(row, 1)?;
    let stato: String = col(row, 9)?;
    Ok(StoredOperation {
        id: op_id(col(row, 0)?)?,
        codice_servizio: codice
            .parse::<CodiceServizio>()
            .map_err(|e| StoreError::Corrupt(format!("stored service code: {e}")))?,
        comune: col::<Option<String>>(row, 2)?.map(comune).transpose()?,
        id_operazione_comune: col::<Option<i64>>(row, 3)?
            .map(|v| {
                IdOperazioneComune::new(to_u64(v, "idOperazioneComune")?)
                    .map_err(|e| StoreError::Corrupt(format!("stored idOperazioneComune: {e}")))
            })
            .transpose()?,
        utente: col(row, 4)?,
        postazione: col(row, 5)?,
        canale: col(row, 6)?,
        decorrenza: col(row, 7)?,
        registrata_il: col(row, 8)?,
        stato: StatoOperazione::parse(&stato)
            .ok_or_else(|| StoreError::Corrupt(format!("stored operation state {stato:?}")))?,
        annullata_da: col::<Option<i64>>(row, 10)?.map(op_id).transpose()?,
        annulla: col::<Option<i64>>(row, 11)?.map(op_id).transpose()?,
        richiesta: col(row, 12)?,
        risposta: col(row, 13)?,
        entities: Vec::new(),
    })
}

/// Decodes operations and attaches the entities each touched (one extra statement).
async fn with_entities(
    client: &tokio_postgres::Client,
    rows: &[Row],
) -> Result<Vec<StoredOperation>, Failure> {
    let mut ops = rows
        .iter()
        .map(operation_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if ops.is_empty() {
        return Ok(ops);
    }
    let ids: Vec<i64> = ops
        .iter()
        .map(|o| to_i64(o.id.get(), "operation id"))
        .collect::<Result<_, _>>()?;
    let links = client
        .query(
            "SELECT op, kind, entita FROM operazioni_entita WHERE op = ANY($1)",
            &[&ids],
        )
        .await
        .ctx("reading the entities of operations")?;
    let mut by_op: HashMap<i64, Vec<EntityRef>> = HashMap::new();
    for row in &links {
        let kind: String = col(row, 1)?;
        by_op
            .entry(col(row, 0)?)
            .or_default()
            .push(entity(&kind, col(row, 2)?)?);
    }
    for (op, id) in ops.iter_mut().zip(ids) {
        let mut entities = by_op.remove(&id).unwrap_or_default();
        entities.sort();
        op.entities = entities;
    }
    Ok(ops)
}

pub(crate) async fn operation(
    store: &PostgresStore,
    id: IdOperazioneAnpr,
) -> Result<Option<StoredOperation>, Failure> {
    let client = store.client().await?;
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operazioni WHERE id = $1");
    let stmt = client
        .prepare_cached(&sql)
        .await
        .ctx("reading an operation")?;
    let rows = client
        .query(&stmt, &[&to_i64(id.get(), "operation id")?])
        .await
        .ctx("reading an operation")?;
    Ok(with_entities(&client, &rows).await?.into_iter().next())
}

pub(crate) async fn operation_by_comune_id(
    store: &PostgresStore,
    comune: &CodiceIstatComune,
    id: IdOperazioneComune,
) -> Result<Option<StoredOperation>, Failure> {
    let client = store.client().await?;
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operazioni WHERE comune = $1 AND id_operazione_comune = $2");
    let stmt = client
        .prepare_cached(&sql)
        .await
        .ctx("reading an operation by idOperazioneComune")?;
    let rows = client
        .query(
            &stmt,
            &[&comune.as_str(), &to_i64(id.get(), "idOperazioneComune")?],
        )
        .await
        .ctx("reading an operation by idOperazioneComune")?;
    Ok(with_entities(&client, &rows).await?.into_iter().next())
}

/// Accumulates a dynamic `WHERE` clause with numbered parameters.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Filter {
    /// Adds `clause`, in which `$?` stands for the value's parameter number.
    fn add(&mut self, clause: &str, value: impl ToSql + Sync + Send + 'static) {
        self.params.push(Box::new(value));
        self.clauses
            .push(clause.replace("$?", &format!("${}", self.params.len())));
    }

    fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

fn capped(limit: u32, max: u32) -> i64 {
    i64::from(limit.min(max))
}

pub(crate) async fn operations(
    store: &PostgresStore,
    query: &OperationQuery,
) -> Result<Vec<StoredOperation>, Failure> {
    let mut f = Filter::default();
    if let Some(c) = &query.comune {
        f.add("comune = $?", c.as_str().to_owned());
    }
    if let Some(c) = &query.codice_servizio {
        f.add("codice_servizio = $?", c.as_str().to_owned());
    }
    if let Some(s) = query.stato {
        f.add("stato = $?", s.as_str());
    }
    if let Some(e) = query.entity {
        f.params.push(Box::new(e.kind()));
        let kind = f.params.len();
        f.params.push(Box::new(to_i64(e.id(), "entity id")?));
        let id = f.params.len();
        f.clauses.push(format!(
            "id IN (SELECT op FROM operazioni_entita WHERE kind = ${kind} AND entita = ${id})"
        ));
    }
    if let Some(dal) = query.dal {
        f.add("registrata_il >= $?", dal);
    }
    if let Some(al) = query.al {
        f.add("registrata_il < $?", al);
    }
    if let Some(dopo) = query.dopo {
        f.add("id > $?", to_i64(dopo.get(), "operation id")?);
    }
    f.params.push(Box::new(capped(query.limit, MAX_ROWS)));
    let sql = format!(
        "SELECT {OPERATION_COLUMNS} FROM operazioni{} ORDER BY id LIMIT ${}",
        f.where_clause(),
        f.params.len()
    );
    let client = store.client().await?;
    let rows = client
        .query(&sql, &f.params())
        .await
        .ctx("listing operations")?;
    with_entities(&client, &rows).await
}

/// Condition selecting the versions in force at `$3` (or the open ones when `at` is
/// `None`); parameter 3 is the date.
fn in_force(at: Option<NaiveDate>) -> &'static str {
    match at {
        None => "valido_al IS NULL",
        Some(_) => "valido_dal <= $3 AND (valido_al IS NULL OR $3 < valido_al)",
    }
}

pub(crate) async fn record(
    store: &PostgresStore,
    e: EntityRef,
    at: Option<NaiveDate>,
) -> Result<Option<RecordSections>, Failure> {
    let sql = format!(
        "SELECT sezione, valore FROM versioni \
         WHERE kind = $1 AND entita = $2 AND {} AND valore IS NOT NULL AND sezione <> '{INDEX_SECTION}' \
         ORDER BY sezione",
        in_force(at)
    );
    let client = store.client().await?;
    let stmt = client.prepare_cached(&sql).await.ctx("reading a record")?;
    let id = to_i64(e.id(), "entity id")?;
    let rows = match at {
        None => client.query(&stmt, &[&e.kind(), &id]).await,
        Some(at) => client.query(&stmt, &[&e.kind(), &id, &at]).await,
    }
    .ctx("reading a record")?;
    if rows.is_empty() {
        return Ok(None);
    }
    let sections = rows
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(RecordSections { sections }))
}

pub(crate) async fn history(
    store: &PostgresStore,
    e: EntityRef,
    section: &str,
) -> Result<Vec<StoredVersion>, Failure> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT valido_dal, valido_al, creata_da, chiusa_da, valore FROM versioni \
             WHERE kind = $1 AND entita = $2 AND sezione = $3 ORDER BY id",
        )
        .await
        .ctx("reading a timeline")?;
    let rows = client
        .query(&stmt, &[&e.kind(), &to_i64(e.id(), "entity id")?, &section])
        .await
        .ctx("reading a timeline")?;
    let versions = rows
        .iter()
        .map(|r| {
            Ok(StoredVersion {
                entity: e,
                section: section.to_owned(),
                valido_dal: col(r, 0)?,
                valido_al: col(r, 1)?,
                creata_da: op_id(col(r, 2)?)?,
                chiusa_da: col::<Option<i64>>(r, 3)?.map(op_id).transpose()?,
                value: col(r, 4)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(versions)
}

pub(crate) async fn by_section_key(
    store: &PostgresStore,
    section: &str,
    key: &str,
    at: Option<NaiveDate>,
) -> Result<Vec<(EntityRef, serde_json::Value)>, Failure> {
    let sql = format!(
        "SELECT kind, entita, valore FROM versioni \
         WHERE sezione = $1 AND chiave = $2 AND {} AND valore IS NOT NULL",
        in_force(at)
    );
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&sql)
        .await
        .ctx("reading by section key")?;
    let rows = match at {
        None => client.query(&stmt, &[&section, &key]).await,
        Some(at) => client.query(&stmt, &[&section, &key, &at]).await,
    }
    .ctx("reading by section key")?;
    let mut out = rows
        .iter()
        .map(|r| {
            let kind: String = col(r, 0)?;
            Ok((entity(&kind, col(r, 1)?)?, col(r, 2)?))
        })
        .collect::<Result<Vec<(EntityRef, serde_json::Value)>, StoreError>>()?;
    out.sort_by_key(|a| a.0);
    Ok(out)
}

/// The smallest string greater than every string starting with `prefix`, in code point
/// order (which is byte order of UTF-8, i.e. the C collation); `None` if there is none.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            // Surrogates are not characters; the next one is U+E000.
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Adds a prefix condition as a range, which no input can turn into a pattern (unlike
/// LIKE) and which a btree index in the C collation serves directly.
fn add_prefix(f: &mut Filter, column: &str, prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    f.add(&format!("{column} >= $? COLLATE \"C\""), prefix.to_owned());
    match prefix_upper_bound(prefix) {
        Some(upper) => f.add(&format!("{column} < $? COLLATE \"C\""), upper),
        None => f.clauses.push(format!("{column} IS NOT NULL")),
    }
}

pub(crate) const SUBJECT_INDEX_COLUMNS: &str =
    "id, comune, posizione, codice_fiscale, cognome_key, nome_key, sesso, \
     data_nascita, id_comunale, id_famiglia, chiave_indirizzo";

fn subject_from_row(row: &Row) -> Result<SubjectIndex, StoreError> {
    let id: i64 = col(row, 0)?;
    Ok(SubjectIndex {
        id: IdAnprSoggetto::new(to_u64(id, "subject id")?)
            .map_err(|e| StoreError::Corrupt(format!("stored subject id: {e}")))?,
        comune: comune(col(row, 1)?)?,
        posizione: col(row, 2)?,
        codice_fiscale: col(row, 3)?,
        cognome_key: col(row, 4)?,
        nome_key: col(row, 5)?,
        sesso: col(row, 6)?,
        data_nascita: col(row, 7)?,
        id_comunale: col(row, 8)?,
        id_famiglia: col::<Option<i64>>(row, 9)?
            .map(|v| {
                IdAnprFamiglia::new(to_u64(v, "family id")?)
                    .map_err(|e| StoreError::Corrupt(format!("stored family id: {e}")))
            })
            .transpose()?,
        chiave_indirizzo: col(row, 10)?,
    })
}

pub(crate) async fn find_subjects(
    store: &PostgresStore,
    q: &SubjectQuery,
) -> Result<Vec<SubjectIndex>, Failure> {
    // PostgreSQL text cannot hold NUL, so a criterion containing one matches nothing;
    // answering here avoids sending a value the server would reject.
    let texts = [
        &q.codice_fiscale,
        &q.id_comunale,
        &q.cognome_prefix,
        &q.nome_prefix,
        &q.sesso,
        &q.posizione,
        &q.chiave_indirizzo,
    ];
    if texts
        .iter()
        .any(|t| t.as_deref().is_some_and(|s| s.contains('\0')))
        || q.posizioni.iter().any(|p| p.contains('\0'))
    {
        return Ok(Vec::new());
    }
    let mut f = Filter::default();
    if let Some(id) = q.id {
        f.add("id = $?", to_i64(id.get(), "subject id")?);
    }
    if let Some(cf) = &q.codice_fiscale {
        f.add("codice_fiscale = $?", cf.clone());
    }
    if let Some(c) = &q.comune {
        f.add("comune = $?", c.as_str().to_owned());
    }
    if let Some(v) = &q.id_comunale {
        f.add("id_comunale = $?", v.clone());
    }
    if let Some(p) = &q.cognome_prefix {
        add_prefix(&mut f, "cognome_key", p);
    }
    if let Some(p) = &q.nome_prefix {
        add_prefix(&mut f, "nome_key", p);
    }
    if let Some(d) = q.data_nascita {
        f.add("data_nascita = $?", d);
    }
    if let Some(s) = &q.sesso {
        f.add("sesso = $?", s.clone());
    }
    if let Some(p) = &q.posizione {
        f.add("posizione = $?", p.clone());
    }
    if !q.posizioni.is_empty() {
        f.add("posizione = ANY($?)", q.posizioni.clone());
    }
    if let Some(fam) = q.id_famiglia {
        f.add("id_famiglia = $?", to_i64(fam.get(), "family id")?);
    }
    if let Some(k) = &q.chiave_indirizzo {
        f.add("chiave_indirizzo = $?", k.clone());
    }
    if let Some(g) = q.genitore {
        // Written as the partial expression indexes of migration 6 are, so that each
        // branch is one index lookup.
        f.add(
            "id IN (SELECT entita FROM versioni WHERE sezione = 'genitori' AND valido_al IS NULL
                      AND (valore -> 'padre' ->> 'idAnpr') = $?
                    UNION
                    SELECT entita FROM versioni WHERE sezione = 'genitori' AND valido_al IS NULL
                      AND (valore -> 'madre' ->> 'idAnpr') = $?)",
            g.to_string(),
        );
    }
    f.params.push(Box::new(capped(q.limit, MAX_ROWS)));
    let sql = format!(
        "SELECT {SUBJECT_INDEX_COLUMNS} FROM indice_soggetti{} ORDER BY id LIMIT ${}",
        f.where_clause(),
        f.params.len()
    );
    let client = store.client().await?;
    let rows = client
        .query(&sql, &f.params())
        .await
        .ctx("searching subjects")?;
    Ok(rows
        .iter()
        .map(subject_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) async fn family_index(
    store: &PostgresStore,
    id: IdAnprFamiglia,
) -> Result<Option<FamilyIndex>, Failure> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT id, comune, tipo, stato, id_comunale, chiave_indirizzo FROM indice_famiglie WHERE id = $1",
        )
        .await
        .ctx("reading a family index")?;
    let row = client
        .query_opt(&stmt, &[&to_i64(id.get(), "family id")?])
        .await
        .ctx("reading a family index")?;
    let Some(row) = row else { return Ok(None) };
    let stored: i64 = col(&row, 0)?;
    Ok(Some(FamilyIndex {
        id: IdAnprFamiglia::new(to_u64(stored, "family id")?)
            .map_err(|e| StoreError::Corrupt(format!("stored family id: {e}")))?,
        comune: comune(col(&row, 1)?)?,
        tipo: col(&row, 2)?,
        stato: col(&row, 3)?,
        id_comunale: col(&row, 4)?,
        chiave_indirizzo: col(&row, 5)?,
    }))
}

const PROCEDIMENTO_COLUMNS: &str =
    "id, comune, numero_pratica_comune, stato, aperto, motivo_avvio, \
     data_avvio, data_stato, data_chiusura";

fn procedimento_from_row(row: &Row) -> Result<ProcedimentoIndex, StoreError> {
    Ok(ProcedimentoIndex {
        id: to_u64(col(row, 0)?, "proceeding id")?,
        comune: comune(col(row, 1)?)?,
        numero_pratica_comune: col(row, 2)?,
        stato: col(row, 3)?,
        aperto: col(row, 4)?,
        motivo_avvio: col(row, 5)?,
        data_avvio: col(row, 6)?,
        data_stato: col(row, 7)?,
        data_chiusura: col(row, 8)?,
    })
}

pub(crate) async fn find_procedimenti(
    store: &PostgresStore,
    q: &ProcedimentoQuery,
) -> Result<Vec<ProcedimentoIndex>, Failure> {
    // Text cannot hold NUL: such a criterion matches nothing (see find_subjects).
    if [&q.numero_pratica_comune, &q.stato]
        .iter()
        .any(|t| t.as_deref().is_some_and(|s| s.contains('\0')))
    {
        return Ok(Vec::new());
    }
    let mut f = Filter::default();
    if let Some(id) = q.id {
        // Past the bigint range there is no such proceeding.
        let Ok(id) = i64::try_from(id) else {
            return Ok(Vec::new());
        };
        f.add("id = $?", id);
    }
    if let Some(c) = &q.comune {
        f.add("comune = $?", c.as_str().to_owned());
    }
    if let Some(n) = &q.numero_pratica_comune {
        f.add("numero_pratica_comune = $?", n.clone());
    }
    if let Some(s) = &q.stato {
        f.add("stato = $?", s.clone());
    }
    if let Some(a) = q.aperto {
        f.add("aperto = $?", a);
    }
    if let Some(d) = q.avviato_dal {
        f.add("data_avvio >= $?", d);
    }
    if let Some(d) = q.avviato_al {
        f.add("data_avvio <= $?", d);
    }
    if let Some(sog) = q.soggetto {
        // The subject's link section in force now: one lookup in (sezione, chiave).
        f.add(
            "id IN (SELECT entita FROM versioni WHERE sezione = $? AND chiave = split_part($?, '.', 2)
                      AND kind = 'P' AND valido_al IS NULL AND valore IS NOT NULL)",
            anpr_domain::procedimento::sezione_soggetto(sog),
        );
    }
    f.params.push(Box::new(capped(q.limit, MAX_ROWS)));
    let sql = format!(
        "SELECT {PROCEDIMENTO_COLUMNS} FROM indice_procedimenti{} ORDER BY id LIMIT ${}",
        f.where_clause(),
        f.params.len()
    );
    let client = store.client().await?;
    let rows = client
        .query(&sql, &f.params())
        .await
        .ctx("searching proceedings")?;
    Ok(rows
        .iter()
        .map(procedimento_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

/// Columns of `operazioni_sospese`, in the order [`sospesa_from_row`] reads them.
pub(crate) const SOSPESA_COLUMNS: &str =
    "id, comune, codice_servizio, utente, creata_il, aggiornata_il, \
     soggetto, codice_fiscale, richiesta, note";

pub(crate) fn sospesa_from_row(row: &Row) -> Result<OperazioneSospesa, StoreError> {
    let codice: String = col(row, 2)?;
    Ok(OperazioneSospesa {
        id: to_u64(col(row, 0)?, "suspended operation id")?,
        comune: comune(col(row, 1)?)?,
        codice_servizio: codice
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("stored service code: {e}")))?,
        utente: col(row, 3)?,
        creata_il: col(row, 4)?,
        aggiornata_il: col(row, 5)?,
        soggetto: col::<Option<i64>>(row, 6)?
            .map(|v| {
                IdAnprSoggetto::new(to_u64(v, "subject id")?)
                    .map_err(|e| StoreError::Corrupt(format!("stored subject id: {e}")))
            })
            .transpose()?,
        codice_fiscale: col(row, 7)?,
        richiesta: col(row, 8)?,
        note: col(row, 9)?,
    })
}

pub(crate) async fn sospesa(
    store: &PostgresStore,
    id: u64,
) -> Result<Option<OperazioneSospesa>, Failure> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SOSPESA_COLUMNS} FROM operazioni_sospese WHERE id = $1"
        ))
        .await
        .ctx("reading a suspended operation")?;
    let row = client
        .query_opt(&stmt, &[&id])
        .await
        .ctx("reading a suspended operation")?;
    Ok(row.as_ref().map(sospesa_from_row).transpose()?)
}

pub(crate) async fn sospese(
    store: &PostgresStore,
    q: &QuerySospese,
) -> Result<Vec<OperazioneSospesa>, Failure> {
    if [&q.utente, &q.codice_fiscale]
        .iter()
        .any(|t| t.as_deref().is_some_and(|s| s.contains('\0')))
    {
        return Ok(Vec::new());
    }
    let mut f = Filter::default();
    if let Some(c) = &q.comune {
        f.add("comune = $?", c.as_str().to_owned());
    }
    if let Some(u) = &q.utente {
        f.add("utente = $?", u.clone());
    }
    if let Some(s) = q.soggetto {
        f.add("soggetto = $?", to_i64(s.get(), "subject id")?);
    }
    if let Some(cf) = &q.codice_fiscale {
        f.add("codice_fiscale = $?", cf.clone());
    }
    if let Some(c) = &q.codice_servizio {
        f.add("codice_servizio = $?", c.as_str().to_owned());
    }
    f.params.push(Box::new(capped(q.limit, MAX_ROWS)));
    let sql = format!(
        "SELECT {SOSPESA_COLUMNS} FROM operazioni_sospese{} ORDER BY id LIMIT ${}",
        f.where_clause(),
        f.params.len()
    );
    let client = store.client().await?;
    let rows = client
        .query(&sql, &f.params())
        .await
        .ctx("listing suspended operations")?;
    Ok(rows
        .iter()
        .map(sospesa_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) async fn audit_page(
    store: &PostgresStore,
    after: u64,
    limit: u32,
) -> Result<Vec<VoceAudit>, Failure> {
    // Past the end of the bigint range there is nothing to read.
    let Ok(after) = i64::try_from(after) else {
        return Ok(Vec::new());
    };
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT seq, istante, evento, azione, utente, comune, postazione, canale, oggetto, \
                    id_operazione_anpr, esito, hash_precedente, hash \
             FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .await
        .ctx("reading the audit log")?;
    let rows = client
        .query(&stmt, &[&after, &capped(limit, MAX_AUDIT_ROWS)])
        .await
        .ctx("reading the audit log")?;
    let entries = rows
        .iter()
        .map(|r| {
            let evento: String = col(r, 2)?;
            Ok(VoceAudit {
                seq: to_u64(col(r, 0)?, "audit seq")?,
                voce: NuovaVoceAudit {
                    istante: col::<DateTime<Utc>>(r, 1)?,
                    evento: TipoEvento::parse(&evento).ok_or_else(|| {
                        StoreError::Corrupt(format!("stored audit event {evento:?}"))
                    })?,
                    azione: col(r, 3)?,
                    utente: col(r, 4)?,
                    comune: col(r, 5)?,
                    postazione: col(r, 6)?,
                    canale: col(r, 7)?,
                    oggetto: col(r, 8)?,
                    id_operazione_anpr: col::<Option<i64>>(r, 9)?
                        .map(|v| to_u64(v, "audit id_operazione_anpr"))
                        .transpose()?,
                    esito: col(r, 10)?,
                },
                hash_precedente: col(r, 11)?,
                hash: col(r, 12)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(entries)
}

pub(crate) async fn audit_head(store: &PostgresStore) -> Result<Option<TestaCatena>, Failure> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("SELECT seq, hash FROM audit_testa")
        .await
        .ctx("reading the audit head")?;
    let row = client
        .query_opt(&stmt, &[])
        .await
        .ctx("reading the audit head")?;
    let Some(row) = row else {
        return Err(StoreError::Corrupt("the audit head row is missing".into()).into());
    };
    let seq = to_u64(col(&row, 0)?, "audit head seq")?;
    if seq == 0 {
        return Ok(None);
    }
    Ok(Some(TestaCatena {
        seq,
        hash: col(&row, 1)?,
    }))
}

const OUTBOX_COLUMNS: &str =
    "id, id_operazione_anpr, tipo, destinatario, payload, creato_il, tentativi, consegnato_il";

pub(crate) async fn outbox_pending(
    store: &PostgresStore,
    limit: u32,
) -> Result<Vec<OutboxMessage>, Failure> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE consegnato_il IS NULL ORDER BY id LIMIT $1"
        ))
        .await
        .ctx("reading the outbox")?;
    let rows = client
        .query(&stmt, &[&capped(limit, MAX_ROWS)])
        .await
        .ctx("reading the outbox")?;
    outbox_rows(&rows)
}

/// `Store::notifiche`.
pub(crate) async fn notifiche(
    store: &PostgresStore,
    q: &QueryNotifiche,
) -> Result<Vec<OutboxMessage>, Failure> {
    let mut f = Filter::default();
    f.add("destinatario = $?", q.destinatario.clone());
    if let Some(tipo) = &q.tipo {
        f.add("tipo = $?", tipo.clone());
    }
    match q.prese {
        Some(true) => f.clauses.push("consegnato_il IS NOT NULL".into()),
        Some(false) => f.clauses.push("consegnato_il IS NULL".into()),
        None => {}
    }
    if let Some(dal) = q.dal {
        f.add("creato_il >= $?", dal);
    }
    if let Some(al) = q.al {
        f.add("creato_il < $?", al);
    }
    if let Some(da) = q.operazione_da {
        f.add(
            "id_operazione_anpr >= $?",
            to_i64(da.get(), "operation id")?,
        );
    }
    if let Some(a) = q.operazione_a {
        f.add("id_operazione_anpr <= $?", to_i64(a.get(), "operation id")?);
    }
    if let Some(dopo) = q.dopo {
        f.add("id > $?", i64::try_from(dopo).unwrap_or(i64::MAX));
    }
    f.params.push(Box::new(capped(q.limit, MAX_ROWS)));
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox{} ORDER BY id LIMIT ${}",
        f.where_clause(),
        f.params.len()
    );
    let client = store.client().await?;
    let rows = client
        .query(&sql, &f.params())
        .await
        .ctx("reading the notifications")?;
    outbox_rows(&rows)
}

fn outbox_rows(rows: &[Row]) -> Result<Vec<OutboxMessage>, Failure> {
    let messages = rows
        .iter()
        .map(|r| {
            let tentativi: i32 = col(r, 6)?;
            Ok(OutboxMessage {
                id: to_u64(col(r, 0)?, "outbox id")?,
                id_operazione_anpr: col::<Option<i64>>(r, 1)?.map(op_id).transpose()?,
                message: NewOutboxMessage {
                    tipo: col(r, 2)?,
                    destinatario: col(r, 3)?,
                    payload: col(r, 4)?,
                },
                creato_il: col(r, 5)?,
                tentativi: u32::try_from(tentativi)
                    .map_err(|_| StoreError::Corrupt(format!("outbox attempts {tentativi}")))?,
                consegnato_il: col(r, 7)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(messages)
}

/// Columns of `documenti`, in the order [`documento_from_row`] reads them.
pub(crate) const DOCUMENTO_COLUMNS: &str =
    "id, tipo, comune, anno, protocollo, soggetto, emesso_il, utente, contenuto, \
     annullato_il, motivo_annullamento";

pub(crate) fn documento_from_row(row: &Row) -> Result<anpr_store::DocumentoEmesso, StoreError> {
    let tipo: String = col(row, 1)?;
    Ok(anpr_store::DocumentoEmesso {
        id: col(row, 0)?,
        tipo: anpr_store::TipoDocumento::parse(&tipo)
            .ok_or_else(|| StoreError::Corrupt(format!("document kind {tipo}")))?,
        comune: comune(col(row, 2)?)?,
        anno: col(row, 3)?,
        protocollo: to_u64(col(row, 4)?, "protocol number")?,
        soggetto: col::<Option<i64>>(row, 5)?
            .map(|v| {
                IdAnprSoggetto::new(to_u64(v, "subject id")?)
                    .map_err(|e| StoreError::Corrupt(format!("stored subject id: {e}")))
            })
            .transpose()?,
        emesso_il: col(row, 6)?,
        utente: col(row, 7)?,
        contenuto: col(row, 8)?,
        annullato_il: col(row, 9)?,
        motivo_annullamento: col(row, 10)?,
    })
}

/// `Store::documento`.
pub(crate) async fn documento(
    store: &PostgresStore,
    id: &str,
) -> Result<Option<anpr_store::DocumentoEmesso>, Failure> {
    if id.contains('\0') {
        return Ok(None);
    }
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {DOCUMENTO_COLUMNS} FROM documenti WHERE id = $1"
        ))
        .await
        .ctx("reading an issued document")?;
    let row = client
        .query_opt(&stmt, &[&id])
        .await
        .ctx("reading an issued document")?;
    Ok(row.as_ref().map(documento_from_row).transpose()?)
}

/// `Store::documenti`.
pub(crate) async fn documenti(
    store: &PostgresStore,
    q: &anpr_store::QueryDocumenti,
) -> Result<Vec<anpr_store::DocumentoEmesso>, Failure> {
    let mut f = Filter::default();
    if let Some(c) = &q.comune {
        f.add("comune = $?", c.as_str().to_owned());
    }
    if let Some(t) = q.tipo {
        f.add("tipo = $?", t.as_str().to_owned());
    }
    if let Some(s) = q.soggetto {
        f.add("soggetto = $?", to_i64(s.get(), "subject id")?);
    }
    if let Some(t) = q.dal {
        f.add("emesso_il >= $?", t);
    }
    if let Some(t) = q.al {
        f.add("emesso_il < $?", t);
    }
    f.params.push(Box::new(capped(q.limit, MAX_ROWS)));
    let sql = format!(
        "SELECT {DOCUMENTO_COLUMNS} FROM documenti{} ORDER BY emesso_il, id LIMIT ${}",
        f.where_clause(),
        f.params.len()
    );
    let client = store.client().await?;
    let rows = client
        .query(&sql, &f.params())
        .await
        .ctx("listing issued documents")?;
    Ok(rows
        .iter()
        .map(documento_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

/// Columns of `parametri_comune`, in the order [`parametri_from_row`] reads them.
pub(crate) const PARAMETRI_COLUMNS: &str = "comune, valori, logo, aggiornato_il, utente, versione";

pub(crate) fn parametri_from_row(row: &Row) -> Result<anpr_store::ParametriComune, StoreError> {
    Ok(anpr_store::ParametriComune {
        comune: comune(col(row, 0)?)?,
        valori: col(row, 1)?,
        logo: col(row, 2)?,
        aggiornato_il: col(row, 3)?,
        utente: col(row, 4)?,
        versione: to_u64(col(row, 5)?, "parameters version")?,
    })
}

/// `Store::parametri_comune`.
pub(crate) async fn parametri_comune(
    store: &PostgresStore,
    c: &anpr_domain::ids::CodiceIstatComune,
) -> Result<Option<anpr_store::ParametriComune>, Failure> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {PARAMETRI_COLUMNS} FROM parametri_comune WHERE comune = $1"
        ))
        .await
        .ctx("reading municipality parameters")?;
    let row = client
        .query_opt(&stmt, &[&c.as_str()])
        .await
        .ctx("reading municipality parameters")?;
    Ok(row.as_ref().map(parametri_from_row).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound("D ANG").as_deref(), Some("D ANH"));
        assert_eq!(prefix_upper_bound("%").as_deref(), Some("&"));
        assert_eq!(prefix_upper_bound("A\u{10FFFF}").as_deref(), Some("B"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(
            prefix_upper_bound("A\u{D7FF}").as_deref(),
            Some("A\u{E000}")
        );
        assert_eq!(prefix_upper_bound(""), None);
        // Every string with the prefix is inside [prefix, upper).
        for s in ["D ANGELO", "D ANG", "D ANG\u{10FFFF}"] {
            assert!(s >= "D ANG" && s < prefix_upper_bound("D ANG").unwrap().as_str());
        }
        assert!("D ANH" >= prefix_upper_bound("D ANG").unwrap().as_str());
    }
}
