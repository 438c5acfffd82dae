//! Throughput and latency of the registry's two hottest operations — 1002 (registration
//! for other reasons) and 5005 (change of residence) — through the service layer
//! (`Registry`) and through HTTP (the real axum router on `127.0.0.1:0`, a `reqwest`
//! client with one keep-alive connection per client), on SQLite and on PostgreSQL, each
//! next to the backend's raw durable insert (`Store::baseline_raw_insert(1)`) measured
//! in the same run.
//!
//! Why not criterion: criterion reports the mean time of a repeatable routine, while the
//! questions here are operations per second and p50/p99 latency with many clients at
//! once, over operations that consume state (each registration creates a person with a
//! unique codice fiscale, each move needs a registered person, `idOperazioneComune` must
//! keep increasing per municipality). So this is a plain harness (`harness = false`) with
//! a controlled population and an exact operation count.
//!
//! What one backend's block does, every operation durable on return:
//!
//! 1. baseline: [`Config::ops`] raw inserts by [`Config::clients`] concurrent clients;
//! 2. service layer, fresh store: each client is one municipality (its own increasing
//!    `idOperazioneComune`) and registers `ops / clients` people, each the head of a new
//!    family (1002); then each client moves every person it registered to a new address
//!    in the same municipality (5005). Closed loop: a client sends its next operation as
//!    soon as the previous one is answered, so this measures the saturation throughput;
//! 3. paced, service layer, same store: the same two phases at a fixed arrival rate
//!    ([`Config::rate`], 2,000/s by default: the target), open loop, latency measured
//!    from each operation's scheduled start (so a stall is charged to every operation it
//!    delays). Skipped when the closed-loop registration rate is below half the target
//!    rate, where it would only measure a growing queue;
//! 4. HTTP, fresh store and server: as (2), through `POST /api/v1/operazioni/{codice}`;
//! 5. baseline again, to show how much the machine's load moved during the block. The
//!    ratios use the mean of the two baselines.
//!
//! Run: `cargo bench -p anpr-server --bench operazioni`. PostgreSQL needs
//! `ANPR_TEST_POSTGRES_URL` (as the tests). Parameters (environment):
//!
//! - `ANPR_BENCH_OPS` operations per phase on SQLite (default 6000);
//! - `ANPR_BENCH_OPS_POSTGRES` operations per phase on PostgreSQL (default 3000);
//! - `ANPR_BENCH_CLIENTS` concurrent clients = municipalities (default 32, at most 32);
//! - `ANPR_BENCH_RATE` arrival rate of the paced run, ops/s (default 2000; 0 = skip);
//! - `ANPR_BENCH_BACKENDS` `sqlite,postgres` (default both);
//! - `ANPR_BENCH_LAYERS` `service,http` (default both);
//! - `ANPR_BENCH_BREAKDOWN=1` times every store call of the service-layer runs and prints,
//!   per phase, each call's count per operation and p50/p99 (where an operation's
//!   latency goes: reads before the decision, or `apply`, that is the write queue, the
//!   group's SQL and its durable commit).
//!
//! On SQLite the table also gives the WAL pages (frames) the writer appended per
//! operation during each phase, from `SqliteStore::wal_frames_written`.
//!
//! Without `--bench` on the command line (that is, under `cargo test --all-targets` or
//! `cargo test --benches`) it does a smoke run of a few operations per phase, which still
//! checks that every operation succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `anpr` binary runs with, so the bench measures what production runs.
#[global_allocator]
static ALLOCATORE: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anpr_domain::audit::{NuovaVoceAudit, TestaCatena, VoceAudit};
use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::ids::{CodiceIstatComune, IdOperazioneAnpr};
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::iscrizione::Richiesta1002;
use anpr_service::residenza::Richiesta5005;
use anpr_service::Registry;
use anpr_store::{EntityRef, Store, StoreError};
use anpr_store_sqlite::SqliteStore;
use serde::Deserialize;
use serde_json::{json, Value};

/// Provincial capitals, one per client: concurrency is real (different municipalities
/// run in parallel) and each client's `idOperazioneComune` increases by construction.
const COMUNI: [&str; 32] = [
    "058091", "015146", "063049", "001272", "082053", "010025", "037006", "048017", "072006",
    "027042", "092009", "032006", "022205", "021008", "007003", "054039", "042002", "066049",
    "070006", "076063", "079023", "023091", "028060", "017029", "016024", "034027", "036023",
    "050026", "075035", "087015", "083048", "065116",
];

