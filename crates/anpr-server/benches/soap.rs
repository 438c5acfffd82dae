//! The SOAP edge's overhead: 1002 registrations/s and 3002 consultations/s over HTTP
//! through `POST /ws/AnprService1000` / `/ws/AnprService3000`, against the same
//! operations over REST (`POST /api/v1/operazioni/1002`, `POST /api/v1/soggetti/ricerca`)
//! in the same run, on SQLite. The ratio SOAP/REST is the cost of the XML wire layer
//! (parsing, XSD model check, conversion, XML writing); the target is at most 1.5.
//!
//! Each round uses a fresh store and server per channel (so both register into an
//! equally empty registry), REST first then SOAP, `clients` concurrent keep-alive
//! clients, each one municipality with its own increasing `idOperazioneComune`;
//! then each channel consults every person it registered once (by national id). The
//! SOAP messages are the ones a gestionale sends (the XSD's elements, a development
//! identity header); they are built up front, so client-side work is not measured.
//! Rounds alternate channels; the report gives the median of the rounds and the ratio.
//!
//! Run: `cargo bench -p anpr-server --bench soap`. Environment: `ANPR_BENCH_SOAP_OPS`
//! registrations per channel and round (default 2000), `ANPR_BENCH_CLIENTS` (default
//! 8), `ANPR_BENCH_SOAP_ROUNDS` (default 3). Without `--bench` (under `cargo test
//! --all-targets`) it does a smoke run of a few operations that still checks every
//! answer is a success.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anpr_domain::caller::Ambiente;
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_store_sqlite::SqliteStore;
use serde_json::{json, Value};

const COMUNI: [&str; 8] = [
    "058091", "015146", "063049", "001272", "082053", "010025", "037006", "048017",
];
const COGNOMI: [&str; 10] = [
    "Rossi", "Bianchi", "Verdi", "Esposito", "Romano", "Colombo", "Ricci", "Marino", "Greco",
    "Bruno",
];
const DATE_NASCITA: usize = 20_000;
const UTENTE: &str = "BNCLRA70A41H501X";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct Server {
    base: String,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open_in_dir(dir.path(), Ambiente::Test).expect("opening SQLite");
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, Arc::new(store));
    let registry = Arc::new(Registry::new(stores, Arc::new(SystemClock)));
    let app = anpr_server::router(
        registry,
        ServerConfig {
            ambiente_predefinito: Ambiente::Test,
            backend: "sqlite",
            identita_da_header: true,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    Server {
        base: format!("http://{addr}"),
        _dir: dir,
    }
}

/// Person `n`: (surname, name, sex, birth date), unique codice fiscale by construction.
fn persona(n: usize) -> (&'static str, &'static str, &'static str, String) {
    let nascita = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).expect("date")
        + chrono::Days::new((n % DATE_NASCITA) as u64);
    let (nome, sesso) = if n.is_multiple_of(2) {
        ("Mario", "M")
    } else {
        ("Anna", "F")
    };
    (
        COGNOMI[(n / DATE_NASCITA) % COGNOMI.len()],
        nome,
        sesso,
        nascita.to_string(),
    )
}

fn rest_1002(comune: &str, id: u64, n: usize) -> String {
    let (cognome, nome, sesso, nascita) = persona(n);
    json!({
        "idOperazioneComune": id.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": comune, "cap": "00100", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": {"codiceLegame": "1"}
    })
    .to_string()
}

fn busta(header_comune: &str, body: &str) -> String {
    let _ = header_comune;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <s:Header><a:identitaSviluppo xmlns:a=\"urn:anpr:soap\"><utente>{UTENTE}</utente><profili>OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE</profili></a:identitaSviluppo></s:Header>\
         <s:Body>{body}</s:Body></s:Envelope>"
    )
}

fn testata(comune: &str, id: u64, codice: &str, decorrenza: Option<&str>) -> String {
    format!(
        "<testataRichiesta><idOperazioneComune>{id}</idOperazioneComune><codMittente>{comune}</codMittente>\
         <codDestinatario>999999</codDestinatario><operazioneRichiesta>{codice}</operazioneRichiesta>\
         <dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta><tipoOperazione>C</tipoOperazione>\
         <tipoInvio>TEST</tipoInvio>{}</testataRichiesta>",
        decorrenza.map_or(String::new(), |d| format!("<dataDecorrenza>{d}</dataDecorrenza>"))
    )
}

