//! Test support: the HTTP server on port 0 over a real store (SQLite in a temporary
//! directory, or PostgreSQL on a fresh schema dropped afterwards), with identity headers
//! enabled, and a client.
//!
//! PostgreSQL comes from `ANPR_TEST_POSTGRES_URL`; without it the PostgreSQL variants
//! fail, so a forgotten server does not pass silently, unless `ANPR_SKIP_POSTGRES=1`
//! skips them explicitly (the same convention as the store crates' tests).
#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_store_postgres::PostgresStore;
use anpr_store_sqlite::SqliteStore;
use serde_json::Value;

pub const URL_VAR: &str = "ANPR_TEST_POSTGRES_URL";
pub const SKIP_VAR: &str = "ANPR_SKIP_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Drops a test schema when dropped, on a thread of its own with its own runtime
/// (`Drop` cannot await).
#[derive(Debug)]
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let conn = tokio::spawn(connection);
                let result = client
                    .batch_execute(&format!(
                        "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    ))
                    .await
                    .map_err(|e| e.to_string());
                drop(client);
                let _ = conn.await;
                result
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test schema {}", self.schema);
        }
    }
}

/// What keeps a test's data alive and cleans it up.
#[derive(Debug)]
pub enum Guard {
    Dir(tempfile::TempDir),
    Schema(SchemaGuard),
}

/// A running server and the store of its `test` environment.
#[derive(Debug)]
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    _guard: Guard,
}

fn schema_name() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "anpr_t_srv_{:x}_{:x}_{}",
        std::process::id(),
        nanos,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts a server on `backend`; `None` when PostgreSQL is skipped explicitly.
pub async fn start(backend: Backend) -> Option<Server> {
    let (store, guard): (Arc<dyn Store>, Guard) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (
                Arc::new(SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap()),
                Guard::Dir(dir),
            )
        }
        Backend::Postgres => {
            let url = match std::env::var(URL_VAR) {
                Ok(url) if !url.trim().is_empty() => url,
                _ if std::env::var(SKIP_VAR).as_deref() == Ok("1") => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: PostgreSQL variant not run ({SKIP_VAR}=1)"
                    );
                    return None;
                }
                _ => panic!(
                    "the PostgreSQL variants need a server: set {URL_VAR}=postgres://postgres@127.0.0.1:5432/test, or {SKIP_VAR}=1 to skip explicitly"
                ),
            };
            let schema = schema_name();
            let guard = SchemaGuard {
                url: url.clone(),
                schema: schema.clone(),
            };
            let store = PostgresStore::connect(&url, &schema)
                .await
                .unwrap_or_else(|e| panic!("connecting to {URL_VAR}, schema {schema}: {e}"));
            (Arc::new(store), Guard::Schema(guard))
        }
    };
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    let registry = Arc::new(Registry::new(stores, Arc::new(SystemClock)));
    let app = anpr_server::router(
        registry,
        ServerConfig {
            ambiente_predefinito: Ambiente::Test,
            backend: match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            },
            identita_da_header: true,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Some(Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
        _guard: guard,
    })
}

impl Server {
    /// POST with identity headers (`(name, value)` pairs); status and JSON body.
    pub async fn post(&self, path: &str, body: &Value, identity: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        for (k, v) in identity {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GET with identity headers; status, JSON body and the environment header.
    pub async fn get(&self, path: &str, identity: &[(&str, &str)]) -> (u16, Value, Option<String>) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in identity {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let env = r
            .headers()
            .get(anpr_server::HEADER_AMBIENTE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            env,
        )
    }
}

/// Runs an async scenario `fn(Server)` on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    let s = super::common::start(super::common::Backend::Sqlite).await.unwrap();
                    super::$scenario(s).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(s) = super::common::start(super::common::Backend::Postgres).await {
                        super::$scenario(s).await;
                    }
                }
            }
        )+
    };
}

/// The outcome codes of an error body.
pub fn codes(body: &Value) -> Vec<String> {
    body["anomalie"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["codice"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}
