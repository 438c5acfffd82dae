//! The subentro pipeline end to end on real stores (SQLite always, PostgreSQL when
//! `ANPR_TEST_POSTGRES_URL` is set): a generated municipality onboards in presubentro
//! and production, the anomaly report matches exactly what the generator injected,
//! every loaded record gets an idANPR and is an ordinary record afterwards; wrong
//! totals end INSERITO KO with nothing loaded; an XSD violation is refused with the
//! element path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anpr_ae::{AgenziaEntrate, Simulatore};
use anpr_domain::caller::Ambiente;
use anpr_domain::ids::CodiceIstatComune;
use anpr_domain::scheda::{SchedaFamiglia, SchedaSoggetto};
use anpr_generatore::{genera, Configurazione, Riepilogo};
use anpr_store::{EntityRef, Store, SubjectQuery};
use anpr_subentro::{importa, EsitoSubentro, FileIngresso, Opzioni, StatoSubentro};
use chrono::NaiveDate;

const COMUNE: &str = "001272";

fn oggi() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn genera_in(dir: &Path, persone: u64, anomalie: f64, totali_errati: bool) -> Riepilogo {
    genera(&Configurazione {
        comuni: vec![COMUNE.parse().unwrap()],
        persone,
        seme: 11,
        anomalie,
        totali_errati,
        data_estrazione: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        cartella: dir.to_owned(),
    })
    .unwrap()
}

fn ae(r: &Riepilogo) -> Arc<dyn AgenziaEntrate> {
    let s = Simulatore::new();
    s.carica_csv_file(&r.registro_ae).unwrap();
    s.imposta_sola_lettura(true);
    Arc::new(s)
}

async fn esegui(
    store: &Arc<dyn Store>,
    ae: Option<Arc<dyn AgenziaEntrate>>,
    ambiente: Ambiente,
    files: &[PathBuf],
    esiti: &Path,
) -> EsitoSubentro {
    importa(
        Arc::clone(store),
        ae,
        Opzioni {
            comune: COMUNE.parse().unwrap(),
            ambiente,
            oggi: oggi(),
            utente: "TEST".into(),
            canale: "test".into(),
            dimensione_massima: 1 << 30,
            cartella_esiti: esiti.to_owned(),
        },
        files.iter().map(|p| FileIngresso::da_percorso(p)).collect(),
        Arc::new(|_, _| {}),
    )
    .await
    .unwrap()
}

fn attese(r: &Riepilogo) -> BTreeMap<String, u64> {
    r.anomalie.clone()
}

fn contate(e: &EsitoSubentro) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for ((codice, _), n) in &e.riepilogo {
        *m.entry(codice.clone()).or_default() += n;
    }
    m
}

async fn soggetti_del_comune(store: &Arc<dyn Store>) -> usize {
    store
        .find_subjects(&SubjectQuery {
            comune: Some(COMUNE.parse::<CodiceIstatComune>().unwrap()),
            limit: 1000,
            ..SubjectQuery::default()
        })
        .await
        .unwrap()
        .len()
}

/// Rows of esiti.csv: (tipo, id_anpr, esito).
fn righe_esiti(dir: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(dir.join("esiti.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[1].to_owned(), c[4].to_owned(), c[5].to_owned())
        })
        .collect()
}

