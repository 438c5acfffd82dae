//! Consultation by codice fiscale over HTTP on a large database (issue 6: target p99 <
//! 5 ms and ≥ 10,000 requests/s on 2 cores), against an empty handler measured in the
//! same run with the same client (the baseline: what HTTP and the client alone cost).
//!
//! ```sh
//! cargo bench -p anpr-server --bench consultazione -- --persone 1000000 --secondi 20 --connessioni 16
//! ```
//!
//! The database is built once with the production path (synthetic population from
//! `anpr-generatore`, loaded by the subentro pipeline into `presubentro`) and kept in
//! `--dati` (default `target/bench-consultazione-<persone>`) for later runs; a sample of
//! the tax codes the generator issued is kept beside it. Each request is
//! `POST /api/v1/soggetti/ricerca` with `criteriRicerca.codiceFiscale` — search, audited
//! read of the whole record, audit entries, JSON — over keep-alive connections from a
//! minimal HTTP/1.1 client (so the client costs little of the 2 cores). Every answer
//! is checked (status 200, exactly one record). Under `cargo test --all-targets` (no
//! `--bench` argument) a smoke run: 2,000 persons in a temporary directory, 1 second.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anpr_domain::caller::Ambiente;
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_subentro::{importa, FileIngresso, Opzioni, StatoSubentro};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Argomenti {
    persone: u64,
    secondi: f64,
    connessioni: usize,
    dati: Option<PathBuf>,
    smoke: bool,
}

