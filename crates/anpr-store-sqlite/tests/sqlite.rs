//! Tests specific to the SQLite backend: durability across reopening, migrations,
//! group commit under concurrency, order of application, corrupt data, environments.

use std::path::Path;
use std::sync::Arc;

use anpr_domain::audit::verifica_catena;
use anpr_domain::caller::Ambiente;
use anpr_domain::ids::{IdAnprSoggetto, IdOperazioneAnpr};
use anpr_domain::operazione::StatoOperazione;
use anpr_store::conformance::operation;
use anpr_store::conformance::voce_lettura;
use anpr_store::{
    EntityRef, IndexWrite, NewOperation, SectionWrite, Sequence, Store, StoreError, SubjectIndex,
    SubjectQuery,
};
use anpr_store_sqlite::SqliteStore;
use chrono::NaiveDate;
use serde_json::json;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.sqlite3")).unwrap();
    (store, dir)
}

async fn op_id(store: &impl Store) -> IdOperazioneAnpr {
    IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap()
}

async fn subject_id(store: &impl Store) -> IdAnprSoggetto {
    IdAnprSoggetto::new(store.next_id(Sequence::Soggetto).await.unwrap()).unwrap()
}

fn index(s: IdAnprSoggetto, cognome: &str) -> SubjectIndex {
    SubjectIndex {
        id: s,
        comune: "058091".parse().unwrap(),
        posizione: "R".into(),
        codice_fiscale: Some(format!("CF{:014}", s.get())),
        cognome_key: Some(anpr_domain::text::fold_key(cognome)),
        nome_key: Some("MARIO".into()),
        sesso: Some("M".into()),
        data_nascita: Some(day(1980, 1, 1)),
        id_comunale: Some(format!("C-{}", s.get())),
        id_famiglia: None,
        chiave_indirizzo: None,
    }
}

/// A registration: one section, one index row, one audit entry.
fn registration(
    id: IdOperazioneAnpr,
    s: IdAnprSoggetto,
    id_comune: Option<u64>,
    from: NaiveDate,
) -> NewOperation {
    let mut op = operation(id, "1002", "058091", id_comune, from);
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "generalita".into(),
        value: Some(json!({"cognome": "Rossi", "nome": "Mario"})),
        key: None,
    });
    op.indexes.push(IndexWrite::Soggetto(index(s, "Rossi")));
    op
}

fn residence(id: IdOperazioneAnpr, s: IdAnprSoggetto, from: NaiveDate, via: &str) -> NewOperation {
    let mut op = operation(id, "5005", "058091", None, from);
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "residenza".into(),
        value: Some(json!({ "via": via })),
        key: None,
    });
    op
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_reopening_and_ids_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    let mut seen = Vec::new();
    let s;
    {
        let store = SqliteStore::open(&path).unwrap();
        s = subject_id(&store).await;
        let id = op_id(&store).await;
        store
            .apply(registration(id, s, Some(1), day(2000, 1, 1)))
            .await
            .unwrap();
        for _ in 0..5 {
            seen.push(store.next_id(Sequence::Operazione).await.unwrap());
        }
        seen.push(id.get());
    }
    let store = SqliteStore::open(&path).unwrap();
    let rec = store
        .record(EntityRef::Soggetto(s), None)
        .await
        .unwrap()
        .expect("record survives");
    assert_eq!(
        rec.get("generalita"),
        Some(&json!({"cognome": "Rossi", "nome": "Mario"}))
    );
    let page = store.audit_page(0, 100).await.unwrap();
    assert_eq!(
        verifica_catena(&page, store.audit_head().await.unwrap().as_ref()),
        Ok(1)
    );
    // The last idOperazioneComune survives too.
    let id = op_id(&store).await;
    let again = registration(id, subject_id(&store).await, Some(1), day(2000, 1, 1));
    assert!(matches!(
        store.apply(again).await,
        Err(StoreError::DuplicateIdOperazioneComune { .. })
    ));
    let max_before = *seen.iter().max().unwrap();
    for _ in 0..5 {
        let next = store.next_id(Sequence::Operazione).await.unwrap();
        assert!(
            next > max_before,
            "id {next} handed out again after reopening (max before {max_before})"
        );
    }
    assert!(store.next_id(Sequence::Soggetto).await.unwrap() > s.get());
}