async fn scenario_completo(presub: Arc<dyn Store>, prod: Arc<dyn Store>) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera_in(gen.path(), 3000, 0.03, false);
    let ae = ae(&r);
    let esiti = tempfile::tempdir().unwrap();

    // Presubentro: loaded, anomalies exactly as injected.
    let e = esegui(
        &presub,
        Some(Arc::clone(&ae)),
        Ambiente::Presubentro,
        &r.file,
        esiti.path(),
    )
    .await;
    assert_eq!(e.stato, StatoSubentro::Elaborato, "{:?}", e.bloccanti);
    assert_eq!(contate(&e), attese(&r), "anomaly report vs injected");
    assert_eq!(e.soggetti_letti, r.soggetti);
    let righe = righe_esiti(esiti.path());
    let caricati: Vec<&(String, String, String)> =
        righe.iter().filter(|x| x.2 == "CARICATO").collect();
    assert_eq!(
        caricati.len() as u64,
        e.soggetti_caricati + e.famiglie_caricate
    );
    let mut ids: Vec<(&str, &str)> = caricati
        .iter()
        .map(|x| (if x.0 == "S" { "S" } else { "F" }, x.1.as_str()))
        .collect();
    assert!(
        ids.iter().all(|(_, id)| !id.is_empty()),
        "every loaded record has an idANPR"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), caricati.len(), "idANPR are unique");
    let bloccati = r.anomalie.get("ES092").copied().unwrap_or(0)
        + r.anomalie.get("EN481").copied().unwrap_or(0)
        + r.anomalie.get("EC032").copied().unwrap_or(0)
        + r.anomalie.get("EC053").copied().unwrap_or(0);
    assert_eq!(
        e.soggetti_caricati,
        r.soggetti - bloccati,
        "E blocks exactly the injected records"
    );
    // Anomaly files: one row per anomaly, no duplicates.
    let mut righe_anomalie = 0;
    for f in std::fs::read_dir(esiti.path()).unwrap().flatten() {
        let nome = f.file_name().to_string_lossy().into_owned();
        if nome.starts_with("anomalie_") {
            let testo = std::fs::read_to_string(f.path()).unwrap();
            let mut l: Vec<&str> = testo.lines().skip(1).collect();
            righe_anomalie += l.len() as u64;
            let n = l.len();
            l.sort_unstable();
            l.dedup();
            assert_eq!(l.len(), n, "duplicate rows in {nome}");
        }
    }
    assert_eq!(righe_anomalie, attese(&r).values().sum::<u64>());
    let riepilogo = std::fs::read_to_string(esiti.path().join("riepilogo.csv")).unwrap();
    assert!(riepilogo.starts_with("codice,gravita,conteggio\n"));
    for (codice, n) in attese(&r) {
        assert!(
            riepilogo
                .lines()
                .any(|l| l.starts_with(&format!("{codice},")) && l.ends_with(&format!(",{n}"))),
            "{codice} {n} in {riepilogo}"
        );
    }

    // Loaded records are ordinary records: readable, indexed, with their anomalies.
    let campione = caricati.iter().find(|x| x.0 == "S").unwrap();
    let id: u64 = campione.1.parse().unwrap();
    let entity = EntityRef::Soggetto(anpr_domain::ids::IdAnprSoggetto::new(id).unwrap());
    let sezioni = presub
        .record(entity, None)
        .await
        .unwrap()
        .expect("record exists");
    let scheda = SchedaSoggetto::from_sections(sezioni.iter()).unwrap();
    let cf = scheda
        .codice_fiscale
        .as_ref()
        .unwrap()
        .cod_fiscale
        .as_str()
        .to_owned();
    let trovati = presub
        .find_subjects(&SubjectQuery {
            codice_fiscale: Some(cf),
            limit: 10,
            ..SubjectQuery::default()
        })
        .await
        .unwrap();
    assert!(trovati.iter().any(|s| s.id.get() == id));
    assert!(
        scheda.legame.is_some(),
        "a loaded subject belongs to its family"
    );
    // Family records are built at the end of the stream from compact state: each lives
    // at its head's residence, section for section.
    let mut con_capo = 0;
    for riga in caricati.iter().filter(|x| x.0 == "S").take(200) {
        let s = presub
            .record(EntityRef::Soggetto(riga.1.parse().unwrap()), None)
            .await
            .unwrap()
            .unwrap();
        let s = SchedaSoggetto::from_sections(s.iter()).unwrap();
        let legame = s.legame.expect("every loaded subject has its family");
        let f = presub
            .record(
                EntityRef::Famiglia(legame.id_famiglia_convivenza_anpr),
                None,
            )
            .await
            .unwrap()
            .expect("the family record exists");
        let f = SchedaFamiglia::from_sections(f.iter()).unwrap();
        if f.intestatario.as_ref().map(|i| i.id_anpr.get()) == riga.1.parse().ok() {
            assert_eq!(
                f.residenza, s.residenza,
                "a family lives at its head's residence"
            );
            assert!(f.residenza.is_some());
            con_capo += 1;
        }
    }
    assert!(con_capo > 0, "some heads among the first subjects");
    let con_anomalie = righe_anomalie_con_id(esiti.path());
    if let Some(id_w) = con_anomalie.first() {
        let s = presub
            .record(EntityRef::Soggetto(id_w.parse().unwrap()), None)
            .await
            .unwrap()
            .unwrap();
        let scheda = SchedaSoggetto::from_sections(s.iter()).unwrap();
        assert!(
            !scheda.anomalie_subentro.unwrap_or_default().is_empty(),
            "anomalies stay attached"
        );
    }
    let n_presub = soggetti_del_comune(&presub).await;
    assert_eq!(n_presub as u64, e.soggetti_caricati.min(1000));

    // A repeated presubentro resets the rehearsal data instead of doubling it.
    let esiti2 = tempfile::tempdir().unwrap();
    let e2 = esegui(
        &presub,
        Some(Arc::clone(&ae)),
        Ambiente::Presubentro,
        &r.file,
        esiti2.path(),
    )
    .await;
    assert_eq!(e2.stato, StatoSubentro::Elaborato);
    assert_eq!(contate(&e2), attese(&r));
    assert_eq!(soggetti_del_comune(&presub).await, n_presub);
    assert!(
        presub.record(entity, None).await.unwrap().is_none(),
        "old rehearsal records are gone"
    );

    // Production: the same files load; a second production run is refused (EN034).
    let esiti3 = tempfile::tempdir().unwrap();
    let e3 = esegui(
        &prod,
        Some(Arc::clone(&ae)),
        Ambiente::Produzione,
        &r.file,
        esiti3.path(),
    )
    .await;
    assert_eq!(e3.stato, StatoSubentro::Elaborato);
    assert_eq!(contate(&e3), attese(&r));
    let e4 = esegui(
        &prod,
        Some(ae),
        Ambiente::Produzione,
        &r.file,
        esiti3.path(),
    )
    .await;
    assert_eq!(e4.stato, StatoSubentro::Scartato);
    assert_eq!(e4.bloccanti[0].codice, "EN034");
    let files = prod.file_subentro(&COMUNE.parse().unwrap()).await.unwrap();
    assert_eq!(
        files.iter().filter(|f| f.stato == "ELABORATO").count(),
        2,
        "APR and AIRE once"
    );
}

