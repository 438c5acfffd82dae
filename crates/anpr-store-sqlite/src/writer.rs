//! The single writer thread, its group commit, and the syncer thread that makes each
//! group durable.
//!
//! SQLite allows one writer at a time, so instead of having every task fight for the
//! write lock, one dedicated thread owns the only write connection and receives write
//! requests over a channel, each with a oneshot for its reply.
//!
//! **Group commit.** The cost of a durable write is the `fsync`, not the SQL. So the
//! thread takes whatever requests are queued (up to [`GROUP_MAX`]), opens one
//! transaction, runs them (each in its own `SAVEPOINT` when one of them fails, so a
//! failing request rolls back alone and gets its own error), and commits once. When the
//! previous group had more than one request, the thread also waits [`LINGER`] for a few
//! more to join before starting the next. With a single caller every group has one
//! request and nothing waits for a timer.
//!
//! **Pipelined durability.** The writer connection commits with `synchronous=NORMAL`:
//! the commit appends the group's frames to the WAL without syncing it. The group's
//! replies then go to the syncer thread, which `fdatasync`s the WAL file and only then
//! answers them; meanwhile the writer already runs the next group. One sync covers
//! every group committed before it (the WAL is appended in order, and a sync covers the
//! whole file), so under load one `fdatasync` serves several groups, and the writer's
//! cycle is the SQL alone instead of SQL + sync. Every `Ok` reply still means "durable
//! against power loss", exactly as with `synchronous=FULL`:
//!
//! - a reply is sent only after a sync that started after its group's commit returned;
//! - checkpoints sync the WAL before copying it into the database file and the file
//!   after (SQLite does so at `synchronous=NORMAL` too), and the WAL is restarted only
//!   once wholly copied, so frames never leave the WAL unsynced;
//! - another connection may see a committed group before its sync, but whatever it
//!   answers with data read from it is audited first, and its audit entry's commit
//!   comes later in the same WAL: the sync that acknowledges the entry covers the data.
//!
//! If a sync fails, what reached the disk is unknown (after a failed `fsync` the kernel
//! may have dropped the dirty pages): every reply waiting for it gets an error, and the
//! store refuses all further writes until it is reopened, as PostgreSQL does.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anpr_domain::audit::{NuovaVoceAudit, VoceAudit};
use anpr_domain::ids::IdOperazioneAnpr;
use anpr_store::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::codec::Context;
use crate::schema;
use crate::write::{self, PreparedOp, PreparedSospesa};

/// Most requests committed together. Bounds the latency a request can add to the others
/// of its group and the work lost to a failed commit.
pub(crate) const GROUP_MAX: usize = 256;

/// Queue length before callers wait (asynchronously) for room: back-pressure instead of
/// unbounded memory when writes arrive faster than the disk takes them.
const QUEUE: usize = 4 * GROUP_MAX;

/// How long the writer waits for more requests to join a group before running it, when
/// the previous group had more than one request (callers are concurrent).
///
/// Each group costs a transaction and its WAL writes (every page it changed, once), and
/// each commit empties the page cache of every reader connection that reads after it
/// (WAL mode), so the next reads fetch their pages from the OS again. Under a load of
/// consultations, whose audit entries are most of the writes, a short wait lets several
/// requests share one commit; without any wait the writer's and the syncer's CPU per
/// request doubled and the p99 tripled on the 2-core VM. But every request of the group
/// waits too, and a closed-loop caller's throughput is its concurrency divided by its
/// latency: at 0.5 ms, 16 connections got 9,000–10,200 consultations/s, at 0.2 ms
/// 11,500–13,300 with the same p99 and no change to the registrations
/// (BENCHMARKS.md, session 11). A lone caller (previous group of one) is never delayed,
/// and the reply still comes only after the sync, so an `Ok` still means durable.
const LINGER: std::time::Duration = std::time::Duration::from_micros(200);

