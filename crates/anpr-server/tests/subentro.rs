//! Onboarded records are ordinary records (SPEC M-6, issue 5): after a subentro of a
//! generated municipality, its subjects are read, searched and changed over the REST
//! API exactly like subjects registered by operations (5005 change of address of a
//! whole family, 2001 death), and the file arrives through the REST upload.

mod common;

use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use common::{start, Backend, Server};
use serde_json::{json, Value};

const ROMA: &str = "058091";

fn oggi() -> String {
    anpr_service::clock::italian_date(chrono::Utc::now()).to_string()
}

/// Generates Rome's files and onboards them through the service entry point.
async fn onboarding(s: &Server) -> (tempfile::TempDir, tempfile::TempDir) {
    let gen = tempfile::tempdir().unwrap();
    let r = anpr_generatore::genera(&anpr_generatore::Configurazione {
        comuni: vec![ROMA.parse().unwrap()],
        persone: 600,
        seme: 9,
        anomalie: 0.0,
        totali_errati: false,
        data_estrazione: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        cartella: gen.path().to_owned(),
    })
    .unwrap();
    let esiti = tempfile::tempdir().unwrap();
    let e = anpr_subentro::importa(
        Arc::clone(&s.store),
        None,
        anpr_subentro::Opzioni {
            comune: ROMA.parse().unwrap(),
            ambiente: Ambiente::Produzione,
            oggi: anpr_service::clock::italian_date(chrono::Utc::now()),
            utente: "TEST".into(),
            canale: "test".into(),
            dimensione_massima: 1 << 30,
            cartella_esiti: esiti.path().to_owned(),
        },
        r.file
            .iter()
            .map(|p| anpr_subentro::FileIngresso::da_percorso(p))
            .collect(),
        Arc::new(|_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(
        e.stato,
        anpr_subentro::StatoSubentro::Elaborato,
        "{:?}",
        e.bloccanti
    );
    assert_eq!(e.soggetti_caricati, r.soggetti);
    (gen, esiti)
}

/// Loaded APR subjects (idANPR) from the outcome file.
fn caricati(esiti: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(esiti.join("esiti.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("APR_") && l.contains(",S,") && l.ends_with(",CARICATO"))
        .map(|l| l.split(',').nth(4).unwrap().to_owned())
        .collect()
}

async fn componenti(s: &Server, fam: &str) -> Vec<String> {
    s.componenti(fam, None)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn record_caricati_sono_ordinari(s: Server) {
    let (_gen, esiti) = onboarding(&s).await;
    let ids = caricati(esiti.path());
    assert!(ids.len() > 100);

    // Consultation and search see them.
    let primo = s.scheda(&ids[0], None).await;
    assert_eq!(primo["competenza"]["comune"], ROMA);
    let cf = primo["codiceFiscale"]["codFiscale"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, trovati) = s
        .post(
            "/api/v1/soggetti/ricerca",
            &json!({"criteriRicerca": {"codiceFiscale": cf}}),
        )
        .await;
    assert_eq!(status, 200, "{trovati}");
    assert_eq!(trovati["totale"], 1, "{trovati}");

    // A whole family moves within Rome (5005).
    let fam = primo["legame"]["idFamigliaConvivenzaAnpr"]
        .as_str()
        .unwrap()
        .to_owned();
    let membri = componenti(&s, &fam).await;
    assert!(!membri.is_empty());
    let soggetti: Vec<Value> = membri
        .iter()
        .map(|m| json!({"idSchedaSoggettoANPR": m}))
        .collect();
    s.ok(
        "5005",
        &json!({
            "idOperazioneComune": "1", "dataDecorrenza": oggi(),
            "soggetti": soggetti,
            "residenza": {"comune": ROMA, "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Appia Nuova"}, "numeroCivico": {"numero": "7"}}
        }),
    )
    .await;
    let dopo = s.scheda(&membri[0], None).await;
    assert_eq!(
        dopo["residenza"]["indirizzo"]["toponimo"]["denominazioneToponimo"],
        "Appia Nuova"
    );

    // A person living alone dies (2001).
    let mut solo = None;
    for id in ids.iter().skip(1) {
        let sc = s.scheda(id, None).await;
        let f = sc["legame"]["idFamigliaConvivenzaAnpr"]
            .as_str()
            .unwrap()
            .to_owned();
        if f != fam && componenti(&s, &f).await.len() == 1 {
            solo = Some(id.clone());
            break;
        }
    }
    let solo = solo.expect("a one-person household");
    let morte = s
        .ok(
            "2001",
            &json!({
                "idOperazioneComune": "2", "motivoCancellazione": "1",
                "soggetto": {"idSchedaSoggettoANPR": solo},
                "datiDecesso": {"dataMorte": oggi()}
            }),
        )
        .await;
    assert_eq!(morte["esito"], "OK");
    let sc = s.scheda(&solo, None).await;
    assert_eq!(sc["competenza"]["posizione"], "cancellato", "{sc}");
}

macro_rules! su_entrambi {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let s = super::start(super::Backend::Sqlite).await.unwrap();
                    super::$scenario(s).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(s) = super::start(super::Backend::Postgres).await {
                        super::$scenario(s).await;
                    }
                }
            }
        )+
    };
}