fn righe_anomalie_con_id(dir: &Path) -> Vec<String> {
    let p = dir.join("anomalie_agenzia_entrate.csv");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[1] == "W" && !c[6].is_empty()).then(|| c[6].to_owned())
        })
        .collect()
}

async fn totali_errati(store: Arc<dyn Store>) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera_in(gen.path(), 400, 0.0, true);
    let esiti = tempfile::tempdir().unwrap();
    let e = esegui(&store, None, Ambiente::Produzione, &r.file, esiti.path()).await;
    assert_eq!(e.stato, StatoSubentro::InseritoKo);
    assert_eq!(contate(&e), attese(&r), "exactly EN011");
    assert_eq!(soggetti_del_comune(&store).await, 0, "nothing loaded");
    assert_eq!(righe_esiti(esiti.path()).len(), 0);
    let posta = store.outbox_pending(10).await.unwrap();
    let mail = posta
        .iter()
        .find(|m| m.message.tipo == "mail")
        .expect("a mail in the outbox");
    let corpo = mail.message.payload["corpo"].as_str().unwrap();
    assert!(
        corpo.contains("esito negativo") && corpo.contains("EN011"),
        "{corpo}"
    );
    let files = store.file_subentro(&COMUNE.parse().unwrap()).await.unwrap();
    assert!(files.iter().all(|f| f.stato == "INSERITO KO"));
    // Nothing was onboarded, so a corrected supply is accepted in production.
    let ok = tempfile::tempdir().unwrap();
    let r2 = genera_in(ok.path(), 400, 0.0, false);
    let e2 = esegui(&store, None, Ambiente::Produzione, &r2.file, esiti.path()).await;
    assert_eq!(e2.stato, StatoSubentro::Elaborato, "{:?}", e2.bloccanti);
}

