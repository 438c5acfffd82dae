//! The HTTP client's failure modes (server down, no answer, oversized or malformed
//! answers) and the router's coded refusals of requests that are not the protocol.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anpr_ae::{
    AgenziaEntrate, ClientHttp, ConfigurazioneClientHttp, ErroreAe, GestioneCf, Simulatore,
};
use axum::routing::post;
use axum::Router;
use common::*;
use serde_json::{json, Value};

fn client(base: &str, timeout: Duration) -> ClientHttp {
    let mut config = ConfigurazioneClientHttp::new(base);
    config.timeout_connessione = timeout;
    config.timeout_risposta = timeout;
    ClientHttp::new(config).unwrap()
}

fn verifica() -> anpr_ae::RichiestaAe {
    richiesta(
        GestioneCf::Verifica,
        Some("RSSMRA80A01H501U"),
        dati("Rossi", "Mario"),
    )
}

/// Serves `app` on 127.0.0.1:0.
async fn servi_app(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let indirizzo = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{indirizzo}")
}

#[tokio::test]
async fn server_down_is_ev060() {
    // A port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let indirizzo = listener.local_addr().unwrap();
    drop(listener);
    let ae = client(&format!("http://{indirizzo}"), Duration::from_secs(2));
    let errore = ae.valida(&verifica()).await.unwrap_err();
    assert!(
        matches!(errore, ErroreAe::NonRaggiungibile { .. }),
        "{errore:?}"
    );
    assert_eq!(errore.anomalia().codice, "EV060");
    assert!(errore.anomalia().is_blocking());
    let errore = ae.consulta("RSSMRA80A01H501U").await.unwrap_err();
    assert_eq!(errore.codice(), "EV060");
    // gestioneCF 3 does not call, so it answers even with the agency down.
    let esito = ae
        .valida(&richiesta(
            GestioneCf::NessunaChiamata,
            None,
            dati("Rossi", "Mario"),
        ))
        .await
        .unwrap();
    assert_eq!(
        esito.stato,
        anpr_domain::scheda::StatoCodiceFiscale::NonValidato
    );
}

#[tokio::test]
async fn no_answer_is_ev061_within_the_bound() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let indirizzo = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut aperte = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            aperte.push(socket);
        }
    });
    let ae = client(&format!("http://{indirizzo}"), Duration::from_millis(300));
    let inizio = Instant::now();
    let errore = ae.valida(&verifica()).await.unwrap_err();
    assert!(matches!(errore, ErroreAe::Timeout { .. }), "{errore:?}");
    assert_eq!(errore.anomalia().codice, "EV061");
    assert!(inizio.elapsed() < Duration::from_secs(5), "bounded wait");
}

#[tokio::test]
async fn a_slow_body_is_also_bounded() {
    // Answers the headers at once, then one byte of a 1000-byte body, then nothing.
    // A plain thread with blocking sockets: the test needs nothing of tokio's I/O here.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let indirizzo = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut aperte = Vec::new();
        while let Ok((mut socket, _)) = listener.accept() {
            let mut richiesta = vec![0u8; 4096];
            let _ = socket.read(&mut richiesta);
            let _ = socket.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                  content-length: 1000\r\n\r\n{",
            );
            aperte.push(socket);
        }
    });
    let ae = client(&format!("http://{indirizzo}"), Duration::from_millis(300));
    let inizio = Instant::now();
    let errore = ae.valida(&verifica()).await.unwrap_err();
    assert_eq!(errore.codice(), "EV061", "{errore:?}");
    assert!(inizio.elapsed() < Duration::from_secs(5), "bounded wait");
}

#[tokio::test]
async fn oversized_malformed_and_failed_answers_are_ev062() {
    let enorme = "x".repeat(200 * 1024);
    let app = Router::new()
        .route(
            "/ae/v1/valida",
            post(move || {
                let enorme = enorme.clone();
                async move { ([("content-type", "application/json")], enorme) }
            }),
        )
        .route(
            "/ae/v1/consulta",
            post(|| async { ([("content-type", "application/json")], "{\"posizione\": 7}") }),
        )
        .route(
            "/ae/v1/conferma-ae",
            post(|| async {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "errore interno",
                )
            }),
        )
        .route(
            "/ae/v1/conferma-anpr",
            post(|| async {
                axum::Json(json!({"stato": "validatissimo", "codiciCollegati": [], "anomalie": []}))
            }),
        );
    let base = servi_app(app).await;
    let ae = client(&base, Duration::from_secs(2));
    let errore = ae.valida(&verifica()).await.unwrap_err();
    assert!(matches!(errore, ErroreAe::Protocollo { .. }), "{errore:?}");
    assert_eq!(errore.anomalia().codice, "EV062");
    let errore = ae.consulta("RSSMRA80A01H501U").await.unwrap_err();
    assert_eq!(errore.codice(), "EV062", "{errore:?}");
    let riallinea = allineamento("RSSMRA80A01H501U", dati("Rossi", "Mario"));
    let errore = ae.conferma_dati_ae(&riallinea).await.unwrap_err();
    assert_eq!(errore.codice(), "EV062", "{errore:?}");
    assert!(errore.to_string().contains("500"), "{errore}");
    let errore = ae.conferma_dati_anpr(&riallinea).await.unwrap_err();
    assert_eq!(errore.codice(), "EV062", "{errore:?}");
    // An unknown path on the agency (e.g. a wrong base URL) is a protocol error too.
    let errore = ae
        .collega(&collegamento(NUMERICO, "RSSMRA80A01H501U", ROMA))
        .await
        .unwrap_err();
    assert_eq!(errore.codice(), "EV062", "{errore:?}");
}