/// Groups between two refreshes of the planner statistics (`PRAGMA optimize`), so that
/// a long-running store keeps good plans as its tables grow.
const OPTIMIZE_EVERY: u64 = 10_000;

/// A write request.
#[derive(Debug)]
pub(crate) enum Job {
    Apply(PreparedOp),
    Annul {
        target: IdOperazioneAnpr,
        annulment: PreparedOp,
    },
    AppendAudit(NuovaVoceAudit),
    AppendAuditBatch(Vec<NuovaVoceAudit>),
    SalvaSospesa(PreparedSospesa),
    EliminaSospesa {
        id: u64,
        audit: NuovaVoceAudit,
    },
    EmettiDocumento(crate::documenti::DocumentoPreparato),
    AnnullaDocumento(crate::documenti::AnnullamentoPreparato),
    SalvaParametri(crate::documenti::ParametriPreparati),
    Elaborazione(crate::elaborazioni::Scrittura),
    OutboxMark {
        id: u64,
        delivered: bool,
    },
    ReserveIds {
        sequence: &'static str,
        count: u64,
    },
    BaselineInsert,
    Sicurezza(crate::sicurezza::Scrittura),
    /// Writes nothing: its reply comes after the sync that follows its group, so after
    /// every commit made before it was queued is durable.
    Barriera,
}

/// A write request's successful result.
#[derive(Debug)]
pub(crate) enum Done {
    Audit(VoceAudit),
    AuditBatch(Vec<VoceAudit>),
    Ids { start: u64, end: u64 },
    Sospesa(anpr_store::OperazioneSospesa),
    Eliminata(bool),
    Documento(Option<anpr_store::DocumentoEmesso>),
    Sicurezza(crate::sicurezza::Risposta),
    Parametri(anpr_store::ParametriComune),
    Elaborazione(crate::elaborazioni::Fatto),
    Nothing,
}

type Reply = oneshot::Sender<Result<Done, StoreError>>;

#[derive(Debug)]
struct Request {
    job: Job,
    reply: Reply,
}

/// Counts of the writer's work since the store was opened, for monitoring and for
/// checking that group commit happens: `requests / groups` is the average group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions committed (or attempted), one per group.
    pub groups: u64,
    /// Requests run, successful or not.
    pub requests: u64,
    /// `fdatasync` calls of the WAL by the syncer thread: at most one per group, fewer
    /// when several groups were committed during one sync.
    pub syncs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    groups: AtomicU64,
    requests: AtomicU64,
    syncs: AtomicU64,
    /// Set when a sync failed: durability is unknown, so no further write is accepted.
    broken: AtomicBool,
}

/// The replies of one committed group, with their outcomes, waiting for the sync.
type Replies = Vec<(Reply, Result<Done, StoreError>)>;

/// Handle to the writer thread. Dropping it closes the queue and waits for the thread
/// to finish what was queued and close the connection.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread on `conn` (the database at `path`) and its syncer. Sets
    /// the connection's `synchronous` to `NORMAL`: the syncer makes the commits durable.
    pub(crate) fn start(conn: Connection, path: &Path) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx("setting synchronous")?;
        let wal = crate::schema::wal_path(path);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (to_syncer, syncer_rx) = std::sync::mpsc::channel::<Replies>();
        let counters = Arc::new(Counters::default());
        let syncer_counters = Arc::clone(&counters);
        let syncer = std::thread::Builder::new()
            .name("anpr-sqlite-sync".into())
            .spawn(move || sincronizza(&wal, &syncer_rx, &syncer_counters))
            .map_err(|e| StoreError::Backend(format!("starting the syncer thread: {e}")))?;
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("anpr-sqlite-writer".into())
            .spawn(move || {
                run(conn, rx, &to_syncer, &thread_counters);
                // The syncer answers what is left, then ends with the channel.
                drop(to_syncer);
                if syncer.join().is_err() {
                    tracing::error!("the SQLite syncer thread panicked");
                }
            })
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            queue: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            groups: self.counters.groups.load(Ordering::Relaxed),
            requests: self.counters.requests.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
        }
    }

    /// Queues a request and waits for its (durable) outcome.
    pub(crate) async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        let stopped = || StoreError::Backend("the writer thread has stopped".into());
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        let (reply, outcome) = oneshot::channel();
        queue
            .send(Request { job, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop once the queue is drained.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the SQLite writer thread panicked");
            }
        }
    }
}