async fn xsd_violato(store: Arc<dyn Store>) {
    let gen = tempfile::tempdir().unwrap();
    let r = genera_in(gen.path(), 300, 0.0, false);
    let apr = &r.file[0];
    let testo = std::fs::read_to_string(apr).unwrap();
    // The 5th subject gets an element the schema does not allow.
    let mut n = 0;
    let rotto: String = testo
        .split_inclusive("<soggetto>")
        .map(|pezzo| {
            n += 1;
            if n == 6 {
                pezzo.replacen("<statoCivile>", "<pippo>1</pippo><statoCivile>", 1)
            } else {
                pezzo.to_owned()
            }
        })
        .collect();
    std::fs::write(apr, rotto).unwrap();
    let esiti = tempfile::tempdir().unwrap();
    let e = esegui(&store, None, Ambiente::Produzione, &r.file, esiti.path()).await;
    assert_eq!(e.stato, StatoSubentro::Scartato);
    let a = &e.bloccanti[0];
    assert_eq!(a.codice, "EN009");
    assert_eq!(
        a.campo.as_deref(),
        Some("/subentro/generalitaSoggetti/soggetto[5]/pippo")
    );
    assert_eq!(soggetti_del_comune(&store).await, 0);
    // A DTD is refused before anything is read.
    let dtd = tempfile::tempdir().unwrap();
    let r = genera_in(dtd.path(), 50, 0.0, false);
    let testo = std::fs::read_to_string(&r.file[0]).unwrap();
    std::fs::write(
        &r.file[0],
        testo.replacen(
            "<sub:subentro",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><sub:subentro",
            1,
        ),
    )
    .unwrap();
    let e = esegui(&store, None, Ambiente::Produzione, &r.file, esiti.path()).await;
    assert_eq!(e.stato, StatoSubentro::Scartato);
    assert_eq!(e.bloccanti[0].codice, "EN009");
    assert!(e.bloccanti[0].testo.contains("DTD"));
}