/// Surnames with pairwise different codice-fiscale consonant codes, so that generated
/// people never share a codice fiscale.
const COGNOMI: [&str; 20] = [
    "Rossi", "Bianchi", "Verdi", "Esposito", "Romano", "Colombo", "Ricci", "Marino", "Greco",
    "Bruno", "Gallo", "Conti", "Costa", "Giordano", "Mancini", "Rizzo", "Lombardi", "Moretti",
    "Barbieri", "Fontana",
];

/// Distinct birth dates used before moving on to the next surname.
const DATE_NASCITA: usize = 20_000;

/// The caller's user (a registry officer) and profiles.
const UTENTE: &str = "BNCLRA70A41H501X";
const PROFILI: &str = "OPERATORE_ANAGRAFE";

#[derive(Debug, Clone)]
struct Config {
    smoke: bool,
    ops: usize,
    ops_postgres: usize,
    clients: usize,
    rate: f64,
    sqlite: bool,
    postgres: bool,
    service: bool,
    http: bool,
    breakdown: bool,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a valid value")),
    }
}

impl Config {
    fn from_env() -> Self {
        // `cargo bench` passes `--bench`; `cargo test` does not.
        let smoke = !std::env::args().any(|a| a == "--bench");
        let backends = env("ANPR_BENCH_BACKENDS", "sqlite,postgres".to_owned());
        let layers = env("ANPR_BENCH_LAYERS", "service,http".to_owned());
        let clients = env("ANPR_BENCH_CLIENTS", 32usize).clamp(1, COMUNI.len());
        let (ops, ops_postgres, rate) = if smoke {
            (4 * clients.min(4), 4 * clients.min(4), 200.0)
        } else {
            (
                env("ANPR_BENCH_OPS", 6000usize),
                env("ANPR_BENCH_OPS_POSTGRES", 3000usize),
                env("ANPR_BENCH_RATE", 2000.0f64),
            )
        };
        Self {
            smoke,
            ops,
            ops_postgres,
            clients: if smoke { clients.min(4) } else { clients },
            rate,
            sqlite: backends.contains("sqlite"),
            postgres: backends.contains("postgres"),
            service: layers.contains("service"),
            http: layers.contains("http"),
            breakdown: env("ANPR_BENCH_BREAKDOWN", 0u8) == 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh store and what keeps it alive (temporary directory or schema guard).
struct FreshStore {
    store: Arc<dyn Store>,
    sqlite: Option<Arc<SqliteStore>>,
    /// The timing wrapper the registry uses instead of `store`, if breaking down.
    cronometro: Option<Arc<Cronometrato>>,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn fresh(backend: Backend) -> Option<FreshStore> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let path = dir.path().to_owned();
            let store = tokio::task::spawn_blocking(move || {
                SqliteStore::open_in_dir(&path, Ambiente::Test).expect("opening SQLite")
            })
            .await
            .expect("opening SQLite");
            let store = Arc::new(store);
            Some(FreshStore {
                store: store.clone(),
                sqlite: Some(store),
                cronometro: None,
                _keep: Box::new(dir),
            })
        }
        Backend::Postgres => {
            let (store, guard) = anpr_store_postgres::testing::fresh().await?;
            Some(FreshStore {
                store: Arc::new(store),
                sqlite: None,
                cronometro: None,
                _keep: Box::new(guard),
            })
        }
    }
}

fn registry(store: &Arc<dyn Store>) -> Arc<Registry> {
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    Arc::new(Registry::new(stores, Arc::new(SystemClock)))
}

/// CPU time used so far by the whole process (all threads, also those that ended), from
/// `/proc/self/stat` (clock ticks of 10 ms: phases last seconds, so this is precise
/// enough). `None` off Linux.
fn cpu_processo() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces):
    // state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time used so far by the SQLite writer threads (by thread name), in nanoseconds
/// precision from `/proc/self/task/*/schedstat`.
fn cpu_writer() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "anpr-sqlite-wri" {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(Duration::from_nanos(total))
}

/// CPU time spent by the process and by the writer threads during a phase.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    processo: Option<Duration>,
    writer: Option<Duration>,
}

impl Cpu {
    fn start() -> Self {
        Self {
            processo: cpu_processo(),
            writer: cpu_writer(),
        }
    }

    fn since(self) -> Self {
        let now = Self::start();
        let diff = |a: Option<Duration>, b: Option<Duration>| Some(a?.saturating_sub(b?));
        Self {
            processo: diff(now.processo, self.processo),
            writer: diff(now.writer, self.writer),
        }
    }
}

/// A store that forwards every call and records how long the calls the two operations
/// make took, to break an operation's latency down (`ANPR_BENCH_BREAKDOWN=1`).
#[derive(Debug)]
struct Cronometrato {
    inner: Arc<dyn Store>,
    /// Per method: call latencies in microseconds.
    tempi: std::sync::Mutex<BTreeMap<&'static str, Vec<u32>>>,
}