#[tokio::test]
async fn migrations_are_idempotent_and_the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    for _ in 0..3 {
        drop(SqliteStore::open(&path).unwrap());
    }
    let conn = raw(&path);
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        (1..=SqliteStore::schema_version()).collect::<Vec<_>>()
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// Version 4 (security directory) came after 5: a file migrated to 1, 2, 3, 5 by an
/// earlier build still gets it, with the data it has kept.
#[tokio::test]
async fn a_file_without_migration_4_gets_it_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = raw(&path);
        let tabelle: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'sicurezza_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(tabelle.len() >= 10, "{tabelle:?}");
        for t in tabelle {
            conn.execute_batch(&format!("DROP TABLE {t}")).unwrap();
        }
        conn.execute("DELETE FROM schema_migrations WHERE version = 4", [])
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.sicurezza_versione().await.unwrap(), 0);
    drop(store);
    let versions: Vec<i64> = raw(&path)
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        (1..=SqliteStore::schema_version()).collect::<Vec<_>>()
    );
}

/// A file written by the first release (schema 1) is migrated in place: the tables
/// rebuilt to admit proceedings keep every row, and the store works on them.
#[tokio::test]
async fn a_version_1_file_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_initial.sql"))
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'initial', '2024-01-01T00:00:00.000000Z');
             INSERT INTO operazioni (id, ordine, codice_servizio, comune, utente, canale, decorrenza, registrata_il,
                                     stato, richiesta, risposta)
             VALUES (7, 1, '1002', '058091', 'U', 'rest', '2020-01-01', '2024-01-01T00:00:00.000000Z', 'eseguita', '{}', '{}');
             INSERT INTO operazioni_entita (kind, entity, ordine, op) VALUES ('S', 42, 1, 7);
             INSERT INTO versioni (kind, entity, section, valido_dal, creata_da, value)
             VALUES ('S', 42, 'generalita', '2020-01-01', 7, '{\"cognome\":\"Rossi\"}');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let s = EntityRef::Soggetto(IdAnprSoggetto::new(42).unwrap());
    assert_eq!(
        store
            .record(s, None)
            .await
            .unwrap()
            .unwrap()
            .get("generalita"),
        Some(&json!({"cognome": "Rossi"}))
    );
    let old = store
        .operation(IdOperazioneAnpr::new(7).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.entities, vec![s]);
    // The rebuilt tables admit the new kind of record.
    let p = EntityRef::Procedimento(store.next_id(Sequence::Procedimento).await.unwrap());
    let id = op_id(&store).await;
    let mut op = operation(id, "1014", "058091", None, day(2021, 1, 1));
    op.writes.push(SectionWrite {
        entity: p,
        section: "stato".into(),
        value: Some(json!({"statoProcedimento": "1"})),
        key: None,
    });
    store.apply(op).await.unwrap();
    assert!(store.record(p, None).await.unwrap().is_some());
    let conn = raw(&path);
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        (1..=SqliteStore::schema_version()).collect::<Vec<_>>()
    );
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    drop(SqliteStore::open(&path).unwrap());
    raw(&path)
        .execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')", [])
        .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Backend(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_applies_are_group_committed_and_all_succeed() {
    let (store, _dir) = fresh();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = subject_id(&*store).await;
            let id = op_id(&*store).await;
            store
                .apply(registration(id, s, None, day(2000, 1, 1)))
                .await
                .unwrap();
            s
        }));
    }
    let mut subjects = Vec::new();
    for t in tasks {
        subjects.push(t.await.unwrap());
    }
    let page = store.audit_page(0, 1000).await.unwrap();
    assert_eq!(
        verifica_catena(&page, store.audit_head().await.unwrap().as_ref()),
        Ok(500)
    );
    // 500 applies plus the id reservations, in far fewer transactions, each made
    // durable by a sync of the WAL (one sync may cover several groups).
    let stats = store.writer_stats();
    assert!(stats.requests >= 500, "{stats:?}");
    assert!(
        stats.groups < stats.requests / 2,
        "no group commit happened: {stats:?}"
    );
    assert!(
        stats.syncs >= 1 && stats.syncs <= stats.groups,
        "every acknowledged group is synced, at most once per group: {stats:?}"
    );
    let found = store
        .find_subjects(&SubjectQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 500);
    for s in subjects {
        assert!(store
            .record(EntityRef::Soggetto(s), None)
            .await
            .unwrap()
            .is_some());
    }
}

