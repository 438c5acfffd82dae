//! PostgreSQL-specific checks beyond the conformance suite: behaviour under real
//! concurrency (many connections, many municipalities), isolation of environments
//! (schemas), migrations, timestamp precision of the audit chain, and corrupt data.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use anpr_domain::audit::{verifica_catena, NuovaVoceAudit, TipoEvento};
use anpr_domain::ids::{IdAnprSoggetto, IdOperazioneAnpr};
use anpr_domain::storia::StoriaSezione;
use anpr_store::conformance::operation;
use anpr_store::{
    EntityRef, IndexWrite, NewOperation, OperationQuery, SectionWrite, Sequence, Store, StoreError,
    SubjectIndex, SubjectQuery,
};
use anpr_store_postgres::{PoolSettings, PostgresStore};
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde_json::json;

const COMUNI: [&str; 4] = ["058091", "015146", "001272", "063049"];

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

async fn op_id(store: &PostgresStore) -> IdOperazioneAnpr {
    IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap()
}

async fn subject_id(store: &PostgresStore) -> IdAnprSoggetto {
    IdAnprSoggetto::new(store.next_id(Sequence::Soggetto).await.unwrap()).unwrap()
}

fn subject_index(id: IdAnprSoggetto, comune: &str, cognome: &str) -> SubjectIndex {
    SubjectIndex {
        id,
        comune: comune.parse().unwrap(),
        posizione: "R".into(),
        codice_fiscale: Some(format!("CF{}", id.get())),
        cognome_key: Some(anpr_domain::text::fold_key(cognome)),
        nome_key: Some("MARIO".into()),
        sesso: Some("M".into()),
        data_nascita: Some(day(1980, 1, 1)),
        id_comunale: None,
        id_famiglia: None,
        chiave_indirizzo: None,
    }
}

/// A registration: one section, one index row (what the benchmark measures, too).
async fn registration(
    store: &PostgresStore,
    comune: &str,
    id_comune: Option<u64>,
) -> (IdAnprSoggetto, NewOperation) {
    let s = subject_id(store).await;
    let id = op_id(store).await;
    let mut op = operation(id, "1002", comune, id_comune, day(2000, 1, 1));
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "generalita".into(),
        value: Some(json!({"cognome": "Rossi"})),
        key: None,
    });
    op.indexes
        .push(IndexWrite::Soggetto(subject_index(s, comune, "Rossi")));
    (s, op)
}

fn residenza(s: IdAnprSoggetto, via: &str) -> SectionWrite {
    SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "residenza".into(),
        value: Some(json!({ "via": via })),
        key: None,
    }
}

/// A raw connection to the store's schema, for checks and for damaging data on purpose.
async fn raw(schema: &str) -> tokio_postgres::Client {
    let url = common::test_url().expect("a test server");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path = {schema}"))
        .await
        .unwrap();
    client
}

async fn assert_chain_verifies(store: &PostgresStore, expected: u64) {
    let page = store.audit_page(0, 10_000).await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(verifica_catena(&page, head.as_ref()), Ok(expected));
}