impl Cronometrato {
    async fn misura<T>(&self, nome: &'static str, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.tempi
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(nome)
            .or_default()
            .push(us);
        out
    }

    /// Prints and forgets what was recorded: per method, calls per operation, p50, p99.
    fn stampa(&self, ops: usize) {
        let tempi = std::mem::take(
            &mut *self
                .tempi
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (nome, mut v) in tempi {
            v.sort_unstable();
            let p = |q: f64| {
                let rank = ((q / 100.0) * v.len() as f64).ceil() as usize;
                f64::from(v[rank.clamp(1, v.len()) - 1]) / 1000.0
            };
            eprintln!(
                "      {nome:<24} {:>5.2} calls/op  p50 {:>6.2} ms  p99 {:>6.2} ms",
                v.len() as f64 / ops.max(1) as f64,
                p(50.0),
                p(99.0)
            );
        }
    }
}

#[async_trait::async_trait]
impl Store for Cronometrato {
    fn backend(&self) -> anpr_store::Backend {
        self.inner.backend()
    }
    async fn next_id(&self, sequence: anpr_store::Sequence) -> Result<u64, StoreError> {
        self.misura("next_id", self.inner.next_id(sequence)).await
    }
    async fn apply(&self, op: anpr_store::NewOperation) -> Result<VoceAudit, StoreError> {
        self.misura("apply", self.inner.apply(op)).await
    }
    async fn annul(
        &self,
        target: IdOperazioneAnpr,
        annulment: anpr_store::NewOperation,
    ) -> Result<VoceAudit, StoreError> {
        self.inner.annul(target, annulment).await
    }
    async fn operation(
        &self,
        id: IdOperazioneAnpr,
    ) -> Result<Option<anpr_store::StoredOperation>, StoreError> {
        self.inner.operation(id).await
    }
    async fn conferma_durevole(&self) -> Result<(), StoreError> {
        self.misura("conferma_durevole", self.inner.conferma_durevole())
            .await
    }
    async fn operation_by_comune_id(
        &self,
        comune: &CodiceIstatComune,
        id: anpr_domain::ids::IdOperazioneComune,
    ) -> Result<Option<anpr_store::StoredOperation>, StoreError> {
        self.misura(
            "operation_by_comune_id",
            self.inner.operation_by_comune_id(comune, id),
        )
        .await
    }
    async fn operations(
        &self,
        query: &anpr_store::OperationQuery,
    ) -> Result<Vec<anpr_store::StoredOperation>, StoreError> {
        self.inner.operations(query).await
    }
    async fn record(
        &self,
        entity: EntityRef,
        at: Option<chrono::NaiveDate>,
    ) -> Result<Option<anpr_store::RecordSections>, StoreError> {
        self.misura("record", self.inner.record(entity, at)).await
    }
    async fn history(
        &self,
        entity: EntityRef,
        section: &str,
    ) -> Result<Vec<anpr_store::StoredVersion>, StoreError> {
        self.inner.history(entity, section).await
    }
    async fn by_section_key(
        &self,
        section: &str,
        key: &str,
        at: Option<chrono::NaiveDate>,
    ) -> Result<Vec<(EntityRef, Value)>, StoreError> {
        self.misura(
            "by_section_key",
            self.inner.by_section_key(section, key, at),
        )
        .await
    }
    async fn find_subjects(
        &self,
        query: &anpr_store::SubjectQuery,
    ) -> Result<Vec<anpr_store::SubjectIndex>, StoreError> {
        self.misura("find_subjects", self.inner.find_subjects(query))
            .await
    }
    async fn family_index(
        &self,
        id: anpr_domain::ids::IdAnprFamiglia,
    ) -> Result<Option<anpr_store::FamilyIndex>, StoreError> {
        self.misura("family_index", self.inner.family_index(id))
            .await
    }
    async fn find_procedimenti(
        &self,
        query: &anpr_store::ProcedimentoQuery,
    ) -> Result<Vec<anpr_store::ProcedimentoIndex>, StoreError> {
        self.inner.find_procedimenti(query).await
    }
    async fn salva_sospesa(
        &self,
        sospesa: anpr_store::NuovaSospesa,
    ) -> Result<anpr_store::OperazioneSospesa, StoreError> {
        self.inner.salva_sospesa(sospesa).await
    }
    async fn sospesa(&self, id: u64) -> Result<Option<anpr_store::OperazioneSospesa>, StoreError> {
        self.inner.sospesa(id).await
    }
    async fn sospese(
        &self,
        query: &anpr_store::QuerySospese,
    ) -> Result<Vec<anpr_store::OperazioneSospesa>, StoreError> {
        self.inner.sospese(query).await
    }
    async fn elimina_sospesa(&self, id: u64, audit: NuovaVoceAudit) -> Result<bool, StoreError> {
        self.inner.elimina_sospesa(id, audit).await
    }
    async fn emetti_documento(
        &self,
        doc: anpr_store::NuovoDocumento,
    ) -> Result<anpr_store::DocumentoEmesso, StoreError> {
        self.inner.emetti_documento(doc).await
    }
    async fn documento(&self, id: &str) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
        self.inner.documento(id).await
    }
    async fn documenti(
        &self,
        query: &anpr_store::QueryDocumenti,
    ) -> Result<Vec<anpr_store::DocumentoEmesso>, StoreError> {
        self.inner.documenti(query).await
    }
    async fn annulla_documento(
        &self,
        id: &str,
        istante: chrono::DateTime<chrono::Utc>,
        motivo: String,
        audit: NuovaVoceAudit,
    ) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
        self.inner
            .annulla_documento(id, istante, motivo, audit)
            .await
    }
    async fn parametri_comune(
        &self,
        comune: &CodiceIstatComune,
    ) -> Result<Option<anpr_store::ParametriComune>, StoreError> {
        self.inner.parametri_comune(comune).await
    }
    async fn salva_parametri_comune(
        &self,
        parametri: anpr_store::NuoviParametriComune,
    ) -> Result<anpr_store::ParametriComune, StoreError> {
        self.inner.salva_parametri_comune(parametri).await
    }
    async fn append_audit(&self, entry: NuovaVoceAudit) -> Result<VoceAudit, StoreError> {
        self.inner.append_audit(entry).await
    }
    async fn append_audit_batch(
        &self,
        entries: Vec<NuovaVoceAudit>,
    ) -> Result<Vec<VoceAudit>, StoreError> {
        self.inner.append_audit_batch(entries).await
    }
    async fn audit_page(&self, after: u64, limit: u32) -> Result<Vec<VoceAudit>, StoreError> {
        self.inner.audit_page(after, limit).await
    }
    async fn audit_head(&self) -> Result<Option<TestaCatena>, StoreError> {
        self.inner.audit_head().await
    }
    async fn outbox_pending(
        &self,
        limit: u32,
    ) -> Result<Vec<anpr_store::OutboxMessage>, StoreError> {
        self.inner.outbox_pending(limit).await
    }
    async fn outbox_mark(&self, id: u64, delivered: bool) -> Result<(), StoreError> {
        self.inner.outbox_mark(id, delivered).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn baseline_raw_insert(&self, rows: u32) -> Result<(), StoreError> {
        self.inner.baseline_raw_insert(rows).await
    }
}

