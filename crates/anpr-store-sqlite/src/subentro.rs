//! The subentro bulk load (`Store::carica_subentro`) on SQLite.
//!
//! A municipality is loaded in **one transaction** on a connection of its own (not the
//! writer thread's: a load of a million records must not hold up, nor be split by, the
//! group commit of ordinary operations). SQLite's atomic commit gives the all-or-nothing
//! guarantee: a process killed at any point leaves the file as it was before the load,
//! and the WAL is simply not replayed. Inserts go through cached prepared statements;
//! the only reads are the few done by the operation and audit helpers.
//!
//! While the load runs it holds the database's write lock; other writers wait up to the
//! busy timeout and then fail, readers are never blocked (WAL).
//!
//! The rows of a load are new by construction (their ids were reserved for it), so the
//! search projections are written with plain `INSERT`s, not the read-then-write upsert of
//! ordinary operations. When a load brings at least as many records as a table already
//! holds, the table's secondary indexes are dropped at the start and built again at the
//! end (one sort per index instead of a B-tree insertion per row and index), with their
//! planner statistics: all inside the load's transaction, so a crash still leaves the
//! indexes as they were (see [`IndiciSospesi`]).

use std::path::Path;

use anpr_domain::audit::VoceAudit;
use anpr_domain::ids::CodiceIstatComune;
use anpr_domain::operazione::StatoOperazione;
use anpr_store::{
    CodiceFiscalePresente, EntityRef, FileSubentro, FineSubentro, IndexWrite, InizioSubentro,
    MessaggioSubentro, NewOperation, RecordSubentro, StoreError,
};
use rusqlite::{params, Connection, Statement};
use tokio::sync::mpsc;

use crate::codec::{date_to_sql, json_to_sql, timestamp_to_sql, Context};
use crate::write::{self, domain_id_sql, entity_sql, op_id_sql, PreparedOp, INDEX_SECTION};

/// Page cache of the bulk connection: large enough to keep the index pages being
/// appended to hot, far below the memory bound of the whole load.
const BULK_CACHE_KIB: i64 = 64 * 1024;