fn run(
    conn: Connection,
    mut queue: mpsc::Receiver<Request>,
    syncer: &std::sync::mpsc::Sender<Replies>,
    counters: &Counters,
) {
    tracing::debug!("SQLite writer started");
    let mut group = Vec::with_capacity(GROUP_MAX);
    // Size of the previous group: more than one request means callers are concurrent.
    let mut previous = 0;
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        take_queued(&mut queue, &mut group);
        if previous > 1 && group.len() < GROUP_MAX {
            // Requests are arriving concurrently: let a few more join this group.
            std::thread::sleep(LINGER);
            take_queued(&mut queue, &mut group);
        }
        previous = group.len();
        let groups = counters.groups.fetch_add(1, Ordering::Relaxed) + 1;
        counters
            .requests
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let replies = if counters.broken.load(Ordering::Acquire) {
            // A sync failed: nothing more is written (see the module's documentation).
            group
                .drain(..)
                .map(|r| (r.reply, Err(sync_failed())))
                .collect()
        } else {
            commit_group(&conn, &mut group)
        };
        if let Err(std::sync::mpsc::SendError(replies)) = syncer.send(replies) {
            // The syncer is gone (it panicked): nobody can vouch for durability.
            counters.broken.store(true, Ordering::Release);
            for (reply, _) in replies {
                let _ = reply.send(Err(sync_failed()));
            }
        }
        if groups.is_multiple_of(OPTIMIZE_EVERY) {
            schema::optimize(&conn);
        }
    }
    schema::optimize(&conn);
    tracing::debug!("SQLite writer stopped");
}

