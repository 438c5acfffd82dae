//! The REST edge over real HTTP: the server on port 0 with fresh SQLite stores.

use std::collections::BTreeMap;
use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_store_sqlite::SqliteStore;
use serde_json::{json, Value};

struct Server {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(identita_da_header: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    for a in Ambiente::ALL {
        stores.insert(
            a,
            Arc::new(SqliteStore::open_in_dir(dir.path(), a).unwrap()),
        );
    }
    let registry = Arc::new(Registry::new(stores, Arc::new(SystemClock)));
    let app = anpr_server::router(
        registry,
        ServerConfig {
            ambiente_predefinito: Ambiente::Test,
            backend: "sqlite",
            identita_da_header,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn get(&self, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    async fn post(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }
}

fn codes(body: &Value) -> Vec<String> {
    body["anomalie"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["codice"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn health_names_version_environment_and_backend() {
    let s = start(false).await;
    let (status, body, headers) = s.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["environment"], "test");
    assert_eq!(body["backend"], "sqlite");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["ambienti"]["produzione"], "ok");
    assert_eq!(headers["x-anpr-ambiente"], "test");
}

#[tokio::test]
async fn active_municipalities_and_lookups_as_at_a_date() {
    let s = start(false).await;
    let (status, body, _) = s.get("/api/v1/tabelle/comuni?stato=A").await;
    assert_eq!(status, 200);
    assert_eq!(body["totale"], 7901);
    assert_eq!(body["comuni"].as_array().unwrap().len(), 7901);
    let (_, then, _) = s
        .get("/api/v1/tabelle/comuni?codiceIstat=047001&dataRiferimento=1990-01-01")
        .await;
    assert_eq!(then["totale"], 1);
    assert_eq!(then["comuni"][0]["denominazione"], "ABETONE");
    let (_, now, _) = s
        .get("/api/v1/tabelle/comuni?codiceIstat=047001&dataRiferimento=2026-01-01")
        .await;
    assert_eq!(now["totale"], 0);
    let (_, by_name, _) = s
        .get("/api/v1/tabelle/comuni?denominazione=bozen&stato=A")
        .await;
    assert_eq!(by_name["comuni"][0]["codiceIstat"], "021008");
    let (status, bad, _) = s.get("/api/v1/tabelle/comuni?stato=Z").await;
    assert_eq!((status, codes(&bad)), (400, vec!["EV001".to_owned()]));
    let (status, bad, _) = s
        .get("/api/v1/tabelle/comuni?dataRiferimento=1990-13-01")
        .await;
    assert_eq!((status, codes(&bad)), (400, vec!["EV001".to_owned()]));
    let (status, list, _) = s.get("/api/v1/tabelle").await;
    assert_eq!(status, 200);
    assert!(list["totale"].as_u64().unwrap() > 40, "{list}");
    let (status, rows, _) = s
        .get("/api/v1/tabelle/stati_esteri?dataRiferimento=2000-01-01")
        .await;
    assert_eq!(status, 200);
    assert!(
        rows["righe"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["codiceCatastale"] == "Z404"),
        "USA missing"
    );
    let (status, missing, _) = s.get("/api/v1/tabelle/non_esiste").await;
    assert_eq!((status, codes(&missing)), (422, vec!["EV020".to_owned()]));
}

#[tokio::test]
async fn tax_code_over_http() {
    let s = start(false).await;
    let (status, body, _) = s
        .post(
            "/api/v1/codice-fiscale/calcola",
            json!({"cognome": "Rossi", "nome": "Mario", "sesso": "M", "dataNascita": "1980-01-01", "luogoNascita": "H501"}),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["codiceFiscale"], "RSSMRA80A01H501U");
    assert_eq!(body["omocodici"].as_array().unwrap().len(), 7);
    assert_eq!(body["ambiente"], "test");
    let (status, body, _) = s
        .post(
            "/api/v1/codice-fiscale/calcola",
            json!({"cognome": "Rossi", "nome": "Mario", "sesso": "M", "dataNascita": "2020-01-01", "luogoNascita": "A012"}),
            &[],
        )
        .await;
    assert_eq!((status, codes(&body)), (422, vec!["EC007".to_owned()]));
    assert_eq!(body["anomalie"][0]["campo"], "luogoNascita");
    assert!(body["riferimento"]["id"].is_string());
    let (status, body, _) = s
        .post(
            "/api/v1/codice-fiscale/verifica",
            json!({"codiceFiscale": "RSSMRA80A01H501U"}),
            &[],
        )
        .await;
    assert_eq!((status, &body["valido"]), (200, &json!(true)));
    let (status, body, _) = s
        .post(
            "/api/v1/codice-fiscale/decodifica",
            json!({"codiceFiscale": "RSSMRA80A01H501U"}),
            &[],
        )
        .await;
    assert_eq!(
        (status, &body["anniCandidati"]),
        (200, &json!([1980, 2080]))
    );
    // Unknown fields and wrong types are refused with a code, not a 500.
    let (status, body, _) = s
        .post("/api/v1/codice-fiscale/verifica", json!({"cf": "X"}), &[])
        .await;
    assert_eq!((status, codes(&body)), (400, vec!["EV001".to_owned()]));
    let (status, body, _) = s
        .post("/api/v1/codice-fiscale/calcola", json!({"cognome": 1}), &[])
        .await;
    assert_eq!((status, codes(&body)), (400, vec!["EV001".to_owned()]));
}

#[tokio::test]
async fn malformed_oversized_and_unknown_requests_get_coded_errors() {
    let s = start(false).await;
    let r = s
        .client
        .post(format!("{}/api/v1/codice-fiscale/verifica", s.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(codes(&body), vec!["EV001".to_owned()]);
    let big = format!(
        "{{\"codiceFiscale\": \"{}\"}}",
        "A".repeat(anpr_server::MAX_BODY_BYTES + 10)
    );
    let r = s
        .client
        .post(format!("{}/api/v1/codice-fiscale/verifica", s.base))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let (status, body, headers) = s.get("/api/v1/non-esiste").await;
    assert_eq!((status, codes(&body)), (404, vec!["EV404".to_owned()]));
    assert_eq!(headers["x-anpr-ambiente"], "test");
    let r = s
        .client
        .get(format!("{}/api/v1/tabelle", s.base))
        .header("x-anpr-ambiente", "marte")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn environments_are_selected_per_request_and_identity_headers_refused_in_production() {
    let s = start(true).await;
    let (status, body, headers) = s
        .post(
            "/api/v1/codice-fiscale/verifica",
            json!({"codiceFiscale": "RSSMRA80A01H501U"}),
            &[("x-anpr-ambiente", "presubentro")],
        )
        .await;
    assert_eq!((status, &body["ambiente"]), (200, &json!("presubentro")));
    assert_eq!(headers["x-anpr-ambiente"], "presubentro");
    let (status, body, _) = s
        .post(
            "/api/v1/audit/verifica",
            json!({}),
            &[
                ("x-anpr-ambiente", "produzione"),
                ("x-anpr-utente", "RSSMRA80A01H501U"),
                ("x-anpr-profili", "GESTORE_SISTEMA"),
            ],
        )
        .await;
    assert_eq!((status, codes(&body)), (403, vec!["EA402".to_owned()]));
    // In test, declared identities work (development mode) and the matrix applies.
    let (status, body, _) = s
        .post(
            "/api/v1/audit/verifica",
            json!({}),
            &[
                ("x-anpr-utente", "RSSMRA80A01H501U"),
                ("x-anpr-profili", "GESTORE_SISTEMA"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["violazione"], Value::Null);
    let (status, body, _) = s.post("/api/v1/audit/verifica", json!({}), &[]).await;
    assert_eq!((status, codes(&body)), (403, vec!["EA401".to_owned()]));
    let (status, body, _) = s
        .post(
            "/api/v1/audit/verifica",
            json!({}),
            &[("x-anpr-profili", "NON_ESISTE")],
        )
        .await;
    assert_eq!((status, codes(&body)), (400, vec!["EV001".to_owned()]));
    // Reading a record that does not exist: coded 404, and the probe is audited.
    let (status, body, _) = s
        .post(
            "/api/v1/soggetti/consulta",
            json!({"idANPR": "123"}),
            &[
                ("x-anpr-utente", "RSSMRA80A01H501U"),
                ("x-anpr-profili", "OPERATORE_CONSULTAZIONE"),
            ],
        )
        .await;
    assert_eq!((status, codes(&body)), (404, vec!["EV404".to_owned()]));
}

#[tokio::test]
async fn identity_headers_are_refused_unless_enabled() {
    let s = start(false).await;
    let (status, body, _) = s
        .post(
            "/api/v1/audit/verifica",
            json!({}),
            &[
                ("x-anpr-utente", "RSSMRA80A01H501U"),
                ("x-anpr-profili", "GESTORE_SISTEMA"),
            ],
        )
        .await;
    assert_eq!((status, codes(&body)), (403, vec!["EA402".to_owned()]));
}

#[tokio::test]
async fn every_documented_path_is_routed_and_metrics_count_requests() {
    let s = start(false).await;
    let (status, doc, _) = s.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // Both signatures are documented, and named by the security requirements.
    let schemi = &doc["components"]["securitySchemes"];
    assert_eq!(schemi["firmaRichiesta"]["name"], "Agid-JWT-Signature");
    assert_eq!(
        schemi["firmaPostazione"]["name"],
        "Anpr-Postazione-Signature"
    );
    for requisito in doc["security"].as_array().unwrap() {
        for schema in requisito.as_object().unwrap().keys() {
            assert!(schemi.get(schema).is_some(), "{schema}");
        }
    }
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12);
    for (path, item) in paths {
        let concrete = path
            .replace("{nome}", "lingue")
            .replace("{id}", "1")
            .replace("{istat}", "058091");
        for method in item.as_object().unwrap().keys() {
            let url = format!("{}{concrete}", s.base);
            let r = match method.as_str() {
                "get" => s.client.get(url).send().await.unwrap(),
                "post" => s.client.post(url).json(&json!({})).send().await.unwrap(),
                "delete" => s.client.delete(url).send().await.unwrap(),
                "put" => s.client.put(url).json(&json!({})).send().await.unwrap(),
                other => panic!("unexpected method {other}"),
            };
            let status = r.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
    let r = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("anpr_http_requests_total"), "{text}");
}

/// `/metrics` also carries the SQLite store's own figures, one series per environment:
/// a write through the API moves the test environment's counters and no other's.
#[tokio::test]
async fn metrics_carry_the_stores_figures_per_environment() {
    let s = start(true).await;
    let valore = |testo: &str, serie: &str| -> f64 {
        testo
            .lines()
            .find_map(|l| l.strip_prefix(serie))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{serie} missing:\n{testo}"))
    };
    let leggi = || async {
        s.client
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let prima = leggi().await;
    assert!(
        prima.contains("# TYPE anpr_sqlite_wal_frames_written_total counter")
            && prima.contains("# TYPE anpr_sqlite_wal_frames gauge"),
        "{prima}"
    );
    for a in ["test", "presubentro", "produzione"] {
        valore(
            &prima,
            &format!("anpr_sqlite_writer_groups_total{{ambiente=\"{a}\"}}"),
        );
    }
    // A search in the test environment writes its audit entry.
    let r = s
        .client
        .post(format!("{}/api/v1/soggetti/ricerca", s.base))
        .header("x-anpr-utente", "RSSMRA80A01H501U")
        .header("x-anpr-comune", "015146")
        .header("x-anpr-profili", "OPERATORE_ANAGRAFE")
        .json(&json!({"criteriRicerca": {"cognome": "ROSSI"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let dopo = leggi().await;
    let serie = |a: &str, n: &str| format!("{n}{{ambiente=\"{a}\"}}");
    for n in [
        "anpr_sqlite_writer_requests_total",
        "anpr_sqlite_wal_frames_written_total",
    ] {
        assert!(
            valore(&dopo, &serie("test", n)) > valore(&prima, &serie("test", n)),
            "{n} did not move in test"
        );
        assert_eq!(
            valore(&dopo, &serie("produzione", n)),
            valore(&prima, &serie("produzione", n)),
            "{n} moved in produzione"
        );
    }
}
