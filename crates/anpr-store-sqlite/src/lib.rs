//! The embedded default storage backend: one SQLite file per environment.
//!
//! [`SqliteStore`] implements [`anpr_store::Store`] on a single database file in WAL
//! mode with `synchronous=FULL`, so every acknowledged write is durable.
//!
//! - **Writes** go through one dedicated writer thread that owns the only write
//!   connection and commits queued requests in groups, each request in its own
//!   savepoint (`writer.rs`): concurrent callers share one `fsync` per group, and each
//!   reply still means "committed and durable".
//! - **Reads** use a small pool of read-only connections on tokio's blocking pool
//!   (`read.rs`); in WAL mode they never wait for the writer.
//! - **Ids** are handed out from blocks reserved durably in the `sequenze` table, so
//!   allocating one is a memory operation and no id is ever handed out twice, even
//!   across restarts (a restart leaves a gap).
//! - **Schema** is migrated on open from the embedded `migrations/` (`schema.rs`).
//!
//! The data model is the store contract's: an append-only operation log, the versions of
//! every record section with valid time (`valido_dal`/`valido_al`) and record time
//! (`creata_da`/`chiusa_da`), the current index projections (also versioned, as the
//! internal section `_indice`, so that annulment restores them), the outbox and the
//! hash-chained audit log.
#![forbid(unsafe_code)]