/// 200 registrations submitted at once, 50 per municipality with ids 1..=50 in shuffled
/// order: whatever commits, each municipality's accepted ids increase in commit order,
/// every refusal is `IdOperazioneComuneNotIncreasing` against a larger accepted id, and
/// the audit chain holds exactly the accepted operations. Then 200 in order per
/// municipality, all accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_keep_order_and_chain() {
    let Some((store, guard)) = common::fresh_with(&PoolSettings { max_size: 16 }).await else {
        return;
    };
    let store = Arc::new(store);
    let mut jobs = Vec::new();
    for (c, comune) in COMUNI.into_iter().enumerate() {
        for n in 1..=50u64 {
            // A deterministic shuffle, so that commits interleave across and within
            // municipalities.
            let order = (n * 2_654_435_761 + c as u64 * 40_503) % 1009;
            jobs.push((order, comune, n));
        }
    }
    jobs.sort_unstable();
    let mut tasks = Vec::new();
    for (_, comune, n) in jobs {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (_, op) = registration(&store, comune, Some(n)).await;
            let id = op.id;
            (comune, n, id, store.apply(op).await)
        }));
    }
    let mut accepted: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    let mut refused = 0;
    for t in tasks {
        let (comune, n, _id, outcome) = t.await.unwrap();
        match outcome {
            Ok(voce) => accepted.entry(comune).or_default().push((voce.seq, n)),
            Err(StoreError::IdOperazioneComuneNotIncreasing { id, last }) => {
                assert_eq!(id.get(), n);
                assert!(last.get() > n, "refused {n} against last {last}");
                refused += 1;
            }
            Err(other) => panic!("unexpected outcome for {comune}/{n}: {other:?}"),
        }
    }
    let total: usize = accepted.values().map(Vec::len).sum();
    assert_eq!(total + refused, 200);
    println!("200 concurrent applies: {total} accepted, {refused} refused as not increasing");
    for comune in COMUNI {
        let mut ops = accepted.remove(comune).unwrap_or_default();
        assert!(!ops.is_empty(), "{comune}: nothing accepted");
        ops.sort();
        assert!(
            ops.windows(2).all(|w| w[0].1 < w[1].1),
            "{comune}: ids not increasing in commit order: {ops:?}"
        );
        let found = store
            .find_subjects(&SubjectQuery {
                comune: Some(comune.parse().unwrap()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), ops.len());
    }
    assert_chain_verifies(&store, total as u64).await;
    let logged = store
        .operations(&OperationQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), total);

    // Then 200 more, each municipality submitting its ids in order (as a municipality's
    // software does) while all four run at once: every one is accepted.
    let mut tasks = Vec::new();
    for comune in COMUNI {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 51..=100u64 {
                let (_, op) = registration(&store, comune, Some(n)).await;
                store
                    .apply(op)
                    .await
                    .unwrap_or_else(|e| panic!("{comune}/{n}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_chain_verifies(&store, total as u64 + 200).await;
    drop(store);
    drop(guard);
}

/// Many callers racing with the same idOperazioneComune: exactly one wins, the others
/// are told which operation holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_duplicates_of_one_id_operazione_comune() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (_, op) = registration(&store, "058091", Some(7)).await;
            let id = op.id;
            (id, store.apply(op).await)
        }));
    }
    let mut winners = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (id, Ok(_)) => winners.push(id),
            (_, Err(StoreError::DuplicateIdOperazioneComune { id, existing: e })) => {
                assert_eq!(id.get(), 7);
                existing.push(e);
            }
            (_, Err(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(existing.len(), 15);
    assert!(existing.iter().all(|e| *e == winners[0]));
    assert_chain_verifies(&store, 1).await;
    drop(store);
    drop(guard);
}

/// Concurrent changes of the same section of one record form a single timeline: every
/// version but the last is closed by the operation that created the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_section_keep_one_timeline() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let store = Arc::new(store);
    let (s, op) = registration(&store, "058091", None).await;
    store.apply(op).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = op_id(&store).await;
            let mut op = operation(id, "5005", "058091", None, day(2010, 1, 1));
            op.writes.push(residenza(s, &format!("Via {i}")));
            store.apply(op).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every change applies");
    }
    let history = store
        .history(EntityRef::Soggetto(s), "residenza")
        .await
        .unwrap();
    assert_eq!(history.len(), 30);
    assert_eq!(history.iter().filter(|v| v.valido_al.is_none()).count(), 1);
    for w in history.windows(2) {
        assert_eq!(w[0].chiusa_da, Some(w[1].creata_da));
        assert_eq!(w[0].valido_al, Some(w[1].valido_dal));
    }
    assert!(history.last().unwrap().valido_al.is_none());
    assert_chain_verifies(&store, 31).await;
    drop(store);
    drop(guard);
}

/// An annulment racing with a later change of the same record (on another section):
/// either the annulment commits first, or it is refused as not the newest. Never both
/// succeed with the change committed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annulment_racing_a_change_of_the_same_record() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let store = Arc::new(store);
    let (mut annulled_first, mut refused) = (0, 0);
    for round in 0..15 {
        let (s, op) = registration(&store, "058091", None).await;
        let reg = op.id;
        store.apply(op).await.unwrap();
        let change = {
            let store = store.clone();
            tokio::spawn(async move {
                let id = op_id(&store).await;
                let mut op = operation(id, "5008", "058091", None, day(2001, 1, 1));
                op.writes.push(SectionWrite {
                    entity: EntityRef::Soggetto(s),
                    section: "altriDati".into(),
                    value: Some(json!({"round": round})),
                    key: None,
                });
                (id, store.apply(op).await)
            })
        };
        let annul = {
            let store = store.clone();
            tokio::spawn(async move {
                let id = op_id(&store).await;
                store
                    .annul(reg, operation(id, "1013", "058091", None, day(2001, 1, 1)))
                    .await
            })
        };
        let (change_id, change) = change.await.unwrap();
        let change = change.expect("the change always applies");
        match annul.await.unwrap() {
            Ok(annulment) => {
                assert!(
                    annulment.seq < change.seq,
                    "round {round}: annulled after a newer change"
                );
                annulled_first += 1;
            }
            Err(StoreError::NotNewest { op, newer, .. }) => {
                assert_eq!((op, newer), (reg, change_id));
                refused += 1;
            }
            Err(other) => panic!("round {round}: unexpected {other:?}"),
        }
    }
    println!(
        "annulment vs change: {annulled_first} annulled first, {refused} refused as not newest"
    );
    drop(store);
    drop(guard);
}

