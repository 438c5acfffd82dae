//! The background checkpointer: copies the WAL back into the database file on its own
//! thread and connection, so that the writer thread never does it inside a commit.
//!
//! With SQLite's automatic checkpoint the connection whose commit pushes the WAL past
//! 1,000 pages runs the checkpoint itself, right after that commit and before it can
//! answer anyone: it copies every page changed since the last checkpoint into the
//! database file and syncs the file. For our single writer that is a stall of several
//! milliseconds every ~50 ms under load, charged to every request queued behind it — it
//! was the whole of the p99 (see BENCHMARKS.md). Here the writer's automatic checkpoint
//! is off and this thread runs a `PASSIVE` checkpoint every [`INTERVALLO`]: passive means
//! it never waits for, nor blocks, the writer or the readers (it copies what no reader
//! still needs and leaves the rest for the next round), so commits go on appending to
//! the WAL while it works. Once the WAL is wholly copied, the writer's next transaction
//! starts it again from the beginning, so the file does not grow without bound.
//!
//! Durability is unchanged: a commit is durable when its WAL frames are synced (the
//! writer's `synchronous=FULL`); the checkpoint syncs the WAL before and the database
//! file after copying, as SQLite always does.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anpr_store::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::codec::Context;

/// Time between two checkpoints. At 2,000 operations/s the WAL then holds a few
/// thousand frames at most, and a page rewritten many times in that interval (index
/// roots, the audit head) is copied once.
const INTERVALLO: Duration = Duration::from_millis(200);

/// Stop flag and the condition the thread sleeps on.
type Segnale = Arc<(Mutex<bool>, Condvar)>;

/// Handle to the checkpointer thread; dropping it stops the thread (the last
/// connection to close then checkpoints what remains, as SQLite does).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    segnale: Segnale,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens the checkpointer's own connection to `path` and starts the thread. The
    /// caller turns the writer's automatic checkpoint off (`wal_autocheckpoint=0`).
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .ctx(&format!("opening {} for checkpoints", path.display()))?;
        // The database file is synced after each copy, as with the automatic checkpoint.
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx("setting synchronous")?;
        let segnale: Segnale = Arc::new((Mutex::new(false), Condvar::new()));
        let del_thread = Arc::clone(&segnale);
        let thread = std::thread::Builder::new()
            .name("anpr-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &del_thread))
            .map_err(|e| StoreError::Backend(format!("starting the checkpointer: {e}")))?;
        Ok(Self {
            segnale,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (stop, cond) = &*self.segnale;
        *stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cond.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has already been logged by it; nothing to add.
            let _ = thread.join();
        }
    }
}

/// Sleeps [`INTERVALLO`], checkpoints, until told to stop.
fn run(conn: &Connection, segnale: &Segnale) {
    let (stop, cond) = &**segnale;
    let mut fermo = stop.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let (guardia, _) = cond
            .wait_timeout(fermo, INTERVALLO)
            .unwrap_or_else(PoisonError::into_inner);
        fermo = guardia;
        if *fermo {
            return;
        }
        // Checkpoint without holding the lock, so that a stop request never waits for it.
        drop(fermo);
        if let Err(e) = checkpoint(conn) {
            // Transient (e.g. another process holds the checkpoint lock): the next
            // round tries again; the WAL only grows meanwhile.
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        fermo = stop.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

/// One passive checkpoint; returns (frames in the WAL, frames copied).
pub(crate) fn checkpoint(conn: &Connection) -> Result<(i64, i64), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })
    .ctx("running wal_checkpoint")
}