/// One measured phase: operation count, wall time and each operation's latency.
#[derive(Debug, Clone)]
struct Misura {
    backend: Backend,
    layer: &'static str,
    op: &'static str,
    ops: usize,
    wall: Duration,
    /// Microseconds, sorted.
    latencies: Vec<u32>,
    /// SQLite during the phase, when known: the average group-commit size, and groups
    /// per WAL sync (more than one when groups were committed during a sync).
    group: Option<(f64, f64)>,
    /// SQLite during the phase, when known: WAL frames (4 KiB pages) the writer's
    /// commits appended, per operation — the write volume behind each one.
    pagine_wal: Option<f64>,
    cpu: Cpu,
}

impl Misura {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// CPU microseconds per operation: whole process (clients included), SQLite writer.
    fn cpu_us(&self) -> (Option<f64>, Option<f64>) {
        let per_op =
            |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e6 / self.ops.max(1) as f64);
        (per_op(self.cpu.processo), per_op(self.cpu.writer))
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        f64::from(self.latencies[rank.clamp(1, self.latencies.len()) - 1]) / 1000.0
    }
}

/// Who is calling: a service-layer caller context or HTTP identity headers.
#[derive(Clone)]
enum Via {
    Service(Arc<Registry>),
    Http {
        client: reqwest::Client,
        base: String,
    },
}

