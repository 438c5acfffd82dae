//! Opening connections and migrating the schema.
//!
//! Migrations are SQL files in `migrations/`, embedded in the binary and applied in
//! order, each in its own transaction together with its row in `schema_migrations`. A
//! database that already records a version this program does not know was written by a
//! newer program: opening it is refused rather than risking writes the newer schema
//! does not expect.

use std::path::Path;
use std::time::Duration;

use anpr_store::StoreError;
use chrono::{SecondsFormat, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::codec::Context;

/// One schema migration: its version (strictly increasing), name and SQL.
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// All migrations, in order. Append only: an applied migration is never edited.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "sospese_procedimenti",
        sql: include_str!("../migrations/0002_sospese_procedimenti.sql"),
    },
    Migration {
        version: 3,
        name: "subentro",
        sql: include_str!("../migrations/0003_subentro.sql"),
    },
    Migration {
        version: 4,
        name: "sicurezza",
        sql: include_str!("../migrations/0004_sicurezza.sql"),
    },
    Migration {
        version: 5,
        name: "documenti",
        sql: include_str!("../migrations/0005_documenti.sql"),
    },
    Migration {
        version: 6,
        name: "parametri_genitori",
        sql: include_str!("../migrations/0006_parametri_genitori.sql"),
    },
    Migration {
        version: 7,
        name: "estrazioni",
        sql: include_str!("../migrations/0007_estrazioni.sql"),
    },
    Migration {
        version: 8,
        name: "controlli_senza_effimere",
        sql: include_str!("../migrations/0008_controlli_senza_effimere.sql"),
    },
    Migration {
        version: 9,
        name: "notifiche",
        sql: include_str!("../migrations/0009_notifiche.sql"),
    },
    Migration {
        version: 10,
        name: "meno_pagine_per_commit",
        sql: include_str!("../migrations/0010_meno_pagine_per_commit.sql"),
    },
];

/// A migration step written in Rust, run inside the migration's transaction.
type PassoInCodice = fn(&Connection) -> Result<(), StoreError>;

/// The migrations done (also) in code, by version, run after their SQL in the same
/// transaction.
fn passo_in_codice(version: i64) -> Option<PassoInCodice> {
    match version {
        8 => Some(riscrivi_controlli_in),
        _ => None,
    }
}

/// The CHECK constraints of the hot tables, as migration 2 wrote them and as they
/// become: the same rule without an IN list (see `0008_controlli_senza_effimere.sql`).
const CONTROLLI_IN: &[(&str, &str, &str)] = &[
    (
        "operazioni",
        "CHECK (stato IN ('eseguita', 'rifiutata', 'annullata'))",
        "CHECK (stato = 'eseguita' OR stato = 'rifiutata' OR stato = 'annullata')",
    ),
    (
        "operazioni_entita",
        "CHECK (kind IN ('S', 'F', 'P'))",
        "CHECK (kind = 'S' OR kind = 'F' OR kind = 'P')",
    ),
    (
        "versioni",
        "CHECK (kind IN ('S', 'F', 'P'))",
        "CHECK (kind = 'S' OR kind = 'F' OR kind = 'P')",
    ),
];

/// Migration 8: rewrites [`CONTROLLI_IN`] in the stored table definitions, following
/// SQLite's procedure for schema changes that leave the stored content valid: edit
/// `sqlite_schema` with `writable_schema`, bump `schema_version` so that every
/// connection reloads the schema, check that the definitions parse — all inside the migration's
/// transaction. A definition that does not read as expected stops the migration
/// (nothing is changed).
fn riscrivi_controlli_in(conn: &Connection) -> Result<(), StoreError> {
    let versione: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .ctx("reading schema_version")?;
    conn.pragma_update(None, "writable_schema", "ON")
        .ctx("setting writable_schema")?;
    let esito = (|| {
        for (tabella, prima, dopo) in CONTROLLI_IN {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [tabella],
                    |r| r.get(0),
                )
                .ctx(&format!("reading the definition of {tabella}"))?;
            if sql.matches(prima).count() != 1 {
                return Err(StoreError::Backend(format!(
                    "migration 8: the definition of {tabella} does not contain `{prima}` once"
                )));
            }
            conn.execute(
                "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
                [sql.replace(prima, dopo), (*tabella).to_owned()],
            )
            .ctx(&format!("rewriting the definition of {tabella}"))?;
        }
        conn.pragma_update(None, "schema_version", versione + 1)
            .ctx("bumping schema_version")
    })();
    conn.pragma_update(None, "writable_schema", "OFF")
        .ctx("resetting writable_schema")?;
    esito?;
    // The new definitions must parse: reading each table makes this connection reload
    // the schema (its version changed). An error here rolls the migration back. (A full
    // `integrity_check` would read the whole file; the stored content is not touched.)
    for (tabella, _, _) in CONTROLLI_IN {
        conn.query_row(
            &format!("SELECT count(*) FROM (SELECT 1 FROM {tabella} LIMIT 1)"),
            [],
            |r| r.get::<_, i64>(0),
        )
        .ctx(&format!("reading {tabella} after the rewrite"))?;
    }
    Ok(())
}

