//! Throughput of the SQLite store's durable write path, against a raw-insert baseline
//! measured in the same run on the same machine.
//!
//! - `apply_registration`: `Store::apply` of a minimal registration (one section write,
//!   one index row, one audit entry, an `idOperazioneComune` per municipality), the
//!   shape of the registry's hottest operation.
//! - `baseline_raw_insert`: `Store::baseline_raw_insert(1)`, one row in its own durable
//!   transaction through the same writer and group commit, with no registry logic.
//!
//! Both keep [`IN_FLIGHT`] requests in flight (as a loaded server does) with
//! `synchronous=FULL`, and report elements per second. At the end the bench prints both
//! rates and their ratio.
//!
//! Run: `cargo bench -p anpr-store-sqlite --bench store` (add `-- --quick` for a short run).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anpr_domain::ids::{IdAnprSoggetto, IdOperazioneAnpr};
use anpr_store::conformance::operation;
use anpr_store::{EntityRef, IndexWrite, SectionWrite, Sequence, Store, SubjectIndex};
use anpr_store_sqlite::SqliteStore;
use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

/// Requests kept in flight.
const IN_FLIGHT: usize = 64;

#[derive(Clone, Copy)]
enum Work {
    Apply,
    Baseline,
}

/// Per-municipality `idOperazioneComune` counters, kept across criterion's rounds so
/// that the ids keep increasing.
struct Counters([AtomicU64; IN_FLIGHT]);

async fn registration(store: &SqliteStore, worker: usize, counters: &Counters) {
    let s = IdAnprSoggetto::new(store.next_id(Sequence::Soggetto).await.unwrap()).unwrap();
    let id = IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap();
    let comune = format!("{:06}", 1000 + worker);
    let id_comune = counters.0[worker].fetch_add(1, Ordering::Relaxed) + 1;
    let from = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let mut op = operation(id, "1002", &comune, Some(id_comune), from);
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "generalita".into(),
        value: Some(
            json!({"cognome": "Rossi", "nome": "Mario", "sesso": "M", "dataNascita": "1980-01-01"}),
        ),
        key: None,
    });
    op.indexes.push(IndexWrite::Soggetto(SubjectIndex {
        id: s,
        comune: comune.parse().unwrap(),
        posizione: "R".into(),
        codice_fiscale: Some(format!("RSSMRA80A01H{:04}", s.get() % 10_000)),
        cognome_key: Some("ROSSI".into()),
        nome_key: Some("MARIO".into()),
        sesso: Some("M".into()),
        data_nascita: NaiveDate::from_ymd_opt(1980, 1, 1),
        id_comunale: Some(format!("C-{}", s.get())),
        id_famiglia: None,
        chiave_indirizzo: Some(format!("{comune} VIA ROMA 1")),
    }));
    store.apply(op).await.unwrap();
}

/// Runs `iters` requests with [`IN_FLIGHT`] workers; returns the wall time.
async fn run(store: Arc<SqliteStore>, counters: Arc<Counters>, work: Work, iters: u64) -> Duration {
    let remaining = Arc::new(AtomicU64::new(iters));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let (store, counters, remaining) = (store.clone(), counters.clone(), remaining.clone());
        workers.spawn(async move {
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                match work {
                    Work::Apply => registration(&store, worker, &counters).await,
                    Work::Baseline => store.baseline_raw_insert(1).await.unwrap(),
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    start.elapsed()
}

fn store_throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters(std::array::from_fn(|_| AtomicU64::new(0))));
    // Total (elements, time) per bench, for the closing ratio.
    let totals: Arc<Mutex<[(u64, Duration); 2]>> = Arc::default();

    let mut group = c.benchmark_group("sqlite_store");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    for (slot, name, work) in [
        (0, "apply_registration", Work::Apply),
        (1, "baseline_raw_insert", Work::Baseline),
    ] {
        // A fresh file per bench, so neither pays for the other's data.
        let store =
            Arc::new(SqliteStore::open(&dir.path().join(format!("{name}.sqlite3"))).unwrap());
        group.bench_function(format!("{name}/{IN_FLIGHT}_in_flight"), |b| {
            b.iter_custom(|iters| {
                let elapsed = rt.block_on(run(store.clone(), counters.clone(), work, iters));
                let mut totals = totals.lock().unwrap();
                totals[slot].0 += iters;
                totals[slot].1 += elapsed;
                elapsed
            });
        });
        let stats = store.writer_stats();
        eprintln!(
            "{name}: {} requests in {} group commits (average group {:.1})",
            stats.requests,
            stats.groups,
            stats.requests as f64 / stats.groups.max(1) as f64
        );
    }
    group.finish();

    let totals = totals.lock().unwrap();
    let rate = |(n, t): (u64, Duration)| n as f64 / t.as_secs_f64().max(f64::EPSILON);
    let (apply, baseline) = (rate(totals[0]), rate(totals[1]));
    eprintln!(
        "sqlite_store: apply {apply:.0} ops/s, baseline raw insert {baseline:.0} rows/s, apply/baseline = {:.2}",
        apply / baseline.max(f64::EPSILON)
    );
}

criterion_group!(benches, store_throughput);
criterion_main!(benches);