/// Moves the requests already queued into `group`, up to [`GROUP_MAX`].
fn take_queued(queue: &mut mpsc::Receiver<Request>, group: &mut Vec<Request>) {
    while group.len() < GROUP_MAX {
        match queue.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
}

/// Runs a group of requests in one transaction; returns each reply with its outcome,
/// to be sent once the commit is synced.
fn commit_group(conn: &Connection, group: &mut Vec<Request>) -> Replies {
    let outcomes = match group_without_savepoints(conn, group) {
        Some(outcomes) => outcomes,
        None => group_with_savepoints(conn, group),
    };
    group
        .drain(..)
        .zip(outcomes)
        .map(|(request, outcome)| (request.reply, outcome))
        .collect()
}

/// The error of every write once a sync has failed.
fn sync_failed() -> StoreError {
    StoreError::Backend(
        "a sync of the SQLite WAL failed: durability is unknown and writes are refused until the store is reopened"
            .into(),
    )
}

/// The syncer thread: for each batch of committed groups, one `fdatasync` of the WAL,
/// then the replies. Groups that arrive while it syncs form the next batch.
fn sincronizza(wal: &Path, groups: &std::sync::mpsc::Receiver<Replies>, counters: &Counters) {
    let mut file: Option<File> = None;
    while let Ok(first) = groups.recv() {
        let mut batch = first;
        while let Ok(more) = groups.try_recv() {
            batch.extend(more);
        }
        // Only committed work needs the sync; a batch of failures is answered at once.
        let synced = if batch.iter().any(|(_, outcome)| outcome.is_ok()) {
            counters.syncs.fetch_add(1, Ordering::Relaxed);
            sync_wal(wal, &mut file)
        } else {
            Ok(())
        };
        if let Err(e) = &synced {
            tracing::error!(error = %e, wal = %wal.display(), "syncing the WAL failed; the store refuses further writes");
            counters.broken.store(true, Ordering::Release);
        }
        for (reply, outcome) in batch {
            let outcome = match &synced {
                Ok(()) => outcome,
                Err(_) => outcome.and(Err(sync_failed())),
            };
            // The caller may have gone away (cancelled future); the write stands.
            let _ = reply.send(outcome);
        }
    }
}

/// `fdatasync` of the WAL file (which also covers its size). The file is opened once and
/// again if it was replaced (removed while open: no links left).
fn sync_wal(wal: &Path, file: &mut Option<File>) -> std::io::Result<()> {
    if let Some(f) = file.as_ref() {
        if f.metadata()?.nlink() == 0 {
            *file = None;
        }
    }
    let f = match file {
        Some(f) => f,
        None => file.insert(File::open(wal)?),
    };
    f.sync_data()
}

/// The common case, tried first: every request of the group succeeds, so none needs a
/// savepoint of its own. A savepoint makes SQLite copy each page a request touches
/// first into a statement journal — about a sixth of the writer's instructions per
/// registration. If any request fails (or panics, or SQLite rolls back), the whole
/// transaction is rolled back and `None` sends the group to
/// [`group_with_savepoints`], which runs it again request by request: jobs are pure
/// functions of the database, so the second run decides exactly as the first would
/// have. Returns the outcomes after a successful commit.
fn group_without_savepoints(
    conn: &Connection,
    group: &[Request],
) -> Option<Vec<Result<Done, StoreError>>> {
    if group.len() < 2 {
        // One request: its savepoint is as cheap as the retry would be.
        return None;
    }
    begin(conn).ok()?;
    let mut outcomes = Vec::with_capacity(group.len());
    for request in group {
        let outcome = catch_unwind(AssertUnwindSafe(|| run_job(conn, &request.job)))
            .unwrap_or_else(|_| Err(StoreError::Backend("a write request panicked".into())));
        match outcome {
            Ok(done) if !conn.is_autocommit() => outcomes.push(Ok(done)),
            _ => {
                if !conn.is_autocommit() {
                    if let Err(e) = conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %e, "rolling back an optimistic group failed");
                    }
                }
                return None;
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Some(outcomes),
        Err(e) => {
            // Nothing of the group is kept: let the careful path try again and report.
            tracing::warn!(error = %e, "optimistic group commit failed; retrying");
            if !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "rolling back a failed commit failed");
                }
            }
            None
        }
    }
}

/// Runs each request of the group in its own savepoint, so a failing one is rolled back
/// alone; one commit for the group.
fn group_with_savepoints(conn: &Connection, group: &[Request]) -> Vec<Result<Done, StoreError>> {
    let mut outcomes: Vec<Result<Done, StoreError>> = Vec::with_capacity(group.len());
    // Index of the first outcome belonging to the open transaction.
    let mut txn_start = 0;
    let mut in_txn = begin(conn);
    for request in group.iter() {
        if let Err(e) = &in_txn {
            outcomes.push(Err(e.clone_backend()));
            continue;
        }
        outcomes.push(run_in_savepoint(conn, &request.job));
        if conn.is_autocommit() {
            // SQLite itself rolled the whole transaction back (I/O error, disk full...):
            // what this group did so far is lost, so those requests must not report
            // success. Start over for the rest of the group.
            tracing::error!("SQLite rolled back a group transaction");
            for outcome in &mut outcomes[txn_start..] {
                if outcome.is_ok() {
                    *outcome = Err(StoreError::Backend(
                        "the transaction was rolled back by the database".into(),
                    ));
                }
            }
            txn_start = outcomes.len();
            in_txn = begin(conn);
        }
    }
    if in_txn.is_ok() {
        if let Err(e) = conn.execute_batch("COMMIT").ctx("committing") {
            tracing::error!(error = %e, "group commit failed");
            if !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "rolling back a failed commit failed");
                }
            }
            for outcome in &mut outcomes[txn_start..] {
                if outcome.is_ok() {
                    *outcome = Err(e.clone_backend());
                }
            }
        }
    }
    outcomes
}