/// The schema version this program writes.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// How long a connection waits for a lock held by another connection (e.g. a second
/// process, or a checkpoint) before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer's wait between two attempts at a lock held by another connection.
/// SQLite's own `busy_timeout` sleeps 1, 2, 5, 10... ms between attempts; the lock the
/// writer meets in normal running is the checkpointer's brief hold while it restarts the
/// WAL (`checkpoint`), released within a millisecond or two, so the writer polls finely.
const BUSY_POLL: Duration = Duration::from_micros(100);

/// Busy handler of the writer connection: polls every [`BUSY_POLL`] up to
/// [`BUSY_TIMEOUT`], then lets SQLite report `SQLITE_BUSY`.
fn writer_busy(attempts: i32) -> bool {
    poll_busy(attempts, BUSY_POLL, BUSY_TIMEOUT)
}

/// A busy handler's step: sleeps `poll` and returns `true` (try again) until `attempts`
/// polls have waited `limit`, then `false` (SQLite reports `SQLITE_BUSY`).
pub(crate) fn poll_busy(attempts: i32, poll: Duration, limit: Duration) -> bool {
    let waited = poll * u32::try_from(attempts).unwrap_or(u32::MAX);
    if waited >= limit {
        return false;
    }
    std::thread::sleep(poll);
    true
}

/// Page cache per connection, in KiB (negative `cache_size` means KiB). The writer
/// touches the hot index pages of every table; readers need less.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;

/// Prepared statements kept per connection: every fixed statement of the store plus
/// the dynamic search shapes in use.
const STATEMENT_CACHE: usize = 128;

/// Size the WAL file is truncated to after a checkpoint, in bytes.
const WAL_SIZE_LIMIT: i64 = 384 * 1024 * 1024;

/// The WAL file of the database at `path` (SQLite's own naming: the path plus `-wal`).
pub(crate) fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

/// Opens (creating it if missing) the database for writing and sets the connection up.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).ctx(&format!("opening {}", path.display()))?;
    conn.busy_handler(Some(writer_busy))
        .ctx("setting the busy handler")?;
    // WAL: readers never block the writer nor the writer the readers, and a commit is one
    // sequential append to the log. It is a property of the file, set once and kept.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .ctx("setting journal_mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "journal_mode WAL refused (got {mode})"
        )));
    }
    // FULL: the WAL is synced at every commit, so an acknowledged write survives a power
    // loss, not just a process crash (NORMAL alone would only guarantee the latter). The
    // store's writer thread switches its connection to NORMAL and has the WAL synced by
    // its syncer thread before it acknowledges anything (see `writer`).
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("setting synchronous")?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .ctx("setting foreign_keys")?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .ctx("setting cache_size")?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .ctx("setting temp_store")?;
    // After a burst the WAL is reset, not shrunk; this truncates it back after a
    // checkpoint so one burst does not keep a huge file around.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .ctx("setting journal_size_limit")?;
    // Planner statistics: bounded ANALYZE work, refreshed only where tables changed a lot
    // (SQLite's recommendation for long-lived connections).
    conn.pragma_update(None, "analysis_limit", 400)
        .ctx("setting analysis_limit")?;
    stable_plans(&conn)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Turns on the query planner stability guarantee: a statement's plan no longer depends
/// on the values bound to it.
///
/// Without it SQLite marks some statements "re-prepare when this parameter is rebound":
/// those whose plan it tuned to the bound values, which includes any statement with an
/// `ORDER BY … LIMIT` over a table whose other `WHERE` terms it estimates from the
/// values (`whereLoopOutputAdjust`), and the statement cache clears the bindings of every
/// statement it takes back, which counts as a rebinding. Such a statement is then parsed
/// and planned again on *every* execution: for the current-version lookup of
/// `write_version` that was more than half of the writer thread's time. Our statements
/// are written for their indexes and the plans do not depend on the values, so nothing
/// is lost.
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .ctx("enabling the query planner stability guarantee")?;
    Ok(())
}

