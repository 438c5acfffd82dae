//! Test support shared by the HTTP test binaries: a real server on a real store
//! (SQLite in a temporary directory, or PostgreSQL on a throw-away schema), bound to an
//! ephemeral port, and a client that sends the development identity headers.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;
use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_store_sqlite::SqliteStore;
use serde_json::Value;

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What keeps a test store alive (temporary directory or schema guard).
type Keep = Box<dyn std::any::Any + Send>;

/// A store of the backend, or `None` when PostgreSQL tests are skipped explicitly.
pub async fn store(backend: Backend) -> Option<(Arc<dyn Store>, Keep)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap();
            Some((Arc::new(store), Box::new(dir)))
        }
        Backend::Postgres => {
            let (store, guard) = anpr_store_postgres::testing::fresh().await?;
            Some((Arc::new(store), Box::new(guard)))
        }
    }
}

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    /// Identity headers sent with every request.
    pub headers: Vec<(String, String)>,
    _keep: Keep,
}

/// The development identity of a registry officer of Rome (058091).
pub const OPERATORE: [(&str, &str); 3] = [
    ("x-anpr-utente", "BNCLRA70A41H501X"),
    ("x-anpr-comune", "058091"),
    (
        "x-anpr-profili",
        "OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE",
    ),
];

/// Starts a server on `backend`; `None` when PostgreSQL tests are skipped explicitly.
pub async fn start(backend: Backend) -> Option<Server> {
    start_con(backend, |r| r).await
}

/// Starts a server whose registry `configura` adjusts (e.g. its tax agency).
pub async fn start_con(
    backend: Backend,
    configura: impl FnOnce(Registry) -> Registry,
) -> Option<Server> {
    let (store, keep) = self::store(backend).await?;
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    let registry = Arc::new(configura(Registry::new(stores, Arc::new(SystemClock))));
    let app = anpr_server::router(
        registry.clone(),
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
        registry,
        store,
        headers: OPERATORE
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        _keep: keep,
    })
}

impl Server {
    /// The same server seen by an officer of another municipality.
    pub fn come_comune(&mut self, comune: &str) {
        for (k, v) in &mut self.headers {
            if k == "x-anpr-comune" {
                *v = comune.to_owned();
            }
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    /// Posts and returns the raw body text (for byte-for-byte comparisons).
    pub async fn post_raw(&self, path: &str, body: &Value) -> (u16, String) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Runs operation `codice`; panics with the body unless it succeeded.
    pub async fn ok(&self, codice: &str, body: &Value) -> Value {
        let (status, v) = self
            .post(&format!("/api/v1/operazioni/{codice}"), body)
            .await;
        assert_eq!(status, 200, "operation {codice} failed: {v}");
        assert_eq!(v["esito"], "OK", "{v}");
        v
    }

    /// Runs operation `codice` expecting a refusal; returns the codes of the errors.
    pub async fn ko(&self, codice: &str, body: &Value) -> (Vec<String>, Value) {
        let (status, v) = self
            .post(&format!("/api/v1/operazioni/{codice}"), body)
            .await;
        assert!(
            status == 422 || status == 400,
            "operation {codice} not refused ({status}): {v}"
        );
        (codici(&v), v)
    }

    /// The record of a subject as at `data` (or now).
    pub async fn scheda(&self, id: &str, data: Option<&str>) -> Value {
        let mut body = serde_json::json!({"idANPR": id});
        if let Some(d) = data {
            body["dataRiferimento"] = d.into();
        }
        let (status, v) = self.post("/api/v1/soggetti/consulta", &body).await;
        assert_eq!(status, 200, "{v}");
        v["scheda"].clone()
    }

    /// The members of a family as at `data` (or now): (idANPR, relationship).
    pub async fn componenti(&self, id: &str, data: Option<&str>) -> Vec<(String, String)> {
        let mut body = serde_json::json!({"idANPR": id});
        if let Some(d) = data {
            body["dataRiferimento"] = d.into();
        }
        let (status, v) = self.post("/api/v1/famiglie/consulta", &body).await;
        assert_eq!(status, 200, "{v}");
        v["componenti"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["idAnpr"].as_str().unwrap().to_owned(),
                    c["codiceLegame"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Server {
    /// POST with explicit identity headers (`(name, value)` pairs) instead of the
    /// server's own; status and JSON body.
    pub async fn post_id(
        &self,
        path: &str,
        body: &Value,
        identity: &[(&str, &str)],
    ) -> (u16, Value) {
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

    /// GET with explicit identity headers; status, JSON body and the environment header.
    pub async fn get_id(
        &self,
        path: &str,
        identity: &[(&str, &str)],
    ) -> (u16, Value, Option<String>) {
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

/// The codes of the anomalies of a response document.
pub fn codes(doc: &Value) -> Vec<String> {
    codici(doc)
}

/// The codes of the anomalies of a response document.
pub fn codici(doc: &Value) -> Vec<String> {
    doc["anomalie"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| a["codice"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The id of the first subject of an operation's response.
pub fn soggetto(doc: &Value) -> String {
    doc["soggetti"][0]["idANPR"].as_str().unwrap().to_owned()
}

/// The id of the first family of an operation's response.
pub fn famiglia(doc: &Value) -> String {
    doc["famiglie"][0]["idANPR"].as_str().unwrap().to_owned()
}