/// Two environments on one server see nothing of each other, and each has its own
/// sequences and idOperazioneComune counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_on_different_schemas_are_isolated() {
    let Some((a, guard_a)) = common::fresh().await else {
        return;
    };
    let Some((b, guard_b)) = common::fresh().await else {
        return;
    };
    let (s, op) = registration(&a, "058091", Some(1)).await;
    let first_id = op.id;
    a.apply(op).await.unwrap();
    assert!(b
        .record(EntityRef::Soggetto(s), None)
        .await
        .unwrap()
        .is_none());
    assert!(b.operation(first_id).await.unwrap().is_none());
    assert!(b
        .operations(&OperationQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .find_subjects(&SubjectQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert_eq!(b.audit_head().await.unwrap(), None);
    // The same ids are free in the other environment.
    assert_eq!(
        b.next_id(Sequence::Operazione).await.unwrap(),
        first_id.get()
    );
    let mut same = operation(first_id, "1002", "058091", Some(1), day(2000, 1, 1));
    same.writes.push(residenza(s, "Po"));
    b.apply(same).await.unwrap();
    assert_eq!(
        a.record(EntityRef::Soggetto(s), None)
            .await
            .unwrap()
            .unwrap()
            .get("residenza"),
        None
    );
    assert_chain_verifies(&a, 1).await;
    assert_chain_verifies(&b, 1).await;
    drop((a, b));
    drop((guard_a, guard_b));
}

/// Reconnecting (even several processes at once) re-applies nothing; a schema newer
/// than the code is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_guarded() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let url = common::test_url().unwrap();
    let schema = store.schema().to_owned();
    let (s, op) = registration(&store, "058091", Some(1)).await;
    store.apply(op).await.unwrap();
    let reconnects: Vec<_> = (0..4)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            tokio::spawn(async move { PostgresStore::connect(&url, &schema).await })
        })
        .collect();
    for r in reconnects {
        let again = r.await.unwrap().expect("reconnect");
        assert!(again
            .record(EntityRef::Soggetto(s), None)
            .await
            .unwrap()
            .is_some());
    }
    let client = raw(&schema).await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // 4 and 6 were reserved for parallel work and are unused (see schema.rs).
    assert_eq!(
        versions,
        (1..=PostgresStore::schema_version())
            .filter(|v| *v != 4 && *v != 6)
            .collect::<Vec<_>>()
    );

    // Several processes creating the same new schema at once.
    let fresh_schema = common::random_schema();
    let fresh_guard = common::SchemaGuard::new(&url, &fresh_schema);
    let creators: Vec<_> = (0..4)
        .map(|_| {
            let (url, schema) = (url.clone(), fresh_schema.clone());
            tokio::spawn(async move { PostgresStore::connect(&url, &schema).await.map(|_| ()) })
        })
        .collect();
    for c in creators {
        c.await.unwrap().expect("concurrent first connect");
    }

    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from the future')",
            &[],
        )
        .await
        .unwrap();
    match PostgresStore::connect(&url, &schema).await {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(store);
    drop(fresh_guard);
    drop(guard);
}

/// A schema written by the first release (version 1) is upgraded in place: its rows
/// stay, and the relaxed checks admit the new kind of record (proceedings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_schema_is_upgraded_with_its_data() {
    let Some(url) = common::test_url() else {
        return;
    };
    let schema = common::random_schema();
    let guard = common::SchemaGuard::new(&url, &schema);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path = {schema};
             CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                                             applied_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO schema_migrations (version, name) VALUES (1, 'initial');"
        ))
        .await
        .unwrap();
    client
        .batch_execute(include_str!("../migrations/0001_initial.sql"))
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO operazioni (id, codice_servizio, comune, utente, canale, decorrenza, registrata_il, stato,
                                     richiesta, risposta)
             VALUES (7, '1002', '058091', 'U', 'rest', '2020-01-01', now(), 'eseguita', '{}', '{}');
             INSERT INTO operazioni_entita (op, kind, entita) VALUES (7, 'S', 42);
             INSERT INTO versioni (kind, entita, sezione, valido_dal, creata_da, valore)
             VALUES ('S', 42, 'generalita', '2020-01-01', 7, '{\"cognome\": \"Rossi\"}');",
        )
        .await
        .unwrap();
    let store = PostgresStore::connect(&url, &schema).await.unwrap();
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
    let stored = store.operation(id).await.unwrap().unwrap();
    assert_eq!(stored.entities, vec![p]);
    drop(store);
    drop(guard);
}

