//! Consultation by codice fiscale over HTTP on a large database (issue 6: target p99 <
//! 5 ms and ≥ 10,000 requests/s on 2 cores), against an empty handler measured in the
//! same run with the same client (the baseline: what HTTP and the client alone cost).
//!
//! ```sh
//! cargo bench -p anpr-server --bench consultazione -- --persone 1000000 --secondi 20 --connessioni 16
//! ```
//!
//! The database is built once with the production path and kept for later runs
//! (`support`: shared with the `estrazioni` bench); a sample of the tax codes the
//! generator issued is kept beside it. Each request is
//! `POST /api/v1/soggetti/ricerca` with `criteriRicerca.codiceFiscale` — search, audited
//! read of the whole record, audit entries, JSON — over keep-alive connections from a
//! minimal HTTP/1.1 client (so the client costs little of the 2 cores). Every answer
//! is checked (status 200, exactly one record). Under `cargo test --all-targets` (no
//! `--bench` argument) a smoke run: 2,000 persons in a temporary directory, 1 second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anpr_domain::caller::Ambiente;
use anpr_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

// As `anpr serve`: mimalloc, which also serves SQLite's allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let a = support::argomenti();
    // The client runs on its own single thread.
    let server_rt = support::runtime();
    let tmp = tempfile::tempdir().unwrap();
    let dir = support::cartella(&a, tmp.path());
    let (store, codici) = server_rt.block_on(support::database(&dir, a.persone));
    let registry = support::registry(store);
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
        let prima = support::cpu_per_thread();
        let cf = carico(addr, richieste.clone(), a.connessioni, a.secondi, true).await;
        let dopo = support::cpu_per_thread();
        stampa("consultation by CF (SQLite)", &cf, &base);
        println!(
            "  {}",
            support::cpu_per_richiesta(&prima, &dopo, cf.richieste)
        );
        // Latency at a lighter load: one connection (no queueing).
        let uno = carico(addr, richieste.clone(), 1, a.secondi.min(5.0), true).await;
        stampa("consultation by CF, 1 connection", &uno, &base);
    });
    drop(server_rt);
}