impl Via {
    fn layer(&self) -> &'static str {
        match self {
            Via::Service(_) => "service",
            Via::Http { .. } => "http",
        }
    }

    /// Runs operation `codice` for the municipality of client `k`; returns the response
    /// document. Panics unless the operation succeeded: a benchmark of failures measures
    /// nothing.
    async fn run(&self, k: usize, codice: &str, body: Value) -> Value {
        let comune = COMUNI[k];
        match self {
            Via::Service(registry) => {
                let ctx = CallerContext {
                    ambiente: Ambiente::Test,
                    comune: Some(comune.parse::<CodiceIstatComune>().expect("comune")),
                    utente: UTENTE.to_owned(),
                    profili: [Profilo::OperatoreAnagrafe].into_iter().collect(),
                    postazione: Some(format!("{comune}-PC-0001")),
                    canale: Canale::Rest,
                };
                let risposta = match codice {
                    "1002" => {
                        let req = Richiesta1002::deserialize(&body).expect("1002 body");
                        registry.iscrizione_altri_motivi(&ctx, &req, &body).await
                    }
                    "5005" => {
                        let req = Richiesta5005::deserialize(&body).expect("5005 body");
                        registry.mutazione_residenza(&ctx, &req, &body).await
                    }
                    other => panic!("operation {other} not benchmarked"),
                }
                .unwrap_or_else(|e| panic!("{codice} refused: {e:?}"));
                assert!(
                    risposta.eseguita && !risposta.replay,
                    "{codice} not executed: {}",
                    risposta.documento
                );
                serde_json::from_str(&risposta.documento).expect("response document")
            }
            Via::Http { client, base } => {
                let r = client
                    .post(format!("{base}/api/v1/operazioni/{codice}"))
                    .header("x-anpr-utente", UTENTE)
                    .header("x-anpr-comune", comune)
                    .header("x-anpr-profili", PROFILI)
                    .header("x-anpr-postazione", format!("{comune}-PC-0001"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{codice} over HTTP: {e}"));
                let status = r.status().as_u16();
                let text = r.text().await.expect("response body");
                assert_eq!(status, 200, "{codice} failed: {text}");
                let v: Value = serde_json::from_str(&text).expect("response JSON");
                assert_eq!(v["esito"], "OK", "{codice} failed: {text}");
                v
            }
        }
    }
}

/// The people and ids of one store: per client, the next `idOperazioneComune` and the
/// subjects it registered; and the next person number (for unique generalities).
struct Popolazione {
    next_id_comune: Vec<u64>,
    soggetti: Vec<Vec<String>>,
    next_persona: usize,
    /// Address number of the next move, so every move changes the address.
    next_civico: u64,
}

impl Popolazione {
    fn new(clients: usize) -> Self {
        Self {
            next_id_comune: vec![1; clients],
            soggetti: vec![Vec::new(); clients],
            next_persona: 0,
            next_civico: 1,
        }
    }
}

fn indirizzo(comune: &str, via: &str, numero: u64) -> Value {
    json!({
        "comune": comune,
        "toponimo": {"specie": "VIA", "denominazioneToponimo": via},
        "numeroCivico": {"numero": numero.to_string()}
    })
}

/// A 1002 body registering person number `n` in `comune` as the head of a new family.
fn iscrizione(comune: &str, id_comune: u64, n: usize) -> Value {
    let nascita = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).expect("date")
        + chrono::Days::new((n % DATE_NASCITA) as u64);
    let cognome = COGNOMI[(n / DATE_NASCITA) % COGNOMI.len()];
    let (nome, sesso) = if n.is_multiple_of(2) {
        ("Mario", "M")
    } else {
        ("Anna", "F")
    };
    json!({
        "idOperazioneComune": id_comune.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {
            "cognome": cognome, "nome": nome, "sesso": sesso,
            "dataNascita": nascita.to_string(), "luogoNascita": "Z404"
        },
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": indirizzo(comune, "Nazionale", 10),
        "famiglia": {"codiceLegame": "1"}
    })
}

/// A 5005 body moving subject `id` (the whole of its one-person family) within `comune`.
fn trasloco(comune: &str, id_comune: u64, id: &str, civico: u64) -> Value {
    json!({
        "idOperazioneComune": id_comune.to_string(),
        "dataDecorrenza": "2022-01-15",
        "soggetti": [{"idSchedaSoggettoANPR": id}],
        "residenza": indirizzo(comune, "Appia Nuova", civico)
    })
}