/// Audit batches (a search's entries), single entries and operations (which chain their
/// own entry) interleave in the writer's groups: every entry a caller was given must be
/// the one stored, each batch consecutive, the whole chain intact — also after
/// reopening, and the chain goes on from the stored head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_and_operations_interleaved_in_groups_keep_one_chain() {
    let (store, dir) = fresh();
    let path = store.path().to_owned();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..300u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => store
                    .append_audit_batch(vec![
                        voce_lettura(format!("criterio:{i}")),
                        voce_lettura(format!("soggetto:{i}")),
                    ])
                    .await
                    .unwrap(),
                1 => vec![store
                    .append_audit(voce_lettura(format!("soggetto:{i}")))
                    .await
                    .unwrap()],
                _ => {
                    let s = subject_id(&*store).await;
                    let id = op_id(&*store).await;
                    vec![store
                        .apply(registration(id, s, None, day(2000, 1, 1)))
                        .await
                        .unwrap()]
                }
            }
        }));
    }
    let mut given = Vec::new();
    for t in tasks {
        let entries = t.await.unwrap();
        let seqs: Vec<u64> = entries.iter().map(|v| v.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        given.extend(entries);
    }
    given.sort_by_key(|v| v.seq);
    let expected = 100 * 2 + 100 + 100;
    let page = store.audit_page(0, 1000).await.unwrap();
    assert_eq!(page, given, "the entries returned are the entries stored");
    assert_eq!(
        verifica_catena(&page, store.audit_head().await.unwrap().as_ref()),
        Ok(expected)
    );
    let stats = store.writer_stats();
    assert!(
        stats.groups < stats.requests / 2,
        "no group commit happened: {stats:?}"
    );
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.as_ref().map(|h| h.seq), Some(expected));
    let page = store.audit_page(0, 1000).await.unwrap();
    assert_eq!(verifica_catena(&page, head.as_ref()), Ok(expected));
    // And the chain goes on from the stored head.
    let next = store
        .append_audit(voce_lettura("dopo".into()))
        .await
        .unwrap();
    assert_eq!(next.seq, expected + 1);
    assert_eq!(next.hash_precedente, head.unwrap().hash);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_fails_alone_among_concurrent_ones() {
    let (store, _dir) = fresh();
    let store = Arc::new(store);
    // A subject registered in 2010: a change dated 2005 fails inside the writer.
    let late = subject_id(&*store).await;
    store
        .apply(registration(
            op_id(&*store).await,
            late,
            None,
            day(2010, 1, 1),
        ))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = op_id(&*store).await;
            if i % 10 == 5 {
                let mut bad = registration(id, subject_id(&*store).await, None, day(2005, 1, 1));
                bad.writes.push(SectionWrite {
                    entity: EntityRef::Soggetto(late),
                    section: "generalita".into(),
                    value: Some(json!({"cognome": "Bianchi"})),
                    key: None,
                });
                (id, false, store.apply(bad).await)
            } else {
                let s = subject_id(&*store).await;
                (
                    id,
                    true,
                    store
                        .apply(registration(id, s, None, day(2000, 1, 1)))
                        .await,
                )
            }
        }));
    }
    let mut good = 0;
    for t in tasks {
        let (id, should_succeed, outcome) = t.await.unwrap();
        if should_succeed {
            outcome.unwrap();
            assert!(store.operation(id).await.unwrap().is_some());
            good += 1;
        } else {
            assert!(
                matches!(outcome, Err(StoreError::DecorrenzaBeforeCurrent { .. })),
                "{outcome:?}"
            );
            assert!(
                store.operation(id).await.unwrap().is_none(),
                "failed operation {id} left a row"
            );
        }
    }
    assert_eq!(good, 270);
    let page = store.audit_page(0, 1000).await.unwrap();
    assert_eq!(
        verifica_catena(&page, store.audit_head().await.unwrap().as_ref()),
        Ok(271)
    );
    let found = store
        .find_subjects(&SubjectQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 271, "the failed registrations left index rows");
    let rec = store
        .record(EntityRef::Soggetto(late), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.get("generalita"),
        Some(&json!({"cognome": "Rossi", "nome": "Mario"}))
    );
}