fn begin(conn: &Connection) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock up front: another process holding it makes us wait
    // here (busy_timeout), not fail halfway through the group.
    conn.execute_batch("BEGIN IMMEDIATE")
        .ctx("starting a group transaction")
}

/// Runs one request inside its own savepoint: all of it, or none of it.
fn run_in_savepoint(conn: &Connection, job: &Job) -> Result<Done, StoreError> {
    exec(conn, "SAVEPOINT request")?;
    // A bug must not take the writer thread, and with it the whole store, down.
    let outcome = catch_unwind(AssertUnwindSafe(|| run_job(conn, job)))
        .unwrap_or_else(|_| Err(StoreError::Backend("a write request panicked".into())));
    if let Err(e @ (StoreError::Backend(_) | StoreError::Corrupt(_))) = &outcome {
        // Conflicts are the caller's business; these are ours.
        tracing::error!(error = %e, "write request failed");
    }
    if conn.is_autocommit() {
        // SQLite already rolled the whole transaction back; commit_group handles it.
        return outcome;
    }
    let isolated = if outcome.is_err() {
        exec(conn, "ROLLBACK TO request")
    } else {
        Ok(())
    }
    .and_then(|()| exec(conn, "RELEASE request"));
    if let Err(e) = isolated {
        // This request's changes could not be kept apart from the others': abandon the
        // whole group transaction rather than commit part of a failed request. The group
        // sees the rollback and fails the requests it had run so far.
        tracing::error!(error = %e, "could not close a savepoint; rolling the group back");
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rolling the group back failed");
        }
        return Err(outcome.err().unwrap_or(e));
    }
    outcome
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .ctx(sql)
}

fn run_job(conn: &Connection, job: &Job) -> Result<Done, StoreError> {
    match job {
        Job::Apply(op) => write::apply(conn, op).map(Done::Audit),
        Job::Annul { target, annulment } => write::annul(conn, *target, annulment).map(Done::Audit),
        Job::AppendAudit(voce) => write::chain_audit(conn, voce.clone()).map(Done::Audit),
        Job::AppendAuditBatch(voci) => voci
            .iter()
            .map(|voce| write::chain_audit(conn, voce.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Done::AuditBatch),
        Job::SalvaSospesa(s) => write::salva_sospesa(conn, s).map(Done::Sospesa),
        Job::EliminaSospesa { id, audit } => {
            write::elimina_sospesa(conn, *id, audit).map(Done::Eliminata)
        }
        Job::EmettiDocumento(d) => {
            crate::documenti::emetti(conn, d).map(|d| Done::Documento(Some(d)))
        }
        Job::AnnullaDocumento(a) => crate::documenti::annulla(conn, a).map(Done::Documento),
        Job::SalvaParametri(p) => crate::documenti::salva_parametri(conn, p).map(Done::Parametri),
        Job::Elaborazione(e) => crate::elaborazioni::scrivi(conn, e).map(Done::Elaborazione),
        Job::OutboxMark { id, delivered } => {
            write::outbox_mark(conn, *id, *delivered).map(|()| Done::Nothing)
        }
        Job::ReserveIds { sequence, count } => {
            write::reserve_ids(conn, sequence, *count).map(|(start, end)| Done::Ids { start, end })
        }
        Job::BaselineInsert => write::baseline_insert(conn).map(|()| Done::Nothing),
        Job::Sicurezza(s) => crate::sicurezza::scrivi(conn, s).map(Done::Sicurezza),
        Job::Barriera => Ok(Done::Nothing),
    }
}

/// `StoreError` is not `Clone`; the failures shared by a whole group are backend
/// failures, re-created per request.
trait CloneBackend {
    fn clone_backend(&self) -> StoreError;
}

impl CloneBackend for StoreError {
    fn clone_backend(&self) -> StoreError {
        match self {
            StoreError::Backend(message) => StoreError::Backend(message.clone()),
            other => StoreError::Backend(other.to_string()),
        }
    }
}