/// The work of one client in one phase: (operation, body) in order.
type Lavoro = Vec<Vec<(&'static str, Value)>>;

/// Registrations of `ops` new people spread over the clients.
fn lavoro_1002(pop: &mut Popolazione, ops: usize) -> Lavoro {
    let clients = pop.next_id_comune.len();
    let mut lavoro: Lavoro = vec![Vec::new(); clients];
    for i in 0..ops {
        let k = i % clients;
        let body = iscrizione(COMUNI[k], pop.next_id_comune[k], pop.next_persona);
        pop.next_id_comune[k] += 1;
        pop.next_persona += 1;
        lavoro[k].push(("1002", body));
    }
    lavoro
}

/// Moves of every person registered since `from` (per client), each by its own client.
fn lavoro_5005(pop: &mut Popolazione, from: &[usize]) -> Lavoro {
    let clients = pop.next_id_comune.len();
    let mut lavoro: Lavoro = vec![Vec::new(); clients];
    for k in 0..clients {
        for id in &pop.soggetti[k][from[k]..] {
            let body = trasloco(COMUNI[k], pop.next_id_comune[k], id, pop.next_civico);
            pop.next_id_comune[k] += 1;
            pop.next_civico += 1;
            lavoro[k].push(("5005", body));
        }
    }
    lavoro
}

/// The open loop's clock: an OS thread that sleeps until each operation's due time
/// (`start + (j * clients + k) * every` for client `k`'s operation `j`) and then sends
/// that client the due time, its signal to go. tokio's own timer has a 1 ms grain: with it the clients started
/// their operations 0.8 ms late at the median and 1.7 ms late at p99, all of which was
/// counted as the server's latency (BENCHMARKS.md, session 11); a thread's sleep is
/// tens of microseconds late. Latencies are still counted from the due time, so a
/// client that falls behind (the server is slow) is charged for it.
fn orologio(
    start: Instant,
    every: Duration,
    ops_per_client: &[usize],
) -> Vec<tokio::sync::mpsc::UnboundedReceiver<Instant>> {
    let (tx, rx): (Vec<_>, Vec<_>) = ops_per_client
        .iter()
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let per_client = ops_per_client.to_vec();
    std::thread::Builder::new()
        .name("bench-clock".into())
        .spawn(move || {
            let clients = per_client.len();
            let most = per_client.iter().copied().max().unwrap_or(0);
            for j in 0..most {
                for (k, tx) in tx.iter().enumerate() {
                    if j >= per_client[k] {
                        continue;
                    }
                    let due = start + every * (j * clients + k) as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    // A client that stopped (it panicked) no longer listens.
                    let _ = tx.send(due);
                }
            }
        })
        .expect("starting the bench clock");
    rx
}

/// Runs each client's work concurrently, closed loop (`interval == None`: next
/// operation as soon as the previous is answered) or open loop (operation `j` overall is
/// due at `start + j * interval`, started by [`orologio`], latency counted from then).
/// Returns the wall time, the sorted latencies and, per client, the registered subjects
/// (from 1002 responses). An open loop also prints how late its operations started.
async fn esegui(
    via: &Via,
    lavoro: Lavoro,
    interval: Option<Duration>,
) -> (Duration, Vec<u32>, Vec<Vec<String>>) {
    let clients = lavoro.len();
    let start = Instant::now();
    let mut segnali = interval.map(|every| {
        let per_client: Vec<usize> = lavoro.iter().map(Vec::len).collect();
        orologio(start, every, &per_client).into_iter()
    });
    let mut tasks = Vec::with_capacity(clients);
    for (k, ops) in lavoro.into_iter().enumerate() {
        let via = via.clone();
        let mut segnale = segnali.as_mut().and_then(Iterator::next);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(ops.len());
            let mut ritardi = Vec::new();
            let mut registered = Vec::new();
            for (codice, body) in ops {
                let begin = match segnale.as_mut() {
                    Some(segnale) => {
                        let due = segnale.recv().await.expect("the bench clock");
                        ritardi.push(u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX));
                        due
                    }
                    None => Instant::now(),
                };
                let doc = via.run(k, codice, body).await;
                let micros = begin.elapsed().as_micros();
                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                if codice == "1002" {
                    let id = doc["soggetti"][0]["idANPR"]
                        .as_str()
                        .expect("registered subject id");
                    registered.push(id.to_owned());
                }
            }
            (latencies, ritardi, registered)
        }));
    }
    let mut latencies = Vec::new();
    let mut ritardi = Vec::new();
    let mut registered = Vec::with_capacity(clients);
    for t in tasks {
        let (l, d, r) = t.await.expect("client task");
        latencies.extend(l);
        ritardi.extend(d);
        registered.push(r);
    }
    let wall = start.elapsed();
    latencies.sort_unstable();
    if !ritardi.is_empty() {
        ritardi.sort_unstable();
        let p = |q: usize| ritardi[(ritardi.len() * q / 100).min(ritardi.len() - 1)];
        eprintln!(
            "      open loop: operations started {} µs after their due time at p50, {} µs at p99",
            p(50),
            p(99)
        );
    }
    (wall, latencies, registered)
}