fn soap_1002(comune: &str, id: u64, n: usize) -> String {
    let (cognome, nome, sesso, nascita) = persona(n);
    busta(
        comune,
        &format!(
            "<r:Richiesta1002 xmlns:r=\"http://sogei.it/ANPR/1000iscrizione\">{}\
             <motivoIscrizione><idMotivoIscrizione>4</idMotivoIscrizione></motivoIscrizione>\
             <generalita1002><generalita><cognome>{cognome}</cognome><nome>{nome}</nome><sesso>{sesso}</sesso>\
             <dataNascita>{nascita}</dataNascita><luogoNascita><localita><descrizioneStato>STATI UNITI</descrizioneStato>\
             <codiceStato>404</codiceStato></localita></luogoNascita></generalita></generalita1002>\
             <cittadinanza><descrizioneStato>ITALIA</descrizioneStato><codiceStato>100</codiceStato></cittadinanza>\
             <provenienza><localita><descrizioneStato>STATI UNITI</descrizioneStato><codiceStato>404</codiceStato></localita></provenienza>\
             <residenza><tipoIndirizzo>1</tipoIndirizzo><indirizzo><cap>00100</cap><comune><nomeComune>X</nomeComune>\
             <codiceIstat>{comune}</codiceIstat><siglaProvinciaIstat>XX</siglaProvinciaIstat></comune><toponimo><specie>VIA</specie>\
             <denominazioneToponimo>Nazionale</denominazioneToponimo></toponimo><numeroCivico><numero>10</numero></numeroCivico>\
             </indirizzo></residenza><famiglia><famiglia><tipoScheda>1</tipoScheda></famiglia><legameSoggetto>\
             <dataDecorrenza>2020-03-01</dataDecorrenza><codiceLegame>1</codiceLegame></legameSoggetto></famiglia>\
             <datiControllo><attribuzioneFamiglia>1</attribuzioneFamiglia></datiControllo></r:Richiesta1002>",
            testata(comune, id, "1002", Some("2020-03-01"))
        ),
    )
}

fn soap_3002(comune: &str, id: u64, id_anpr: &str) -> String {
    busta(
        comune,
        &format!(
            "<r:Richiesta3002 xmlns:r=\"http://sogei.it/ANPR/3000consultazione\">{}\
             <criteriRicerca><idSchedaSoggettoANPR>{id_anpr}</idSchedaSoggettoANPR></criteriRicerca>\
             <datiRichiesta><schedaAnagraficaRichiesta>1</schedaAnagraficaRichiesta>\
             <dataRiferimentoRichiesta>2026-01-01</dataRiferimentoRichiesta></datiRichiesta></r:Richiesta3002>",
            testata(comune, id, "3002", None)
        ),
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Canale {
    Rest,
    Soap,
}

/// One request: URL path, body, and whether it is SOAP.
type Richiesta = (String, String);

/// Runs every client's requests (in order per client, clients concurrently); returns
/// the elapsed seconds and every answer body.
async fn esegui(
    base: &str,
    canale: Canale,
    lavoro: Vec<(usize, Vec<Richiesta>)>,
) -> (f64, Vec<(usize, String)>) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (client, richieste) in lavoro {
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let comune = COMUNI[client];
            let mut out = Vec::new();
            for (path, body) in richieste {
                let mut req = http.post(format!("{base}{path}")).body(body);
                req = match canale {
                    Canale::Rest => req
                        .header("content-type", "application/json")
                        .header("x-anpr-utente", UTENTE)
                        .header("x-anpr-comune", comune)
                        .header(
                            "x-anpr-profili",
                            "OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE",
                        ),
                    Canale::Soap => req
                        .header("content-type", "text/xml; charset=utf-8")
                        .header("soapaction", "\"\""),
                };
                let r = req.send().await.expect("request");
                let status = r.status().as_u16();
                let text = r.text().await.expect("body");
                assert_eq!(status, 200, "{canale:?}: {text}");
                out.push((client, text));
            }
            out
        }));
    }
    let mut risposte = Vec::new();
    for t in tasks {
        risposte.extend(t.await.expect("client"));
    }
    (start.elapsed().as_secs_f64(), risposte)
}

