//! S001 (subentro upload over SOAP) end to end, on SQLite and on PostgreSQL: a
//! gestionale generated with zeep from the server's WSDL sends generated subentro files
//! (ZIP or gzip, base64), every request and response validated against
//! `S001subentro.xsd` (`tests/soap/subentro_s001.py`). A supply is loaded when its
//! last part arrives (one APR and one AIRE file; an APR file in two parts), with the
//! anomalies the generator injected; refusals carry their codes (name, compression,
//! resent file, declared totals, sizes), hostile bodies get faults.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use base64::Engine;
use common::Backend;
use serde_json::{json, Value};

const ROMA: &str = "058091";

struct Server {
    base: String,
    store: Arc<dyn anpr_store::Store>,
    _esiti: tempfile::TempDir,
    _keep: Box<dyn std::any::Any + Send>,
}

/// A server whose only environment is `presubentro`, with the tax agency knowing the
/// generated population (read only), and a subentro directory of its own.
async fn server(backend: Backend, registro_ae: &Path) -> Option<Server> {
    let (store, keep) = common::store(backend).await?;
    let mut stores = BTreeMap::new();
    stores.insert(Ambiente::Presubentro, Arc::clone(&store));
    let ae = anpr_ae::Simulatore::new();
    ae.carica_csv_file(registro_ae).unwrap();
    ae.imposta_sola_lettura(true);
    let registry = Arc::new(
        anpr_service::Registry::new(stores, Arc::new(anpr_service::clock::SystemClock))
            .con_agenzia_entrate(Ambiente::Presubentro, Arc::new(ae)),
    );
    let esiti = tempfile::tempdir().unwrap();
    let app = anpr_server::router_con_esiti(
        registry,
        anpr_server::ServerConfig {
            ambiente_predefinito: Ambiente::Presubentro,
            backend: "test",
            identita_da_header: true,
        },
        esiti.path().to_owned(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Some(Server {
        base: format!("http://{addr}"),
        store,
        _esiti: esiti,
        _keep: keep,
    })
}

fn genera(
    cartella: &Path,
    persone: u64,
    anomalie: f64,
    errati: bool,
) -> anpr_generatore::Riepilogo {
    anpr_generatore::genera(&anpr_generatore::Configurazione {
        comuni: vec![ROMA.parse().unwrap()],
        persone,
        seme: 11,
        anomalie,
        totali_errati: errati,
        data_estrazione: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        cartella: cartella.to_owned(),
    })
    .unwrap()
}

/// One S001 call of the plan: (idOperazioneComune, nomeFile, file, compression).
fn chiamata(id: u32, nome: &str, file: Option<&Path>, compressione: &str) -> Value {
    json!({
        "id": id.to_string(),
        "nomeFile": nome,
        "file": file.map(|f| f.to_string_lossy().into_owned()),
        "compressione": compressione,
    })
}

/// Runs the zeep client with `chiamate` as `profili`; its answers (every message was
/// XSD-valid, else the script fails).
async fn gestionale(base: &str, profili: &str, chiamate: Vec<Value>) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soap/subentro_s001.py");
    let n = chiamate.len();
    let piano = json!({
        "comune": ROMA, "tipoInvio": "PRE_SUB", "profili": profili, "chiamate": chiamate,
    })
    .to_string();
    let base = base.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .arg(piano)
            .output()
            .expect("python3 runs (scripts/test installs zeep and xmlschema)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gestionale failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(v["validati"], 2 * n, "{v}");
    v["risposte"].as_array().unwrap().clone()
}

fn codici(r: &Value) -> Vec<String> {
    r["errori"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().to_owned())
        .collect()
}

fn nome(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Anomalies per code from a load's `descrizioneEsito` ("…; anomalie: EN481 (W) 3, …;").
fn anomalie_descritte(descrizione: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Some(parte) = descrizione.split("anomalie: ").nth(1) {
        for voce in parte.split(';').next().unwrap().split(", ") {
            let mut pezzi = voce.split_whitespace();
            let codice = pezzi.next().unwrap().to_owned();
            let n: u64 = pezzi.nth(1).unwrap().parse().unwrap();
            *out.entry(codice).or_default() += n;
        }
    }
    out
}

/// The outcome file of a load, over REST.
async fn esiti_csv(s: &Server, id: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/subentro/{id}/esiti/esiti.csv", s.base))
        .header("x-anpr-utente", "BNCLRA70A41H501X")
        .header("x-anpr-comune", ROMA)
        .header("x-anpr-profili", "OPERATORE_SUBENTRO")
        .header("x-anpr-ambiente", "presubentro")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// APR (ZIP) then AIRE (gzip): the first is staged, the second loads the supply; a
/// resend gets the stored answer; the outcome files are on REST.
async fn fornitura_completa(backend: Backend) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera(gen.path(), 150, 0.0, false);
    let Some(s) = server(backend, &r.registro_ae).await else {
        return;
    };
    let (apr, aire) = (&r.file[0], &r.file[1]);
    let risposte = gestionale(
        &s.base,
        "OPERATORE_SUBENTRO",
        vec![
            chiamata(1, &format!("{}.zip", nome(apr)), Some(apr), "zip"),
            chiamata(2, &format!("{}.gz", nome(aire)), Some(aire), "gzip"),
            // The same idOperazioneComune again: the stored answer, nothing reloaded.
            chiamata(2, &format!("{}.gz", nome(aire)), Some(aire), "gzip"),
        ],
    )
    .await;
    let (primo, ultimo, ripetuto) = (&risposte[0], &risposte[1], &risposte[2]);
    assert_eq!(primo["esito"], "2", "{primo}");
    assert_eq!(primo["nomeFile"], nome(apr));
    let d = primo["descrizione"].as_str().unwrap();
    assert!(
        d.contains("acquisito") && d.contains("AIRE_058091_001_<TTT>.xml"),
        "{d}"
    );
    assert_eq!(ultimo["esito"], "2", "{ultimo}");
    let d = ultimo["descrizione"].as_str().unwrap();
    assert!(d.contains("ELABORATO"), "{d}");
    assert!(
        d.contains(&format!(
            "schede soggetto lette {}, caricate {}",
            r.soggetti, r.soggetti
        )),
        "{d}"
    );
    assert!(d.contains("nessuna anomalia"), "{d}");
    assert_eq!(ripetuto, ultimo, "a resent id gets the original answer");
    let id = ultimo["idOperazioneANPR"].as_str().unwrap();
    let op = s
        .store
        .operation(id.parse().unwrap())
        .await
        .unwrap()
        .expect("the load is an operation");
    assert_eq!(op.codice_servizio.as_str(), "S001");
    let (status, csv) = esiti_csv(&s, id).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(
        csv.lines().filter(|l| l.ends_with(",CARICATO")).count() as u64,
        r.soggetti + r.famiglie
    );
    let file = s.store.file_subentro(&ROMA.parse().unwrap()).await.unwrap();
    assert_eq!(file.len(), 2, "{file:?}");
}

/// A supply with injected anomalies: outcome 6 and every anomaly counted in the
/// answer; then one with wrong declared totals: `rispostaKO` EN011, nothing loaded.
async fn anomalie(backend: Backend) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera(gen.path(), 300, 0.05, false);
    let Some(s) = server(backend, &r.registro_ae).await else {
        return;
    };
    assert!(!r.anomalie.is_empty());
    let (apr, aire) = (&r.file[0], &r.file[1]);
    let risposte = gestionale(
        &s.base,
        "OPERATORE_SUBENTRO",
        vec![
            chiamata(1, &format!("{}.zip", nome(apr)), Some(apr), "zip"),
            chiamata(2, &format!("{}.zip", nome(aire)), Some(aire), "zip"),
        ],
    )
    .await;
    let ultimo = &risposte[1];
    assert_eq!(ultimo["esito"], "6", "{ultimo}");
    let d = ultimo["descrizione"].as_str().unwrap();
    assert_eq!(anomalie_descritte(d), r.anomalie, "{d}");

    let errati = tempfile::tempdir().unwrap();
    let r2 = genera(errati.path(), 100, 0.0, true);
    let (apr, aire) = (&r2.file[0], &r2.file[1]);
    let risposte = gestionale(
        &s.base,
        "OPERATORE_SUBENTRO",
        vec![
            chiamata(3, &format!("{}.zip", nome(apr)), Some(apr), "zip"),
            chiamata(4, &format!("{}.zip", nome(aire)), Some(aire), "zip"),
        ],
    )
    .await;
    let ko = &risposte[1];
    assert_eq!(ko["esito"], "3", "{ko}");
    assert_eq!(codici(ko), ["EN011", "EN527"], "{ko}");
    assert!(ko["idOperazioneANPR"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
}

/// The APR file in two parts (`totaleInvii` 2, `datiInvio` in each) and the AIRE file:
/// three calls, the load at the third, every subject loaded.
async fn due_parti(backend: Backend) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera(gen.path(), 200, 0.0, false);
    let Some(s) = server(backend, &r.registro_ae).await else {
        return;
    };
    let parti: Vec<PathBuf> = anpr_generatore::dividi_in_parti(&r.file[0], 2).unwrap();
    assert_eq!(nome(&parti[1]), "APR_058091_002_002.xml");
    let aire = &r.file[1];
    let risposte = gestionale(
        &s.base,
        "OPERATORE_SUBENTRO",
        vec![
            chiamata(
                1,
                &format!("{}.zip", nome(&parti[1])),
                Some(&parti[1]),
                "zip",
            ),
            chiamata(2, &format!("{}.zip", nome(aire)), Some(aire), "zip"),
            chiamata(
                3,
                &format!("{}.zip", nome(&parti[0])),
                Some(&parti[0]),
                "zip",
            ),
        ],
    )
    .await;
    let d = risposte[0]["descrizione"].as_str().unwrap();
    assert!(
        d.contains("(2 di 2 APR)") && d.contains("APR_058091_001_002.xml"),
        "{d}"
    );
    let d = risposte[1]["descrizione"].as_str().unwrap();
    let attesi = d.split("all'arrivo di: ").nth(1).unwrap();
    assert_eq!(attesi, "APR_058091_001_002.xml", "{d}");
    let ultimo = &risposte[2];
    assert_ne!(ultimo["esito"], "3", "{ultimo}");
    let d = ultimo["descrizione"].as_str().unwrap();
    assert!(
        d.contains(&format!(
            "schede soggetto lette {}, caricate {}",
            r.soggetti, r.soggetti
        )),
        "{d}"
    );
    let file = s.store.file_subentro(&ROMA.parse().unwrap()).await.unwrap();
    assert_eq!(file.len(), 3, "{file:?}");
}

/// An envelope of `RichiestaS001` with the development identity.
fn busta(id: u32, nome_file: &str, file_xml: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:s="http://www.sogei.it/ANPR/S001subentro">
<soap:Header><a:identitaSviluppo xmlns:a="urn:anpr:soap"><utente>BNCLRA70A41H501X</utente><profili>OPERATORE_SUBENTRO</profili></a:identitaSviluppo></soap:Header>
<soap:Body><s:RichiestaS001><testataRichiesta><idOperazioneComune>{id}</idOperazioneComune><codMittente>{ROMA}</codMittente><codDestinatario>999999</codDestinatario><operazioneRichiesta>S001</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta><tipoOperazione>C</tipoOperazione><tipoInvio>PRE_SUB</tipoInvio></testataRichiesta><nomeFile>{nome_file}</nomeFile><fileXml>{file_xml}</fileXml></s:RichiestaS001></soap:Body>
</soap:Envelope>"#
    )
}

/// Refusals with their codes: the name (EN001, EN039, EN008), no permission (EA401),
/// an uncompressed file (EN009), a part sent twice (EN007), no file (EV002); bad base64
/// (fault EV101), a compressed file over 40 MiB (EN002) and a message over 64 MiB
/// (fault EV112, HTTP 413); the server keeps serving.
async fn rifiuti(backend: Backend) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera(gen.path(), 60, 0.0, false);
    let Some(s) = server(backend, &r.registro_ae).await else {
        return;
    };
    let apr = &r.file[0];
    let risposte = gestionale(
        &s.base,
        "OPERATORE_SUBENTRO",
        vec![
            chiamata(1, "APR_058091_1_1.xml.zip", Some(apr), "zip"),
            chiamata(2, "APR_015146_001_001.xml.zip", Some(apr), "zip"),
            chiamata(3, "APR_058091_003_002.xml.zip", Some(apr), "zip"),
            chiamata(4, &nome(apr), Some(apr), "none"),
            chiamata(5, &format!("{}.zip", nome(apr)), Some(apr), "zip"),
            chiamata(6, &format!("{}.zip", nome(apr)), Some(apr), "gzip"),
            chiamata(7, &format!("{}.zip", nome(apr)), None, "zip"),
        ],
    )
    .await;
    let attesi: [&[&str]; 7] = [
        &["EN001", "EN527"],
        &["EN039", "EN527"],
        &["EN008", "EN527"],
        &["EN009", "EN527"],
        &[],
        &["EN007", "EN527"],
        &["EV002", "EN527"],
    ];
    for (r, attesi) in risposte.iter().zip(attesi) {
        if attesi.is_empty() {
            assert_eq!(r["esito"], "2", "{r}");
        } else {
            assert_eq!(r["esito"], "3", "{r}");
            assert_eq!(codici(r), attesi, "{r}");
        }
    }
    let negato = gestionale(
        &s.base,
        "OPERATORE_CONSULTAZIONE",
        vec![chiamata(8, &format!("{}.zip", nome(apr)), Some(apr), "zip")],
    )
    .await;
    assert_eq!(codici(&negato[0]), ["EA401", "EN527"], "{}", negato[0]);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let invia = |body: String| {
        client
            .post(format!("{}/ws/AnprServiceS001", s.base))
            .header("content-type", "text/xml; charset=utf-8")
            .body(body)
            .send()
    };
    let risposta = invia(busta(9, "APR_058091_001_001.xml.zip", "UEsDB$$$"))
        .await
        .unwrap();
    assert_eq!(risposta.status().as_u16(), 400);
    let testo = risposta.text().await.unwrap();
    assert!(
        testo.contains("EV101") && testo.contains("fileXml"),
        "{testo}"
    );
    // A compressed file over 40 MiB fits the message but not the bound: EN002.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let casuali: Vec<u8> = (0..(40u64 << 20) + 1)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&casuali);
    drop(casuali);
    let risposta = invia(busta(13, "APR_058091_001_001.xml.zip", &b64))
        .await
        .unwrap();
    drop(b64);
    assert_eq!(risposta.status().as_u16(), 200);
    let testo = risposta.text().await.unwrap();
    assert!(
        testo.contains("rispostaKO") && testo.contains("<codiceErroreAnomalia>EN002<"),
        "{testo}"
    );
    // Past 64 MiB the message is refused without being read whole.
    let grande = busta(10, "APR_058091_001_001.xml.zip", &"A".repeat(65 << 20));
    match invia(grande).await {
        Ok(risposta) => {
            assert_eq!(risposta.status().as_u16(), 413);
            assert!(risposta.text().await.unwrap().contains("EV112"));
        }
        // The server may close the connection while the client is still sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // Other SOAP endpoints keep their 1 MiB limit.
    let altro = client
        .post(format!("{}/ws/AnprService7001", s.base))
        .header("content-type", "text/xml; charset=utf-8")
        .body(busta(11, "x", &"A".repeat(2 << 20)))
        .send()
        .await;
    if let Ok(altro) = altro {
        assert_eq!(altro.status().as_u16(), 413);
    }
    // Still serving: the staged APR part is complete with the AIRE file.
    let aire = &r.file[1];
    let risposte = gestionale(
        &s.base,
        "OPERATORE_SUBENTRO",
        vec![chiamata(
            12,
            &format!("{}.zip", nome(aire)),
            Some(aire),
            "zip",
        )],
    )
    .await;
    assert_eq!(risposte[0]["esito"], "2", "{}", risposte[0]);
}

macro_rules! su_entrambi {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(super::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(super::Backend::Postgres).await;
                }
            }
        )+
    };
}

su_entrambi!(fornitura_completa, anomalie, due_parti, rifiuti);