fn sqlite(dir: &Path, nome: &str) -> Arc<dyn Store> {
    Arc::new(anpr_store_sqlite::SqliteStore::open(&dir.join(nome)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_generated_municipality_onboards_with_exact_anomalies() {
    let dir = tempfile::tempdir().unwrap();
    scenario_completo(
        sqlite(dir.path(), "presubentro.sqlite3"),
        sqlite(dir.path(), "produzione.sqlite3"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wrong_totals_end_inserito_ko_with_nothing_loaded() {
    let dir = tempfile::tempdir().unwrap();
    totali_errati(sqlite(dir.path(), "p.sqlite3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_xsd_violation_is_refused_with_the_element_path() {
    let dir = tempfile::tempdir().unwrap();
    xsd_violato(sqlite(dir.path(), "p.sqlite3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_generated_municipality_onboards_with_exact_anomalies() {
    let Some((presub, _g1)) = anpr_store_postgres::testing::fresh().await else {
        return;
    };
    let Some((prod, _g2)) = anpr_store_postgres::testing::fresh().await else {
        return;
    };
    scenario_completo(Arc::new(presub), Arc::new(prod)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wrong_totals_end_inserito_ko_with_nothing_loaded() {
    let Some((store, _g)) = anpr_store_postgres::testing::fresh().await else {
        return;
    };
    totali_errati(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_xsd_violation_is_refused_with_the_element_path() {
    let Some((store, _g)) = anpr_store_postgres::testing::fresh().await else {
        return;
    };
    xsd_violato(Arc::new(store)).await;
}

/// `(type, name, table, sql)` of every index and table of a SQLite file, sorted.
fn schema_sqlite(path: &Path) -> Vec<(String, String, String, Option<String>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master
             WHERE type IN ('index', 'table') AND name NOT LIKE 'sqlite_stat%' ORDER BY type, name",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The detail lines of `EXPLAIN QUERY PLAN`, on a connection set up as the store's are
/// (query planner stability guarantee on).
fn piano(c: &rusqlite::Connection, sql: &str) -> String {
    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let righe: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    righe.join(" | ")
}

/// A load into an empty database drops the secondary indexes of the projections and of
/// `versioni` and builds them again at its end: afterwards the schema is exactly the
/// migrated one, each rebuilt index has its planner statistics, and the searches use
/// the indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_load_keeps_the_projection_indexes_and_their_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let r = genera_in(&dir.path().join("gen"), 400, 0.0, false);
    let caricato = dir.path().join("produzione.sqlite3");
    let store = sqlite(dir.path(), "produzione.sqlite3");
    let e = esegui(
        &store,
        Some(ae(&r)),
        Ambiente::Produzione,
        &r.file,
        &dir.path().join("esiti"),
    )
    .await;
    assert_eq!(e.stato, StatoSubentro::Elaborato, "{:?}", e.bloccanti);
    drop(store);
    let vuoto = dir.path().join("vuoto.sqlite3");
    drop(sqlite(dir.path(), "vuoto.sqlite3"));

    let dopo = schema_sqlite(&caricato);
    assert_eq!(dopo, schema_sqlite(&vuoto));
    for indice in [
        "indice_soggetti_cf",
        "indice_soggetti_nome",
        "indice_famiglie_comune",
        "versioni_timeline",
        "versioni_padre",
    ] {
        assert!(
            dopo.iter().any(|(t, n, _, _)| t == "index" && n == indice),
            "{indice} missing after the load"
        );
    }

    let c = rusqlite::Connection::open(&caricato).unwrap();
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .unwrap();
    // Every index of the rebuilt tables has its statistics (the rows of a loaded table).
    let senza_statistiche: Vec<String> = c
        .prepare(
            "SELECT name FROM sqlite_master
             WHERE type = 'index' AND sql IS NOT NULL
               AND tbl_name IN ('indice_soggetti', 'indice_famiglie', 'versioni')
               AND name NOT IN (SELECT idx FROM sqlite_stat1 WHERE idx IS NOT NULL)",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(senza_statistiche.is_empty(), "{senza_statistiche:?}");
    // The row count an index's statistics give (the first number of `stat`).
    let righe_stimate = |indice: &str| -> i64 {
        c.query_row(
            "SELECT CAST(substr(stat, 1, instr(stat, ' ') - 1) AS INTEGER) FROM sqlite_stat1
             WHERE idx = ?1",
            [indice],
            |r| r.get(0),
        )
        .unwrap()
    };
    let soggetti = righe_stimate("indice_soggetti_cf");
    // `analysis_limit` makes ANALYZE estimate on large tables; here it counts.
    assert!(
        soggetti > 0 && u64::try_from(soggetti).unwrap() <= r.soggetti,
        "{soggetti}"
    );

    // The index kept up to date during the load (not rebuilt) is analysed again too:
    // its statistics describe the loaded table, not the empty one.
    let stima_timeline = righe_stimate("versioni_timeline");
    let versioni: i64 = c
        .query_row("SELECT count(*) FROM versioni", [], |r| r.get(0))
        .unwrap();
    assert!(
        stima_timeline > versioni / 2 && stima_timeline <= versioni,
        "{stima_timeline} of {versioni}"
    );
    // The load ran without foreign-key checks: the keys hold all the same, and the file
    // is sound.
    let orfane: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(orfane, 0);
    let integrita: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrita, "ok");

    // The subject search by tax code, as `find_subjects` writes it.
    let per_cf = piano(
        &c,
        "SELECT id FROM indice_soggetti WHERE 1 = 1 AND codice_fiscale = 'RSSMRA80A01H501U' ORDER BY id LIMIT 10",
    );
    assert!(
        per_cf.starts_with("SEARCH indice_soggetti USING")
            && per_cf.contains("INDEX indice_soggetti_cf (codice_fiscale=?)"),
        "{per_cf}"
    );
    let per_genitore = piano(
        &c,
        "SELECT entity FROM versioni WHERE section = 'genitori' AND valido_al IS NULL
           AND json_extract(value, '$.padre.idAnpr') = '1'",
    );
    assert!(
        per_genitore.contains("USING INDEX versioni_padre"),
        "{per_genitore}"
    );
}

/// Runs SQL as the test server's superuser.
async fn come_superuser(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = conn.await;
}

/// The PostgreSQL load turns the per-row foreign-key triggers off when the role may set
/// `session_replication_role`, and runs with them otherwise: an ordinary role (not a
/// superuser, no grant on the parameter) onboards the same municipality, with the same
/// outcome, and its foreign keys hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_role_that_may_not_skip_the_key_checks_still_onboards() {
    let Some((store, _guard)) = anpr_store_postgres::testing::fresh().await else {
        return;
    };
    let url = anpr_store_postgres::testing::test_url().unwrap();
    let schema = store.schema().to_owned();
    drop(store);
    let ruolo = format!("anpr_t_ruolo_{:016x}", rand::random::<u64>());
    let config: tokio_postgres::Config = url.parse().unwrap();
    let db = config.get_dbname().unwrap().to_owned();
    come_superuser(
        &url,
        &format!(
            "CREATE ROLE {ruolo} LOGIN NOSUPERUSER;
             GRANT CONNECT, CREATE ON DATABASE \"{db}\" TO {ruolo};
             GRANT USAGE, CREATE ON SCHEMA {schema} TO {ruolo};
             GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {ruolo};
             GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {ruolo};"
        ),
    )
    .await;
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let url_ruolo = format!("host={host} port={port} dbname={db} user={ruolo}");
    // The role really may not turn the checks off.
    let (c, conn) = tokio_postgres::connect(&url_ruolo, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    let rifiuto = c
        .batch_execute("SET session_replication_role = replica")
        .await
        .expect_err("an ordinary role may not set session_replication_role");
    assert!(
        rifiuto.to_string().contains("permission denied")
            || format!("{rifiuto:?}").contains("42501"),
        "{rifiuto:?}"
    );
    drop(c);
    let _ = conn_task.await;

    let store: Arc<dyn Store> = Arc::new(
        anpr_store_postgres::PostgresStore::connect(&url_ruolo, &schema)
            .await
            .unwrap(),
    );
    let gen = tempfile::tempdir().unwrap();
    let r = genera_in(gen.path(), 300, 0.0, false);
    let esiti = tempfile::tempdir().unwrap();
    let e = esegui(
        &store,
        Some(ae(&r)),
        Ambiente::Produzione,
        &r.file,
        esiti.path(),
    )
    .await;
    assert_eq!(e.stato, StatoSubentro::Elaborato, "{:?}", e.bloccanti);
    assert_eq!(contate(&e), attese(&r));
    assert!(e.soggetti_caricati > 250, "{}", e.soggetti_caricati);
    assert_eq!(
        righe_esiti(esiti.path()).len() as u64,
        e.soggetti_letti + e.famiglie_caricate,
        "one outcome row per record"
    );
    drop(store);
    // Every version row references an existing operation.
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    let orfane: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.versioni v
                 WHERE NOT EXISTS (SELECT 1 FROM {schema}.operazioni o WHERE o.id = v.creata_da)"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orfane, 0);
    drop(c);
    let _ = conn_task.await;
    come_superuser(
        &url,
        &format!("DROP OWNED BY {ruolo} CASCADE; REVOKE ALL ON DATABASE \"{db}\" FROM {ruolo}; DROP ROLE {ruolo};"),
    )
    .await;
}
