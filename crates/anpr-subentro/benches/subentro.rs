//! Subentro throughput: persons per second of the full pipeline (parse, checks, tax
//! agency, bulk load, outcome files; on SQLite also the copy of the load's WAL into the
//! database file) against two baselines measured in the same run:
//! parse-only (the streaming reader over the same files) and a raw bulk insert of the
//! same number of rows and bytes into an unindexed table (SQLite: one transaction of
//! prepared inserts; PostgreSQL: one COPY). Prints medians, ratios and the peak RSS.
//!
//! ```sh
//! cargo bench -p anpr-subentro --bench subentro -- --persone 100000 --ripetizioni 3
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it does a smoke run of 2,000
//! persons, once.
//! ANPR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p anpr-subentro --bench subentro
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anpr_domain::caller::Ambiente;
use anpr_store::Store;
use anpr_subentro::parser::{Elemento, LettoreSubentro};
use anpr_subentro::{importa, FileIngresso, Opzioni, StatoSubentro};

// As `anpr subentro import`: mimalloc, which also serves SQLite's allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Argomenti {
    persone: u64,
    ripetizioni: usize,
    anomalie: f64,
}

fn argomenti() -> Argomenti {
    let mut a = Argomenti {
        persone: 100_000,
        ripetizioni: 3,
        anomalie: 0.01,
    };
    let v: Vec<String> = std::env::args().collect();
    // Without `--bench` (that is, under `cargo test --all-targets`) a smoke run: a small
    // population, once, still checking that every phase works.
    if !v.iter().any(|x| x == "--bench") {
        a.persone = 2_000;
        a.ripetizioni = 1;
    }
    let mut i = 1;
    while i < v.len() {
        match v[i].as_str() {
            "--persone" => a.persone = v[i + 1].parse().expect("--persone N"),
            "--ripetizioni" => a.ripetizioni = v[i + 1].parse().expect("--ripetizioni N"),
            "--anomalie" => a.anomalie = v[i + 1].parse().expect("--anomalie RATE"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn mediana(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident set size of this process so far (VmHWM), in MiB.
fn picco_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn solo_parsing(files: &[PathBuf]) -> u64 {
    let mut n = 0;
    for f in files {
        let mut l = LettoreSubentro::new(std::io::BufReader::with_capacity(
            1 << 16,
            std::fs::File::open(f).unwrap(),
        ));
        while let Some(e) = l.prossimo() {
            if let Elemento::Soggetto(_) = e.unwrap() {
                n += 1;
            }
        }
    }
    n
}

/// Rows and bytes the full pipeline writes per person (measured on the SQLite run).
struct Volume {
    righe: u64,
    byte: u64,
}

fn volume_sqlite(path: &Path) -> Volume {
    let c = rusqlite_open(path);
    let (righe, byte): (i64, i64) = c
        .query_row(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM versioni",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    Volume {
        righe: righe as u64,
        byte: byte as u64,
    }
}

fn rusqlite_open(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn grezzo_sqlite(dir: &Path, v: &Volume) -> f64 {
    let p = dir.join(format!("grezzo-{}.sqlite3", rand_suffix()));
    let c = rusqlite_open(&p);
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE t (kind TEXT, entity INTEGER, section TEXT, value TEXT);")
        .unwrap();
    let payload = "x".repeat((v.byte / v.righe.max(1)) as usize);
    let t = Instant::now();
    c.execute_batch("BEGIN").unwrap();
    {
        let mut s = c
            .prepare("INSERT INTO t VALUES ('S', ?1, 'sezione', ?2)")
            .unwrap();
        for i in 0..v.righe {
            s.execute(rusqlite::params![i as i64, payload]).unwrap();
        }
    }
    c.execute_batch("COMMIT").unwrap();
    t.elapsed().as_secs_f64()
}

async fn grezzo_postgres(url: &str, v: &Volume) -> f64 {
    use futures_util::SinkExt;
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tabella = format!("grezzo_{}", rand_suffix());
    client
        .batch_execute(&format!(
            "CREATE TABLE {tabella} (kind text, entity bigint, section text, value jsonb)"
        ))
        .await
        .unwrap();
    let payload = format!(
        "\"{}\"",
        "x".repeat((v.byte / v.righe.max(1)).saturating_sub(2) as usize)
    );
    let t = Instant::now();
    client.batch_execute("BEGIN").await.unwrap();
    let sink = client
        .copy_in(&format!("COPY {tabella} FROM STDIN"))
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    let mut buf = String::with_capacity(8 << 20);
    for i in 0..v.righe {
        buf.push_str(&format!("S\t{i}\tsezione\t{payload}\n"));
        if buf.len() > (8 << 20) {
            sink.send(bytes::Bytes::from(std::mem::take(&mut buf)))
                .await
                .unwrap();
        }
    }
    sink.send(bytes::Bytes::from(buf)).await.unwrap();
    sink.finish().await.unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    let s = t.elapsed().as_secs_f64();
    client
        .batch_execute(&format!("DROP TABLE {tabella}"))
        .await
        .unwrap();
    s
}

fn rand_suffix() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(rand::random::<u32>())
    )
}

async fn completo(
    store: Arc<dyn Store>,
    ae: Arc<dyn anpr_ae::AgenziaEntrate>,
    files: &[PathBuf],
    esiti: &Path,
) -> (f64, u64) {
    let t = Instant::now();
    let e = importa(
        store,
        Some(ae),
        Opzioni {
            comune: "015146".parse().unwrap(),
            ambiente: Ambiente::Produzione,
            oggi: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            utente: "bench".into(),
            canale: "bench".into(),
            dimensione_massima: u64::MAX,
            cartella_esiti: esiti.to_owned(),
        },
        files.iter().map(|p| FileIngresso::da_percorso(p)).collect(),
        Arc::new(|_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(e.stato, StatoSubentro::Elaborato, "{:?}", e.bloccanti);
    (t.elapsed().as_secs_f64(), e.soggetti_letti)
}

fn riga(nome: &str, secondi: f64, persone: u64, base: f64) {
    println!(
        "{nome:<40} mediana {secondi:>8.3} s  {:>10.0} persone/s  rapporto {:>6.2}x",
        persone as f64 / secondi,
        secondi / base
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = argomenti();
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("gen");
    let t = Instant::now();
    let r = anpr_generatore::genera(&anpr_generatore::Configurazione {
        comuni: vec!["015146".parse().unwrap()],
        persone: a.persone,
        seme: 1,
        anomalie: a.anomalie,
        totali_errati: false,
        data_estrazione: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        cartella: gen.clone(),
    })
    .unwrap();
    let byte: u64 = r
        .file
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    println!(
        "subentro bench: {} schede soggetto ({} MiB di XML), generate in {:.1} s, {} ripetizioni",
        r.soggetti,
        byte >> 20,
        t.elapsed().as_secs_f64(),
        a.ripetizioni
    );
    let ae = anpr_ae::Simulatore::new();
    ae.carica_csv_file(&r.registro_ae).unwrap();
    ae.imposta_sola_lettura(true);
    let ae: Arc<dyn anpr_ae::AgenziaEntrate> = Arc::new(ae);

    let parse: Vec<f64> = (0..a.ripetizioni)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(solo_parsing(&r.file), r.soggetti);
            t.elapsed().as_secs_f64()
        })
        .collect();
    let parse = mediana(parse);
    riga("parse-only (baseline)", parse, r.soggetti, parse);

    // SQLite.
    let mut tempi = Vec::new();
    let mut volume = None;
    for i in 0..a.ripetizioni {
        let p = dir.path().join(format!("sqlite-{i}.sqlite3"));
        let store: Arc<dyn Store> = Arc::new(anpr_store_sqlite::SqliteStore::open(&p).unwrap());
        let (s, n) = completo(
            store,
            Arc::clone(&ae),
            &r.file,
            &dir.path().join(format!("esiti-s{i}")),
        )
        .await;
        assert_eq!(n, r.soggetti);
        // The load answers once its WAL is synced and leaves the copy into the database
        // file to the checkpointer: timed here too, as `anpr subentro import` does it.
        let t = Instant::now();
        anpr_store_sqlite::SqliteStore::checkpoint_completo(&p).unwrap();
        tempi.push(s + t.elapsed().as_secs_f64());
        if volume.is_none() {
            volume = Some(volume_sqlite(&p));
        }
        let _ = std::fs::remove_file(&p);
    }
    let volume = volume.unwrap();
    let grezzo: Vec<f64> = (0..a.ripetizioni)
        .map(|_| grezzo_sqlite(dir.path(), &volume))
        .collect();
    let grezzo = mediana(grezzo);
    let completo_s = mediana(tempi);
    println!(
        "SQLite: {} righe di versione, {} MiB di JSON",
        volume.righe,
        volume.byte >> 20
    );
    riga(
        "SQLite raw insert, same rows (baseline)",
        grezzo,
        r.soggetti,
        grezzo,
    );
    riga("SQLite full pipeline", completo_s, r.soggetti, grezzo);
    println!(
        "{:<40} rapporto al parse-only {:.2}x",
        "",
        completo_s / parse
    );

    // PostgreSQL.
    if let Some(url) = anpr_store_postgres::testing::test_url() {
        let mut tempi = Vec::new();
        for i in 0..a.ripetizioni {
            let schema = anpr_store_postgres::testing::random_schema();
            let _g = anpr_store_postgres::testing::SchemaGuard::new(&url, &schema);
            let store: Arc<dyn Store> = Arc::new(
                anpr_store_postgres::PostgresStore::connect(&url, &schema)
                    .await
                    .unwrap(),
            );
            let (s, _) = completo(
                store,
                Arc::clone(&ae),
                &r.file,
                &dir.path().join(format!("esiti-p{i}")),
            )
            .await;
            tempi.push(s);
        }
        let mut g = Vec::new();
        for _ in 0..a.ripetizioni {
            g.push(grezzo_postgres(&url, &volume).await);
        }
        let grezzo = mediana(g);
        let completo_p = mediana(tempi);
        riga(
            "PostgreSQL raw COPY, same rows (baseline)",
            grezzo,
            r.soggetti,
            grezzo,
        );
        riga("PostgreSQL full pipeline", completo_p, r.soggetti, grezzo);
        println!(
            "{:<40} rapporto al parse-only {:.2}x",
            "",
            completo_p / parse
        );
    } else {
        println!("PostgreSQL: ANPR_TEST_POSTGRES_URL not set, skipped");
    }
    println!(
        "peak RSS (VmHWM) of the whole run: {:.0} MiB",
        picco_rss_mib()
    );
}
