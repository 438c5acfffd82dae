//! Registry operations over HTTP on SQLite: registration (1002), idempotent replay,
//! ordering of `idOperazioneComune`, validation codes, newest-first annulment.

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

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(
        Ambiente::Test,
        Arc::new(SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap()),
    );
    let registry = Arc::new(Registry::new(stores, Arc::new(SystemClock)));
    let app = anpr_server::router(
        registry,
        ServerConfig {
            ambiente_predefinito: Ambiente::Test,
            backend: "sqlite",
            identita_da_header: true,
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

const OPERATORE: [(&str, &str); 3] = [
    ("x-anpr-utente", "BNCLRA70A41H501X"),
    ("x-anpr-comune", "058091"),
    (
        "x-anpr-profili",
        "OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE",
    ),
];

impl Server {
    async fn post(&self, path: &str, body: &Value) -> (u16, String) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        for (k, v) in OPERATORE {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn iscrizione(
    id_comune: u64,
    cognome: &str,
    nome: &str,
    sesso: &str,
    nascita: &str,
    famiglia: Option<&str>,
    legame: &str,
) -> Value {
    let mut famiglia_json = json!({"codiceLegame": legame});
    if let Some(f) = famiglia {
        famiglia_json["idFamigliaConvivenzaANPR"] = json!(f);
    }
    json!({
        "idOperazioneComune": id_comune.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": famiglia_json
    })
}

async fn members(s: &Server, famiglia: &str) -> Vec<(String, String)> {
    let (status, body) = s
        .post("/api/v1/famiglie/consulta", &json!({"idANPR": famiglia}))
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
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

fn codes(doc: &Value) -> Vec<String> {
    doc["anomalie"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["codice"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_family_registers_replays_are_identical_and_annulment_is_newest_first() {
    let s = start().await;
    let (status, head_raw) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(5, "Rossi", "Mario", "M", "1980-01-01", None, "1"),
        )
        .await;
    assert_eq!(status, 200, "{head_raw}");
    let head: Value = serde_json::from_str(&head_raw).unwrap();
    assert_eq!(head["esito"], "OK");
    let famiglia = head["famiglie"][0]["idANPR"].as_str().unwrap().to_owned();
    let capo = head["soggetti"][0]["idANPR"].as_str().unwrap().to_owned();

    // Replay: same bytes, nothing new.
    let (status, again) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(5, "Rossi", "Mario", "M", "1980-01-01", None, "1"),
        )
        .await;
    assert_eq!((status, &again), (200, &head_raw));
    // Same id for another service: EN079.
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "5", "idOperazioneANPR": head["idOperazioneANPR"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(codes(&serde_json::from_str(&body).unwrap()), vec!["EN079"]);

    // The spouse joins the family.
    let (status, spouse_raw) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(
                6,
                "Bianchi",
                "Anna",
                "F",
                "1982-05-10",
                Some(&famiglia),
                "2",
            ),
        )
        .await;
    assert_eq!(status, 200, "{spouse_raw}");
    let spouse: Value = serde_json::from_str(&spouse_raw).unwrap();

    // A lower unseen id is refused with its code, and nothing is stored for it.
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(3, "Verdi", "Luca", "M", "1990-01-01", None, "1"),
        )
        .await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EV030".to_owned()]),
        "{body}"
    );
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(0, "Verdi", "Luca", "M", "1990-01-01", None, "1"),
        )
        .await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EV001".to_owned()])
    );

    // Validation: duplicate CF, head already present, unknown reason, birth after decorrenza.
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(7, "Rossi", "Mario", "M", "1980-01-01", None, "1"),
        )
        .await;
    assert_eq!(status, 422);
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(codes(&refused), vec!["EN248"]);
    assert_eq!(refused["anomalie"][0]["campo"], "generalita.codiceFiscale");
    assert!(refused["riferimento"]["id"].is_string());
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(8, "Neri", "Ugo", "M", "1970-01-01", Some(&famiglia), "1"),
        )
        .await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EF007".to_owned()])
    );
    let mut bad = iscrizione(9, "Neri", "Ugo", "M", "2021-01-01", None, "1");
    bad["motivoIscrizione"]["idMotivoIscrizione"] = json!("77");
    let (status, body) = s.post("/api/v1/operazioni/1002", &bad).await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EC006".to_owned(), "EHA3".to_owned()])
    );
    // A refused request is stored: its replay gives the same refusal.
    let (status, again) = s.post("/api/v1/operazioni/1002", &bad).await;
    assert_eq!((status, again), (422, body));

    assert_eq!(members(&s, &famiglia).await.len(), 2);

    // Annulling the head's registration first is out of order: the family changed after.
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "10", "idOperazioneANPR": head["idOperazioneANPR"]}),
        )
        .await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EN077".to_owned()]),
        "{body}"
    );
    // A change-annulment service cannot annul a registration.
    let (status, body) = s
        .post(
            "/api/v1/operazioni/5012",
            &json!({"idOperazioneComune": "11", "idOperazioneANPR": spouse["idOperazioneANPR"]}),
        )
        .await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EN314".to_owned()])
    );
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "12", "idOperazioneANPR": spouse["idOperazioneANPR"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        members(&s, &famiglia).await,
        vec![(capo.clone(), "1".to_owned())]
    );
    let (status, _) = s
        .post(
            "/api/v1/soggetti/consulta",
            &json!({"idANPR": spouse["soggetti"][0]["idANPR"]}),
        )
        .await;
    assert_eq!(status, 404, "the annulled registration is gone");
    // The spouse can now be registered again.
    let (status, body) = s
        .post(
            "/api/v1/operazioni/1002",
            &iscrizione(
                13,
                "Bianchi",
                "Anna",
                "F",
                "1982-05-10",
                Some(&famiglia),
                "2",
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The audit chain is intact after all this.
    let r = s
        .client
        .post(format!("{}/api/v1/audit/verifica", s.base))
        .header("x-anpr-utente", "X")
        .header("x-anpr-profili", "GESTORE_SISTEMA")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["violazione"], Value::Null, "{v}");
    assert!(v["vociVerificate"].as_u64().unwrap() > 10);
}

#[tokio::test]
async fn operations_need_the_registration_profile_and_a_known_service() {
    let s = start().await;
    let r = s
        .client
        .post(format!("{}/api/v1/operazioni/1002", s.base))
        .header("x-anpr-utente", "BNCLRA70A41H501X")
        .header("x-anpr-comune", "058091")
        .header("x-anpr-profili", "OPERATORE_CERTIFICAZIONE")
        .json(&iscrizione(
            1,
            "Rossi",
            "Mario",
            "M",
            "1980-01-01",
            None,
            "1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, body) = s.post("/api/v1/operazioni/9999", &json!({})).await;
    assert_eq!(
        (status, codes(&serde_json::from_str(&body).unwrap())),
        (422, vec!["EV040".to_owned()])
    );
    let (status, body) = s
        .post("/api/v1/operazioni/1002", &json!({"generalita": 1}))
        .await;
    assert_eq!(status, 400, "{body}");
}
