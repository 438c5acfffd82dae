//! An operation's replay (the same `idOperazioneComune` sent again) answers with the
//! stored response without writing anything; the operation it reads may be another
//! request's, committed but not yet on disk. The replay therefore waits for a sync of
//! the store before answering, so that its answer too means "durable" (SQLite: the
//! writer's syncer counts its syncs).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use anpr_service::clock::SystemClock;
use anpr_service::Registry;
use anpr_store::Store;
use anpr_store_sqlite::SqliteStore;
use common::{iscrizione, operatore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_answers_only_after_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap());
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    let registry = Registry::new(stores, Arc::new(SystemClock));
    let ctx = operatore();
    let body = iscrizione(1, "Neri", "Ada", "F", "1985-05-05", "2024-01-10");
    let req = serde_json::from_value(body.clone()).unwrap();
    let prima = registry
        .iscrizione_altri_motivi(&ctx, &req, &body)
        .await
        .unwrap();
    assert!(prima.eseguita && !prima.replay, "{}", prima.documento);
    let stats = store.writer_stats();
    let replay = registry
        .iscrizione_altri_motivi(&ctx, &req, &body)
        .await
        .unwrap();
    assert!(replay.replay);
    assert_eq!(replay.documento, prima.documento);
    let dopo = store.writer_stats();
    // One request through the writer (the barrier, which writes nothing) and its sync.
    assert_eq!(dopo.requests, stats.requests + 1, "{stats:?} -> {dopo:?}");
    assert_eq!(dopo.syncs, stats.syncs + 1, "{stats:?} -> {dopo:?}");
}