/// Posts raw `corpo` to the simulator's `percorso`; returns status and JSON body.
async fn posta(base: &str, percorso: &str, corpo: &str) -> (u16, Value) {
    let risposta = reqwest::Client::new()
        .post(format!("{base}{percorso}"))
        .header("content-type", "application/json")
        .body(corpo.to_owned())
        .send()
        .await
        .unwrap();
    let status = risposta.status().as_u16();
    let testo = risposta.text().await.unwrap();
    (status, serde_json::from_str(&testo).unwrap_or(Value::Null))
}

fn primo_codice(corpo: &Value) -> (String, String) {
    let a = &corpo["anomalie"][0];
    (
        a["codice"].as_str().unwrap_or_default().to_owned(),
        a["campo"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_router_refuses_what_is_not_the_protocol_with_codes() {
    let base = servi(Arc::new(Simulatore::new())).await;
    let buona = json!({
        "gestioneCF": "1",
        "dati": {"cognome": "Rossi", "nome": "Mario", "sesso": "M",
                 "dataNascita": "1980-01-01", "luogoNascita": "H501"},
        "comune": ROMA
    });
    let (status, corpo) = posta(&base, "/ae/v1/valida", &buona.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(corpo["stato"], "validato");
    assert_eq!(corpo["codiceFiscale"], "RSSMRA80A01H501U");

    let check = |atteso: (u16, &'static str, &'static str)| {
        move |(status, corpo): (u16, Value)| {
            let (codice, campo) = primo_codice(&corpo);
            assert_eq!((status, codice.as_str(), campo.as_str()), atteso, "{corpo}");
        }
    };
    check((400, "EV001", "corpo"))(posta(&base, "/ae/v1/valida", "{non json").await);
    let mut sconosciuto = buona.clone();
    sconosciuto["extra"] = json!(1);
    check((400, "EV001", "corpo"))(posta(&base, "/ae/v1/valida", &sconosciuto.to_string()).await);
    let mut sesso = buona.clone();
    sesso["dati"]["sesso"] = json!("X");
    check((400, "EV001", "dati.sesso"))(posta(&base, "/ae/v1/valida", &sesso.to_string()).await);
    let mut gestione = buona.clone();
    gestione["gestioneCF"] = json!("9");
    check((400, "EV001", "gestioneCF"))(posta(&base, "/ae/v1/valida", &gestione.to_string()).await);
    let mut comune = buona.clone();
    comune["comune"] = json!("");
    check((400, "EV002", "comune"))(posta(&base, "/ae/v1/valida", &comune.to_string()).await);
    check((400, "EV002", "codiceAe"))(
        posta(
            &base,
            "/ae/v1/collega",
            &json!({"codiceAnpr": NUMERICO, "codiceAe": "", "comune": ROMA}).to_string(),
        )
        .await,
    );
    let grande = format!(
        "{{\"codiceFiscale\":\"{}\"}}",
        "A".repeat(anpr_ae::protocollo::MAX_BYTE_RICHIESTA)
    );
    check((413, "EV001", "corpo"))(posta(&base, "/ae/v1/consulta", &grande).await);
    check((404, "EV001", "percorso"))(posta(&base, "/ae/v2/valida", "{}").await);

    let risposta = reqwest::Client::new()
        .get(format!("{base}/ae/v1/valida"))
        .send()
        .await
        .unwrap();
    assert_eq!(risposta.status().as_u16(), 405);
    let corpo: Value = risposta.json().await.unwrap();
    assert_eq!(
        primo_codice(&corpo),
        ("EV001".to_owned(), "metodo".to_owned())
    );

    // Consultation of an unreadable code: simply not there.
    let (status, corpo) = posta(
        &base,
        "/ae/v1/consulta",
        &json!({"codiceFiscale": "nonunCF"}).to_string(),
    )
    .await;
    assert_eq!((status, corpo), (200, json!({"posizione": null})));
}

#[tokio::test]
async fn concurrent_attributions_over_http_never_issue_a_code_twice() {
    let sim = Arc::new(Simulatore::new());
    let base = servi(sim.clone()).await;
    let ae = Arc::new(client(&base, Duration::from_secs(5)));
    // Eight different people whose data all give RSSMRA80A01H501U.
    let cognomi = [
        "Rossi", "Russo", "Rossa", "Rossu", "Rasso", "Rosso", "Resse", "Rassi",
    ];
    let mut compiti = Vec::new();
    for cognome in cognomi {
        let ae = ae.clone();
        compiti.push(tokio::spawn(async move {
            ae.valida(&richiesta(
                GestioneCf::PrimaAttribuzione,
                None,
                dati(cognome, "Mario"),
            ))
            .await
            .unwrap()
        }));
    }
    let mut codici_emessi = Vec::new();
    for compito in compiti {
        let esito = compito.await.unwrap();
        codici_emessi.push(esito.codice_fiscale.unwrap());
    }
    codici_emessi.sort();
    codici_emessi.dedup();
    assert_eq!(codici_emessi.len(), 8, "{codici_emessi:?}");
    assert_eq!(sim.len(), 8);
    let base_cf: anpr_domain::codice_fiscale::CodiceFiscale = "RSSMRA80A01H501U".parse().unwrap();
    for codice in &codici_emessi {
        let c: anpr_domain::codice_fiscale::CodiceFiscale = codice.parse().unwrap();
        assert_eq!(anpr_domain::codice_fiscale::forma_base(&c), base_cf);
    }
}
