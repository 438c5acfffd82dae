//! Test support: the server on port 0 over a fresh store of either backend, and an
//! HTTP client acting as a given operator.
//!
//! PostgreSQL runs whenever `ANPR_TEST_POSTGRES_URL` is set, each test on a schema of its
//! own dropped at the end; without it the PostgreSQL tests fail, unless
//! `ANPR_SKIP_POSTGRES=1` skips them explicitly (and loudly).
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

/// Which storage backend a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What keeps a test's data set alive (and cleans it up).
#[derive(Debug)]
enum Keep {
    Dir(tempfile::TempDir),
    Schema(anpr_store_postgres::testing::SchemaGuard),
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    _keep: Keep,
}

/// An operator: user CF, municipality, profiles.
#[derive(Debug, Clone, Copy)]
pub struct Operatore {
    pub utente: &'static str,
    pub comune: &'static str,
    pub profili: &'static str,
}

pub const ANAGRAFE_A: Operatore = Operatore {
    utente: "BNCLRA70A41H501X",
    comune: "058091",
    profili: "OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE",
};
pub const ANAGRAFE_B: Operatore = Operatore {
    utente: "VRDGPP65B12H501Y",
    comune: "058091",
    profili: "OPERATORE_ANAGRAFE",
};
pub const SUPER: Operatore = Operatore {
    utente: "NREFNC60C03H501Z",
    comune: "058091",
    profili: "SUPER_UTENTE",
};
pub const ALTRO_COMUNE: Operatore = Operatore {
    utente: "GLLMRC75D04F205W",
    comune: "015146",
    profili: "OPERATORE_ANAGRAFE,SUPER_UTENTE",
};
pub const CONSULTAZIONE: Operatore = Operatore {
    utente: "RSSLCU80E05H501V",
    comune: "058091",
    profili: "OPERATORE_CONSULTAZIONE",
};
pub const CERTIFICAZIONE: Operatore = Operatore {
    utente: "RSSLCU80E05H501V",
    comune: "058091",
    profili: "OPERATORE_CERTIFICAZIONE",
};

/// Starts a server on a fresh store, or `None` when PostgreSQL is skipped explicitly.
pub async fn start(backend: Backend) -> Option<Server> {
    let (store, keep): (Arc<dyn Store>, Keep) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap();
            (Arc::new(store), Keep::Dir(dir))
        }
        Backend::Postgres => {
            let (store, guard) = anpr_store_postgres::testing::fresh().await?;
            (Arc::new(store), Keep::Schema(guard))
        }
    };
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store);
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
        _keep: keep,
    })
}

/// A response: status, raw body, parsed body (`Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Risposta {
    pub status: u16,
    pub raw: String,
    pub json: Value,
}

impl Risposta {
    /// The outcome codes of an error or operation body.
    pub fn codici(&self) -> Vec<String> {
        self.json["anomalie"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["codice"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts status and outcome codes, showing the body otherwise.
    #[track_caller]
    pub fn atteso(&self, status: u16, codici: &[&str]) -> &Self {
        assert_eq!(
            (self.status, self.codici()),
            (status, codici.iter().map(|c| (*c).to_owned()).collect()),
            "{}",
            self.raw
        );
        self
    }
}

impl Server {
    async fn send(&self, who: Operatore, req: reqwest::RequestBuilder) -> Risposta {
        let r = req
            .header("x-anpr-utente", who.utente)
            .header("x-anpr-comune", who.comune)
            .header("x-anpr-profili", who.profili)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let raw = r.text().await.unwrap();
        let json = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Risposta { status, raw, json }
    }

    pub async fn post(&self, who: Operatore, path: &str, body: &Value) -> Risposta {
        let req = self.client.post(format!("{}{path}", self.base)).json(body);
        self.send(who, req).await
    }

    pub async fn get(&self, who: Operatore, path: &str) -> Risposta {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(who, req).await
    }

    pub async fn delete(&self, who: Operatore, path: &str) -> Risposta {
        let req = self.client.delete(format!("{}{path}", self.base));
        self.send(who, req).await
    }

    /// Verifies the environment's audit chain; returns the entries checked.
    pub async fn audit_intatto(&self) -> u64 {
        let r = self
            .client
            .post(format!("{}/api/v1/audit/verifica", self.base))
            .header("x-anpr-utente", "X")
            .header("x-anpr-profili", "GESTORE_SISTEMA")
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["violazione"], Value::Null, "{v}");
        v["vociVerificate"].as_u64().unwrap()
    }
}

/// A 1002 registration request (new family, head) in Roma, born in the USA.
pub fn iscrizione(id_comune: u64, cognome: &str, nome: &str, sesso: &str, nascita: &str) -> Value {
    serde_json::json!({
        "idOperazioneComune": id_comune.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": {"codiceLegame": "1"}
    })
}
