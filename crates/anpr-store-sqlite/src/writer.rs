//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time, so instead of having every task fight for the
//! write lock, one dedicated thread owns the only write connection and receives write
//! requests over a channel, each with a oneshot for its reply.
//!
//! **Group commit.** The cost of a durable write is the `fsync` at commit, not the SQL.
//! So the thread takes whatever requests are queued (up to [`GROUP_MAX`]), opens one
//! transaction, runs each request inside its own `SAVEPOINT` (a failing request rolls
//! back only its savepoint and gets its own error), then commits once and only then
//! replies to all of them. Every `Ok` reply therefore still means "durable", but one
//! `fsync` pays for the whole group. Under load, requests queue up during the previous
//! commit's `fsync` and form the next group by themselves; when the previous group had
//! more than one request, the thread also waits [`LINGER`] (0.5 ms) for a few more to
//! join before starting the next. With a single caller every group has one request and
//! nothing waits for a timer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
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
/// Each group costs a transaction, its WAL writes and an `fsync` — and each commit
/// empties the page cache of every reader connection that reads after it (WAL mode), so
/// the next reads fetch their pages from the OS again. Under a load of consultations,
/// whose audit entries are most of the writes, groups formed only during the previous
/// `fsync` held about 5 requests on the 2-core VM; waiting 0.5 ms more lets about twice
/// as many share one commit and cuts the writer's CPU per request (BENCHMARKS.md). The
/// cost is at most this much added latency per write, and only under concurrency: a
/// lone caller (previous group of one) is never delayed, and the reply still comes only
/// after the commit, so an `Ok` still means durable.
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

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
}

#[derive(Debug, Default)]
struct Counters {
    groups: AtomicU64,
    requests: AtomicU64,
}

/// Handle to the writer thread. Dropping it closes the queue and waits for the thread
/// to finish what was queued and close the connection.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    pub(crate) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("anpr-sqlite-writer".into())
            .spawn(move || run(conn, rx, &thread_counters))
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

fn run(conn: Connection, mut queue: mpsc::Receiver<Request>, counters: &Counters) {
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
        commit_group(&conn, &mut group);
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

/// Runs a group of requests in one transaction and replies to each after the commit.
fn commit_group(conn: &Connection, group: &mut Vec<Request>) {
    let outcomes = match group_without_savepoints(conn, group) {
        Some(outcomes) => outcomes,
        None => group_with_savepoints(conn, group),
    };
    for (request, outcome) in group.drain(..).zip(outcomes) {
        // The caller may have gone away (cancelled future); the write stands regardless.
        let _ = request.reply.send(outcome);
    }
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
