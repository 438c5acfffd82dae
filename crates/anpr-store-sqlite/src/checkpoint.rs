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
//! **Restarting the WAL.** A passive checkpoint alone never lets the WAL start again
//! under a steady load: the log restarts only when a writer begins while every frame has
//! been copied and no reader still reads from the log, and with commits every
//! millisecond new frames are always there by then. The log then grows without bound
//! (900 MB in a 30-second benchmark), and every commit appends to new file pages, which
//! the kernel allocates and zeroes (a quarter of the writer thread's time), and every
//! reader looks pages up in an ever larger WAL index. So when the log holds more than
//! [`RIAVVIO_FRAMES`] frames after a passive round, the thread runs a `RESTART`
//! checkpoint: it takes the write lock, copies the few frames committed since the
//! passive round, waits for the readers still reading the log to finish (reads take
//! microseconds), and leaves the log to be rewritten from its start, in file pages the
//! kernel already holds. The writer waits for that lock with a fine-grained busy handler
//! (`schema`); if the checkpoint cannot finish within [`RIAVVIO_ATTESA`] it gives up and
//! tries again next round.
//!
//! Durability is unchanged: a commit is durable when its WAL frames are synced (the
//! writer's syncer thread); the checkpoint syncs the WAL before and the database file
//! after copying, as SQLite always does.

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

/// Frames in the WAL above which a passive round is followed by a restart: 256 MiB of
/// 4 KiB pages, 3 to 5 s of the heaviest registration load measured (4 restarts in a
/// 12 s bench), under the `journal_size_limit` the file is truncated back to (so the
/// file keeps its pages).
/// Each restart stalls the writer for the sync of the last copy (8–80 ms measured on
/// the 2-core VM's disk, BENCHMARKS.md), so restarts are kept rare.
pub(crate) const RIAVVIO_FRAMES: i64 = 65536;

/// Longest the restart waits for the write lock, and then for the readers, in polls of
/// [`RIAVVIO_POLL`]; the writer waits meanwhile, so this bounds that part of the stall.
const RIAVVIO_ATTESA: Duration = Duration::from_millis(20);
const RIAVVIO_POLL: Duration = Duration::from_micros(100);

/// Busy handler of the checkpointer's connection: polls every [`RIAVVIO_POLL`] up to
/// [`RIAVVIO_ATTESA`].
fn attesa_riavvio(attempts: i32) -> bool {
    crate::schema::poll_busy(attempts, RIAVVIO_POLL, RIAVVIO_ATTESA)
}

/// Stop flag and the condition the thread sleeps on.
type Segnale = Arc<(Mutex<bool>, Condvar)>;