/// Runs a whole load; blocking (call it from `spawn_blocking`).
pub(crate) fn carica(
    path: &Path,
    inizio: InizioSubentro,
    mut records: mpsc::Receiver<MessaggioSubentro>,
) -> Result<VoceAudit, StoreError> {
    let conn = crate::schema::open_writer(path)?;
    conn.pragma_update(None, "cache_size", -BULK_CACHE_KIB)
        .ctx("setting cache_size")?;
    // Rebuilding an index sorts all its entries: in temporary files, not in memory
    // (the writer's `temp_store = MEMORY` would hold a whole sort of `versioni` in RAM).
    conn.pragma_update(None, "temp_store", "FILE")
        .ctx("setting temp_store")?;
    // The commit must not copy the whole load from the WAL into the database file before
    // answering: the store's checkpointer does that in the background, as for every
    // other write (a commit is durable once its WAL is synced).
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .ctx("setting wal_autocheckpoint")?;
    // Every row of the load references the load's own operation, inserted first in the
    // same transaction: checking that parent key again for each of millions of rows is
    // a B-tree lookup per row for nothing (about 9% of the inserts' time).
    conn.pragma_update(None, "foreign_keys", "OFF")
        .ctx("setting foreign_keys")?;
    let comune = inizio
        .operazione
        .comune
        .clone()
        .ok_or_else(|| StoreError::Invalid("a subentro names its municipality".into()))?;
    let intestazione = inizio.operazione.clone();
    let op = PreparedOp::new(inizio.operazione, false)?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .ctx("starting the load")?;
    let mut tempi = Tempi::default();
    let esito = (|| {
        if inizio.azzera_comune {
            let t = std::time::Instant::now();
            azzera(&conn, &comune)?;
            tracing::info!(ms = t.elapsed().as_millis(), "rehearsal data reset");
        }
        let sospesi =
            IndiciSospesi::sospendi(&conn, inizio.soggetti_previsti, inizio.famiglie_previste)?;
        let ordine = write::insert_operation(&conn, &op, None)?;
        let op_id = op_id_sql(op_id_of(&intestazione));
        let mut inseritore = Inseritore::new(&conn, op_id, ordine)?;
        loop {
            let t = std::time::Instant::now();
            let messaggio = records.blocking_recv();
            tempi.attesa += t.elapsed();
            let t = std::time::Instant::now();
            match messaggio {
                Some(MessaggioSubentro::Lotto(lotto)) => {
                    inseritore.lotto(&lotto)?;
                    tempi.inserimento += t.elapsed();
                }
                Some(MessaggioSubentro::Sezioni(sezioni)) => {
                    let mut righe = Vec::with_capacity(sezioni.len());
                    for (entity, dal, s) in &sezioni {
                        if s.section == INDEX_SECTION {
                            return Err(StoreError::Invalid("section _indice is reserved".into()));
                        }
                        righe.push(Riga {
                            entity: *entity,
                            section: s.section,
                            dal: date_to_sql(*dal)?,
                            json: &s.json,
                            key: s.key.as_deref(),
                        });
                    }
                    inseritore.versioni(&righe)?;
                    tempi.inserimento += t.elapsed();
                }
                Some(MessaggioSubentro::Fine(fine)) => {
                    drop(inseritore);
                    // A refused load is rolled back whole: rebuilding would be wasted.
                    if fine.esito_positivo {
                        sospesi.ricrea(&conn)?;
                    }
                    tempi.indici = t.elapsed();
                    return Ok(Some(fine));
                }
                None => return Ok(None),
            }
        }
    })();
    match esito {
        Ok(Some(fine)) if fine.esito_positivo => {
            let done = concludi(&conn, intestazione, fine, true);
            match done {
                Ok(audit) => {
                    let t = std::time::Instant::now();
                    conn.execute_batch("COMMIT").ctx("committing the load")?;
                    tempi.commit = t.elapsed();
                    tracing::info!(
                        attesa_ms = tempi.attesa.as_millis(),
                        inserimento_ms = tempi.inserimento.as_millis(),
                        indici_ms = tempi.indici.as_millis(),
                        commit_ms = tempi.commit.as_millis(),
                        "subentro load committed"
                    );
                    Ok(audit)
                }
                Err(e) => {
                    rollback(&conn);
                    Err(e)
                }
            }
        }
        Ok(Some(fine)) => {
            // A refused load: nothing of the records, only the refusal is kept.
            rollback(&conn);
            conn.execute_batch("BEGIN IMMEDIATE")
                .ctx("recording the refusal")?;
            let mut rifiutata = intestazione;
            rifiutata.stato = StatoOperazione::Rifiutata;
            let op = PreparedOp::new(rifiutata.clone(), false)?;
            let done = write::insert_operation(&conn, &op, None)
                .and_then(|_| concludi(&conn, rifiutata, fine, false));
            match done {
                Ok(audit) => {
                    conn.execute_batch("COMMIT").ctx("committing the refusal")?;
                    Ok(audit)
                }
                Err(e) => {
                    rollback(&conn);
                    Err(e)
                }
            }
        }
        Ok(None) => {
            rollback(&conn);
            Err(StoreError::Invalid(
                "the subentro load was interrupted before its end: nothing was written".into(),
            ))
        }
        Err(e) => {
            rollback(&conn);
            Err(e)
        }
    }
}

/// Where a load's time went (logged at its commit): waiting for the producer,
/// inserting, rebuilding the indexes, committing.
#[derive(Debug, Default)]
struct Tempi {
    attesa: std::time::Duration,
    inserimento: std::time::Duration,
    indici: std::time::Duration,
    commit: std::time::Duration,
}

fn op_id_of(op: &NewOperation) -> anpr_domain::ids::IdOperazioneAnpr {
    op.id
}

fn rollback(conn: &Connection) {
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::warn!(error = %e, "rolling back a subentro load failed");
    }
}

/// Records reset per statement. A `DELETE` collects the rowids it removes in memory
/// before removing them (SQLite's RowSet), so resetting a whole municipality in one
/// statement took memory in proportion to its records: peak RSS 488 MB instead of
/// ~310 MB for a repeated pre-subentro of a million persons (BENCHMARKS.md, session
/// 13). 65,536 records (about 720,000 versions) a step keep it to some 17 MB, in the
/// same transaction; 4,096 a step made the reset a third slower (40 s against 31 s).
const AZZERA_PER_PASSO: i64 = 65_536;