/// Refreshes the planner statistics where they are stale (cheap when nothing changed).
pub(crate) fn optimize(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA optimize") {
        tracing::warn!(error = %e, "PRAGMA optimize failed");
    }
}

/// Opens a read-only connection to an existing, migrated database.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .ctx(&format!("opening {} for reading", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .ctx("setting busy_timeout")?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .ctx("setting cache_size")?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .ctx("setting temp_store")?;
    // Belt and braces on top of the read-only open: a bug cannot write through a reader.
    conn.pragma_update(None, "query_only", "ON")
        .ctx("setting query_only")?;
    stable_plans(&conn)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Brings the schema up to date, or refuses a database newer than this program.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )
    .ctx("creating schema_migrations")?;
    let latest = latest_version();
    for migration in MIGRATIONS {
        // IMMEDIATE takes the write lock before reading the version, so two processes
        // opening the same new file cannot both apply a migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting a migration")?;
        let current: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .ctx("reading the schema version")?;
        // Checked in every round, the first included: a newer database is refused before
        // anything is written to it.
        if current > latest {
            return Err(StoreError::Backend(format!(
                "the database schema (version {current}) is newer than this program supports (version {latest}); \
                 upgrade the program"
            )));
        }
        // Each migration is looked up by its own version, not compared with the
        // highest: a file migrated before version 4 existed (1, 2, 3, 5) still gets it.
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [migration.version],
                |r| r.get(0),
            )
            .ctx("reading the schema version")?;
        if done {
            continue;
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying SQLite migration"
        );
        tx.execute_batch(migration.sql).ctx(&format!(
            "applying migration {} ({})",
            migration.version, migration.name
        ))?;
        if let Some(passo) = passo_in_codice(migration.version) {
            passo(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                migration.version,
                migration.name,
                Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
            ],
        )
        .ctx("recording a migration")?;
        tx.commit().ctx("committing a migration")?;
    }
    // 0x10002: also analyse tables never analysed yet (first open of a migrated file).
    conn.execute_batch("PRAGMA optimize = 0x10002")
        .ctx("optimising")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::{params, OptionalExtension, StatementStatus};

    use super::*;

    /// Runs the writer's current-version lookup (whose `ORDER BY … LIMIT` made SQLite
    /// tie its plan to the bound values) through the statement cache with changing
    /// values, inserting versions in between as the writer does, and returns how often
    /// SQLite re-prepared it.
    fn reprepares(conn: &Connection) -> i32 {
        const LOOKUP: &str = "SELECT id, valido_dal FROM versioni
             WHERE kind = ?1 AND entity = ?2 AND section = ?3 AND valido_al IS NULL
             ORDER BY id DESC LIMIT 1";
        let mut total = 0;
        for i in 0..30_i64 {
            let section = ["generalita", "residenza", "legame"][(i % 3) as usize];
            let kind = ["S", "F"][((i / 3) % 2) as usize];
            let mut lookup = conn.prepare_cached(LOOKUP).unwrap();
            lookup
                .query_row(params![kind, i / 3, section], |r| r.get::<_, i64>(0))
                .optional()
                .unwrap();
            total = lookup.get_status(StatementStatus::RePrepare);
            drop(lookup);
            conn.prepare_cached(
                "INSERT INTO versioni (kind, entity, section, valido_dal, creata_da, value)
                 VALUES (?1, ?2, ?3, '2020-01-01', 1, '{}')",
            )
            .unwrap()
            .execute(params![kind, i / 3, section])
            .unwrap();
        }
        total
    }

    #[test]
    fn cached_statements_are_not_prepared_again_on_every_use() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("t.sqlite3")).unwrap();
        migrate(&mut conn).unwrap();
        // The versions need no operation rows for this check.
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        assert_eq!(reprepares(&conn), 0, "with the stability guarantee");

        // The same connection without it re-prepares the lookup on (nearly) every use:
        // this is what the guarantee prevents, and shows the check can fail.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, false)
            .unwrap();
        conn.flush_prepared_statement_cache();
        assert!(reprepares(&conn) >= 20, "without the stability guarantee");
    }

    #[test]
    fn readers_have_the_stability_guarantee_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let mut conn = open_writer(&path).unwrap();
        migrate(&mut conn).unwrap();
        let reader = open_reader(&path).unwrap();
        assert!(reader
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
            .unwrap());
        assert!(conn
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
            .unwrap());
    }
}