#[tokio::test]
async fn bad_schema_names_are_refused_before_connecting() {
    for bad in [
        "Anpr",
        "anpr-test",
        "anpr;drop schema public",
        "",
        "pg_temp",
        "1anpr",
    ] {
        // The URL points nowhere: validation must fail first.
        match PostgresStore::connect("postgres://nobody@127.0.0.1:1/none", bad).await {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("{bad:?}: expected Invalid, got {other:?}"),
        }
    }
}

/// PostgreSQL keeps microseconds: the store truncates before hashing, so what it returns
/// equals what it reads back, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_instants_round_trip_at_microsecond_precision() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let istante: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    let returned = store
        .append_audit(NuovaVoceAudit {
            istante,
            evento: TipoEvento::Lettura,
            azione: "consultaScheda".into(),
            utente: "RSSMRA80A01H501U".into(),
            comune: Some("058091".into()),
            postazione: Some("PC-1".into()),
            canale: "soap".into(),
            oggetto: Some("soggetto:1".into()),
            id_operazione_anpr: None,
            esito: "ok".into(),
        })
        .await
        .unwrap();
    assert_eq!(returned.voce.istante.nanosecond(), 123_456_000);
    let (_, mut op) = registration(&store, "058091", None).await;
    op.audit.istante = DateTime::from_timestamp(1_700_000_001, 999_999_999).unwrap();
    let second = store.apply(op).await.unwrap();
    let page = store.audit_page(0, 10).await.unwrap();
    assert_eq!(page, vec![returned, second]);
    assert_chain_verifies(&store, 2).await;
    drop(guard);
}

