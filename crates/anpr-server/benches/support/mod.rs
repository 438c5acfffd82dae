//! What the large-database benches share (`consultazione`, `estrazioni`): their
//! arguments, and the database built once with the production path — a synthetic
//! population from `anpr-generatore` for Milan (015146), loaded by the subentro
//! pipeline into `presubentro` — with a sample of the tax codes the generator issued.
//!
//! The database and the sample are kept in `--dati` (default
//! `target/bench-consultazione-<persone>` under the package directory, the same for
//! both benches) and reused by later runs: building a million persons takes minutes.
//! Under `cargo test --all-targets` (no `--bench` argument) the benches run as a smoke
//! test on a small population in a temporary directory.

// Each bench uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anpr_domain::caller::Ambiente;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_subentro::{importa, FileIngresso, Opzioni, StatoSubentro};

/// The municipality the population lives in.
pub const COMUNE: &str = "015146";

/// Command-line arguments common to the benches (unknown ones, like cargo's `--bench`,
/// are skipped).
#[derive(Debug)]
pub struct Argomenti {
    pub persone: u64,
    pub secondi: f64,
    pub connessioni: usize,
    pub ripetizioni: usize,
    pub dati: Option<PathBuf>,
    /// No `--bench` argument: `cargo test --all-targets` runs the bench as a test.
    pub smoke: bool,
}

pub fn argomenti() -> Argomenti {
    let v: Vec<String> = std::env::args().collect();
    let smoke = !v.iter().any(|x| x == "--bench");
    let mut a = Argomenti {
        persone: if smoke { 2_000 } else { 1_000_000 },
        secondi: if smoke { 1.0 } else { 15.0 },
        connessioni: if smoke { 4 } else { 16 },
        ripetizioni: if smoke { 2 } else { 11 },
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
            "--ripetizioni" => a.ripetizioni = val().parse().expect("--ripetizioni N"),
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

/// The data directory: `--dati`, a temporary one for the smoke run, or the default
/// kept under `target/`.
/// The server's runtime: two workers, like `anpr serve` on this machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn cartella(a: &Argomenti, tmp: &Path) -> PathBuf {
    match (&a.dati, a.smoke) {
        (Some(d), _) => d.clone(),
        (None, true) => tmp.to_owned(),
        (None, false) => PathBuf::from(format!("target/bench-consultazione-{}", a.persone)),
    }
}

/// Builds (or finds) the database and the tax-code sample; returns the store.
pub async fn database(dir: &Path, persone: u64) -> (Arc<dyn Store>, Vec<String>) {
    let db = dir.join("presubentro.sqlite3");
    let campione = dir.join("codici-fiscali.txt");
    if !campione.exists() {
        let _ = std::fs::remove_file(&db);
        std::fs::create_dir_all(dir).unwrap();
        let gen = dir.join("gen");
        let t = Instant::now();
        let r = anpr_generatore::genera(&anpr_generatore::Configurazione {
            comuni: vec![COMUNE.parse().unwrap()],
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
                comune: COMUNE.parse().unwrap(),
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
    nella_cache(&db);
    let store: Arc<dyn Store> = Arc::new(anpr_store_sqlite::SqliteStore::open(&db).unwrap());
    let codici = std::fs::read_to_string(&campione)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (store, codici)
}

/// Reads the database file (and its WAL) once, so that the run starts with it in the
/// OS page cache, as on a server that has been answering for a while. On the project's
/// VM the page cache is reclaimed behind the benches' back (a DAMON `pageout` scheme
/// evicts file pages untouched for about a minute): without this, a run that follows a
/// few minutes of other work reads the database from the disk and measures that
/// (BENCHMARKS.md, session 11).
fn nella_cache(db: &Path) {
    use std::io::Read;
    let t = Instant::now();
    let mut letti = 0u64;
    let mut buf = vec![0u8; 4 << 20];
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    for f in [db.to_owned(), PathBuf::from(wal)] {
        let Ok(mut file) = std::fs::File::open(&f) else {
            continue;
        };
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            letti += n as u64;
        }
    }
    println!(
        "page cache: {} MiB of database read in {:.1} s",
        letti >> 20,
        t.elapsed().as_secs_f64()
    );
}

/// The registry over the one `presubentro` store, with the system clock.
pub fn registry(store: Arc<dyn Store>) -> Arc<Registry> {
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Presubentro, store);
    Arc::new(Registry::new(stores, Arc::new(SystemClock)))
}

/// The median of some durations, in milliseconds.
pub fn mediana_ms(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time used so far by the process's live threads, summed by thread name, with
/// nanosecond precision (`/proc/self/task/*/schedstat`). Empty off Linux.
pub fn cpu_per_thread() -> BTreeMap<String, std::time::Duration> {
    let mut per_nome = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return per_nome;
    };
    for task in tasks.flatten() {
        let nome = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        *per_nome
            .entry(nome.trim_end().to_owned())
            .or_insert(std::time::Duration::ZERO) += std::time::Duration::from_nanos(ns);
    }
    per_nome
}

/// CPU microseconds per request spent between two [`cpu_per_thread`] readings, in total
/// and by thread name (threads that used less than 1 % of the total are left out).
pub fn cpu_per_richiesta(
    prima: &BTreeMap<String, std::time::Duration>,
    dopo: &BTreeMap<String, std::time::Duration>,
    richieste: usize,
) -> String {
    let per_req = |d: std::time::Duration| d.as_secs_f64() * 1e6 / richieste.max(1) as f64;
    let delta: Vec<(&String, std::time::Duration)> = dopo
        .iter()
        .map(|(nome, d)| {
            let prima = prima.get(nome).copied().unwrap_or_default();
            (nome, d.saturating_sub(prima))
        })
        .collect();
    let totale: std::time::Duration = delta.iter().map(|(_, d)| *d).sum();
    let mut parti = vec![format!("CPU {:.0} µs/req", per_req(totale))];
    for (nome, d) in delta {
        if d.as_secs_f64() >= totale.as_secs_f64() * 0.01 {
            parti.push(format!("{nome} {:.0}", per_req(d)));
        }
    }
    parti.join(", ")
}
