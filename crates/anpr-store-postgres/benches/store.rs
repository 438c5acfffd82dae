//! Throughput of `Store::apply` on PostgreSQL against a raw-insert baseline measured in
//! the same run, both with 32 operations in flight.
//!
//! The operation is a minimal registration: one section, one index row (so also one
//! `_indice` version), the link to the record, the municipality's counter and the audit
//! entry. Each of the 32 workers plays one municipality with increasing
//! `idOperazioneComune`, as municipal software does. The baseline is
//! `Store::baseline_raw_insert(1)` per call: one durable single-row transaction.
//!
//! `ANPR_TEST_POSTGRES_URL` selects the server (default: the local test server); the
//! bench works in a schema of its own, dropped at the end. After criterion's report a
//! short fixed-size run prints the medians and the ratio (`ANPR_BENCH_OPS` per round;
//! `ANPR_BENCH_IN_FLIGHT` changes the concurrency, for exploring).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anpr_domain::audit::{NuovaVoceAudit, TipoEvento};
use anpr_domain::ids::{IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune};
use anpr_domain::operazione::StatoOperazione;
use anpr_store::{EntityRef, IndexWrite, NewOperation, SectionWrite, Store, SubjectIndex};
use anpr_store_postgres::{PoolSettings, PostgresStore, DEFAULT_POOL_SIZE};
use chrono::{NaiveDate, Utc};
use criterion::{Criterion, Throughput};
use serde_json::json;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const IN_FLIGHT: u64 = 32;

/// Concurrency of the run: `IN_FLIGHT` unless `ANPR_BENCH_IN_FLIGHT` says otherwise.
fn in_flight() -> u64 {
    std::env::var("ANPR_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(IN_FLIGHT)
}

#[derive(Debug, Clone, Copy)]
enum Job {
    Apply,
    Baseline,
}

/// Ids for operations and subjects. The bench's schema is fresh and nothing else
/// allocates there, so a counter replaces `next_id` and keeps it out of the measurement.
static NEXT: AtomicU64 = AtomicU64::new(1);

fn registration(worker: u64) -> NewOperation {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = IdOperazioneAnpr::new(n).expect("op id");
    let subject = IdAnprSoggetto::new(n).expect("subject id");
    let comune = format!("{:06}", 1000 + worker);
    let decorrenza = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    NewOperation {
        id,
        codice_servizio: "1002".parse().expect("service code"),
        comune: Some(comune.parse().expect("comune")),
        // Increasing per worker (municipality): the counter only grows.
        id_operazione_comune: Some(IdOperazioneComune::new(n).expect("id comune")),
        utente: "RSSMRA80A01H501U".into(),
        postazione: Some(format!("{comune}-PC-1")),
        canale: "rest".into(),
        decorrenza,
        registrata_il: Utc::now(),
        stato: StatoOperazione::Eseguita,
        richiesta: "{\"op\":\"1002\"}".into(),
        risposta: format!("{{\"idOperazioneANPR\":\"{id}\"}}"),
        writes: vec![SectionWrite {
            entity: EntityRef::Soggetto(subject),
            section: "generalita".into(),
            value: Some(
                json!({"cognome": "Rossi", "nome": "Mario", "sesso": "M", "dataNascita": "1980-01-01"}),
            ),
            key: None,
        }],
        indexes: vec![IndexWrite::Soggetto(SubjectIndex {
            id: subject,
            comune: comune.parse().expect("comune"),
            posizione: "R".into(),
            codice_fiscale: Some(format!("RSSMRA80A01H{:04}", n % 10_000)),
            cognome_key: Some("ROSSI".into()),
            nome_key: Some("MARIO".into()),
            sesso: Some("M".into()),
            data_nascita: NaiveDate::from_ymd_opt(1980, 1, 1),
            id_comunale: Some(format!("C-{n}")),
            id_famiglia: None,
            chiave_indirizzo: Some(format!("{comune} VIA ROMA 1")),
        })],
        outbox: Vec::new(),
        completa_sospesa: None,
        audit: NuovaVoceAudit {
            istante: Utc::now(),
            evento: TipoEvento::Operazione,
            azione: "1002".into(),
            utente: "RSSMRA80A01H501U".into(),
            comune: Some(comune),
            postazione: None,
            canale: "rest".into(),
            oggetto: Some(format!("soggetto:{n}")),
            id_operazione_anpr: Some(n),
            esito: "ok".into(),
        },
    }
}

/// Runs `total` jobs with `IN_FLIGHT` workers; returns the elapsed time.
async fn run(store: &Arc<PostgresStore>, job: Job, total: u64) -> Duration {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..in_flight())
        .map(|worker| {
            let store = store.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    match job {
                        Job::Apply => store.apply(registration(worker)).await.map(|_| ()),
                        Job::Baseline => store.baseline_raw_insert(1).await,
                    }
                    .unwrap_or_else(|e| panic!("{job:?} failed: {e}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    start.elapsed()
}

fn median_ops_per_second(
    rt: &tokio::runtime::Runtime,
    store: &Arc<PostgresStore>,
    job: Job,
    ops: u64,
) -> f64 {
    let mut rates: Vec<f64> = (0..3)
        .map(|_| ops as f64 / rt.block_on(run(store, job, ops)).as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

fn main() {
    let url = std::env::var("ANPR_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let ops: u64 = std::env::var("ANPR_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let schema = format!("anpr_bench_{:016x}", rand::random::<u64>());
    let pool: usize = std::env::var("ANPR_BENCH_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_POOL_SIZE);
    let settings = PoolSettings { max_size: pool };
    let store = Arc::new(
        rt.block_on(PostgresStore::connect_with(&url, &schema, &settings))
            .unwrap_or_else(|e| panic!("connecting to {url} (set ANPR_TEST_POSTGRES_URL): {e}")),
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    {
        let mut group = c.benchmark_group("postgres_store");
        group.throughput(Throughput::Elements(1));
        for (name, job) in [
            ("apply_registration_32_in_flight", Job::Apply),
            ("baseline_raw_insert_32_in_flight", Job::Baseline),
        ] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| rt.block_on(run(&store, job, iters)))
            });
        }
        group.finish();
    }
    c.final_summary();

    let apply = median_ops_per_second(&rt, &store, Job::Apply, ops);
    let baseline = median_ops_per_second(&rt, &store, Job::Baseline, ops);
    println!(
        "\npostgres store, {} in flight, pool of {pool}, median of 3 rounds of {ops}:",
        in_flight()
    );
    println!("  apply (registration)     {apply:>9.0} ops/s");
    println!("  baseline raw insert      {baseline:>9.0} ops/s");
    println!("  apply / baseline         {:>9.2}", apply / baseline);

    drop(store);
    rt.block_on(async {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                let conn = tokio::spawn(connection);
                if let Err(e) = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                {
                    eprintln!("warning: could not drop bench schema {schema}: {e:?}");
                }
                drop(client);
                let _ = conn.await;
            }
            Err(e) => eprintln!("warning: could not drop bench schema {schema}: {e}"),
        }
    });
}