/// Runs the 1002 phase and then the 5005 phase on `via`, adding two measurements.
async fn registra_e_sposta(
    backend: Backend,
    store: &FreshStore,
    via: &Via,
    pop: &mut Popolazione,
    ops: usize,
    interval: Option<Duration>,
    out: &mut Vec<Misura>,
) {
    let layer = match (via, interval) {
        (_, Some(_)) => "service, paced",
        (v, None) => v.layer(),
    };
    let from: Vec<usize> = pop.soggetti.iter().map(Vec::len).collect();
    for op in ["1002", "5005"] {
        let lavoro = match op {
            "1002" => lavoro_1002(pop, ops),
            _ => lavoro_5005(pop, &from),
        };
        let n: usize = lavoro.iter().map(Vec::len).sum();
        let stats_before = store.sqlite.as_ref().map(|s| s.writer_stats());
        let frames_before = store.sqlite.as_ref().map(|s| s.wal_frames_written());
        let cpu = Cpu::start();
        let (wall, latencies, registered) = esegui(via, lavoro, interval).await;
        let cpu = cpu.since();
        let group = store.sqlite.as_ref().zip(stats_before).map(|(s, b)| {
            let a = s.writer_stats();
            let groups = (a.groups - b.groups).max(1) as f64;
            (
                (a.requests - b.requests) as f64 / groups,
                groups / (a.syncs - b.syncs).max(1) as f64,
            )
        });
        let pagine_wal = store
            .sqlite
            .as_ref()
            .zip(frames_before)
            .map(|(s, b)| (s.wal_frames_written().saturating_sub(b)) as f64 / n.max(1) as f64);
        for (k, r) in registered.into_iter().enumerate() {
            pop.soggetti[k].extend(r);
        }
        let m = Misura {
            backend,
            layer,
            op,
            ops: n,
            wall,
            latencies,
            group,
            pagine_wal,
            cpu,
        };
        eprintln!(
            "  {:<8} {:<15} {op}: {:>7.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            backend.name(),
            layer,
            m.rate(),
            m.percentile_ms(50.0),
            m.percentile_ms(99.0)
        );
        if let Some(c) = &store.cronometro {
            c.stampa(n);
        }
        out.push(m);
    }
}