/// Two writes of one section in one operation: the first becomes a zero-length version,
/// as in the reference model, and annulment removes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_section_in_one_operation_follows_the_model() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let (s, op) = registration(&store, "058091", None).await;
    store.apply(op).await.unwrap();
    let first = op_id(&store).await;
    let mut op = operation(first, "5005", "058091", None, day(2005, 1, 1));
    op.writes.push(residenza(s, "Roma"));
    store.apply(op).await.unwrap();
    let twice = op_id(&store).await;
    let mut op = operation(twice, "5005", "058091", None, day(2006, 1, 1));
    op.writes.push(residenza(s, "Po"));
    op.writes.push(residenza(s, "Dante"));
    store.apply(op).await.unwrap();

    let mut model = StoriaSezione::default();
    model
        .applica(day(2005, 1, 1), first, Some(json!({"via": "Roma"})))
        .unwrap();
    model
        .applica(day(2006, 1, 1), twice, Some(json!({"via": "Po"})))
        .unwrap();
    model
        .applica(day(2006, 1, 1), twice, Some(json!({"via": "Dante"})))
        .unwrap();
    let e = EntityRef::Soggetto(s);
    let history = store.history(e, "residenza").await.unwrap();
    let got: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.valido_dal,
                h.valido_al,
                h.creata_da,
                h.chiusa_da,
                h.value.clone(),
            )
        })
        .collect();
    let want: Vec<_> = model
        .versioni()
        .iter()
        .map(|m| {
            (
                m.valido_dal,
                m.valido_al,
                m.creata_da,
                m.chiusa_da,
                m.valore.clone(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let rec = store
        .record(e, Some(day(2006, 1, 1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.get("residenza"), Some(&json!({"via": "Dante"})));

    let ann = op_id(&store).await;
    store
        .annul(
            twice,
            operation(ann, "5012", "058091", None, day(2007, 1, 1)),
        )
        .await
        .unwrap();
    // Not compared with `StoriaSezione::annulla`, which pops only the last version and
    // so would reopen the zero-length one too (two open versions): every version the
    // operation created goes, and the one it closed is current again.
    let history = store.history(e, "residenza").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].creata_da,
            history[0].valido_al,
            history[0].chiusa_da
        ),
        (first, None, None)
    );
    // The annulment is linked to the record but does not block annulling the older one.
    let ops = store
        .operations(&OperationQuery {
            entity: Some(e),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ops.iter().any(|o| o.id == ann && o.annulla == Some(twice)));
    let ann2 = op_id(&store).await;
    store
        .annul(
            first,
            operation(ann2, "5012", "058091", None, day(2007, 1, 1)),
        )
        .await
        .unwrap();
    // An annulment cannot itself be annulled.
    let ann3 = op_id(&store).await;
    assert!(matches!(
        store
            .annul(
                ann2,
                operation(ann3, "5012", "058091", None, day(2007, 1, 1))
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    drop(guard);
}

/// Requests the contract forbids are refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_refused() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let (s, reg) = registration(&store, "058091", None).await;
    let reg_id = reg.id;
    store.apply(reg).await.unwrap();

    // An annulment with writes of its own.
    let mut bad = operation(op_id(&store).await, "5012", "058091", None, day(2001, 1, 1));
    bad.writes.push(residenza(s, "Po"));
    assert!(matches!(
        store.annul(reg_id, bad).await,
        Err(StoreError::Invalid(_))
    ));
    // A reserved section name.
    let mut bad = operation(op_id(&store).await, "5005", "058091", None, day(2001, 1, 1));
    bad.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(s),
        section: "_indice".into(),
        value: None,
        key: None,
    });
    assert!(matches!(
        store.apply(bad).await,
        Err(StoreError::Invalid(_))
    ));
    // An idOperazioneComune without a municipality.
    let mut bad = operation(
        op_id(&store).await,
        "5005",
        "058091",
        Some(3),
        day(2001, 1, 1),
    );
    bad.comune = None;
    assert!(matches!(
        store.apply(bad).await,
        Err(StoreError::Invalid(_))
    ));
    // An unknown outbox message.
    assert!(matches!(
        store.outbox_mark(424_242, true).await,
        Err(StoreError::Invalid(_))
    ));
    assert_chain_verifies(&store, 1).await;
    drop(guard);
}

/// Damaged rows surface as `Corrupt`, not as panics or bogus values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_reported() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let (_, op) = registration(&store, "058091", None).await;
    let id = op.id;
    store.apply(op).await.unwrap();
    let client = raw(store.schema()).await;
    client
        .execute(
            "UPDATE operazioni SET codice_servizio = 'bad!' WHERE id = $1",
            &[&(id.get() as i64)],
        )
        .await
        .unwrap();
    assert!(matches!(
        store.operation(id).await,
        Err(StoreError::Corrupt(_))
    ));
    client
        .execute("UPDATE indice_soggetti SET comune = 'Roma'", &[])
        .await
        .unwrap();
    assert!(matches!(
        store
            .find_subjects(&SubjectQuery {
                limit: 10,
                ..Default::default()
            })
            .await,
        Err(StoreError::Corrupt(_))
    ));
    // The audit log refuses changes outright.
    let err = client
        .execute("UPDATE audit SET esito = 'ko'", &[])
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("append-only"), "{err:?}");
    drop(guard);
}

/// Listings are capped at 1000 rows whatever the caller asks; prefix search takes the
/// prefix literally (no LIKE wildcards, backslashes included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_limits_and_literal_prefixes() {
    let Some((store, guard)) = common::fresh().await else {
        return;
    };
    let client = raw(store.schema()).await;
    client
        .execute(
            "INSERT INTO indice_soggetti (id, comune, posizione, cognome_key) \
             SELECT g, '058091', 'R', 'ROSSI' || g FROM generate_series(1, 1100) AS g",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO indice_soggetti (id, comune, posizione, cognome_key) \
             VALUES (5001, '058091', 'R', 'A\\B'), (5002, '058091', 'R', 'A_C'), (5003, '058091', 'R', 'ÀNGELO')",
            &[],
        )
        .await
        .unwrap();
    let all = store
        .find_subjects(&SubjectQuery {
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1000);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let ids = |v: Vec<SubjectIndex>| v.into_iter().map(|i| i.id.get()).collect::<Vec<_>>();
    let q = |p: &str| SubjectQuery {
        cognome_prefix: Some(p.into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        ids(store.find_subjects(&q("A\\")).await.unwrap()),
        vec![5001]
    );
    assert_eq!(
        ids(store.find_subjects(&q("A_")).await.unwrap()),
        vec![5002]
    );
    assert_eq!(ids(store.find_subjects(&q("À")).await.unwrap()), vec![5003]);
    assert_eq!(
        ids(store.find_subjects(&q("ROSSI100")).await.unwrap()),
        vec![100, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008]
    );
    assert!(store.find_subjects(&q("\u{0}")).await.unwrap().is_empty());
    drop(guard);
}