fn argomenti() -> Argomenti {
    let v: Vec<String> = std::env::args().collect();
    let smoke = !v.iter().any(|x| x == "--bench");
    let mut a = Argomenti {
        persone: if smoke { 2_000 } else { 1_000_000 },
        secondi: if smoke { 1.0 } else { 15.0 },
        connessioni: if smoke { 4 } else { 16 },
        dati: None,
        smoke,
    };
    let mut i = 1;
    while i < v.len() {
        let val = || v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--persone" => a.persone = val().parse().expect("--persone N"),
            "--secondi" => a.secondi = val().parse().expect("--secondi S"),
            "--connessioni" => a.connessioni = val().parse().expect("--connessioni N"),
            "--dati" => a.dati = Some(PathBuf::from(val())),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Builds (or finds) the database and the tax-code sample; returns the store.
async fn database(dir: &Path, persone: u64) -> (Arc<dyn Store>, Vec<String>) {
    let db = dir.join("presubentro.sqlite3");
    let campione = dir.join("codici-fiscali.txt");
    if !campione.exists() {
        let _ = std::fs::remove_file(&db);
        std::fs::create_dir_all(dir).unwrap();
        let gen = dir.join("gen");
        let t = Instant::now();
        let r = anpr_generatore::genera(&anpr_generatore::Configurazione {
            comuni: vec!["015146".parse().unwrap()],
            persone,
            seme: 1,
            anomalie: 0.0,
            totali_errati: false,
            data_estrazione: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            cartella: gen.clone(),
        })
        .unwrap();
        println!(
            "generate: {} subjects in {:.1} s",
            r.soggetti,
            t.elapsed().as_secs_f64()
        );
        let ae = anpr_ae::Simulatore::new();
        ae.carica_csv_file(&r.registro_ae).unwrap();
        ae.imposta_sola_lettura(true);
        let store: Arc<dyn Store> = Arc::new(anpr_store_sqlite::SqliteStore::open(&db).unwrap());
        let t = Instant::now();
        let e = importa(
            store,
            Some(Arc::new(ae)),
            Opzioni {
                comune: "015146".parse().unwrap(),
                ambiente: Ambiente::Presubentro,
                oggi: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                utente: "bench".into(),
                canale: "bench".into(),
                dimensione_massima: u64::MAX,
                cartella_esiti: dir.join("esiti"),
            },
            r.file
                .iter()
                .map(|p| FileIngresso::da_percorso(p))
                .collect(),
            Arc::new(|_, _| {}),
        )
        .await
        .unwrap();
        assert_eq!(e.stato, StatoSubentro::Elaborato, "{:?}", e.bloccanti);
        println!(
            "subentro: {} subjects loaded in {:.1} s",
            e.soggetti_letti,
            t.elapsed().as_secs_f64()
        );
        // A sample of the codes the agency register holds (one in every few, spread
        // over the whole population), then the generated files go.
        let registro = std::fs::read_to_string(&r.registro_ae).unwrap();
        let passo = (persone / 20_000).max(1) as usize;
        let codici: Vec<&str> = registro
            .lines()
            .skip(1)
            .step_by(passo)
            .filter_map(|l| l.split(',').next())
            .filter(|c| c.len() == 16)
            .collect();
        std::fs::write(&campione, codici.join("\n")).unwrap();
        std::fs::remove_dir_all(&gen).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(anpr_store_sqlite::SqliteStore::open(&db).unwrap());
    let codici = std::fs::read_to_string(&campione)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (store, codici)
}

/// One request's bytes.
fn richiesta(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n\
         x-anpr-ambiente: presubentro\r\nx-anpr-utente: BNCLRA70A41H501X\r\n\
         x-anpr-comune: 015146\r\nx-anpr-profili: OPERATORE_CONSULTAZIONE\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one HTTP/1.1 response (with `content-length`) into `buf`; returns the status
/// and the body.
async fn risposta<'a>(s: &mut TcpStream, buf: &'a mut Vec<u8>) -> (u16, &'a [u8]) {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let fine_testata = loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let testata = std::str::from_utf8(&buf[..fine_testata]).unwrap();
    let status: u16 = testata[9..12].parse().unwrap();
    let lunghezza: usize = testata
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("a content-length answer");
    while buf.len() < fine_testata + lunghezza {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, &buf[fine_testata..fine_testata + lunghezza])
}

/// Latencies (µs) of one keep-alive connection sending requests until `fine`.
async fn connessione(
    addr: SocketAddr,
    richieste: Arc<Vec<Vec<u8>>>,
    primo: usize,
    passo: usize,
    fine: Instant,
    controlla: bool,
) -> Vec<u32> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut lat = Vec::new();
    let mut i = primo;
    while Instant::now() < fine {
        let r = &richieste[i % richieste.len()];
        let t = Instant::now();
        s.write_all(r).await.unwrap();
        let (status, corpo) = risposta(&mut s, &mut buf).await;
        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(corpo));
        if controlla {
            // Exactly one record for the code (checked cheaply on the raw bytes).
            assert!(un_solo(corpo), "{}", String::from_utf8_lossy(corpo));
        }
        i += passo;
    }
    lat
}

/// `"totale":1` not followed by another digit.
fn un_solo(corpo: &[u8]) -> bool {
    let chiave = b"\"totale\":1";
    corpo
        .windows(chiave.len() + 1)
        .any(|w| w.starts_with(chiave) && !w[chiave.len()].is_ascii_digit())
}

struct Esito {
    richieste: usize,
    al_secondo: f64,
    p50: f64,
    p99: f64,
    massimo: f64,
}

async fn carico(
    addr: SocketAddr,
    richieste: Arc<Vec<Vec<u8>>>,
    connessioni: usize,
    secondi: f64,
    controlla: bool,
) -> Esito {
    let inizio = Instant::now();
    let fine = inizio + Duration::from_secs_f64(secondi);
    let tasks: Vec<_> = (0..connessioni)
        .map(|c| {
            tokio::spawn(connessione(
                addr,
                richieste.clone(),
                c,
                connessioni,
                fine,
                controlla,
            ))
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let durata = inizio.elapsed().as_secs_f64();
    lat.sort_unstable();
    let q = |p: f64| f64::from(lat[((lat.len() - 1) as f64 * p) as usize]) / 1000.0;
    Esito {
        richieste: lat.len(),
        al_secondo: lat.len() as f64 / durata,
        p50: q(0.50),
        p99: q(0.99),
        massimo: q(1.0),
    }
}

fn stampa(nome: &str, e: &Esito, base: &Esito) {
    println!(
        "{nome:<34} {:>9} req  {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  throughput ratio {:>5.2}x",
        e.richieste,
        e.al_secondo,
        e.p50,
        e.p99,
        e.massimo,
        base.al_secondo / e.al_secondo
    );
}

async fn servi(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn main() {
    let a = argomenti();
    // The server's runtime: two workers, like `anpr serve` on this machine. The client
    // runs on its own single thread.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = match (&a.dati, a.smoke) {
        (Some(d), _) => d.clone(),
        (None, true) => tmp.path().to_owned(),
        (None, false) => PathBuf::from(format!("target/bench-consultazione-{}", a.persone)),
    };
    let (store, codici) = server_rt.block_on(database(&dir, a.persone));
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Presubentro, store);
    let registry = Arc::new(Registry::new(stores, Arc::new(SystemClock)));
    let app = anpr_server::router(
        registry,
        ServerConfig {
            ambiente_predefinito: Ambiente::Presubentro,
            backend: "sqlite",
            identita_da_header: true,
        },
    );
    let vuoto = axum::Router::new().route(
        "/vuoto",
        axum::routing::post(|| async { axum::Json(serde_json::json!({"esito": "OK"})) }),
    );
    let (addr, addr_vuoto) = server_rt.block_on(async { (servi(app).await, servi(vuoto).await) });

    let richieste: Arc<Vec<Vec<u8>>> = Arc::new(
        codici
            .iter()
            .map(|cf| {
                richiesta(
                    "/api/v1/soggetti/ricerca",
                    &format!(r#"{{"criteriRicerca":{{"codiceFiscale":"{cf}"}}}}"#),
                )
            })
            .collect(),
    );
    let vuote = Arc::new(vec![richiesta("/vuoto", r#"{"criteriRicerca":{}}"#)]);
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "consultazione bench: {} persons, {} tax codes sampled, {} connections, {} s per run",
        a.persone,
        codici.len(),
        a.connessioni,
        a.secondi
    );
    client_rt.block_on(async {
        // Warm-up: every sampled code once (checked), caches and connections settle.
        let warm = carico(
            addr,
            richieste.clone(),
            a.connessioni,
            a.secondi.min(3.0),
            true,
        )
        .await;
        println!("warm-up: {} requests checked", warm.richieste);
        let base = carico(addr_vuoto, vuote.clone(), a.connessioni, a.secondi, false).await;
        stampa("baseline: empty handler", &base, &base);
        let cf = carico(addr, richieste.clone(), a.connessioni, a.secondi, true).await;
        stampa("consultation by CF (SQLite)", &cf, &base);
        // Latency at a lighter load: one connection (no queueing).
        let uno = carico(addr, richieste.clone(), 1, a.secondi.min(5.0), true).await;
        stampa("consultation by CF, 1 connection", &uno, &base);
    });
    drop(server_rt);
}