/// Removes a municipality's records, index rows and files (repeated pre-subentro).
/// The operation log keeps its entries: it is append-only.
fn azzera(conn: &Connection, comune: &CodiceIstatComune) -> Result<(), StoreError> {
    azzera_a_passi(conn, comune, AZZERA_PER_PASSO)
}

fn azzera_a_passi(
    conn: &Connection,
    comune: &CodiceIstatComune,
    passo: i64,
) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS azzera (kind TEXT NOT NULL, entity INTEGER NOT NULL);
         DELETE FROM azzera;",
    )
    .ctx("preparing the reset")?;
    let c = comune.as_str();
    conn.execute(
        "INSERT INTO azzera SELECT 'S', id FROM indice_soggetti WHERE comune = ?1
         UNION ALL SELECT 'F', id FROM indice_famiglie WHERE comune = ?1",
        [c],
    )
    .ctx("listing the records to reset")?;
    let (primo, ultimo): (i64, i64) = conn
        .query_row(
            "SELECT coalesce(min(rowid), 1), coalesce(max(rowid), 0) FROM azzera",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ctx("counting the records to reset")?;
    let mut da = primo;
    while da <= ultimo {
        let a = da.saturating_add(passo.max(1) - 1);
        for (sql, cosa) in [
            (
                "DELETE FROM versioni WHERE (kind, entity) IN
                   (SELECT kind, entity FROM azzera WHERE rowid BETWEEN ?1 AND ?2)",
                "removing the previous records",
            ),
            (
                "DELETE FROM operazioni_entita WHERE (kind, entity) IN
                   (SELECT kind, entity FROM azzera WHERE rowid BETWEEN ?1 AND ?2)",
                "removing the previous records' links",
            ),
            (
                "DELETE FROM indice_soggetti WHERE id IN
                   (SELECT entity FROM azzera WHERE kind = 'S' AND rowid BETWEEN ?1 AND ?2)",
                "removing the previous subject index",
            ),
            (
                "DELETE FROM indice_famiglie WHERE id IN
                   (SELECT entity FROM azzera WHERE kind = 'F' AND rowid BETWEEN ?1 AND ?2)",
                "removing the previous family index",
            ),
        ] {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute([da, a]))
                .ctx(cosa)?;
        }
        da = a.saturating_add(1);
    }
    conn.execute_batch("DELETE FROM azzera;")
        .ctx("ending the reset")?;
    conn.execute("DELETE FROM subentro_file WHERE comune = ?1", [c])
        .ctx("removing the previous files")?;
    Ok(())
}

/// Tables whose secondary indexes a load may rebuild instead of maintaining, and what
/// their size is compared with: `versioni` grows with the records, so its existing size
/// is measured in records too (subjects plus families).
const TABELLE_RICOSTRUIBILI: &[&str] = &["indice_soggetti", "indice_famiglie", "versioni"];

/// Indexes of those tables that a load keeps up to date instead of rebuilding: their
/// keys arrive in almost ascending order (a load's ids are reserved in one ascending
/// block per kind, and its records are sent in id order), so each insertion lands on the
/// rightmost leaf of its kind. Measured on 200,000 persons: maintaining the timeline
/// costs about 1.0 s of inserts, rebuilding it 1.3 s plus a sort of 2.3 M keys in memory.
const INDICI_IN_ORDINE: &[&str] = &["versioni_timeline"];

/// The secondary indexes dropped for a load, with the SQL that creates them again.
///
/// Dropping and creating indexes are schema changes inside the load's transaction:
/// until the commit other connections keep seeing the committed schema, indexes
/// included, and a rollback or a crash restores it with the data. The definitions are
/// read from `sqlite_schema`, so an index added by a later migration is rebuilt as it
/// was declared. Dropping an index also removes its `sqlite_stat1` rows; the rebuild
/// runs `ANALYZE` on each index it creates, so the planner (whose plans are kept
/// stable per connection, see `schema::stable_plans`) does not find the indexes of a
/// freshly loaded table without statistics next to analysed ones.
#[derive(Debug, Default)]
struct IndiciSospesi {
    /// `(name, CREATE INDEX statement)` in creation order.
    indici: Vec<(String, String)>,
    /// Indexes of the same tables kept up to date during the load
    /// ([`INDICI_IN_ORDINE`]): analysed again at the end with the rebuilt ones, so the
    /// planner does not weigh the table's indexes on statistics of different ages.
    mantenuti: Vec<String>,
}