/// The national id in an answer (REST JSON or SOAP XML).
fn id_anpr(canale: Canale, text: &str) -> String {
    match canale {
        Canale::Rest => {
            let v: Value = serde_json::from_str(text).expect("json");
            assert_eq!(v["esito"], "OK", "{text}");
            v["soggetti"][0]["idANPR"].as_str().expect("id").to_owned()
        }
        Canale::Soap => {
            assert!(
                text.contains("<esitoOperazione>2</esitoOperazione>"),
                "{text}"
            );
            let start = text.find("<idANPR>").expect("idANPR") + "<idANPR>".len();
            text[start..start + text[start..].find('<').expect("end")].to_owned()
        }
    }
}

/// One round of one channel on a fresh server: (registrations/s, consultations/s).
async fn round(canale: Canale, ops: usize, clients: usize) -> (f64, f64) {
    let s = server().await;
    let per_client = ops / clients;
    let lavoro: Vec<(usize, Vec<Richiesta>)> = (0..clients)
        .map(|c| {
            let r = (0..per_client)
                .map(|i| {
                    let n = c * per_client + i;
                    let id = i as u64 + 1;
                    match canale {
                        Canale::Rest => (
                            "/api/v1/operazioni/1002".to_owned(),
                            rest_1002(COMUNI[c], id, n),
                        ),
                        Canale::Soap => (
                            "/ws/AnprService1000".to_owned(),
                            soap_1002(COMUNI[c], id, n),
                        ),
                    }
                })
                .collect();
            (c, r)
        })
        .collect();
    let (t_reg, risposte) = esegui(&s.base, canale, lavoro).await;
    let mut ids: Vec<Vec<String>> = vec![Vec::new(); clients];
    for (c, text) in &risposte {
        ids[*c].push(id_anpr(canale, text));
    }
    let lavoro: Vec<(usize, Vec<Richiesta>)> = ids
        .iter()
        .enumerate()
        .map(|(c, ids)| {
            let r = ids
                .iter()
                .enumerate()
                .map(|(i, id)| match canale {
                    Canale::Rest => (
                        "/api/v1/soggetti/ricerca".to_owned(),
                        json!({"criteriRicerca": {"idANPR": id}, "datiRichiesta": {"dataRiferimentoRichiesta": "2026-01-01"}}).to_string(),
                    ),
                    Canale::Soap => ("/ws/AnprService3000".to_owned(), soap_3002(COMUNI[c], 100_000 + i as u64, id)),
                })
                .collect();
            (c, r)
        })
        .collect();
    let (t_cons, risposte) = esegui(&s.base, canale, lavoro).await;
    for (_, text) in &risposte {
        match canale {
            Canale::Rest => assert!(text.contains("\"totale\":1"), "{text}"),
            Canale::Soap => assert!(text.contains("<datiSoggetto>"), "{text}"),
        }
    }
    let n = (per_client * clients) as f64;
    (n / t_reg, n / t_cons)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let clients = env("ANPR_BENCH_CLIENTS", 8usize).clamp(1, COMUNI.len());
    let (ops, rounds) = if smoke {
        (2 * clients, 1)
    } else {
        (
            env("ANPR_BENCH_SOAP_OPS", 2000usize),
            env("ANPR_BENCH_SOAP_ROUNDS", 3usize).max(1),
        )
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut reg = BTreeMap::<&str, Vec<f64>>::new();
    let mut cons = BTreeMap::<&str, Vec<f64>>::new();
    for r in 0..rounds {
        // Alternate which channel goes first, so drift in the machine's load is shared.
        let order = if r % 2 == 0 {
            [Canale::Rest, Canale::Soap]
        } else {
            [Canale::Soap, Canale::Rest]
        };
        for canale in order {
            let (a, b) = rt.block_on(round(canale, ops, clients));
            let k = if canale == Canale::Rest {
                "rest"
            } else {
                "soap"
            };
            reg.entry(k).or_default().push(a);
            cons.entry(k).or_default().push(b);
            eprintln!("round {r} {k}: 1002 {a:.0}/s, 3002 {b:.0}/s");
        }
    }
    println!(
        "soap vs rest, SQLite, {clients} clients, {ops} registrations and {ops} consultations per channel, median of {rounds} rounds{}",
        if smoke { " (smoke run)" } else { "" }
    );
    for (nome, m) in [
        ("1002 registrations/s", &reg),
        ("3002 consultations/s", &cons),
    ] {
        let rest = median(m["rest"].clone());
        let soap = median(m["soap"].clone());
        println!(
            "{nome:<22} REST {rest:>8.0}  SOAP {soap:>8.0}  time ratio SOAP/REST {:.2} (target <= 1.5)",
            rest / soap
        );
    }
}
