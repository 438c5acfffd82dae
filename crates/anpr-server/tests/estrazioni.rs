//! Asynchronous extractions over HTTP on SQLite and PostgreSQL (SPEC M-5.3): a request
//! is accepted at once and run by the worker; CSV and XLSX files are parsed back; the
//! 2,000-subject cap refuses (never truncates); broad criteria without a range are
//! refused; mass extraction is the mayor's only, for the admitted reasons; a request
//! queued before a restart is run after it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{soggetto, Backend, Server};
use serde_json::{json, Value};

const SINDACO: [(&str, &str); 3] = [
    ("x-anpr-utente", "SNDMRA60A01H501Z"),
    ("x-anpr-comune", "058091"),
    ("x-anpr-profili", "SINDACO"),
];

fn iscrizione(id: Option<u64>, cognome: &str, sesso: &str) -> Value {
    let mut v = json!({
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": "Maria", "sesso": sesso, "dataNascita": "1980-01-01", "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": {"codiceLegame": "1"}
    });
    if let Some(id) = id {
        v["idOperazioneComune"] = json!(id.to_string());
    }
    v
}

async fn get(s: &Server, path: &str, identity: &[(&str, &str)]) -> (u16, Value) {
    let (st, v, _) = s.get_id(path, identity).await;
    (st, v)
}

async fn get_bytes(s: &Server, path: &str) -> (u16, Vec<u8>, String) {
    let mut req = s.client.get(format!("{}{path}", s.base));
    for (k, v) in &s.headers {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    let st = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, r.bytes().await.unwrap().to_vec(), ct)
}