impl IndiciSospesi {
    /// Drops the secondary indexes of the tables that the load at least doubles.
    fn sospendi(
        conn: &Connection,
        soggetti_previsti: u64,
        famiglie_previste: u64,
    ) -> Result<Self, StoreError> {
        let conta = |tabella: &str| -> Result<u64, StoreError> {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {tabella}"), [], |r| r.get(0))
                .ctx(&format!("counting the rows of {tabella}"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let soggetti = conta("indice_soggetti")?;
        let famiglie = conta("indice_famiglie")?;
        let mut sospesi = Self::default();
        for tabella in TABELLE_RICOSTRUIBILI {
            let (presenti, previsti) = match *tabella {
                "indice_soggetti" => (soggetti, soggetti_previsti),
                "indice_famiglie" => (famiglie, famiglie_previste),
                _ => (
                    soggetti.saturating_add(famiglie),
                    soggetti_previsti.saturating_add(famiglie_previste),
                ),
            };
            if previsti == 0 || previsti < presenti {
                continue;
            }
            let mut stmt = conn
                .prepare(
                    "SELECT name, sql FROM sqlite_schema
                     WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY rowid",
                )
                .ctx("listing the indexes to rebuild")?;
            let indici = stmt
                .query_map([tabella], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .ctx("listing the indexes to rebuild")?;
            let (mantenuti, indici): (Vec<_>, Vec<_>) = indici
                .into_iter()
                .partition(|(nome, _)| INDICI_IN_ORDINE.contains(&nome.as_str()));
            sospesi
                .mantenuti
                .extend(mantenuti.into_iter().map(|(nome, _)| nome));
            for (nome, _) in &indici {
                conn.execute_batch(&format!("DROP INDEX \"{nome}\""))
                    .ctx(&format!("dropping index {nome} for the load"))?;
            }
            tracing::debug!(
                tabella = *tabella,
                presenti,
                previsti,
                indici = indici.len(),
                "indexes rebuilt after the load"
            );
            sospesi.indici.extend(indici);
        }
        Ok(sospesi)
    }

    /// Creates the dropped indexes again and gathers their statistics.
    fn ricrea(self, conn: &Connection) -> Result<(), StoreError> {
        for (nome, sql) in &self.indici {
            let t = std::time::Instant::now();
            conn.execute_batch(sql)
                .ctx(&format!("rebuilding index {nome}"))?;
            let t1 = t.elapsed();
            conn.execute_batch(&format!("ANALYZE \"{nome}\""))
                .ctx(&format!("analysing index {nome}"))?;
            tracing::debug!(
                indice = %nome,
                crea_ms = t1.as_millis(),
                analizza_ms = (t.elapsed() - t1).as_millis(),
                "index rebuilt"
            );
        }
        for nome in &self.mantenuti {
            conn.execute_batch(&format!("ANALYZE \"{nome}\""))
                .ctx(&format!("analysing index {nome}"))?;
        }
        Ok(())
    }
}

/// Rows of `versioni` per multi-row `INSERT`: one statement step for many rows.
const RIGHE_PER_INSERT: usize = 32;

/// One `versioni` row of the load.
struct Riga<'a> {
    entity: EntityRef,
    section: &'a str,
    dal: String,
    json: &'a str,
    key: Option<&'a str>,
}

/// The load's inserts, with their statements prepared once: `versioni` rows go in
/// multi-row statements (a batch's rows in order, [`RIGHE_PER_INSERT`] at a time), index
/// rows with plain inserts (the records are new: an id already present is an error that
/// fails the load), links one by one.
struct Inseritore<'c> {
    conn: &'c Connection,
    op_id: i64,
    ordine: i64,
    /// Statement for `n` rows at index `n - 1`, prepared on first use.
    versioni: Vec<Option<Statement<'c>>>,
    legame: Statement<'c>,
    indice_soggetto: Statement<'c>,
    indice_famiglia: Statement<'c>,
}

impl<'c> Inseritore<'c> {
    fn new(conn: &'c Connection, op_id: i64, ordine: i64) -> Result<Self, StoreError> {
        Ok(Self {
            conn,
            op_id,
            ordine,
            versioni: (0..RIGHE_PER_INSERT).map(|_| None).collect(),
            legame: conn
                .prepare(
                    "INSERT INTO operazioni_entita (kind, entity, ordine, op) VALUES (?1, ?2, ?3, ?4)",
                )
                .ctx("preparing links")?,
            indice_soggetto: conn
                .prepare(
                    "INSERT INTO indice_soggetti (id, comune, posizione, codice_fiscale, cognome_key, nome_key,
                                                  sesso, data_nascita, id_comunale, id_famiglia, chiave_indirizzo)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .ctx("preparing the subject index")?,
            indice_famiglia: conn
                .prepare(
                    "INSERT INTO indice_famiglie (id, comune, tipo, stato, id_comunale, chiave_indirizzo)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .ctx("preparing the family index")?,
        })
    }

    fn indice(&mut self, index: &IndexWrite) -> Result<(), StoreError> {
        match index {
            IndexWrite::Soggetto(s) => {
                let data_nascita = s.data_nascita.map(date_to_sql).transpose()?;
                self.indice_soggetto
                    .execute(params![
                        domain_id_sql(s.id.get()),
                        s.comune.as_str(),
                        s.posizione,
                        s.codice_fiscale,
                        s.cognome_key,
                        s.nome_key,
                        s.sesso,
                        data_nascita,
                        s.id_comunale,
                        s.id_famiglia.map(|f| domain_id_sql(f.get())),
                        s.chiave_indirizzo,
                    ])
                    .ctx("writing the subject index")?;
            }
            IndexWrite::Famiglia(f) => {
                self.indice_famiglia
                    .execute(params![
                        domain_id_sql(f.id.get()),
                        f.comune.as_str(),
                        f.tipo,
                        f.stato,
                        f.id_comunale,
                        f.chiave_indirizzo,
                    ])
                    .ctx("writing the family index")?;
            }
            IndexWrite::Procedimento(_) => {
                return Err(StoreError::Invalid(
                    "a subentro loads subjects and families only".into(),
                ))
            }
        }
        Ok(())
    }

    fn lotto(&mut self, lotto: &[RecordSubentro]) -> Result<(), StoreError> {
        // The index rows' JSON first: the rows below borrow it.
        let mut indici = Vec::with_capacity(lotto.len());
        let mut righe_totali = 0;
        for r in lotto {
            if r.index.entity() != r.entity {
                return Err(StoreError::Invalid(format!(
                    "index row of another record than {}",
                    r.entity
                )));
            }
            indici.push(match &r.index {
                IndexWrite::Soggetto(s) => json_to_sql(s, "subject index")?,
                IndexWrite::Famiglia(f) => json_to_sql(f, "family index")?,
                IndexWrite::Procedimento(_) => {
                    return Err(StoreError::Invalid(
                        "a subentro loads subjects and families only".into(),
                    ))
                }
            });
            righe_totali += r.sections.len() + 1;
        }
        let mut righe = Vec::with_capacity(righe_totali);
        for (r, indice) in lotto.iter().zip(&indici) {
            let dal = date_to_sql(r.valido_dal)?;
            for s in &r.sections {
                if s.section == INDEX_SECTION {
                    return Err(StoreError::Invalid("section _indice is reserved".into()));
                }
                righe.push(Riga {
                    entity: r.entity,
                    section: s.section,
                    dal: dal.clone(),
                    json: &s.json,
                    key: s.key.as_deref(),
                });
            }
            righe.push(Riga {
                entity: r.entity,
                section: INDEX_SECTION,
                dal,
                json: indice,
                key: None,
            });
        }
        self.versioni(&righe)?;
        for r in lotto {
            self.indice(&r.index)?;
            self.legame
                .execute(params![
                    r.entity.kind(),
                    entity_sql(r.entity),
                    self.ordine,
                    self.op_id
                ])
                .ctx("linking a record")?;
        }
        Ok(())
    }

    fn versioni(&mut self, righe: &[Riga<'_>]) -> Result<(), StoreError> {
        let op_id = self.op_id;
        for pezzo in righe.chunks(RIGHE_PER_INSERT) {
            let n = pezzo.len();
            if self.versioni[n - 1].is_none() {
                let valori = vec!["(?, ?, ?, ?, NULL, ?, NULL, ?, ?)"; n].join(", ");
                // OR FAIL: a statement that may abort half-way makes SQLite copy every
                // page it touches into a statement journal first; a failed row fails
                // (and rolls back) the whole load anyway.
                let sql = format!(
                    "INSERT OR FAIL INTO versioni (kind, entity, section, valido_dal, valido_al, creata_da, chiusa_da, value, chiave) VALUES {valori}"
                );
                self.versioni[n - 1] = Some(self.conn.prepare(&sql).ctx("preparing versions")?);
            }
            let st = self.versioni[n - 1].as_mut().expect("prepared above");
            let mut i = 0;
            for r in pezzo {
                let mut lega = |v: &dyn rusqlite::ToSql| {
                    i += 1;
                    st.raw_bind_parameter(i, v)
                };
                lega(&r.entity.kind())
                    .and_then(|()| lega(&entity_sql(r.entity)))
                    .and_then(|()| lega(&r.section))
                    .and_then(|()| lega(&r.dal))
                    .and_then(|()| lega(&op_id))
                    .and_then(|()| lega(&r.json))
                    .and_then(|()| lega(&r.key))
                    .ctx("binding a version")?;
            }
            st.raw_execute().ctx("inserting versions")?;
        }
        Ok(())
    }
}

/// Stores the response, the files, the outbox and the audit entry of the load.
fn concludi(
    conn: &Connection,
    mut op: NewOperation,
    fine: FineSubentro,
    positivo: bool,
) -> Result<VoceAudit, StoreError> {
    op.risposta = fine.risposta;
    op.outbox = fine.outbox;
    op.audit = fine.audit;
    let prepared = PreparedOp::new(op.clone(), false)?;
    conn.execute(
        "UPDATE operazioni SET risposta = ?1 WHERE id = ?2",
        params![op.risposta, op_id_sql(op.id)],
    )
    .ctx("storing the response")?;
    for f in &fine.files {
        inserisci_file(conn, f, positivo.then_some(op.id))?;
    }
    write::insert_outbox(conn, &prepared)?;
    write::chain_audit(conn, prepared.audit().clone())
}

fn inserisci_file(
    conn: &Connection,
    f: &FileSubentro,
    id_operazione: Option<anpr_domain::ids::IdOperazioneAnpr>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO subentro_file (comune, nome_file, sha256, stato, id_operazione, registrato_il, soggetti, famiglie)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            f.comune.as_str(),
            f.nome_file,
            f.sha256,
            f.stato,
            id_operazione.map(op_id_sql),
            timestamp_to_sql(f.registrato_il).unwrap_or_default(),
            i64::try_from(f.soggetti).unwrap_or(i64::MAX),
            i64::try_from(f.famiglie).unwrap_or(i64::MAX),
        ])
    })
    .ctx("recording a subentro file")?;
    Ok(())
}