/// `ops` raw durable inserts by the configured number of clients.
async fn baseline(cfg: &Config, backend: Backend, store: &FreshStore, ops: usize) -> Misura {
    let cpu = Cpu::start();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.clients);
    for k in 0..cfg.clients {
        let store = store.store.clone();
        let mine = ops / cfg.clients + usize::from(k < ops % cfg.clients);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine);
            for _ in 0..mine {
                let begin = Instant::now();
                store
                    .baseline_raw_insert(1)
                    .await
                    .unwrap_or_else(|e| panic!("baseline insert: {e}"));
                latencies.push(u32::try_from(begin.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(ops);
    for t in tasks {
        latencies.extend(t.await.expect("baseline client"));
    }
    let wall = start.elapsed();
    let cpu = cpu.since();
    latencies.sort_unstable();
    let m = Misura {
        backend,
        layer: "baseline",
        op: "raw insert",
        ops,
        wall,
        latencies,
        group: None,
        pagine_wal: None,
        cpu,
    };
    eprintln!(
        "  {:<8} baseline raw insert: {:>7.0} rows/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        backend.name(),
        m.rate(),
        m.percentile_ms(50.0),
        m.percentile_ms(99.0)
    );
    m
}

/// The whole block of one backend. `None` when the backend is skipped (PostgreSQL
/// without a server and `ANPR_SKIP_POSTGRES=1`).
async fn blocco(cfg: &Config, backend: Backend) -> Option<Vec<Misura>> {
    let ops = match backend {
        Backend::Sqlite => cfg.ops,
        Backend::Postgres => cfg.ops_postgres,
    };
    let mut out = Vec::new();
    eprintln!(
        "{}: {ops} operations per phase, {} clients",
        backend.name(),
        cfg.clients
    );

    let base_store = fresh(backend).await?;
    out.push(baseline(cfg, backend, &base_store, ops).await);

    if cfg.service {
        let mut store = fresh(backend).await?;
        store.cronometro = cfg.breakdown.then(|| {
            Arc::new(Cronometrato {
                inner: store.store.clone(),
                tempi: Default::default(),
            })
        });
        let via = Via::Service(match &store.cronometro {
            Some(c) => registry(&(c.clone() as Arc<dyn Store>)),
            None => registry(&store.store),
        });
        let mut pop = Popolazione::new(cfg.clients);
        registra_e_sposta(backend, &store, &via, &mut pop, ops, None, &mut out).await;
        // The closed-loop 1002 measurement, just added before the 5005 one.
        let closed_rate = out[out.len() - 2].rate();
        if cfg.rate > 0.0 {
            if closed_rate >= cfg.rate / 2.0 {
                let interval = Duration::from_secs_f64(1.0 / cfg.rate);
                registra_e_sposta(
                    backend,
                    &store,
                    &via,
                    &mut pop,
                    ops,
                    Some(interval),
                    &mut out,
                )
                .await;
            } else {
                eprintln!(
                    "  {}: paced run at {:.0}/s skipped: closed-loop 1002 rate is {closed_rate:.0}/s",
                    backend.name(),
                    cfg.rate
                );
            }
        }
        verifica(&store.store, &pop).await;
    }

    if cfg.http {
        let store = fresh(backend).await?;
        let registry = registry(&store.store);
        let app = anpr_server::router(
            registry,
            ServerConfig {
                ambiente_predefinito: Ambiente::Test,
                backend: backend.name(),
                identita_da_header: true,
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the server");
        let addr = listener.local_addr().expect("server address");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let via = Via::Http {
            client: reqwest::Client::new(),
            base: format!("http://{addr}"),
        };
        let mut pop = Popolazione::new(cfg.clients);
        registra_e_sposta(backend, &store, &via, &mut pop, ops, None, &mut out).await;
        verifica(&store.store, &pop).await;
        server.abort();
    }

    out.push(baseline(cfg, backend, &base_store, ops).await);
    Some(out)
}

/// Checks that what the run did is in the store: every registered person exists and
/// lives at the address of their (last) move.
async fn verifica(store: &Arc<dyn Store>, pop: &Popolazione) {
    let registered: usize = pop.soggetti.iter().map(Vec::len).sum();
    assert_eq!(registered, pop.next_persona, "every registration answered");
    for (k, soggetti) in pop.soggetti.iter().enumerate() {
        let Some(id) = soggetti.last() else { continue };
        let id = anpr_domain::ids::IdAnprSoggetto::new(id.parse().expect("numeric id"))
            .expect("subject id");
        let record = store
            .record(anpr_store::EntityRef::Soggetto(id), None)
            .await
            .expect("reading a subject")
            .expect("registered subject present");
        let residenza = record.get("residenza").expect("residence section");
        assert_eq!(residenza["indirizzo"]["comune"], COMUNI[k], "{residenza}");
        assert_eq!(
            residenza["indirizzo"]["toponimo"]["denominazioneToponimo"], "Appia Nuova",
            "the move is in force: {residenza}"
        );
    }
}

fn report(cfg: &Config, misure: &[Misura]) {
    println!();
    println!(
        "registry operations, {} clients (one municipality each){}",
        cfg.clients,
        if cfg.smoke { ", SMOKE RUN" } else { "" }
    );
    println!(
        "| backend | layer | operation | ops | ops/s | p50 ms | p99 ms | max ms | ratio to baseline | CPU µs/op | writer µs/op | avg group / groups per sync | WAL pages/op |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let baselines: Vec<f64> = misure
            .iter()
            .filter(|m| m.backend == backend && m.layer == "baseline")
            .map(Misura::rate)
            .collect();
        if baselines.is_empty() {
            continue;
        }
        let base = baselines.iter().sum::<f64>() / baselines.len() as f64;
        for m in misure.iter().filter(|m| m.backend == backend) {
            let (cpu, writer) = m.cpu_us();
            let us = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.0}"));
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {} | {} | {} | {} |",
                backend.name(),
                m.layer,
                m.op,
                m.ops,
                m.rate(),
                m.percentile_ms(50.0),
                m.percentile_ms(99.0),
                m.percentile_ms(100.0),
                m.rate() / base.max(f64::EPSILON),
                us(cpu),
                if backend == Backend::Sqlite {
                    us(writer)
                } else {
                    "—".to_owned()
                },
                m.group
                    .map_or_else(|| "—".to_owned(), |(g, s)| format!("{g:.1} / {s:.2}")),
                m.pagine_wal
                    .map_or_else(|| "—".to_owned(), |p| format!("{p:.1}")),
            );
        }
    }
}

fn main() {
    let cfg = Config::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let mut misure = Vec::new();
    for (enabled, backend) in [
        (cfg.sqlite, Backend::Sqlite),
        (cfg.postgres, Backend::Postgres),
    ] {
        if !enabled {
            continue;
        }
        match rt.block_on(blocco(&cfg, backend)) {
            Some(m) => misure.extend(m),
            None => eprintln!("{}: skipped", backend.name()),
        }
    }
    report(&cfg, &misure);
    eprintln!("total time {:.1} s", started.elapsed().as_secs_f64());
}