su_entrambi!(record_caricati_sono_ordinari);

/// A server whose only environment is `presubentro`, called by a subentro operator of
/// Rome.
async fn server_presubentro(
    backend: Backend,
    registro_ae: &std::path::Path,
) -> Option<(
    String,
    Arc<dyn anpr_store::Store>,
    Box<dyn std::any::Any + Send>,
)> {
    let (store, keep) = common::store(backend).await?;
    let mut stores = std::collections::BTreeMap::new();
    stores.insert(Ambiente::Presubentro, Arc::clone(&store));
    // The tax agency knows the generated population; pre-subentro reads it only.
    let ae = anpr_ae::Simulatore::new();
    ae.carica_csv_file(registro_ae).unwrap();
    ae.imposta_sola_lettura(true);
    let registry = Arc::new(
        anpr_service::Registry::new(stores, Arc::new(anpr_service::clock::SystemClock))
            .con_agenzia_entrate(Ambiente::Presubentro, Arc::new(ae)),
    );
    let app = anpr_server::router(
        registry,
        anpr_server::ServerConfig {
            ambiente_predefinito: Ambiente::Presubentro,
            backend: "test",
            identita_da_header: true,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Some((format!("http://{addr}"), store, keep))
}

/// A multipart/form-data body with one `file` part per file (built by hand: the
/// client's multipart feature is not needed elsewhere).
fn multipart(files: &[std::path::PathBuf]) -> (String, Vec<u8>) {
    let boundary = "anpr-subentro-boundary-7d1";
    let mut body = Vec::new();
    for f in files {
        let nome = f.file_name().unwrap().to_string_lossy();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{nome}\"\r\nContent-Type: application/xml\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&std::fs::read(f).unwrap());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_rest(backend: Backend) {
    let gen = tempfile::tempdir().unwrap();
    let r = anpr_generatore::genera(&anpr_generatore::Configurazione {
        comuni: vec![ROMA.parse().unwrap()],
        persone: 300,
        seme: 4,
        anomalie: 0.05,
        totali_errati: false,
        data_estrazione: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        cartella: gen.path().to_owned(),
    })
    .unwrap();
    let Some((base, store, _keep)) = server_presubentro(backend, &r.registro_ae).await else {
        return;
    };
    let (tipo, body) = multipart(&r.file);
    // No connection reuse: the refused upload's connection is closed by the server
    // before it has read the whole body, and a pooled client would send the next upload
    // down that closed connection (broken pipe).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let invia = |profili: &'static str| {
        client
            .post(format!("{base}/api/v1/subentro"))
            .header("content-type", tipo.clone())
            .header("x-anpr-utente", "BNCLRA70A41H501X")
            .header("x-anpr-comune", ROMA)
            .header("x-anpr-profili", profili)
            .body(body.clone())
            .send()
    };
    // Without the subentro profile: refused before anything is stored.
    let negato = invia("OPERATORE_CONSULTAZIONE").await.unwrap();
    assert_eq!(negato.status().as_u16(), 403);
    let risposta = invia("OPERATORE_SUBENTRO").await.unwrap();
    assert_eq!(risposta.status().as_u16(), 200);
    let v: Value = risposta.json().await.unwrap();
    assert_eq!(v["stato"], "ELABORATO", "{v}");
    assert_eq!(v["soggettiLetti"], r.soggetti);
    let mut contati = std::collections::BTreeMap::new();
    for riga in v["riepilogo"].as_array().unwrap() {
        *contati
            .entry(riga["codice"].as_str().unwrap().to_owned())
            .or_insert(0u64) += riga["conteggio"].as_u64().unwrap();
    }
    assert_eq!(contati, r.anomalie);
    // The outcome CSV is downloadable by the municipality, with an idANPR per record.
    let url = format!("{base}{}", v["esiti"][0].as_str().unwrap());
    let csv = client
        .get(&url)
        .header("x-anpr-utente", "BNCLRA70A41H501X")
        .header("x-anpr-comune", ROMA)
        .header("x-anpr-profili", "OPERATORE_SUBENTRO")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    let testo = csv.text().await.unwrap();
    let caricati = testo.lines().filter(|l| l.ends_with(",CARICATO")).count() as u64;
    assert_eq!(
        caricati,
        v["soggettiCaricati"].as_u64().unwrap() + v["famiglieCaricate"].as_u64().unwrap()
    );
    // Another municipality does not see it.
    let altrui = client
        .get(&url)
        .header("x-anpr-utente", "BNCLRA70A41H501X")
        .header("x-anpr-comune", "015146")
        .header("x-anpr-profili", "OPERATORE_SUBENTRO")
        .send()
        .await
        .unwrap();
    assert_eq!(altrui.status().as_u16(), 404);
    assert!(!store
        .file_subentro(&ROMA.parse().unwrap())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_rest_sqlite() {
    upload_rest(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_rest_postgres() {
    upload_rest(Backend::Postgres).await;
}