/// `Store::file_subentro`.
pub(crate) fn file_subentro(
    conn: &Connection,
    comune: &CodiceIstatComune,
) -> Result<Vec<FileSubentro>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT nome_file, sha256, stato, id_operazione, registrato_il, soggetti, famiglie
             FROM subentro_file WHERE comune = ?1 ORDER BY rowid",
        )
        .ctx("preparing the file list")?;
    let rows = stmt
        .query_map([comune.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading the file list")?;
    rows.into_iter()
        .map(
            |(nome_file, sha256, stato, op, quando, soggetti, famiglie)| {
                Ok(FileSubentro {
                    comune: comune.clone(),
                    nome_file,
                    sha256,
                    stato,
                    id_operazione: op.map(write::op_id_from_sql).transpose()?,
                    registrato_il: crate::codec::timestamp_from_sql(&quando, "registrato_il")?,
                    soggetti: crate::codec::u64_from_sql(soggetti, "soggetti")?,
                    famiglie: crate::codec::u64_from_sql(famiglie, "famiglie")?,
                })
            },
        )
        .collect()
}

/// `Store::codici_fiscali_presenti`, in chunks that stay under SQLite's parameter limit.
pub(crate) fn codici_fiscali_presenti(
    conn: &Connection,
    codici: &[String],
) -> Result<Vec<CodiceFiscalePresente>, StoreError> {
    let mut out = Vec::new();
    for chunk in codici.chunks(500) {
        let segnaposti = vec!["?"; chunk.len()].join(",");
        let sql = format!(
            "SELECT codice_fiscale, comune, posizione FROM indice_soggetti WHERE codice_fiscale IN ({segnaposti})"
        );
        let mut stmt = conn
            .prepare_cached(&sql)
            .ctx("preparing the tax code lookup")?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(chunk.iter()), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("looking up tax codes")?;
        for (cf, comune, posizione) in rows {
            out.push(CodiceFiscalePresente {
                codice_fiscale: cf,
                comune: comune.parse().map_err(|_| {
                    StoreError::Corrupt(format!("comune {comune} in the subject index"))
                })?,
                posizione,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::schema::{migrate, open_writer};

    /// Rows of `tabella` matching `filtro`.
    fn righe(conn: &Connection, tabella: &str, filtro: &str) -> i64 {
        conn.query_row(
            &format!("SELECT count(*) FROM {tabella} WHERE {filtro}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// A reset removes every record of the municipality, across several of its steps
    /// and at their boundaries, and nothing of another municipality.
    #[test]
    fn a_reset_removes_the_whole_municipality_step_by_step_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("t.sqlite3")).unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        // Subjects and families of two municipalities, interleaved, more than two steps'
        // worth of the first one; three versions and a link per record.
        const PASSO: i64 = 100;
        let n = 2 * PASSO + 7;
        conn.execute_batch("BEGIN").unwrap();
        for i in 1..=2 * n {
            let comune = if i % 2 == 0 { "015146" } else { "058091" };
            conn.execute(
                "INSERT INTO indice_soggetti (id, comune, posizione) VALUES (?1, ?2, 'R')",
                params![i, comune],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO indice_famiglie (id, comune, tipo, stato) VALUES (?1, ?2, 'F', 'A')",
                params![i, comune],
            )
            .unwrap();
            for kind in ["S", "F"] {
                for section in ["a", "b", "c"] {
                    conn.execute(
                        "INSERT INTO versioni (kind, entity, section, valido_dal, creata_da, value)
                         VALUES (?1, ?2, ?3, '2026-01-01', 1, '{}')",
                        params![kind, i, section],
                    )
                    .unwrap();
                }
                conn.execute(
                    "INSERT INTO operazioni_entita (kind, entity, ordine, op) VALUES (?1, ?2, 1, 1)",
                    params![kind, i],
                )
                .unwrap();
            }
        }
        conn.execute_batch("COMMIT").unwrap();
        conn.execute(
            "INSERT INTO subentro_file (comune, nome_file, sha256, stato, registrato_il, soggetti, famiglie)
             VALUES ('015146', 'APR_015146_001_001.xml', 'x', 'ELABORATO', '2026-01-01', 1, 1)",
            [],
        )
        .unwrap();
        azzera_a_passi(&conn, &"015146".parse().unwrap(), PASSO).unwrap();
        let pari = "entity % 2 = 0";
        let dispari = "entity % 2 = 1";
        for (tabella, filtro, per_record) in [
            ("versioni", pari, 0),
            ("operazioni_entita", pari, 0),
            ("versioni", dispari, 6),
            ("operazioni_entita", dispari, 2),
        ] {
            assert_eq!(
                righe(&conn, tabella, filtro),
                per_record * n,
                "{tabella} {filtro}"
            );
        }
        for tabella in ["indice_soggetti", "indice_famiglie"] {
            assert_eq!(righe(&conn, tabella, "comune = '015146'"), 0, "{tabella}");
            assert_eq!(righe(&conn, tabella, "comune = '058091'"), n, "{tabella}");
        }
        assert_eq!(righe(&conn, "subentro_file", "1"), 0);
        assert_eq!(righe(&conn, "temp.azzera", "1"), 0);
        // Again, on a municipality with nothing left: nothing to do, nothing removed.
        azzera(&conn, &"015146".parse().unwrap()).unwrap();
        assert_eq!(righe(&conn, "versioni", "1"), 6 * n);
    }
}
