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
        r.file.iter().map(|p| anpr_subentro::FileIngresso::da_percorso(p)).collect(),
        Arc::new(|_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(e.stato, anpr_subentro::StatoSubentro::Elaborato, "{:?}", e.bloccanti);
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
    s.componenti(fam, None).await.into_iter().map(|(id, _)| id).collect()
}

async fn record_caricati_sono_ordinari(s: Server) {
    let (_gen, esiti) = onboarding(&s).await;
    let ids = caricati(esiti.path());
    assert!(ids.len() > 100);

    // Consultation and search see them.
    let primo = s.scheda(&ids[0], None).await;
    assert_eq!(primo["competenza"]["comune"], ROMA);
    let cf = primo["codiceFiscale"]["codFiscale"].as_str().unwrap().to_owned();
    let (status, trovati) = s
        .post("/api/v1/soggetti/ricerca", &json!({"criteriRicerca": {"codiceFiscale": cf}}))
        .await;
    assert_eq!(status, 200, "{trovati}");
    assert_eq!(trovati["totale"], 1, "{trovati}");

    // A whole family moves within Rome (5005).
    let fam = primo["legame"]["idFamigliaConvivenzaAnpr"].as_str().unwrap().to_owned();
    let membri = componenti(&s, &fam).await;
    assert!(!membri.is_empty());
    let soggetti: Vec<Value> = membri.iter().map(|m| json!({"idSchedaSoggettoANPR": m})).collect();
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
    assert_eq!(dopo["residenza"]["indirizzo"]["toponimo"]["denominazioneToponimo"], "Appia Nuova");

    // A person living alone dies (2001).
    let mut solo = None;
    for id in ids.iter().skip(1) {
        let sc = s.scheda(id, None).await;
        let f = sc["legame"]["idFamigliaConvivenzaAnpr"].as_str().unwrap().to_owned();
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