/// Commit-order annulment itself is in the shared suite; this checks what the suite
/// leaves to the backend: annulments are in the record's log and cannot be annulled.
#[tokio::test]
async fn annulments_are_logged_and_cannot_themselves_be_annulled() {
    let (store, _dir) = fresh();
    let s = subject_id(&store).await;
    store
        .apply(registration(op_id(&store).await, s, None, day(2000, 1, 1)))
        .await
        .unwrap();
    let moved = op_id(&store).await;
    store
        .apply(residence(moved, s, day(2010, 1, 1), "Po 2"))
        .await
        .unwrap();
    let ann = op_id(&store).await;
    store
        .annul(
            moved,
            operation(ann, "5012", "058091", None, day(2012, 1, 1)),
        )
        .await
        .unwrap();
    let log = store
        .operations(&anpr_store::OperationQuery {
            entity: Some(EntityRef::Soggetto(s)),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.iter().filter(|o| o.annulla == Some(moved)).count(), 1);
    assert_eq!(
        log.iter()
            .filter(|o| o.stato == StatoOperazione::Annullata)
            .map(|o| o.id)
            .collect::<Vec<_>>(),
        vec![moved]
    );
    let ann2 = op_id(&store).await;
    assert!(matches!(
        store
            .annul(
                ann,
                operation(ann2, "5012", "058091", None, day(2012, 1, 1))
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn an_index_change_may_take_effect_before_the_last_index_change() {
    let (store, _dir) = fresh();
    let s = subject_id(&store).await;
    store
        .apply(registration(op_id(&store).await, s, None, day(2010, 1, 1)))
        .await
        .unwrap();
    // A datum never changed since 2000 is set from 2005; the index row changes with it.
    let id = op_id(&store).await;
    let mut op = operation(id, "5008", "058091", None, day(2005, 1, 1));
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "altriDati".into(),
        value: Some(json!({"titoloStudio": "3"})),
        key: None,
    });
    op.indexes.push(IndexWrite::Soggetto(index(s, "Russo")));
    store.apply(op).await.unwrap();
    let q = SubjectQuery {
        id: Some(s),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store.find_subjects(&q).await.unwrap()[0]
            .cognome_key
            .as_deref(),
        Some("RUSSO")
    );
    let ann = op_id(&store).await;
    store
        .annul(id, operation(ann, "5012", "058091", None, day(2012, 1, 1)))
        .await
        .unwrap();
    assert_eq!(
        store.find_subjects(&q).await.unwrap()[0]
            .cognome_key
            .as_deref(),
        Some("ROSSI")
    );
}

#[tokio::test]
async fn subject_search_combines_every_criterion() {
    let (store, _dir) = fresh();
    let a = subject_id(&store).await;
    let b = subject_id(&store).await;
    store
        .apply(registration(op_id(&store).await, a, None, day(2000, 1, 1)))
        .await
        .unwrap();
    let mut op = registration(op_id(&store).await, b, None, day(2000, 1, 1));
    let mut row = index(b, "Rossini");
    row.nome_key = Some("MARIA".into());
    row.sesso = Some("F".into());
    op.indexes = vec![IndexWrite::Soggetto(row)];
    store.apply(op).await.unwrap();
    let find = |q: SubjectQuery| {
        let store = &store;
        async move {
            store
                .find_subjects(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    let base = SubjectQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        find(SubjectQuery {
            cognome_prefix: Some("ROSS".into()),
            ..base.clone()
        })
        .await,
        vec![a, b]
    );
    assert_eq!(
        find(SubjectQuery {
            cognome_prefix: Some("ROSS".into()),
            nome_prefix: Some("MARIA".into()),
            ..base.clone()
        })
        .await,
        vec![b]
    );
    assert_eq!(
        find(SubjectQuery {
            sesso: Some("F".into()),
            id: Some(a),
            ..base.clone()
        })
        .await,
        vec![]
    );
    assert_eq!(
        find(SubjectQuery {
            comune: Some("058091".parse().unwrap()),
            id_comunale: Some(format!("C-{}", a.get())),
            codice_fiscale: Some(format!("CF{:014}", a.get())),
            data_nascita: Some(day(1980, 1, 1)),
            posizione: Some("R".into()),
            ..base.clone()
        })
        .await,
        vec![a]
    );
    assert_eq!(
        find(SubjectQuery {
            cognome_prefix: Some("ROSS".into()),
            limit: 1,
            ..base.clone()
        })
        .await,
        vec![a]
    );
    assert_eq!(find(SubjectQuery { limit: 0, ..base }).await, vec![]);
}

#[tokio::test]
async fn requests_the_store_cannot_honour_are_invalid() {
    let (store, _dir) = fresh();
    let s = subject_id(&store).await;
    let mut op = registration(op_id(&store).await, s, None, day(2000, 1, 1));
    op.writes[0].section = "_indice".into();
    assert!(matches!(store.apply(op).await, Err(StoreError::Invalid(_))));
    let mut op = registration(op_id(&store).await, s, Some(1), day(2000, 1, 1));
    op.comune = None;
    assert!(matches!(store.apply(op).await, Err(StoreError::Invalid(_))));
    let reg = op_id(&store).await;
    store
        .apply(registration(reg, s, None, day(2000, 1, 1)))
        .await
        .unwrap();
    let mut ann = operation(op_id(&store).await, "5012", "058091", None, day(2001, 1, 1));
    ann.stato = StatoOperazione::Rifiutata;
    assert!(matches!(
        store.annul(reg, ann).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.outbox_mark(12345, true).await,
        Err(StoreError::Invalid(_))
    ));
    // Nothing of the above reached the audit log.
    assert_eq!(store.audit_head().await.unwrap().map(|h| h.seq), Some(1));
}

#[tokio::test]
async fn corrupt_stored_data_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    let s;
    {
        let store = SqliteStore::open(&path).unwrap();
        s = subject_id(&store).await;
        store
            .apply(registration(op_id(&store).await, s, None, day(2000, 1, 1)))
            .await
            .unwrap();
    }
    let conn = raw(&path);
    conn.execute(
        "UPDATE versioni SET value = '{not json' WHERE section = 'generalita'",
        [],
    )
    .unwrap();
    conn.execute("UPDATE operazioni SET decorrenza = 'yesterday'", [])
        .unwrap();
    conn.execute("UPDATE audit SET istante = 42", []).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let e = EntityRef::Soggetto(s);
    assert!(matches!(
        store.record(e, None).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.history(e, "generalita").await,
        Err(StoreError::Corrupt(_))
    ));
    let all = anpr_store::OperationQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(
        store.operations(&all).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.audit_page(0, 10).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn environments_are_separate_files() {
    let dir = tempfile::tempdir().unwrap();
    let test = SqliteStore::open_in_dir(&dir.path().join("data"), Ambiente::Test).unwrap();
    let prod = SqliteStore::open_in_dir(&dir.path().join("data"), Ambiente::Produzione).unwrap();
    assert_eq!(test.path(), dir.path().join("data").join("test.sqlite3"));
    assert_eq!(
        prod.path(),
        dir.path().join("data").join("produzione.sqlite3")
    );
    let s = subject_id(&test).await;
    test.apply(registration(op_id(&test).await, s, None, day(2000, 1, 1)))
        .await
        .unwrap();
    assert!(test.audit_head().await.unwrap().is_some());
    assert!(prod.audit_head().await.unwrap().is_none());
    assert!(prod
        .record(EntityRef::Soggetto(s), None)
        .await
        .unwrap()
        .is_none());
}

/// The WAL is copied into the database file by the background checkpointer, not by the
/// writer at commit: after a few hundred small commits — far below the 1,000 WAL pages at
/// which SQLite's automatic checkpoint would run — the database file itself changes
/// within a second or so, while nothing else writes it in WAL mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_checkpointer_copies_the_wal_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    // Let a first round settle whatever the migrations left in the WAL.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let prima = std::fs::read(&path).unwrap();
    for _ in 0..300 {
        store.baseline_raw_insert(1).await.unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("t.sqlite3-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 1000 * 4096,
        "the test must stay below the automatic checkpoint: WAL {wal} bytes"
    );
    let mut cambiato = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if std::fs::read(&path).unwrap() != prima {
            cambiato = true;
            break;
        }
    }
    assert!(
        cambiato,
        "the database file was not checkpointed within 5 s"
    );
    drop(store);
}

/// The writer commits without syncing and its syncer thread syncs the WAL before any
/// reply. When that sync cannot be done (here: the WAL file was removed behind the
/// store's back, so it can no longer be opened), durability is unknown: the write
/// waiting for it gets an error, and every later write is refused without being run;
/// reads still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wal_sync_fails_the_write_and_refuses_the_next_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    let first = store
        .append_audit(voce_lettura("prima".into()))
        .await
        .unwrap();
    let synced = store.writer_stats().syncs;
    assert!(synced >= 1, "an acknowledged write was synced");
    // Reopened by the syncer at its next sync (no links left), which then fails.
    std::fs::remove_file(dir.path().join("t.sqlite3-wal")).unwrap();
    let err = store
        .append_audit(voce_lettura("dopo".into()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("sync of the SQLite WAL failed"),
        "{err}"
    );
    // Nor can durability be confirmed any more.
    let err = store.conferma_durevole().await.unwrap_err();
    assert!(err.to_string().contains("writes are refused"), "{err}");
    let requests = store.writer_stats().requests;
    let err = store.baseline_raw_insert(1).await.unwrap_err();
    assert!(err.to_string().contains("writes are refused"), "{err}");
    let stats = store.writer_stats();
    assert_eq!(
        stats.syncs,
        synced + 1,
        "nothing more was synced: {stats:?}"
    );
    assert_eq!(stats.requests, requests + 1, "{stats:?}");
    // What was acknowledged before is still there for readers.
    let page = store.audit_page(first.seq - 1, 10).await.unwrap();
    assert_eq!(page.first().map(|v| v.seq), Some(first.seq));
    drop(store);
}

/// The durability barrier goes through the writer, writes nothing, and answers after
/// a sync of the WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durability_barrier_waits_for_a_sync_and_writes_nothing() {
    let (store, _dir) = fresh();
    store
        .append_audit(voce_lettura("prima".into()))
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap();
    let before = store.writer_stats();
    store.conferma_durevole().await.unwrap();
    let after = store.writer_stats();
    assert_eq!(after.requests, before.requests + 1, "{after:?}");
    assert_eq!(after.syncs, before.syncs + 1, "{after:?}");
    assert_eq!(
        store.audit_head().await.unwrap(),
        head,
        "nothing was written"
    );
}

/// Migration 8 rewrote the CHECK constraints of the hot tables without IN lists: the
/// stored definitions no longer contain one, an INSERT no longer builds an ephemeral
/// table, and the rule still holds (a kind outside S/F/P is refused).
#[tokio::test]
async fn the_hot_tables_check_their_codes_without_ephemeral_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    drop(SqliteStore::open(&path).unwrap());
    let conn = raw(&path);
    for tabella in ["operazioni", "operazioni_entita", "versioni"] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [tabella],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sql.contains(" IN ("), "{tabella}: {sql}");
        assert!(sql.contains("CHECK ("), "{tabella}: {sql}");
    }
    let piano: Vec<String> = conn
        .prepare(
            "EXPLAIN INSERT INTO versioni (kind, entity, section, valido_dal, creata_da, value)
             VALUES ('S', 1, 'x', '2020-01-01', 1, '{}')",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(1))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(piano.iter().any(|op| op == "Insert"), "{piano:?}");
    assert!(!piano.iter().any(|op| op == "OpenEphemeral"), "{piano:?}");
    let errore = conn
        .execute(
            "INSERT INTO versioni (kind, entity, section, valido_dal, creata_da, value)
             VALUES ('X', 1, 'x', '2020-01-01', 1, '{}')",
            [],
        )
        .unwrap_err();
    assert!(errore.to_string().contains("CHECK"), "{errore}");
    let operazione = |stato: &str| {
        conn.execute(
            "INSERT INTO operazioni (id, ordine, codice_servizio, utente, canale, decorrenza,
                                     registrata_il, stato, richiesta, risposta)
             VALUES (1, 1, '1002', 'u', 'rest', '2020-01-01', '2020-01-01', ?1, '{}', '{}')",
            [stato],
        )
    };
    let errore = operazione("boh").unwrap_err();
    assert!(errore.to_string().contains("CHECK"), "{errore}");
    assert_eq!(operazione("eseguita").unwrap(), 1);
}

/// `checkpoint_completo` (the end of `anpr subentro import`) copies the WAL into the
/// database file and empties it; while a reader still holds an older snapshot it gives up
/// within about a second with an error, instead of holding up the writers, and loses
/// nothing.
#[test]
fn the_full_checkpoint_empties_the_wal_and_gives_way_to_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite3");
    drop(SqliteStore::open(&path).unwrap());
    let wal = dir.path().join("c.sqlite3-wal");
    let scrittore = raw(&path);
    scrittore
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE prova (x TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO prova SELECT hex(randomblob(200)) FROM n;",
        )
        .unwrap();
    // A reader keeps the snapshot of before the next write.
    let lettore = raw(&path);
    lettore.execute_batch("BEGIN").unwrap();
    let prima: i64 = lettore
        .query_row("SELECT count(*) FROM prova", [], |r| r.get(0))
        .unwrap();
    scrittore
        .execute_batch("INSERT INTO prova SELECT x FROM prova LIMIT 500")
        .unwrap();
    assert!(std::fs::metadata(&wal).unwrap().len() > 100_000);
    let t = std::time::Instant::now();
    let errore = SqliteStore::checkpoint_completo(&path).unwrap_err();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(errore.to_string().contains("frames copied"), "{errore}");
    // The writer was not held up meanwhile.
    scrittore
        .execute_batch("INSERT INTO prova VALUES ('dopo')")
        .unwrap();
    lettore.execute_batch("COMMIT").unwrap();
    assert_eq!(prima, 2000);

    let dimensione = SqliteStore::checkpoint_completo(&path).unwrap();
    assert!(dimensione > 100_000, "{dimensione}");
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    drop(lettore);
    drop(scrittore);
    let righe: i64 = raw(&path)
        .query_row("SELECT count(*) FROM prova", [], |r| r.get(0))
        .unwrap();
    assert_eq!(righe, 2501);
}

/// The store's writer reports the WAL's size after each commit (its WAL hook), which is
/// what lets the checkpointer copy every 256 frames instead of every 200 ms: a later
/// `wal_autocheckpoint` pragma on the writer would silently remove the hook, and the
/// report would stay 0.
#[tokio::test]
async fn the_writer_reports_the_size_of_the_wal() {
    let (store, _dir) = fresh();
    let prima = store.wal_frames();
    store.baseline_raw_insert(3).await.unwrap();
    let dopo = store.wal_frames();
    assert!(dopo > 0, "no report after three commits (before: {prima})");
    store
        .append_audit_batch((0..300).map(|i| voce_lettura(format!("v{i}"))).collect())
        .await
        .unwrap();
    let ancora = store.wal_frames();
    // 300 entries fill several pages; unless the checkpointer restarted the log
    // meanwhile (it does so only past 65,536 frames), the WAL only grew.
    assert!(
        ancora > dopo,
        "{ancora} frames after the batch, {dopo} before"
    );
    // And the count of frames written since the store opened holds them all.
    let scritti = store.wal_frames_written();
    assert!(
        scritti >= u64::try_from(ancora - prima).unwrap() && scritti > 0,
        "{scritti} frames counted, the log went from {prima} to {ancora}"
    );
}