/// Handle to the checkpointer thread; dropping it stops the thread (the last
/// connection to close then checkpoints what remains, as SQLite does).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    segnale: Segnale,
    riavvii: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens the checkpointer's own connection to `path` and starts the thread. The
    /// caller turns the writer's automatic checkpoint off (`wal_autocheckpoint=0`).
    /// The log is restarted when it holds more than `soglia` frames ([`RIAVVIO_FRAMES`]).
    pub(crate) fn start(path: &Path, soglia: i64) -> Result<Self, StoreError> {
        let mut conn = apri(path)?;
        conn.busy_handler(Some(attesa_riavvio))
            .ctx("setting the busy handler")?;
        let segnale: Segnale = Arc::new((Mutex::new(false), Condvar::new()));
        let del_thread = Arc::clone(&segnale);
        let riavvii = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let contati = Arc::clone(&riavvii);
        let thread = std::thread::Builder::new()
            .name("anpr-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &del_thread, soglia, &contati))
            .map_err(|e| StoreError::Backend(format!("starting the checkpointer: {e}")))?;
        Ok(Self {
            segnale,
            riavvii,
            thread: Some(thread),
        })
    }

    /// Restarts of the log done so far.
    pub(crate) fn riavvii(&self) -> u64 {
        self.riavvii.load(std::sync::atomic::Ordering::Relaxed)
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
fn run(conn: &Connection, segnale: &Segnale, soglia: i64, riavvii: &std::sync::atomic::AtomicU64) {
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
        match checkpoint(conn) {
            Ok((frames, _)) if frames >= soglia => {
                let inizio = std::time::Instant::now();
                let r = riavvia(conn);
                tracing::debug!(frames, durata = ?inizio.elapsed(), riavviato = ?r.as_ref().ok(), "WAL restart");
                match r {
                    Ok(true) => {
                        riavvii.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, frames, "WAL restart failed"),
                }
            }
            Ok(_) => {}
            // Transient (e.g. another process holds the checkpoint lock): the next
            // round tries again; the WAL only grows meanwhile.
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        fermo = stop.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

/// A connection for checkpoints to the database at `path`.
fn apri(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .ctx(&format!("opening {} for checkpoints", path.display()))?;
    // The database file is synced after each copy (before the log may be reused or
    // truncated), as with the automatic checkpoint.
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("setting synchronous")?;
    Ok(conn)
}

/// `SqliteStore::checkpoint_completo`: a `PASSIVE` copy of the whole log, then a
/// `TRUNCATE` that empties it, waiting at most a second for readers.
pub(crate) fn completo(path: &Path) -> Result<u64, StoreError> {
    let dimensione = std::fs::metadata(crate::schema::wal_path(path)).map_or(0, |m| m.len());
    let conn = apri(path)?;
    conn.busy_timeout(Duration::from_secs(1))
        .ctx("setting the busy timeout")?;
    let (occupato, frame, copiati): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .ctx("copying the WAL")?;
    if occupato != 0 || copiati < frame {
        return Err(StoreError::Backend(format!(
            "{copiati} of {frame} WAL frames copied: other connections are using the database"
        )));
    }
    let occupato: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .ctx("emptying the WAL")?;
    if occupato != 0 {
        return Err(StoreError::Backend(
            "the WAL was copied but not emptied: readers are using it".into(),
        ));
    }
    Ok(dimensione)
}

/// One `RESTART` checkpoint (see the module's documentation). Returns whether the log
/// will restart: `false` when the lock or the readers did not allow it in time.
pub(crate) fn riavvia(conn: &Connection) -> Result<bool, StoreError> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))
        .ctx("running wal_checkpoint(RESTART)")?;
    Ok(busy == 0)
}

/// One passive checkpoint; returns (frames in the WAL, frames copied).
pub(crate) fn checkpoint(conn: &Connection) -> Result<(i64, i64), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })
    .ctx("running wal_checkpoint")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Under a writer that commits without pause and readers that always have a read
    /// open, passive checkpoints alone never let the log start again; with the restart
    /// the WAL file stays near the threshold instead of holding everything written.
    #[test]
    fn the_wal_is_restarted_under_a_steady_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let writer = crate::schema::open_writer(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (x BLOB); PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        writer.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let soglia = 500;
        let checkpointer = Checkpointer::start(&path, soglia).unwrap();
        let fine = Arc::new(AtomicBool::new(false));
        let lettori: Vec<_> = (0..2)
            .map(|_| {
                let (path, fine) = (path.clone(), Arc::clone(&fine));
                std::thread::spawn(move || {
                    let conn = crate::schema::open_reader(&path).unwrap();
                    while !fine.load(Ordering::Relaxed) {
                        let n: i64 = conn
                            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                            .unwrap();
                        assert!(n >= 0);
                    }
                })
            })
            .collect();
        // At least 3,000 commits of a 6 KB row (two pages each), for at least 1.5 s.
        let inizio = std::time::Instant::now();
        let blob = vec![7u8; 6000];
        let mut commits = 0;
        while commits < 3000 || inizio.elapsed() < Duration::from_millis(1500) {
            writer
                .execute("INSERT INTO t (x) VALUES (?1)", [&blob])
                .unwrap();
            writer
                .execute("DELETE FROM t WHERE rowid % 2 = 0", [])
                .unwrap();
            commits += 1;
        }
        fine.store(true, Ordering::Relaxed);
        for l in lettori {
            l.join().unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("t.sqlite3-wal"))
            .unwrap()
            .len();
        assert!(checkpointer.riavvii() >= 2, "the log was not restarted");
        // Without restarts the file holds everything: 116 MB in this test on the
        // 2-core VM (at least 3,000 commits: over 70 MB); with them, 27 MB.
        assert!(
            wal < 60 * 1024 * 1024,
            "the WAL kept {wal} bytes after {commits} commits"
        );
        drop(checkpointer);
    }
}