mod checkpoint;
mod codec;
mod documenti;
mod elaborazioni;
mod read;
mod schema;
mod sicurezza;
mod subentro;
mod write;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anpr_domain::audit::{NuovaVoceAudit, TestaCatena, VoceAudit};
use anpr_domain::caller::Ambiente;
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdOperazioneAnpr, IdOperazioneComune};
use anpr_store::sicurezza::{
    CaSicurezza, CaricoSicurezza, EsitoMail, GettoneSicurezza, MailSicurezza, ModificaSicurezza,
    StatoMail,
};
use anpr_store::{
    Backend, EntityRef, FamilyIndex, MetricaStore, NewOperation, NuovaSospesa, OperationQuery,
    OperazioneSospesa, OutboxMessage, ProcedimentoIndex, ProcedimentoQuery, QueryNotifiche,
    QuerySospese, RecordSections, RecordTesto, Sequence, Store, StoreError, StoredOperation,
    StoredVersion, SubjectIndex, SubjectQuery,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::Mutex;

use crate::checkpoint::Checkpointer;
use crate::codec::Context;
use crate::read::Readers;
use crate::write::{PreparedOp, PreparedSospesa};
use crate::writer::{Done, Job, Writer};

pub use crate::writer::WriterStats;

/// Read-only connections in the pool. Reads are short index lookups; a few connections
/// keep both cores busy without crowding the writer.
const READERS: usize = 4;

/// Ids reserved per trip to the database. Large enough that reservations are rare, small
/// enough that the gap a restart leaves is negligible.
const ID_BLOCK: u64 = 1000;

/// A block of reserved ids: `next..end` are still free.
#[derive(Debug, Default)]
struct IdBlock {
    next: u64,
    end: u64,
}

/// The SQLite implementation of [`Store`] for one environment's data set.
///
/// Dropping the store closes the write queue and waits for the writer thread to finish
/// the requests already queued (none, once no caller holds a reference) and close the
/// file; this takes at most one group commit.
pub struct SqliteStore {
    path: PathBuf,
    // Field order is drop order: the checkpointer stops, then the writer finishes and
    // closes (the last connection to close checkpoints what remains).
    // Held for its `Drop`, which stops the thread.
    checkpointer: Checkpointer,
    /// What the writer's WAL hook reports: the WAL's size (shared with the checkpointer)
    /// and the frames written so far.
    wal: checkpoint::RapportoWal,
    writer: Writer,
    readers: Arc<Readers>,
    /// One block per sequence, each behind its own async lock (held across the rare
    /// reservation, so concurrent callers wait for it instead of reserving twice).
    sequences: [Mutex<IdBlock>; Sequence::ALL.len()],
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The schema version this program writes (its newest migration).
    pub fn schema_version() -> i64 {
        schema::latest_version()
    }

    /// Opens the database at `path`, creating it if missing, and migrates its schema.
    /// Refuses a database whose schema is newer than this program.
    ///
    /// Blocking (file I/O, migrations): call it at startup, or from
    /// `tokio::task::spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = schema::open_writer(path)?;
        schema::migrate(&mut conn)?;
        // Readers open after the migration: the file exists, is in WAL mode and has
        // every table they will prepare statements against.
        let readers = Readers::open(path, READERS)?;
        // Checkpoints run on their own thread (see `checkpoint`), never inside a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .ctx("setting wal_autocheckpoint")?;
        // After the pragma, which replaces any WAL hook: each commit tells the
        // checkpointer how large the WAL is, so it copies as soon as there is enough.
        let wal = checkpoint::riferisci_frames(&mut conn)?;
        let checkpointer = Checkpointer::start(
            path,
            checkpoint::RIAVVIO_FRAMES,
            Arc::clone(&wal.frames),
            checkpoint::FRAMES_ROUND,
        )?;
        let writer = Writer::start(conn, path)?;
        tracing::info!(path = %path.display(), "SQLite store open");
        Ok(Self {
            path: path.to_owned(),
            checkpointer,
            wal,
            writer,
            readers,
            sequences: Default::default(),
        })
    }

    /// Opens the data set of `ambiente` in `data_dir` (`<data_dir>/<ambiente>.sqlite3`),
    /// creating the directory if needed. Environments are isolated: one file each.
    pub fn open_in_dir(data_dir: &Path, ambiente: Ambiente) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", data_dir.display())))?;
        Self::open(&Self::path_in_dir(data_dir, ambiente))
    }

    /// The database file of `ambiente` in `data_dir`.
    pub fn path_in_dir(data_dir: &Path, ambiente: Ambiente) -> PathBuf {
        data_dir.join(format!("{}.sqlite3", ambiente.as_str()))
    }

    /// Copies the whole WAL of the database at `path` into the database file and empties
    /// it, for the end of a one-shot command that leaves a large WAL behind, such as a
    /// subentro import (a server's checkpointer does the same in the background).
    /// Blocking. A `PASSIVE` checkpoint copies first (it never holds up the writers of a
    /// server that may be running on the same file); the `TRUNCATE` that follows only
    /// empties the file, and waits at most a second for readers, since while it waits no
    /// one may write. Returns the size of the WAL it emptied, in bytes.
    pub fn checkpoint_completo(path: &Path) -> Result<u64, StoreError> {
        checkpoint::completo(path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer thread has done so far (groups committed, requests run, syncs).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Restarts of the WAL forced by the checkpointer so far (see `checkpoint`), for
    /// monitoring: under a steady load they keep the WAL file bounded.
    pub fn wal_restarts(&self) -> u64 {
        self.checkpointer.riavvii()
    }

    /// Checkpoint rounds run so far by the checkpointer, for monitoring: one per
    /// 256 frames (1 MiB) written under load, one per 200 ms otherwise.
    pub fn checkpoint_rounds(&self) -> u64 {
        self.checkpointer.round()
    }

    /// Frames in the WAL after the writer's latest commit, as its WAL hook reported it
    /// to the checkpointer (0 before the first commit), for monitoring.
    pub fn wal_frames(&self) -> i64 {
        self.wal.frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Frames (pages) the writer's commits have appended to the WAL since the store
    /// opened, across restarts of the log: the store's write volume, for monitoring
    /// (the bench reports it per operation).
    pub fn wal_frames_written(&self) -> u64 {
        self.wal.scritti.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn write(&self, job: Job) -> Result<Done, StoreError> {
        self.writer.submit(job).await
    }

    async fn write_audited(&self, job: Job) -> Result<VoceAudit, StoreError> {
        match self.write(job).await? {
            Done::Audit(entry) => Ok(entry),
            other => Err(unexpected(&other)),
        }
    }

    async fn sicurezza(&self, s: sicurezza::Scrittura) -> Result<sicurezza::Risposta, StoreError> {
        match self.write(Job::Sicurezza(s)).await? {
            Done::Sicurezza(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    async fn write_unit(&self, job: Job) -> Result<(), StoreError> {
        match self.write(job).await? {
            Done::Nothing => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(done: &Done) -> StoreError {
    StoreError::Backend(format!(
        "the writer replied with an unexpected result: {done:?}"
    ))
}

fn inattesa(r: &sicurezza::Risposta) -> StoreError {
    StoreError::Backend(format!(
        "the writer replied with an unexpected security result: {r:?}"
    ))
}

fn sequence_slot(sequence: Sequence) -> usize {
    match sequence {
        Sequence::Operazione => 0,
        Sequence::Soggetto => 1,
        Sequence::Famiglia => 2,
        Sequence::Procedimento => 3,
        Sequence::Sospesa => 4,
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn next_id(&self, sequence: Sequence) -> Result<u64, StoreError> {
        let mut block = self.sequences[sequence_slot(sequence)].lock().await;
        if block.next >= block.end {
            match self
                .write(Job::ReserveIds {
                    sequence: sequence.name(),
                    count: ID_BLOCK,
                })
                .await?
            {
                Done::Ids { start, end } => *block = IdBlock { next: start, end },
                other => return Err(unexpected(&other)),
            }
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    async fn apply(&self, op: NewOperation) -> Result<VoceAudit, StoreError> {
        // Validation and JSON serialisation happen here, on the caller's task, to keep
        // the single writer thread busy with SQL only.
        let op = PreparedOp::new(op, false)?;
        self.write_audited(Job::Apply(op)).await
    }

    async fn annul(
        &self,
        target: IdOperazioneAnpr,
        annulment: NewOperation,
    ) -> Result<VoceAudit, StoreError> {
        let annulment = PreparedOp::new(annulment, true)?;
        self.write_audited(Job::Annul { target, annulment }).await
    }

    async fn operation(&self, id: IdOperazioneAnpr) -> Result<Option<StoredOperation>, StoreError> {
        self.readers
            .run_inline(move |c| read::operation(c, id))
            .await
    }

    async fn conferma_durevole(&self) -> Result<(), StoreError> {
        self.write_unit(Job::Barriera).await
    }

    async fn operation_by_comune_id(
        &self,
        comune: &CodiceIstatComune,
        id: IdOperazioneComune,
    ) -> Result<Option<StoredOperation>, StoreError> {
        let comune = comune.clone();
        self.readers
            .run_inline(move |c| read::operation_by_comune_id(c, &comune, id))
            .await
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<StoredOperation>, StoreError> {
        let query = query.clone();
        self.readers.run(move |c| read::operations(c, &query)).await
    }

    async fn record(
        &self,
        entity: EntityRef,
        at: Option<NaiveDate>,
    ) -> Result<Option<RecordSections>, StoreError> {
        self.readers
            .run_inline(move |c| read::record(c, entity, at))
            .await
    }

    async fn history(
        &self,
        entity: EntityRef,
        section: &str,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let section = section.to_owned();
        self.readers
            .run(move |c| read::history(c, entity, &section))
            .await
    }

    async fn by_section_key(
        &self,
        section: &str,
        key: &str,
        at: Option<NaiveDate>,
    ) -> Result<Vec<(EntityRef, serde_json::Value)>, StoreError> {
        let (section, key) = (section.to_owned(), key.to_owned());
        self.readers
            .run(move |c| read::by_section_key(c, &section, &key, at))
            .await
    }

    async fn find_subject_records(
        &self,
        query: &SubjectQuery,
        at: Option<NaiveDate>,
    ) -> Result<Vec<(SubjectIndex, Option<RecordTesto>)>, StoreError> {
        let query = query.clone();
        self.readers
            .run_inline(move |c| read::find_subject_records(c, &query, at))
            .await
    }

    async fn find_subjects(&self, query: &SubjectQuery) -> Result<Vec<SubjectIndex>, StoreError> {
        let query = query.clone();
        self.readers
            .run_inline(move |c| read::find_subjects(c, &query))
            .await
    }

    async fn family_index(&self, id: IdAnprFamiglia) -> Result<Option<FamilyIndex>, StoreError> {
        self.readers
            .run_inline(move |c| read::family_index(c, id))
            .await
    }

    async fn find_procedimenti(
        &self,
        query: &ProcedimentoQuery,
    ) -> Result<Vec<ProcedimentoIndex>, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |c| read::find_procedimenti(c, &query))
            .await
    }

    async fn salva_sospesa(&self, sospesa: NuovaSospesa) -> Result<OperazioneSospesa, StoreError> {
        let id = match sospesa.id {
            Some(id) => id,
            None => self.next_id(Sequence::Sospesa).await?,
        };
        let prepared = PreparedSospesa::new(sospesa, id)?;
        match self.write(Job::SalvaSospesa(prepared)).await? {
            Done::Sospesa(stored) => Ok(stored),
            other => Err(unexpected(&other)),
        }
    }

    async fn sospesa(&self, id: u64) -> Result<Option<OperazioneSospesa>, StoreError> {
        self.readers.run_inline(move |c| read::sospesa(c, id)).await
    }

    async fn sospese(&self, query: &QuerySospese) -> Result<Vec<OperazioneSospesa>, StoreError> {
        let query = query.clone();
        self.readers.run(move |c| read::sospese(c, &query)).await
    }

    async fn elimina_sospesa(&self, id: u64, audit: NuovaVoceAudit) -> Result<bool, StoreError> {
        let audit = write::prepare_audit(audit)?;
        match self.write(Job::EliminaSospesa { id, audit }).await? {
            Done::Eliminata(deleted) => Ok(deleted),
            other => Err(unexpected(&other)),
        }
    }

    async fn emetti_documento(
        &self,
        doc: anpr_store::NuovoDocumento,
    ) -> Result<anpr_store::DocumentoEmesso, StoreError> {
        let prepared = documenti::DocumentoPreparato::new(doc)?;
        match self.write(Job::EmettiDocumento(prepared)).await? {
            Done::Documento(Some(d)) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn documento(&self, id: &str) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
        let id = id.to_owned();
        self.readers
            .run_inline(move |c| documenti::leggi(c, &id))
            .await
    }

    async fn documenti(
        &self,
        query: &anpr_store::QueryDocumenti,
    ) -> Result<Vec<anpr_store::DocumentoEmesso>, StoreError> {
        let query = query.clone();
        self.readers.run(move |c| documenti::cerca(c, &query)).await
    }

    async fn annulla_documento(
        &self,
        id: &str,
        istante: chrono::DateTime<chrono::Utc>,
        motivo: String,
        audit: NuovaVoceAudit,
    ) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
        let prepared = documenti::AnnullamentoPreparato::new(id, istante, motivo, audit)?;
        match self.write(Job::AnnullaDocumento(prepared)).await? {
            Done::Documento(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn parametri_comune(
        &self,
        comune: &CodiceIstatComune,
    ) -> Result<Option<anpr_store::ParametriComune>, StoreError> {
        let comune = comune.as_str().to_owned();
        self.readers
            .run(move |c| documenti::leggi_parametri(c, &comune))
            .await
    }

    async fn salva_parametri_comune(
        &self,
        parametri: anpr_store::NuoviParametriComune,
    ) -> Result<anpr_store::ParametriComune, StoreError> {
        let prepared = documenti::ParametriPreparati::new(parametri)?;
        match self.write(Job::SalvaParametri(prepared)).await? {
            Done::Parametri(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    async fn append_audit(&self, entry: NuovaVoceAudit) -> Result<VoceAudit, StoreError> {
        let entry = write::prepare_audit(entry)?;
        self.write_audited(Job::AppendAudit(entry)).await
    }

    async fn append_audit_batch(
        &self,
        entries: Vec<NuovaVoceAudit>,
    ) -> Result<Vec<VoceAudit>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let entries = entries
            .into_iter()
            .map(write::prepare_audit)
            .collect::<Result<Vec<_>, _>>()?;
        // One job: the writer runs it inside one transaction (or one savepoint when its
        // group falls back), so the entries are chained consecutively, all or none.
        match self.write(Job::AppendAuditBatch(entries)).await? {
            Done::AuditBatch(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    async fn audit_page(&self, after: u64, limit: u32) -> Result<Vec<VoceAudit>, StoreError> {
        self.readers
            .run(move |c| read::audit_page(c, after, limit))
            .await
    }

    async fn audit_head(&self) -> Result<Option<TestaCatena>, StoreError> {
        self.readers.run_inline(read::audit_head).await
    }

    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        self.readers
            .run(move |c| read::outbox_pending(c, limit))
            .await
    }

    async fn outbox_mark(&self, id: u64, delivered: bool) -> Result<(), StoreError> {
        self.write_unit(Job::OutboxMark { id, delivered }).await
    }

    async fn notifiche(&self, query: &QueryNotifiche) -> Result<Vec<OutboxMessage>, StoreError> {
        let query = query.clone();
        self.readers.run(move |c| read::notifiche(c, &query)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers.run_inline(read::ping).await
    }

    fn metriche(&self) -> Vec<MetricaStore> {
        let w = self.writer_stats();
        // (name, help, counter, value)
        let figure: [(&'static str, &'static str, bool, f64); 7] = [
            (
                "anpr_sqlite_writer_groups_total",
                "Group commits of the SQLite writer thread.",
                true,
                w.groups as f64,
            ),
            (
                "anpr_sqlite_writer_requests_total",
                "Write requests run by the SQLite writer thread.",
                true,
                w.requests as f64,
            ),
            (
                "anpr_sqlite_wal_syncs_total",
                "fdatasync calls of the WAL by the syncer thread.",
                true,
                w.syncs as f64,
            ),
            (
                "anpr_sqlite_wal_frames_written_total",
                "WAL frames (pages) appended by the writer's commits.",
                true,
                self.wal_frames_written() as f64,
            ),
            (
                "anpr_sqlite_wal_frames",
                "Frames in the WAL after the writer's latest commit.",
                false,
                self.wal_frames() as f64,
            ),
            (
                "anpr_sqlite_checkpoint_rounds_total",
                "Passive checkpoint rounds run by the checkpointer.",
                true,
                self.checkpoint_rounds() as f64,
            ),
            (
                "anpr_sqlite_wal_restarts_total",
                "Restarts of the WAL forced by the checkpointer.",
                true,
                self.wal_restarts() as f64,
            ),
        ];
        figure
            .into_iter()
            .map(|(nome, aiuto, contatore, valore)| MetricaStore {
                nome,
                aiuto,
                contatore,
                valore,
            })
            .collect()
    }

    /// Each row is its own request to the writer and its own durable transaction, like
    /// an `apply`: rows of one call go one after the other (each waits for its commit),
    /// while rows of concurrent calls are group-committed together exactly as concurrent
    /// `apply`s are. The baseline thus measures the same commit machinery with no
    /// registry logic.
    async fn next_ids(&self, sequence: Sequence, count: u64) -> Result<Vec<u64>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        match self
            .write(Job::ReserveIds {
                sequence: sequence.name(),
                count,
            })
            .await?
        {
            Done::Ids { start, end } => Ok((start..end).collect()),
            other => Err(unexpected(&other)),
        }
    }

    async fn file_subentro(
        &self,
        comune: &CodiceIstatComune,
    ) -> Result<Vec<anpr_store::FileSubentro>, StoreError> {
        let comune = comune.clone();
        self.readers
            .run(move |c| subentro::file_subentro(c, &comune))
            .await
    }

    async fn codici_fiscali_presenti(
        &self,
        codici: &[String],
    ) -> Result<Vec<anpr_store::CodiceFiscalePresente>, StoreError> {
        let codici = codici.to_vec();
        self.readers
            .run(move |c| subentro::codici_fiscali_presenti(c, &codici))
            .await
    }

    async fn carica_subentro(
        &self,
        inizio: anpr_store::InizioSubentro,
        records: tokio::sync::mpsc::Receiver<anpr_store::MessaggioSubentro>,
    ) -> Result<VoceAudit, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || subentro::carica(&path, inizio, records))
            .await
            .map_err(|e| StoreError::Backend(format!("the subentro load task failed: {e}")))?
    }

    async fn sicurezza_ca(&self, proposta: CaSicurezza) -> Result<CaSicurezza, StoreError> {
        match self.sicurezza(sicurezza::Scrittura::Ca(proposta)).await? {
            sicurezza::Risposta::Ca(ca) => Ok(ca),
            other => Err(inattesa(&other)),
        }
    }

    async fn sicurezza_versione(&self) -> Result<u64, StoreError> {
        self.readers.run_inline(sicurezza::versione).await
    }

    async fn sicurezza_carica(&self, dopo: u64) -> Result<CaricoSicurezza, StoreError> {
        self.readers.run(move |c| sicurezza::carica(c, dopo)).await
    }

    async fn sicurezza_salva(&self, modifica: ModificaSicurezza) -> Result<u64, StoreError> {
        match self
            .sicurezza(sicurezza::Scrittura::Salva(modifica))
            .await?
        {
            sicurezza::Risposta::Versione(v) => Ok(v),
            other => Err(inattesa(&other)),
        }
    }

    async fn sicurezza_posta_prendi(
        &self,
        adesso: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<MailSicurezza>, StoreError> {
        let s = sicurezza::Scrittura::PostaPrendi {
            adesso: sicurezza::istante(adesso),
            fino: codec::timestamp_to_sql(adesso + lease)?,
            limit: limit.min(1000),
        };
        match self.sicurezza(s).await? {
            sicurezza::Risposta::Posta(p) => Ok(p),
            other => Err(inattesa(&other)),
        }
    }

    async fn sicurezza_posta_esito(&self, id: u64, esito: EsitoMail) -> Result<(), StoreError> {
        self.sicurezza(sicurezza::Scrittura::PostaEsito { id, esito })
            .await
            .map(drop)
    }

    async fn sicurezza_posta(
        &self,
        stato: Option<StatoMail>,
        limit: u32,
    ) -> Result<Vec<MailSicurezza>, StoreError> {
        self.readers
            .run(move |c| sicurezza::posta(c, stato, limit))
            .await
    }

    async fn sicurezza_gettone_crea(&self, gettone: GettoneSicurezza) -> Result<(), StoreError> {
        self.sicurezza(sicurezza::Scrittura::GettoneCrea(gettone))
            .await
            .map(drop)
    }

    async fn sicurezza_gettone(
        &self,
        impronta: &str,
        tipo: &str,
        adesso: DateTime<Utc>,
    ) -> Result<Option<GettoneSicurezza>, StoreError> {
        let (impronta, tipo, adesso) = (
            impronta.to_owned(),
            tipo.to_owned(),
            sicurezza::istante(adesso),
        );
        self.readers
            .run(move |c| sicurezza::gettone(c, &impronta, &tipo, &adesso))
            .await
    }

    async fn sicurezza_gettone_consuma(
        &self,
        impronta: &str,
        tipo: &str,
        adesso: DateTime<Utc>,
    ) -> Result<Option<GettoneSicurezza>, StoreError> {
        let s = sicurezza::Scrittura::GettoneConsuma {
            impronta: impronta.to_owned(),
            tipo: tipo.to_owned(),
            adesso: sicurezza::istante(adesso),
        };
        match self.sicurezza(s).await? {
            sicurezza::Risposta::Gettone(g) => Ok(g),
            other => Err(inattesa(&other)),
        }
    }

    async fn sicurezza_accesso_fallito(
        &self,
        chiave: &str,
        istante: DateTime<Utc>,
        dal: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let s = sicurezza::Scrittura::AccessoFallito {
            chiave: chiave.to_owned(),
            istante: codec::timestamp_to_sql(istante)?,
            dal: sicurezza::istante(dal),
        };
        match self.sicurezza(s).await? {
            sicurezza::Risposta::Conteggio(n) => Ok(n),
            other => Err(inattesa(&other)),
        }
    }

    async fn sicurezza_accessi_falliti(
        &self,
        chiave: &str,
        dal: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let (chiave, dal) = (chiave.to_owned(), sicurezza::istante(dal));
        self.readers
            .run(move |c| sicurezza::conta_accessi(c, &chiave, &dal))
            .await
    }

    async fn sicurezza_azzera_accessi_falliti(&self, chiave: &str) -> Result<(), StoreError> {
        self.sicurezza(sicurezza::Scrittura::AzzeraAccessi(chiave.to_owned()))
            .await
            .map(drop)
    }

    async fn inserisci_elaborazione(
        &self,
        nuova: anpr_store::NuovaElaborazione,
    ) -> Result<(anpr_store::Elaborazione, bool), StoreError> {
        let s = elaborazioni::Scrittura::inserisci(nuova)?;
        match self.write(Job::Elaborazione(s)).await? {
            Done::Elaborazione(elaborazioni::Fatto::Inserita(e, nuova)) => Ok((e, nuova)),
            other => Err(unexpected(&other)),
        }
    }

    async fn prendi_elaborazione(
        &self,
        istante: chrono::DateTime<chrono::Utc>,
        scadenza: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<anpr_store::Elaborazione>, StoreError> {
        let s = elaborazioni::Scrittura::prendi(istante, scadenza)?;
        match self.write(Job::Elaborazione(s)).await? {
            Done::Elaborazione(elaborazioni::Fatto::Presa(e)) => Ok(e),
            other => Err(unexpected(&other)),
        }
    }

    async fn concludi_elaborazione(
        &self,
        c: anpr_store::ConclusioneElaborazione,
    ) -> Result<bool, StoreError> {
        let s = elaborazioni::Scrittura::concludi(c)?;
        match self.write(Job::Elaborazione(s)).await? {
            Done::Elaborazione(elaborazioni::Fatto::Conclusa(ok)) => Ok(ok),
            other => Err(unexpected(&other)),
        }
    }

    async fn elaborazione(&self, id: u64) -> Result<Option<anpr_store::Elaborazione>, StoreError> {
        self.readers
            .run_inline(move |c| elaborazioni::leggi(c, id))
            .await
    }

    async fn file_elaborazione(
        &self,
        id: u64,
    ) -> Result<Option<anpr_store::FileElaborazione>, StoreError> {
        self.readers.run(move |c| elaborazioni::file(c, id)).await
    }

    async fn elaborazioni(
        &self,
        query: &anpr_store::QueryElaborazioni,
    ) -> Result<Vec<anpr_store::Elaborazione>, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |c| elaborazioni::cerca(c, &query))
            .await
    }

    async fn soggetti_per_estrazione(
        &self,
        query: &anpr_store::QueryEstrazione,
    ) -> Result<Vec<SubjectIndex>, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |c| elaborazioni::soggetti(c, &query))
            .await
    }

    async fn sezioni_di(
        &self,
        entita: &[EntityRef],
        sezioni: &[String],
        at: Option<NaiveDate>,
    ) -> Result<Vec<(EntityRef, RecordSections)>, StoreError> {
        let (entita, sezioni) = (entita.to_vec(), sezioni.to_vec());
        self.readers
            .run(move |c| elaborazioni::sezioni_di(c, &entita, &sezioni, at))
            .await
    }

    async fn versioni_per_campo(
        &self,
        query: &anpr_store::QueryVersioniCampo,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |c| elaborazioni::versioni_per_campo(c, &query))
            .await
    }

    async fn baseline_raw_insert(&self, rows: u32) -> Result<(), StoreError> {
        for _ in 0..rows {
            self.write_unit(Job::BaselineInsert).await?;
        }
        Ok(())
    }
}