fn operatore(s: &Server) -> Vec<(&str, &str)> {
    s.headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Polls a request until it is concluded; its state document.
async fn attendi(s: &Server, id: &str, identity: &[(&str, &str)]) -> Value {
    for _ in 0..400 {
        let (st, v) = get(s, &format!("/api/v1/estrazioni/{id}"), identity).await;
        assert_eq!(st, 200, "{v}");
        if ["2", "3", "99"].contains(&v["statoRichiesta"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("request {id} not concluded");
}

async fn richiedi(s: &Server, body: &Value) -> String {
    let (st, v) = s.post("/api/v1/estrazioni", body).await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["statoRichiesta"], "0");
    v["idOperazioneANPR"].as_str().unwrap().to_owned()
}

fn csv_righe(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

async fn estrazione_csv_xlsx_e_criteri(s: Server) {
    common_worker(&s);
    let mut ids = Vec::new();
    for (i, (cognome, sesso)) in [
        ("Rossi", "F"),
        ("Bianchi", "M"),
        ("Verdi", "F"),
        ("Neri", "M"),
        ("Gialli", "F"),
    ]
    .iter()
    .enumerate()
    {
        ids.push(soggetto(
            &s.ok("1002", &iscrizione(Some(i as u64 + 1), cognome, sesso))
                .await,
        ));
    }
    let range = json!({"idSchedaSoggettoANPRDa": ids[0], "idSchedaSoggettoANPRA": ids[3]});
    // Three criteria: id range, residents, women; generalities and residence only.
    let id = richiedi(
        &s,
        &json!({"formato": "csv", "criteriRicerca": {
            "datiAnagraficiRichiesti": ["2", "10"],
            "identificativiANPR": range,
            "ulterioriSelezioni": {"sesso": "F", "tipoResidenza": "1"}
        }}),
    )
    .await;
    let stato = attendi(&s, &id, &operatore(&s)).await;
    assert_eq!(stato["statoRichiesta"], "2", "{stato}");
    assert_eq!(stato["esito"]["soggetti"], 2);
    assert_eq!(stato["file"]["formato"], "csv");
    let (st, bytes, ct) = get_bytes(&s, &format!("/api/v1/estrazioni/{id}/file")).await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let (header, rows) = csv_righe(&bytes);
    let col = |n: &str| {
        header
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("no column {n}: {header:?}"))
    };
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][col("idANPR")], ids[0]);
    assert_eq!(rows[1][col("idANPR")], ids[2]);
    assert_eq!(rows[0][col("generalita.cognome")], "Rossi");
    assert_eq!(rows[1][col("generalita.sesso")], "F");
    assert!(rows[0][col("etaCittadino")].parse::<i32>().unwrap() >= 44);
    assert_eq!(
        rows[0][col("residenza.indirizzo.toponimo.denominazioneToponimo")],
        "Nazionale"
    );
    assert!(rows[0][col("codiceFiscale.codFiscale")].len() == 16);
    // Partial record: no other group.
    assert!(
        !header.iter().any(|h| h.starts_with("cittadinanze")),
        "{header:?}"
    );

    // The same as XLSX, full records, parsed back.
    let id = richiedi(
        &s,
        &json!({"formato": "xlsx", "criteriRicerca": {"datiAnagraficiRichiesti": ["1"], "identificativiANPR": range}}),
    )
    .await;
    assert_eq!(
        attendi(&s, &id, &operatore(&s)).await["statoRichiesta"],
        "2"
    );
    let (st, bytes, ct) = get_bytes(&s, &format!("/api/v1/estrazioni/{id}/file")).await;
    assert_eq!(st, 200);
    assert!(ct.contains("spreadsheetml"), "{ct}");
    use calamine::Reader;
    let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let foglio = wb.worksheet_range("Estrazione").unwrap();
    let righe: Vec<Vec<String>> = foglio
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(righe.len(), 5, "header + 4 subjects");
    let h = &righe[0];
    let c = |n: &str| {
        h.iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("no column {n}"))
    };
    assert_eq!(righe[2][c("generalita.cognome")], "Bianchi");
    assert_eq!(righe[4][c("cittadinanze.0.codiceStato")], "100");
    assert_eq!(righe[1][c("competenza.comune")], "058091");

    // Broad criteria without a range: refused at once, nothing queued.
    let (st, v) = s
        .post("/api/v1/estrazioni", &json!({"criteriRicerca": {"datiAnagraficiRichiesti": ["2"], "ulterioriSelezioni": {"sesso": "F"}}}))
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(common::codici(&v), vec!["EHR21"]);
    assert!(v["riferimento"]["id"].is_string());
    // Coded validation.
    let (st, v) = s
        .post("/api/v1/estrazioni", &json!({"formato": "pdf", "criteriRicerca": {"datiAnagraficiRichiesti": ["1", "2"], "identificativiANPR": range}}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(common::codici(&v), vec!["EV300", "EC020"]);
    // Another municipality's request is not visible; an unknown id neither.
    let (st, _) = get(
        &s,
        &format!("/api/v1/estrazioni/{id}"),
        &[
            ("x-anpr-utente", "BNCLRA70A41H501X"),
            ("x-anpr-comune", "015146"),
            ("x-anpr-profili", "OPERATORE_CONSULTAZIONE"),
        ],
    )
    .await;
    assert_eq!(st, 404);
    // Idempotent resubmission by idOperazioneComune.
    let body = json!({"idOperazioneComune": "77", "criteriRicerca": {"datiAnagraficiRichiesti": ["2"], "identificativiANPR": range}});
    let (st1, a) = s.post("/api/v1/estrazioni", &body).await;
    let (st2, b) = s.post("/api/v1/estrazioni", &body).await;
    assert_eq!((st1, st2), (202, 200));
    assert_eq!(a["idOperazioneANPR"], b["idOperazioneANPR"]);
    assert_eq!(b["nuova"], false);
    // The list (4005) names them; every submission and download is audited.
    let (st, v) = get(&s, "/api/v1/estrazioni?servizio=4001", &operatore(&s)).await;
    assert_eq!(st, 200);
    assert!(v["richieste"].as_array().unwrap().len() >= 3);
    let (st, v) = s.post("/api/v1/audit/verifica", &json!({})).await;
    let _ = (st, v);
}

async fn limite_e_estrazione_massiva(s: Server) {
    common_worker(&s);
    // 2,001 residents, registered concurrently.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..2001u32 {
        let (client, base, headers) = (s.client.clone(), s.base.clone(), s.headers.clone());
        set.spawn(async move {
            let sesso = if i % 2 == 0 { "F" } else { "M" };
            // Distinct birth dates: distinct codici fiscali.
            let mut body = iscrizione(None, "Lunghi", sesso);
            let nascita = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
                + chrono::Days::new(u64::from(i));
            body["generalita"]["dataNascita"] = json!(nascita.to_string());
            let mut r = client
                .post(format!("{base}/api/v1/operazioni/1002"))
                .json(&body);
            for (k, v) in &headers {
                r = r.header(k, v);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
        });
        if set.len() >= 16 {
            set.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    // Range over everyone: 2,001 > 2,000: refused with EN115, no file.
    let tutti = json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "999999999"}});
    let id = richiedi(&s, &json!({"criteriRicerca": tutti})).await;
    let stato = attendi(&s, &id, &operatore(&s)).await;
    assert_eq!(stato["statoRichiesta"], "3", "{stato}");
    assert_eq!(stato["esito"]["anomalie"][0]["codice"], "EN115");
    let (st, v) = s
        .get_id(&format!("/api/v1/estrazioni/{id}/file"), &operatore(&s))
        .await
        .into_two();
    assert_eq!(st, 422, "{v}");
    assert_eq!(common::codici(&v), vec!["EV303"]);
    // Exactly 2,000 (a range ending before the last one): completed, all rows.
    let tutti_ids = s
        .store
        .soggetti_per_estrazione(&anpr_store::QueryEstrazione {
            comune: Some("058091".parse().unwrap()),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tutti_ids.len(), 2001);
    let id = richiedi(
        &s,
        &json!({"formato": "xlsx", "criteriRicerca": {"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": tutti_ids[0].id.to_string(), "idSchedaSoggettoANPRA": tutti_ids[1999].id.to_string()}}}),
    )
    .await;
    let stato = attendi(&s, &id, &operatore(&s)).await;
    assert_eq!(stato["statoRichiesta"], "2", "{stato}");
    assert_eq!(stato["esito"]["soggetti"], 2000);
    let (_, bytes, _) = get_bytes(&s, &format!("/api/v1/estrazioni/{id}/file")).await;
    use calamine::Reader;
    let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(
        wb.worksheet_range("Estrazione").unwrap().rows().count(),
        2001,
        "header + 2,000"
    );

    // Mass extraction: not for an operator (403, audited), not for another reason.
    let massiva = |motivo: &str| json!({"motivoEstrazioneMassiva": motivo, "criteriRicerca": {"datiAnagraficiRichiesti": ["2"]}});
    let (st, v) = s
        .post("/api/v1/estrazioni", &massiva("cambioSoftware"))
        .await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(common::codici(&v), vec!["EA401"]);
    let (st, v) = s
        .post_id("/api/v1/estrazioni", &massiva("curiosita"), &SINDACO)
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(common::codici(&v), vec!["EV301"]);
    // The mayor, changing software supplier: every subject, no cap.
    let (st, v) = s
        .post_id("/api/v1/estrazioni", &massiva("cambioSoftware"), &SINDACO)
        .await;
    assert_eq!(st, 202, "{v}");
    let id = v["idOperazioneANPR"].as_str().unwrap().to_owned();
    let stato = attendi(&s, &id, &SINDACO).await;
    assert_eq!(stato["statoRichiesta"], "2", "{stato}");
    assert_eq!(stato["esito"]["soggetti"], 2001);
    // Only the mayor sees it.
    let (st, _) = get(&s, &format!("/api/v1/estrazioni/{id}"), &operatore(&s)).await;
    assert_eq!(st, 404);
    // Audited with its reason.
    let voci = s.store.audit_page(0, 100_000).await.unwrap();
    assert!(voci
        .iter()
        .any(|v| v.voce.azione == "estrazioneMassiva" && v.voce.esito.contains("cambioSoftware")));
    assert!(voci
        .iter()
        .any(|v| v.voce.azione == "estrazioneMassiva" && v.voce.esito == "negato"));
    assert!(voci.iter().any(|v| v.voce.azione == "download7002"));
}

trait DueValori {
    fn into_two(self) -> (u16, Value);
}

impl DueValori for (u16, Value, Option<String>) {
    fn into_two(self) -> (u16, Value) {
        (self.0, self.1)
    }
}

fn common_worker(s: &Server) {
    anpr_service::estrazioni::avvia_lavoratore(s.registry.clone());
}

async fn elenchi_e_rivestimento(s: Server) {
    common_worker(&s);
    let a = soggetto(&s.ok("1002", &iscrizione(Some(1), "Rossi", "F")).await);
    let scheda = s.scheda(&a, None).await;
    let cf = scheda["codiceFiscale"]["codFiscale"]
        .as_str()
        .unwrap()
        .to_owned();
    // 4004 list 1: codes not validated (the simulator has not validated this one, or has).
    let (st, v) = s
        .post(
            "/api/v1/estrazioni/elenchi",
            &json!({"datiRichiesta": {"tipoElenco": "1"}}),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let stato = attendi(&s, v["idOperazioneANPR"].as_str().unwrap(), &operatore(&s)).await;
    assert_eq!(stato["statoRichiesta"], "2", "{stato}");
    let validato = scheda["codiceFiscale"]["stato"] == "validato";
    assert_eq!(stato["esito"]["soggetti"], if validato { 0 } else { 1 });
    // List 2 with a period: EN468.
    let (st, v) = s
        .post("/api/v1/estrazioni/elenchi", &json!({"datiRichiesta": {"tipoElenco": "2", "dataRiferimentoIniziale": "2020-01-01", "dataRiferimentoFinale": "2020-12-31"}}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(common::codici(&v), vec!["EN468"]);
    // 4002: a file of codes, one known, one unknown, one malformed.
    use base64::Engine;
    let file = base64::engine::general_purpose::STANDARD.encode(format!(
        "codiceFiscale\n{cf}\nRSSMRA80A01H501U\nNONVALIDO\n"
    ));
    let (st, v) = s
        .post("/api/v1/estrazioni/rivestimento", &json!({"formato": "csv", "criteriRicerca": {"dataRiferimento": "2024-01-01", "datiRichiesti": ["2"], "fileCodiciFiscali": file}}))
        .await;
    assert_eq!(st, 202, "{v}");
    let id = v["idOperazioneANPR"].as_str().unwrap().to_owned();
    let stato = attendi(&s, &id, &operatore(&s)).await;
    assert_eq!(stato["esito"]["trovati"], 1, "{stato}");
    let (_, bytes, _) = get_bytes(&s, &format!("/api/v1/estrazioni/{id}/file")).await;
    let (h, rows) = csv_righe(&bytes);
    let c = |n: &str| h.iter().position(|x| x == n).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][c("esito")], "trovato");
    assert_eq!(rows[0][c("idANPR")], a);
    assert_eq!(rows[0][c("generalita.cognome")], "Rossi");
    assert_eq!(rows[1][c("esito")], "non trovato");
    assert_eq!(rows[2][c("esito")], "codice fiscale formalmente errato");
    // Over 2,000 codes: EN101.
    let tanti: Vec<String> = (0..2001).map(|_| cf.clone()).collect();
    let (st, v) = s
        .post("/api/v1/estrazioni/rivestimento", &json!({"criteriRicerca": {"dataRiferimento": "2024-01-01", "datiRichiesti": ["2"], "codiciFiscali": tanti}}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(common::codici(&v), vec!["EN101"]);
}

on_both_backends!(
    estrazione_csv_xlsx_e_criteri,
    limite_e_estrazione_massiva,
    elenchi_e_rivestimento
);

/// A request queued while no worker runs stays queued across a restart of the server
/// (a new process over the same database) and is run by the new worker.
async fn riavvio(backend: Backend) {
    use anpr_domain::caller::Ambiente;
    use anpr_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.sqlite3");
    let mut pg: Option<(String, String, anpr_store_postgres::testing::SchemaGuard)> = None;
    let apri = |pg: &Option<(String, String, anpr_store_postgres::testing::SchemaGuard)>| {
        let path = path.clone();
        let pg = pg.as_ref().map(|(u, s, _)| (u.clone(), s.clone()));
        async move {
            match pg {
                None => {
                    Arc::new(anpr_store_sqlite::SqliteStore::open(&path).unwrap()) as Arc<dyn Store>
                }
                Some((u, s)) => Arc::new(
                    anpr_store_postgres::PostgresStore::connect(&u, &s)
                        .await
                        .unwrap(),
                ) as Arc<dyn Store>,
            }
        }
    };
    if backend == Backend::Postgres {
        let Some(url) = anpr_store_postgres::testing::test_url() else {
            return;
        };
        let schema = anpr_store_postgres::testing::random_schema();
        let guard = anpr_store_postgres::testing::SchemaGuard::new(&url, &schema);
        pg = Some((url, schema, guard));
    }
    let avvia = |store: Arc<dyn Store>, lavoratore: bool| async move {
        let mut stores = std::collections::BTreeMap::new();
        stores.insert(Ambiente::Test, store);
        let registry = Arc::new(anpr_service::Registry::new(
            stores,
            Arc::new(anpr_service::clock::SystemClock),
        ));
        if lavoratore {
            anpr_service::estrazioni::avvia_lavoratore(registry.clone());
        }
        let app = anpr_server::router(
            registry,
            anpr_server::ServerConfig {
                ambiente_predefinito: Ambiente::Test,
                backend: "test",
                identita_da_header: true,
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), task)
    };
    let client = reqwest::Client::new();
    let invia = |base: String, path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let mut r = client.post(format!("{base}{path}")).json(&body);
            for (k, v) in common::OPERATORE {
                r = r.header(k, v);
            }
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let leggi = |base: String, path: String| {
        let client = client.clone();
        async move {
            let mut r = client.get(format!("{base}{path}"));
            for (k, v) in common::OPERATORE {
                r = r.header(k, v);
            }
            r.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    // First run: no worker.
    let (base, task) = avvia(apri(&pg).await, false).await;
    let (st, v) = invia(
        base.clone(),
        "/api/v1/operazioni/1002",
        iscrizione(Some(1), "Rossi", "F"),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let a = soggetto(&v);
    let (st, v) = invia(
        base.clone(),
        "/api/v1/estrazioni",
        json!({"criteriRicerca": {"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": a, "idSchedaSoggettoANPRA": a}}}),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let id = v["idOperazioneANPR"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        leggi(base.clone(), format!("/api/v1/estrazioni/{id}")).await["statoRichiesta"],
        "0"
    );
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Second run over the same database, with its worker.
    let (base, _task) = avvia(apri(&pg).await, true).await;
    let mut stato = Value::Null;
    for _ in 0..200 {
        stato = leggi(base.clone(), format!("/api/v1/estrazioni/{id}")).await;
        if stato["statoRichiesta"] == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stato["statoRichiesta"], "2", "{stato}");
    assert_eq!(stato["esito"]["soggetti"], 1);
    drop(dir);
}

#[tokio::test]
async fn riavvio_sqlite() {
    riavvio(Backend::Sqlite).await;
}

#[tokio::test]
async fn riavvio_postgres() {
    riavvio(Backend::Postgres).await;
}
