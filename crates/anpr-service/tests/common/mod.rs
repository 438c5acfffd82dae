//! Test support: a registry over a real store (SQLite in a temporary directory, or
//! PostgreSQL on a fresh schema dropped afterwards), a clock the test moves, and
//! builders of registration (1002) requests.
//!
//! PostgreSQL comes from `ANPR_TEST_POSTGRES_URL`; without it the PostgreSQL variants
//! fail, so a forgotten server does not pass silently, unless `ANPR_SKIP_POSTGRES=1`
//! skips them explicitly (the same convention as the store crates' tests).
#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;

use std::sync::{Arc, Mutex};

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_service::clock::Clock;
use anpr_service::operazioni::RispostaOperazione;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_store_sqlite::SqliteStore;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A clock the test sets.
#[derive(Debug)]
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn set(&self, t: &str) {
        *self.0.lock().unwrap() = t.parse().unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// What keeps a test's data alive and cleans it up.
#[derive(Debug)]
pub enum Guard {
    Dir(tempfile::TempDir),
    Schema(anpr_store_postgres::testing::SchemaGuard),
}

#[derive(Debug)]
pub struct Fixture {
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    pub clock: Arc<TestClock>,
    pub backend: Backend,
    _guard: Guard,
}

/// A fresh registry on `backend`, its clock at `now`; `None` when PostgreSQL is skipped
/// explicitly.
pub async fn fixture(backend: Backend, now: &str) -> Option<Fixture> {
    let (store, guard): (Arc<dyn Store>, Guard) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (
                Arc::new(SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap()),
                Guard::Dir(dir),
            )
        }
        Backend::Postgres => {
            let (store, guard) = anpr_store_postgres::testing::fresh().await?;
            (Arc::new(store), Guard::Schema(guard))
        }
    };
    let clock = Arc::new(TestClock(Mutex::new(now.parse().unwrap())));
    let mut stores = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    Some(Fixture {
        registry: Registry::new(stores, clock.clone()),
        store,
        clock,
        backend,
        _guard: guard,
    })
}

impl Fixture {
    /// The same fixture with its registry adjusted by `configura` (e.g. security).
    pub fn configura(self, configura: impl FnOnce(Registry) -> Registry) -> Self {
        let Fixture {
            registry,
            store,
            clock,
            backend,
            _guard,
        } = self;
        Fixture {
            registry: configura(registry),
            store,
            clock,
            backend,
            _guard,
        }
    }
}

/// Runs an async scenario `fn(Fixture)` on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($now:expr, $($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    let f = super::common::fixture(super::common::Backend::Sqlite, $now).await.unwrap();
                    super::$scenario(f).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(f) = super::common::fixture(super::common::Backend::Postgres, $now).await {
                        super::$scenario(f).await;
                    }
                }
            }
        )+
    };
}

pub const ROMA: &str = "058091";
pub const MILANO: &str = "015146";

pub fn ctx(comune: Option<&str>, profili: &[Profilo]) -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: comune.map(|c| c.parse().unwrap()),
        utente: "BNCLRA70A41H501X".into(),
        profili: profili.iter().copied().collect(),
        postazione: Some("058091-PC-0001".into()),
        canale: Canale::Rest,
    }
}

/// The registry operator of Rome.
pub fn operatore() -> CallerContext {
    ctx(
        Some(ROMA),
        &[Profilo::OperatoreAnagrafe, Profilo::OperatoreConsultazione],
    )
}

/// A registration (1002) request; adjust the fields a test cares about afterwards.
pub fn iscrizione(
    id_comune: u64,
    cognome: &str,
    nome: &str,
    sesso: &str,
    nascita: &str,
    decorrenza: &str,
) -> Value {
    json!({
        "idOperazioneComune": id_comune.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": decorrenza,
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": ROMA, "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": {"codiceLegame": "1"}
    })
}

/// Registers through the service and returns the answer, which must be a success.
pub async fn iscrivi(f: &Fixture, ctx: &CallerContext, body: &Value) -> RispostaOperazione {
    let req = serde_json::from_value(body.clone()).unwrap();
    let r = f
        .registry
        .iscrizione_altri_motivi(ctx, &req, body)
        .await
        .unwrap();
    assert!(r.eseguita, "{}", r.documento);
    r
}

/// Subject and family ids named by a registration answer.
pub fn ids(r: &RispostaOperazione) -> (String, String) {
    let doc: Value = serde_json::from_str(&r.documento).unwrap();
    (
        doc["soggetti"][0]["idANPR"].as_str().unwrap().to_owned(),
        doc["famiglie"][0]["idANPR"].as_str().unwrap().to_owned(),
    )
}
