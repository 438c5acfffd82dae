//! Test support (feature `testing`) for this crate's tests and for the tests of the
//! crates above it: where the test server is, fresh schemas, and cleaning them up.
//!
//! Every test gets its own randomly named schema, dropped when its guard goes out of
//! scope. Without `ANPR_TEST_POSTGRES_URL` the tests fail, so that a CI that forgot to
//! provide the server does not pass silently; `ANPR_SKIP_POSTGRES=1` skips explicitly.

use std::io::Write;

use crate::{PoolSettings, PostgresStore};

pub const URL_VAR: &str = "ANPR_TEST_POSTGRES_URL";
pub const SKIP_VAR: &str = "ANPR_SKIP_POSTGRES";

/// The server to test against, or `None` when skipping was asked for explicitly.
pub fn test_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var(SKIP_VAR).as_deref() == Ok("1") => {
            announce_skip();
            None
        }
        _ => panic!(
            "the PostgreSQL store tests need a server: set {URL_VAR}=postgres://postgres@127.0.0.1:5432/test, \
             or set {SKIP_VAR}=1 to skip explicitly"
        ),
    }
}

/// Says once per test binary, on the real stderr (the harness captures `eprintln!` of
/// passing tests, which would hide the skip), that nothing was tested.
fn announce_skip() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED: PostgreSQL store tests did NOT run ({SKIP_VAR}=1, {URL_VAR} not set) !!!!!!!!\n"
        );
    });
}

/// A random schema name for one test.
pub fn random_schema() -> String {
    format!("anpr_t_{:016x}", rand::random::<u64>())
}

/// Drops its schema when dropped. The drop runs on a thread of its own with its own
/// small runtime: `Drop` cannot await, and blocking on the test's runtime from inside it
/// could deadlock it.
#[derive(Debug)]
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    pub fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        let dropper = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let conn = tokio::spawn(connection);
                // A panicking test may leave a transaction open for a moment; do not
                // wait on it forever.
                let result = client
                    .batch_execute(&format!(
                        "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    ))
                    .await
                    .map_err(|e| format!("{e:?}"));
                drop(client);
                let _ = conn.await;
                result
            })
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!(
                "warning: the thread dropping test schema {} panicked",
                self.schema
            ),
        }
    }
}

/// A fresh, empty store on its own schema, or `None` when skipping.
pub async fn fresh() -> Option<(PostgresStore, SchemaGuard)> {
    fresh_with(&PoolSettings::default()).await
}

pub async fn fresh_with(settings: &PoolSettings) -> Option<(PostgresStore, SchemaGuard)> {
    let url = test_url()?;
    let schema = random_schema();
    // The guard exists before connecting, so a half-made schema is dropped too.
    let guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::connect_with(&url, &schema, settings)
        .await
        .unwrap_or_else(|e| panic!("connecting to {URL_VAR} with schema {schema}: {e}"));
    Some((store, guard))
}
