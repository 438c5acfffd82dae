//! The backend-independent conformance suite, run against SQLite: one fresh database
//! file per test, deleted with its temporary directory when the test ends.

use anpr_store_sqlite::SqliteStore;

anpr_store::conformance_tests!(async {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("t.sqlite3")).expect("open a fresh store");
    Some((store, dir))
});

mod sicurezza {
    use anpr_store_sqlite::SqliteStore;

    anpr_store::conformance_sicurezza_tests!(async {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("t.sqlite3")).expect("open a fresh store");
        Some((store, dir))
    });
}
anpr_store::conformance_elaborazioni_tests!(async {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("t.sqlite3")).expect("open a fresh store");
    Some((store, dir))
});
