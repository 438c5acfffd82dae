//! Crash safety of a production subentro (SPEC M-6, issue 5): `anpr subentro import` is
//! killed with SIGKILL while it is loading, on SQLite and on PostgreSQL. Afterwards the
//! audit chain verifies, nothing of the municipality is there (no subject, no family,
//! no file recorded), and running the same import again completes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anpr_domain::ids::CodiceIstatComune;
use anpr_store::{Store, SubjectQuery};

const COMUNE: &str = "001272";

fn anpr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_anpr"))
}

fn genera(dir: &Path, persone: u64) -> Vec<String> {
    let out = anpr()
        .args([
            "generate",
            "--comune",
            COMUNE,
            "--persone",
            &persone.to_string(),
            "--seed",
            "5",
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    vec![
        dir.join("APR_001272_001_001.xml").display().to_string(),
        dir.join("AIRE_001272_001_001.xml").display().to_string(),
    ]
}

fn import(files: &[String], storage: &[String], esiti: &Path) -> Command {
    let mut c = anpr();
    c.args(["subentro", "import"])
        .args(files)
        .args([
            "--comune",
            COMUNE,
            "--ambiente",
            "produzione",
            "--quiet",
            "--esiti",
        ])
        .arg(esiti)
        .args(storage);
    c
}

/// Kills the import once `in_corso` says the load is under way (or after a timeout,
/// which fails the test: the kill must happen mid-run).
fn uccidi_durante(mut child: Child, in_corso: impl Fn() -> bool) {
    let inizio = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended ({status}) before it could be killed: use a bigger file");
        }
        if in_corso() {
            break;
        }
        assert!(
            inizio.elapsed() < Duration::from_secs(120),
            "the load never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no destructor, no rollback by the process itself.
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn nulla_del_comune(store: &Arc<dyn Store>) {
    let comune: CodiceIstatComune = COMUNE.parse().unwrap();
    let soggetti = store
        .find_subjects(&SubjectQuery {
            comune: Some(comune.clone()),
            limit: 10,
            ..SubjectQuery::default()
        })
        .await
        .unwrap();
    assert!(
        soggetti.is_empty(),
        "no subject of the municipality after the crash"
    );
    assert!(
        store.file_subentro(&comune).await.unwrap().is_empty(),
        "no file recorded"
    );
    let testa = store.audit_head().await.unwrap();
    let voci = store.audit_page(0, 10_000).await.unwrap();
    assert_eq!(
        anpr_domain::audit::verifica_catena(&voci, testa.as_ref()),
        Ok(voci.len() as u64),
        "audit chain intact"
    );
}

async fn tutto_del_comune(store: &Arc<dyn Store>, attesi: u64) {
    let comune: CodiceIstatComune = COMUNE.parse().unwrap();
    let files = store.file_subentro(&comune).await.unwrap();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.stato == "ELABORATO"));
    assert_eq!(files.iter().map(|f| f.soggetti).sum::<u64>(), attesi);
    let testa = store.audit_head().await.unwrap();
    let voci = store.audit_page(0, 10_000).await.unwrap();
    assert_eq!(
        anpr_domain::audit::verifica_catena(&voci, testa.as_ref()),
        Ok(voci.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_during_a_production_subentro_leaves_nothing_and_the_rerun_completes() {
    let gen = tempfile::tempdir().unwrap();
    let files = genera(gen.path(), 8_000);
    let data = tempfile::tempdir().unwrap();
    let esiti = tempfile::tempdir().unwrap();
    let storage = vec!["--data-dir".to_owned(), data.path().display().to_string()];
    let wal = data.path().join("produzione.sqlite3-wal");
    let child = import(&files, &storage, esiti.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The outcome rows stream into `esiti.csv.tmp` while the records are read, before
    // the load can commit (it needs them all; the file is renamed after the commit):
    // 64 KiB of them (about a seventh of this supply's) means the load is under way.
    // The size of the WAL said so only while the load's pages fitted in its cache: the
    // commit writes them all at once, and then the CLI's final checkpoint keeps the WAL
    // large, so a kill could land after the commit.
    let in_scrittura = esiti.path().join("esiti.csv.tmp");
    uccidi_durante(child, || {
        std::fs::metadata(&in_scrittura)
            .map(|m| m.len() > 64 << 10)
            .unwrap_or(false)
    });

    let store: Arc<dyn Store> = Arc::new(
        anpr_store_sqlite::SqliteStore::open(&data.path().join("produzione.sqlite3")).unwrap(),
    );
    nulla_del_comune(&store).await;
    drop(store);
    // The load into the empty file had dropped the secondary indexes of the projections
    // and of `versioni` in its transaction: the crash left them as migrated.
    let indici = |path: &Path| -> Vec<String> {
        rusqlite::Connection::open(path)
            .unwrap()
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
                   AND tbl_name IN ('indice_soggetti', 'indice_famiglie', 'versioni') ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let dopo = indici(&data.path().join("produzione.sqlite3"));
    let vuoto = tempfile::tempdir().unwrap();
    drop(anpr_store_sqlite::SqliteStore::open(&vuoto.path().join("v.sqlite3")).unwrap());
    assert_eq!(dopo, indici(&vuoto.path().join("v.sqlite3")));
    assert!(dopo.iter().any(|i| i == "indice_soggetti_cf"), "{dopo:?}");
    let verify = anpr()
        .args(["audit", "verify", "--ambiente", "produzione", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let out = import(&files, &storage, esiti.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The command leaves the load in the database file, not in a WAL as large as it.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("copiato nel database"), "{stdout}");
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    assert!(
        std::fs::metadata(data.path().join("produzione.sqlite3"))
            .unwrap()
            .len()
            > 4 << 20
    );
    // The completed load rebuilt every index it had dropped, and kept the others.
    assert_eq!(
        indici(&data.path().join("produzione.sqlite3")),
        indici(&vuoto.path().join("v.sqlite3"))
    );
    let store: Arc<dyn Store> = Arc::new(
        anpr_store_sqlite::SqliteStore::open(&data.path().join("produzione.sqlite3")).unwrap(),
    );
    let righe = std::fs::read_to_string(esiti.path().join("esiti.csv")).unwrap();
    let caricati = righe
        .lines()
        .filter(|l| l.contains(",S,") && l.ends_with(",CARICATO"))
        .count() as u64;
    tutto_del_comune(&store, caricati).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_during_a_production_subentro_leaves_nothing_and_the_rerun_completes() {
    let Some(url) = anpr_store_postgres::testing::test_url() else {
        return;
    };
    let schema = anpr_store_postgres::testing::random_schema();
    let _guard = anpr_store_postgres::testing::SchemaGuard::new(&url, &schema);
    // Create and migrate the schema before the run, so the kill lands in the load.
    let store: Arc<dyn Store> = Arc::new(
        anpr_store_postgres::PostgresStore::connect(&url, &schema)
            .await
            .unwrap(),
    );
    let gen = tempfile::tempdir().unwrap();
    let files = genera(gen.path(), 8_000);
    let esiti = tempfile::tempdir().unwrap();
    let storage = vec![
        "--database-url".to_owned(),
        url.clone(),
        "--schema".to_owned(),
        schema.clone(),
    ];
    let child = import(&files, &storage, esiti.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The load holds a row-exclusive lock on this schema's versions table from its
    // first COPY to its end: that is "mid-run".
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let client = Arc::new(client);
    const CARICO_IN_CORSO: &str =
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = 'versioni' AND l.mode = 'RowExclusiveLock'";
    let in_corso = {
        let client = Arc::clone(&client);
        let schema = schema.clone();
        let handle = tokio::runtime::Handle::current();
        move || {
            let client = Arc::clone(&client);
            let schema = schema.clone();
            handle.block_on(async move {
                client
                    .query_one(CARICO_IN_CORSO, &[&schema])
                    .await
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0)
                    > 0
            })
        }
    };
    let in_corso2 = in_corso.clone();
    tokio::task::spawn_blocking(move || uccidi_durante(child, in_corso2))
        .await
        .unwrap();
    // The server notices the dead client and rolls its transaction back.
    let inizio = Instant::now();
    while tokio::task::spawn_blocking({
        let f = in_corso.clone();
        move || f()
    })
    .await
    .unwrap()
    {
        assert!(
            inizio.elapsed() < Duration::from_secs(60),
            "the killed load was never rolled back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nulla_del_comune(&store).await;

    let out = import(&files, &storage, esiti.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let righe = std::fs::read_to_string(esiti.path().join("esiti.csv")).unwrap();
    let caricati = righe
        .lines()
        .filter(|l| l.contains(",S,") && l.ends_with(",CARICATO"))
        .count() as u64;
    tutto_del_comune(&store, caricati).await;
}
