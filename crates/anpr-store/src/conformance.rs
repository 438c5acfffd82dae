//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is an async function taking a fresh, empty store. A backend's test crate
//! instantiates all of them with [`conformance_tests!`], giving each test its own
//! database. Timelines are checked against the domain's reference model
//! (`anpr_domain::storia::StoriaSezione`).

use std::sync::Arc;

use anpr_domain::audit::{verifica_catena, NuovaVoceAudit, TipoEvento};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune,
};
use anpr_domain::operazione::{CodiceServizio, StatoOperazione};
use anpr_domain::storia::StoriaSezione;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::json;

use crate::{
    EntityRef, FamilyIndex, IndexWrite, NewOperation, NewOutboxMessage, NuovaSospesa,
    OperationQuery, ProcedimentoIndex, ProcedimentoQuery, QueryNotifiche, QuerySospese,
    SectionWrite, Sequence, Store, StoreError, SubjectIndex, SubjectQuery,
};

/// Instantiates every conformance check as a `#[tokio::test]`. `$fresh` is an async
/// expression yielding `Option<(store, guard)>`: a fresh, empty store (`impl Store`) and
/// a value kept alive until the test ends and then dropped (e.g. to delete the test
/// database). It is evaluated once per test. `None` means the backend is explicitly
/// skipped in this run; the expression itself must say so loudly.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@each $fresh;
            apply_then_read_current, as_at_reads_follow_the_reference_model,
            change_before_current_version_is_refused_atomically, id_operazione_comune_is_idempotent_and_increasing,
            refused_operations_are_stored_for_replay, annulment_is_newest_first_and_restores_exactly,
            annulled_registration_disappears, family_members_by_section_key_as_at, subject_search_by_keys,
            audit_chain_spans_operations_and_reads, outbox_delivery_is_recorded, operation_log_queries,
            sequences_are_unique_under_concurrency, concurrent_operations_keep_the_chain, baseline_raw_insert_works,
            newest_first_follows_the_order_of_application_not_the_ids, one_operation_writing_a_section_twice_annuls_cleanly,
            suspended_operations_are_saved_listed_updated_and_deleted, completing_a_suspended_operation_is_atomic,
            proceedings_are_versioned_records_with_a_searchable_projection, new_sequences_are_independent,
            documents_have_protocols_filters_and_annulment, municipality_parameters_are_saved_whole_and_audited,
            children_by_parent_and_proceedings_by_subject, notifications_are_read_by_recipient
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, guard)) = $fresh.await else { return };
                $crate::conformance::$name(std::sync::Arc::new(store)).await;
                drop(guard);
            }
        )*
    };
}

#[path = "conformance_documenti.rs"]
mod documenti;
pub use documenti::{
    children_by_parent_and_proceedings_by_subject, documents_have_protocols_filters_and_annulment,
    municipality_parameters_are_saved_whole_and_audited,
};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

fn comune(code: &str) -> CodiceIstatComune {
    code.parse().expect("valid test ISTAT code")
}

/// The audit entry of a search's read of `oggetto` (for the stores' own tests too).
pub fn voce_lettura(oggetto: String) -> NuovaVoceAudit {
    NuovaVoceAudit {
        istante: now(),
        evento: TipoEvento::Lettura,
        azione: "ricercaSoggetti".into(),
        utente: "BNCLGU80A01H501X".into(),
        comune: Some("058091".into()),
        postazione: None,
        canale: "rest".into(),
        oggetto: Some(oggetto),
        id_operazione_anpr: None,
        esito: "ok".into(),
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A minimal well-formed operation with no writes; tests add what they need.
pub fn operation(
    id: IdOperazioneAnpr,
    codice: &str,
    comune_code: &str,
    id_comune: Option<u64>,
    decorrenza: NaiveDate,
) -> NewOperation {
    NewOperation {
        id,
        codice_servizio: codice
            .parse::<CodiceServizio>()
            .expect("valid service code"),
        comune: Some(comune(comune_code)),
        id_operazione_comune: id_comune.map(|n| IdOperazioneComune::new(n).expect("valid id")),
        utente: "RSSMRA80A01H501U".into(),
        postazione: Some(format!("{comune_code}-PC-0001")),
        canale: "rest".into(),
        decorrenza,
        registrata_il: now(),
        stato: StatoOperazione::Eseguita,
        richiesta: format!("{{\"op\":\"{codice}\"}}"),
        risposta: format!("{{\"idOperazioneANPR\":\"{id}\"}}"),
        writes: Vec::new(),
        indexes: Vec::new(),
        outbox: Vec::new(),
        completa_sospesa: None,
        audit: NuovaVoceAudit {
            istante: now(),
            evento: TipoEvento::Operazione,
            azione: codice.into(),
            utente: "RSSMRA80A01H501U".into(),
            comune: Some(comune_code.into()),
            postazione: None,
            canale: "rest".into(),
            oggetto: None,
            id_operazione_anpr: Some(id.get()),
            esito: "ok".into(),
        },
    }
}

async fn op_id(store: &Arc<impl Store>) -> IdOperazioneAnpr {
    IdOperazioneAnpr::new(
        store
            .next_id(Sequence::Operazione)
            .await
            .expect("next op id"),
    )
    .expect("op id in range")
}

async fn subject_id(store: &Arc<impl Store>) -> IdAnprSoggetto {
    IdAnprSoggetto::new(
        store
            .next_id(Sequence::Soggetto)
            .await
            .expect("next subject id"),
    )
    .expect("id in range")
}

async fn family_id(store: &Arc<impl Store>) -> IdAnprFamiglia {
    IdAnprFamiglia::new(
        store
            .next_id(Sequence::Famiglia)
            .await
            .expect("next family id"),
    )
    .expect("id in range")
}

fn index(
    id: IdAnprSoggetto,
    comune_code: &str,
    cf: &str,
    cognome: &str,
    nome: &str,
    famiglia: Option<IdAnprFamiglia>,
) -> SubjectIndex {
    SubjectIndex {
        id,
        comune: comune(comune_code),
        posizione: "R".into(),
        codice_fiscale: Some(cf.into()),
        cognome_key: Some(anpr_domain::text::fold_key(cognome)),
        nome_key: Some(anpr_domain::text::fold_key(nome)),
        sesso: Some("M".into()),
        data_nascita: Some(day(1980, 1, 1)),
        id_comunale: Some(format!("C-{}", id.get())),
        id_famiglia: famiglia,
        chiave_indirizzo: Some("058091 VIA ROMA 1".into()),
    }
}

fn write(entity: EntityRef, section: &str, value: Option<serde_json::Value>) -> SectionWrite {
    SectionWrite {
        entity,
        section: section.into(),
        value,
        key: None,
    }
}

/// Registers a subject with generalities and residence; returns (subject, op).
async fn register(
    store: &Arc<impl Store>,
    comune_code: &str,
    id_comune: Option<u64>,
    cf: &str,
    cognome: &str,
    from: NaiveDate,
) -> (IdAnprSoggetto, IdOperazioneAnpr) {
    let s = subject_id(store).await;
    let id = op_id(store).await;
    let mut op = operation(id, "1002", comune_code, id_comune, from);
    let e = EntityRef::Soggetto(s);
    op.writes.push(write(
        e,
        "generalita",
        Some(json!({"cognome": cognome, "nome": "Mario"})),
    ));
    op.writes
        .push(write(e, "residenza", Some(json!({"via": "Roma 1"}))));
    op.indexes.push(IndexWrite::Soggetto(index(
        s,
        comune_code,
        cf,
        cognome,
        "Mario",
        None,
    )));
    store.apply(op).await.expect("registration applies");
    (s, id)
}

pub async fn apply_then_read_current(store: Arc<impl Store>) {
    let (s, op) = register(
        &store,
        "058091",
        Some(1),
        "RSSMRA80A01H501U",
        "Rossì",
        day(2000, 1, 1),
    )
    .await;
    let rec = store
        .record(EntityRef::Soggetto(s), None)
        .await
        .unwrap()
        .expect("record exists");
    assert_eq!(
        rec.get("generalita"),
        Some(&json!({"cognome": "Rossì", "nome": "Mario"}))
    );
    assert_eq!(rec.get("residenza"), Some(&json!({"via": "Roma 1"})));
    assert!(
        rec.get("_indice").is_none(),
        "internal sections are not returned"
    );
    let stored = store
        .operation(op)
        .await
        .unwrap()
        .expect("operation stored");
    assert_eq!(stored.stato, StatoOperazione::Eseguita);
    assert_eq!(stored.entities, vec![EntityRef::Soggetto(s)]);
    assert_eq!(stored.codice_servizio.as_str(), "1002");
    assert_eq!(
        stored.risposta,
        format!("{{\"idOperazioneANPR\":\"{op}\"}}")
    );
    let by_comune = store
        .operation_by_comune_id(&comune("058091"), IdOperazioneComune::new(1).unwrap())
        .await
        .unwrap();
    assert_eq!(by_comune.map(|o| o.id), Some(op));
    // A reader may confirm that what it read is durable (the replay of an operation);
    // nothing is written by it.
    let head = store.audit_head().await.unwrap();
    store.conferma_durevole().await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert!(store
        .record(
            EntityRef::Soggetto(IdAnprSoggetto::new(999_999).unwrap()),
            None
        )
        .await
        .unwrap()
        .is_none());
    store.ping().await.unwrap();
}

pub async fn as_at_reads_follow_the_reference_model(store: Arc<impl Store>) {
    let (s, first) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let e = EntityRef::Soggetto(s);
    let mut model: StoriaSezione<serde_json::Value> = StoriaSezione::default();
    model
        .applica(day(2000, 1, 1), first, Some(json!({"via": "Roma 1"})))
        .unwrap();
    // Moves, a same-day correction, and a removal of the datum.
    let steps: [(NaiveDate, Option<serde_json::Value>); 4] = [
        (day(2005, 3, 10), Some(json!({"via": "Po 2"}))),
        (day(2010, 7, 1), Some(json!({"via": "Dante 3"}))),
        (day(2010, 7, 1), Some(json!({"via": "Dante 3/A"}))),
        (day(2015, 1, 1), None),
    ];
    for (from, value) in steps {
        let id = op_id(&store).await;
        let mut op = operation(id, "5005", "058091", None, from);
        op.writes.push(write(e, "residenza", value.clone()));
        store.apply(op).await.unwrap();
        model.applica(from, id, value).unwrap();
    }
    let mut probe = day(1999, 12, 30);
    while probe < day(2016, 1, 1) {
        let rec = store.record(e, Some(probe)).await.unwrap();
        let got = rec.as_ref().and_then(|r| r.get("residenza"));
        assert_eq!(got, model.al(probe), "residenza as at {probe}");
        probe = probe + Days::new(97);
    }
    for edge in [
        day(2005, 3, 9),
        day(2005, 3, 10),
        day(2010, 6, 30),
        day(2010, 7, 1),
        day(2014, 12, 31),
        day(2015, 1, 1),
    ] {
        let rec = store.record(e, Some(edge)).await.unwrap();
        assert_eq!(
            rec.as_ref().and_then(|r| r.get("residenza")),
            model.al(edge),
            "residenza as at {edge}"
        );
        // The consultation's path: the index row and the same record, as stored text.
        let found = store
            .find_subject_records(
                &SubjectQuery {
                    codice_fiscale: Some("RSSMRA80A01H501U".into()),
                    limit: 10,
                    ..SubjectQuery::default()
                },
                Some(edge),
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "as at {edge}");
        assert_eq!(found[0].0.id, s);
        let testo = found[0].1.as_ref().map(|r| {
            r.iter()
                .map(|(k, v)| (k.to_owned(), serde_json::from_str(v).unwrap()))
                .collect::<Vec<(String, serde_json::Value)>>()
        });
        assert_eq!(testo, rec.map(|r| r.sections), "record text as at {edge}");
    }
    assert!(
        store
            .record(e, Some(day(1999, 12, 31)))
            .await
            .unwrap()
            .is_none(),
        "nothing before registration"
    );
    let history = store.history(e, "residenza").await.unwrap();
    assert_eq!(history.len(), model.versioni().len());
    for (h, m) in history.iter().zip(model.versioni()) {
        assert_eq!(
            (h.valido_dal, h.valido_al, h.creata_da, h.chiusa_da),
            (m.valido_dal, m.valido_al, m.creata_da, m.chiusa_da)
        );
        assert_eq!(h.value.as_ref(), m.valore.as_ref());
    }
}

pub async fn change_before_current_version_is_refused_atomically(store: Arc<impl Store>) {
    let (s, _) = register(
        &store,
        "058091",
        Some(10),
        "RSSMRA80A01H501U",
        "Rossi",
        day(2010, 1, 1),
    )
    .await;
    let e = EntityRef::Soggetto(s);
    let head_before = store.audit_head().await.unwrap();
    let id = op_id(&store).await;
    let mut op = operation(id, "5008", "058091", Some(11), day(2009, 12, 31));
    // The first write alone would be fine; the second precedes the current version.
    op.writes
        .push(write(e, "altriDati", Some(json!({"titoloStudio": "3"}))));
    op.writes
        .push(write(e, "residenza", Some(json!({"via": "Po 2"}))));
    op.outbox.push(NewOutboxMessage {
        tipo: "mail".into(),
        destinatario: "x@example.org".into(),
        payload: json!({}),
    });
    match store.apply(op).await {
        Err(StoreError::DecorrenzaBeforeCurrent {
            entity,
            section,
            decorrenza,
            current_from,
        }) => {
            assert_eq!(
                (entity, section.as_str(), decorrenza, current_from),
                (e, "residenza", day(2009, 12, 31), day(2010, 1, 1))
            );
        }
        other => panic!("expected DecorrenzaBeforeCurrent, got {other:?}"),
    }
    assert!(
        store.operation(id).await.unwrap().is_none(),
        "no operation row"
    );
    let rec = store.record(e, None).await.unwrap().unwrap();
    assert!(rec.get("altriDati").is_none(), "no partial write");
    assert_eq!(
        store.audit_head().await.unwrap(),
        head_before,
        "no audit entry"
    );
    assert!(
        store.outbox_pending(10).await.unwrap().is_empty(),
        "no outbox message"
    );
    // The same idOperazioneComune is still free.
    let id2 = op_id(&store).await;
    store
        .apply(operation(id2, "5008", "058091", Some(11), day(2011, 1, 1)))
        .await
        .unwrap();
}

pub async fn id_operazione_comune_is_idempotent_and_increasing(store: Arc<impl Store>) {
    let (_, first) = register(
        &store,
        "058091",
        Some(100),
        "RSSMRA80A01H501U",
        "Rossi",
        day(2010, 1, 1),
    )
    .await;
    let id = op_id(&store).await;
    match store
        .apply(operation(id, "1002", "058091", Some(100), day(2010, 1, 1)))
        .await
    {
        Err(StoreError::DuplicateIdOperazioneComune { id, existing }) => {
            assert_eq!((id.get(), existing), (100, first));
        }
        other => panic!("expected duplicate, got {other:?}"),
    }
    let id = op_id(&store).await;
    match store
        .apply(operation(id, "1002", "058091", Some(99), day(2010, 1, 1)))
        .await
    {
        Err(StoreError::IdOperazioneComuneNotIncreasing { id, last }) => {
            assert_eq!((id.get(), last.get()), (99, 100))
        }
        other => panic!("expected not increasing, got {other:?}"),
    }
    // Another municipality has its own counter.
    register(
        &store,
        "015146",
        Some(5),
        "VRDLGU80A01F205X",
        "Verdi",
        day(2010, 1, 1),
    )
    .await;
    register(
        &store,
        "058091",
        Some(101),
        "BNCLGU80A01H501X",
        "Bianchi",
        day(2010, 1, 1),
    )
    .await;
    // Reusing an operation id is refused too.
    match store
        .apply(operation(
            first,
            "1002",
            "058091",
            Some(200),
            day(2010, 1, 1),
        ))
        .await
    {
        Err(StoreError::DuplicateOperationId(id)) => assert_eq!(id, first),
        other => panic!("expected duplicate operation id, got {other:?}"),
    }
}

pub async fn refused_operations_are_stored_for_replay(store: Arc<impl Store>) {
    let id = op_id(&store).await;
    let mut op = operation(id, "1001", "058091", Some(7), day(2020, 1, 1));
    op.stato = StatoOperazione::Rifiutata;
    op.risposta = "{\"esito\":\"KO\"}".into();
    store.apply(op).await.unwrap();
    let stored = store
        .operation_by_comune_id(&comune("058091"), IdOperazioneComune::new(7).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.stato, stored.risposta.as_str()),
        (StatoOperazione::Rifiutata, "{\"esito\":\"KO\"}")
    );
    assert!(stored.entities.is_empty());
    // A refusal carrying writes is a programming error the store rejects.
    let s = subject_id(&store).await;
    let id = op_id(&store).await;
    let mut bad = operation(id, "1001", "058091", Some(8), day(2020, 1, 1));
    bad.stato = StatoOperazione::Rifiutata;
    bad.writes
        .push(write(EntityRef::Soggetto(s), "generalita", Some(json!({}))));
    assert!(matches!(
        store.apply(bad).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn snapshot(
    store: &Arc<impl Store>,
    s: IdAnprSoggetto,
) -> (Option<crate::RecordSections>, Vec<SubjectIndex>) {
    (
        store.record(EntityRef::Soggetto(s), None).await.unwrap(),
        store
            .find_subjects(&SubjectQuery {
                id: Some(s),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap(),
    )
}

pub async fn annulment_is_newest_first_and_restores_exactly(store: Arc<impl Store>) {
    let (s, reg) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let e = EntityRef::Soggetto(s);
    let before_move = snapshot(&store, s).await;
    let mv = op_id(&store).await;
    let mut op = operation(mv, "5005", "058091", None, day(2010, 1, 1));
    op.writes
        .push(write(e, "residenza", Some(json!({"via": "Po 2"}))));
    let mut idx = index(s, "058091", "RSSMRA80A01H501U", "Rossi", "Mario", None);
    idx.chiave_indirizzo = Some("058091 VIA PO 2".into());
    op.indexes.push(IndexWrite::Soggetto(idx));
    store.apply(op).await.unwrap();
    let before_name = snapshot(&store, s).await;
    let nm = op_id(&store).await;
    let mut op = operation(nm, "5008", "058091", None, day(2012, 1, 1));
    op.writes.push(write(
        e,
        "generalita",
        Some(json!({"cognome": "Russo", "nome": "Mario"})),
    ));
    op.indexes.push(IndexWrite::Soggetto(index(
        s,
        "058091",
        "RSSMRA80A01H501U",
        "Russo",
        "Mario",
        None,
    )));
    store.apply(op).await.unwrap();

    // Out of order: the move is not the newest.
    let ann = op_id(&store).await;
    match store
        .annul(mv, operation(ann, "5012", "058091", None, day(2013, 1, 1)))
        .await
    {
        Err(StoreError::NotNewest { op, entity, newer }) => {
            assert_eq!((op, entity, newer), (mv, e, nm))
        }
        other => panic!("expected NotNewest, got {other:?}"),
    }
    assert!(
        store.operation(ann).await.unwrap().is_none(),
        "refused annulment leaves nothing"
    );

    let ann = op_id(&store).await;
    store
        .annul(nm, operation(ann, "5012", "058091", None, day(2013, 1, 1)))
        .await
        .unwrap();
    assert_eq!(snapshot(&store, s).await, before_name);
    let annulled = store.operation(nm).await.unwrap().unwrap();
    assert_eq!(
        (annulled.stato, annulled.annullata_da),
        (StatoOperazione::Annullata, Some(ann))
    );
    assert_eq!(
        store.operation(ann).await.unwrap().unwrap().annulla,
        Some(nm)
    );
    assert!(matches!(
        store.annul(nm, operation(op_id(&store).await, "5012", "058091", None, day(2013, 1, 1))).await,
        Err(StoreError::OperationNotInForce(id)) if id == nm
    ));
    let ann2 = op_id(&store).await;
    store
        .annul(mv, operation(ann2, "5012", "058091", None, day(2013, 1, 1)))
        .await
        .unwrap();
    assert_eq!(snapshot(&store, s).await, before_move);
    let missing = IdOperazioneAnpr::new(987_654_321).unwrap();
    assert!(matches!(
        store.annul(missing, operation(op_id(&store).await, "5012", "058091", None, day(2013, 1, 1))).await,
        Err(StoreError::OperationNotFound(id)) if id == missing
    ));
    // The registration is now the newest again.
    assert_eq!(store.history(e, "residenza").await.unwrap().len(), 1);
    let _ = reg;
}

pub async fn annulled_registration_disappears(store: Arc<impl Store>) {
    let (s, reg) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let ann = op_id(&store).await;
    store
        .annul(reg, operation(ann, "1013", "058091", None, day(2000, 1, 2)))
        .await
        .unwrap();
    assert!(store
        .record(EntityRef::Soggetto(s), None)
        .await
        .unwrap()
        .is_none());
    let found = store
        .find_subjects(&SubjectQuery {
            codice_fiscale: Some("RSSMRA80A01H501U".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        found.is_empty(),
        "annulled registration left in the index: {found:?}"
    );
    // The same person can be registered again.
    let (s2, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let found = store
        .find_subjects(&SubjectQuery {
            codice_fiscale: Some("RSSMRA80A01H501U".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), vec![s2]);
}

pub async fn family_members_by_section_key_as_at(store: Arc<impl Store>) {
    let f = family_id(&store).await;
    let (a, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let (b, _) = register(
        &store,
        "058091",
        None,
        "RSSLRA85A41H501X",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let key = f.get().to_string();
    let join = |who: IdAnprSoggetto, from: NaiveDate, rel: &str| {
        let rel = rel.to_owned();
        let key = key.clone();
        let store = store.clone();
        async move {
            let id = op_id(&store).await;
            let mut op = operation(id, "5001", "058091", None, from);
            op.writes.push(SectionWrite {
                entity: EntityRef::Soggetto(who),
                section: "legame".into(),
                value: Some(json!({"idFamiglia": key, "codiceLegame": rel})),
                key: Some(key.clone()),
            });
            if who == a {
                op.writes.push(write(
                    EntityRef::Famiglia(f),
                    "dati",
                    Some(json!({"tipoScheda": "famiglia"})),
                ));
                op.indexes.push(IndexWrite::Famiglia(FamilyIndex {
                    id: f,
                    comune: comune("058091"),
                    tipo: "F".into(),
                    stato: "A".into(),
                    id_comunale: Some("FAM-1".into()),
                    chiave_indirizzo: None,
                }));
            }
            store.apply(op).await.unwrap();
        }
    };
    join(a, day(2001, 1, 1), "1").await;
    join(b, day(2005, 1, 1), "2").await;
    // b leaves in 2008.
    let id = op_id(&store).await;
    let mut op = operation(id, "5001", "058091", None, day(2008, 1, 1));
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(b),
        section: "legame".into(),
        value: None,
        key: None,
    });
    store.apply(op).await.unwrap();

    let members = |at: Option<NaiveDate>| {
        let store = store.clone();
        let key = key.clone();
        async move {
            let mut m: Vec<EntityRef> = store
                .by_section_key("legame", &key, at)
                .await
                .unwrap()
                .into_iter()
                .map(|(e, _)| e)
                .collect();
            m.sort();
            m
        }
    };
    assert_eq!(members(Some(day(2000, 6, 1))).await, vec![]);
    assert_eq!(
        members(Some(day(2003, 1, 1))).await,
        vec![EntityRef::Soggetto(a)]
    );
    assert_eq!(
        members(Some(day(2006, 1, 1))).await,
        vec![EntityRef::Soggetto(a), EntityRef::Soggetto(b)]
    );
    assert_eq!(members(None).await, vec![EntityRef::Soggetto(a)]);
    let fi = store
        .family_index(f)
        .await
        .unwrap()
        .expect("family indexed");
    assert_eq!(fi.id_comunale.as_deref(), Some("FAM-1"));
}

pub async fn subject_search_by_keys(store: Arc<impl Store>) {
    let (a, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "D'Àngelo",
        day(2000, 1, 1),
    )
    .await;
    let (b, _) = register(
        &store,
        "058091",
        None,
        "DNGMRA80A01H501X",
        "Dangelo",
        day(2000, 1, 1),
    )
    .await;
    let (c, _) = register(
        &store,
        "015146",
        None,
        "VRDMRA80A01F205X",
        "Verdi",
        day(2000, 1, 1),
    )
    .await;
    let ids = |v: Vec<SubjectIndex>| {
        let mut ids: Vec<IdAnprSoggetto> = v.into_iter().map(|i| i.id).collect();
        ids.sort();
        ids
    };
    let q = |f: fn(&mut SubjectQuery)| {
        let mut q = SubjectQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.cognome_prefix = Some("D ANG".into())))
            .await
            .unwrap()),
        vec![a]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.cognome_prefix = Some("D".into())))
            .await
            .unwrap()),
        vec![a, b]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.comune = Some("015146".parse().unwrap())))
            .await
            .unwrap()),
        vec![c]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.codice_fiscale = Some("DNGMRA80A01H501X".into())))
            .await
            .unwrap()),
        vec![b]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(
                |q| q.data_nascita = Some(NaiveDate::from_ymd_opt(1980, 1, 1).unwrap())
            ))
            .await
            .unwrap())
        .len(),
        3
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.posizione = Some("A".into())))
            .await
            .unwrap()),
        vec![]
    );
    // Several positions in one query: any of them.
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.posizioni = vec!["R".into(), "A".into()]))
            .await
            .unwrap()),
        vec![a, b, c]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| {
                q.posizioni = vec!["A".into(), "C".into()];
                q.comune = Some("015146".parse().unwrap());
            }))
            .await
            .unwrap()),
        vec![]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| {
                q.posizioni = vec!["R".into()];
                q.codice_fiscale = Some("VRDMRA80A01F205X".into());
            }))
            .await
            .unwrap()),
        vec![c]
    );
    // Prefix search must not treat LIKE wildcards in the input as wildcards.
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.cognome_prefix = Some("%".into())))
            .await
            .unwrap()),
        vec![]
    );
    assert_eq!(
        ids(store
            .find_subjects(&q(|q| q.cognome_prefix = Some("_".into())))
            .await
            .unwrap()),
        vec![]
    );
    let limited = store
        .find_subjects(&SubjectQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
}

pub async fn audit_chain_spans_operations_and_reads(store: Arc<impl Store>) {
    assert_eq!(store.audit_head().await.unwrap(), None);
    let (s, op) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let read = store
        .append_audit(NuovaVoceAudit {
            istante: now(),
            evento: TipoEvento::Lettura,
            azione: "consultaScheda".into(),
            utente: "BNCLGU80A01H501X".into(),
            comune: None,
            postazione: None,
            canale: "soap".into(),
            oggetto: Some(format!("soggetto:{s}")),
            id_operazione_anpr: None,
            esito: "ok".into(),
        })
        .await
        .unwrap();
    assert_eq!(read.seq, 2);
    let page = store.audit_page(0, 100).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].voce.id_operazione_anpr, Some(op.get()));
    assert_eq!(page[1], read);
    let head = store.audit_head().await.unwrap();
    assert_eq!(verifica_catena(&page, head.as_ref()), Ok(2));
    assert_eq!(store.audit_page(1, 100).await.unwrap(), vec![read.clone()]);

    // A batch: chained in order after the head, in one go; an empty one writes nothing.
    assert_eq!(store.append_audit_batch(Vec::new()).await.unwrap(), vec![]);
    let batch = store
        .append_audit_batch(vec![
            voce_lettura("criterio:codiceFiscale".into()),
            voce_lettura(format!("soggetto:{s}")),
            voce_lettura(format!("soggetto:{s}")),
        ])
        .await
        .unwrap();
    assert_eq!(
        batch.iter().map(|v| v.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(batch[0].hash_precedente, read.hash);
    assert_eq!(
        batch[0].voce.oggetto.as_deref(),
        Some("criterio:codiceFiscale")
    );
    assert_eq!(store.audit_page(2, 100).await.unwrap(), batch);
    let page = store.audit_page(0, 100).await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.as_ref().map(|h| h.seq), Some(5));
    assert_eq!(verifica_catena(&page, head.as_ref()), Ok(5));
    // Concurrent batches and single entries interleave only between batches.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store
                    .append_audit_batch(
                        (0..3).map(|_| voce_lettura(format!("lotto:{i}"))).collect(),
                    )
                    .await
                    .unwrap()
            } else {
                vec![store
                    .append_audit(voce_lettura(format!("singola:{i}")))
                    .await
                    .unwrap()]
            }
        }));
    }
    for t in tasks {
        let voci = t.await.unwrap();
        let seqs: Vec<u64> = voci.iter().map(|v| v.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    let page = store.audit_page(0, 100).await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(verifica_catena(&page, head.as_ref()), Ok(5 + 4 * 3 + 4));
}

pub async fn outbox_delivery_is_recorded(store: Arc<impl Store>) {
    let id = op_id(&store).await;
    let mut op = operation(id, "5005", "058091", None, day(2020, 1, 1));
    op.outbox.push(NewOutboxMessage {
        tipo: "N010".into(),
        destinatario: "015146".into(),
        payload: json!({"soggetto": 1}),
    });
    op.outbox.push(NewOutboxMessage {
        tipo: "mail".into(),
        destinatario: "ufficio@example.org".into(),
        payload: json!({"testo": "ciao"}),
    });
    store.apply(op).await.unwrap();
    let pending = store.outbox_pending(10).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|m| m.message.tipo.as_str())
            .collect::<Vec<_>>(),
        vec!["N010", "mail"]
    );
    assert_eq!(pending[0].id_operazione_anpr, Some(id));
    assert_eq!(pending[0].message.payload, json!({"soggetto": 1}));
    store.outbox_mark(pending[0].id, false).await.unwrap();
    store.outbox_mark(pending[1].id, true).await.unwrap();
    let pending = store.outbox_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].message.tipo.as_str(), pending[0].tentativi),
        ("N010", 1)
    );
}

/// The notifications addressed to a municipality are read by recipient, kind, state,
/// queuing period, originating operation and page, and taking one shows in the state.
pub async fn notifications_are_read_by_recipient(store: Arc<impl Store>) {
    let prima = now() - chrono::Duration::seconds(5);
    let mut ids = Vec::new();
    for (destinatario, tipo) in [
        ("015146", "N010"),
        ("058091", "N010"),
        ("015146", "N031"),
        ("015146", "N010"),
    ] {
        let id = op_id(&store).await;
        let mut op = operation(id, "5005", "001272", None, day(2020, 1, 1));
        op.outbox.push(NewOutboxMessage {
            tipo: tipo.into(),
            destinatario: destinatario.into(),
            payload: json!({"idOperazioneANPR": id.to_string()}),
        });
        op.outbox.push(NewOutboxMessage {
            tipo: "mail".into(),
            destinatario: "ufficio@example.org".into(),
            payload: json!({"testo": "ciao"}),
        });
        store.apply(op).await.unwrap();
        ids.push(id);
    }
    let dopo = now() + chrono::Duration::seconds(5);
    let query = |q: QueryNotifiche| {
        let store = store.clone();
        async move {
            store
                .notifiche(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.id_operazione_anpr.unwrap(), m.message.tipo))
                .collect::<Vec<_>>()
        }
    };
    let milano = || QueryNotifiche {
        destinatario: "015146".into(),
        limit: 100,
        ..QueryNotifiche::default()
    };
    let tutte = query(milano()).await;
    assert_eq!(
        tutte,
        vec![
            (ids[0], "N010".to_owned()),
            (ids[2], "N031".to_owned()),
            (ids[3], "N010".to_owned())
        ]
    );
    assert_eq!(
        query(QueryNotifiche {
            tipo: Some("N010".into()),
            ..milano()
        })
        .await,
        vec![(ids[0], "N010".to_owned()), (ids[3], "N010".to_owned())]
    );
    assert_eq!(
        query(QueryNotifiche {
            operazione_da: Some(ids[1]),
            operazione_a: Some(ids[2]),
            ..milano()
        })
        .await,
        vec![(ids[2], "N031".to_owned())]
    );
    assert_eq!(
        query(QueryNotifiche {
            dal: Some(prima),
            al: Some(dopo),
            ..milano()
        })
        .await
        .len(),
        3
    );
    assert!(query(QueryNotifiche {
        dal: Some(dopo),
        ..milano()
    })
    .await
    .is_empty());
    assert!(query(QueryNotifiche {
        al: Some(prima),
        ..milano()
    })
    .await
    .is_empty());
    // Pages.
    let prima_pagina = store
        .notifiche(&QueryNotifiche {
            limit: 2,
            ..milano()
        })
        .await
        .unwrap();
    assert_eq!(prima_pagina.len(), 2);
    let seconda = store
        .notifiche(&QueryNotifiche {
            dopo: Some(prima_pagina[1].id),
            ..milano()
        })
        .await
        .unwrap();
    assert_eq!(
        seconda
            .iter()
            .map(|m| m.id_operazione_anpr)
            .collect::<Vec<_>>(),
        vec![Some(ids[3])]
    );
    // Taking one.
    store.outbox_mark(prima_pagina[0].id, true).await.unwrap();
    assert_eq!(
        query(QueryNotifiche {
            prese: Some(true),
            ..milano()
        })
        .await,
        vec![(ids[0], "N010".to_owned())]
    );
    assert_eq!(
        query(QueryNotifiche {
            prese: Some(false),
            ..milano()
        })
        .await,
        vec![(ids[2], "N031".to_owned()), (ids[3], "N010".to_owned())]
    );
    let presa = store
        .notifiche(&QueryNotifiche {
            prese: Some(true),
            ..milano()
        })
        .await
        .unwrap();
    assert!(presa[0].consegnato_il.is_some());
    // Another recipient, or nobody.
    assert_eq!(
        query(QueryNotifiche {
            destinatario: "058091".into(),
            limit: 10,
            ..QueryNotifiche::default()
        })
        .await,
        vec![(ids[1], "N010".to_owned())]
    );
    assert!(query(QueryNotifiche {
        limit: 0,
        ..milano()
    })
    .await
    .is_empty());
}

pub async fn operation_log_queries(store: Arc<impl Store>) {
    let (s, r1) = register(
        &store,
        "058091",
        Some(1),
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let (_, r2) = register(
        &store,
        "015146",
        Some(1),
        "VRDMRA80A01F205X",
        "Verdi",
        day(2000, 1, 1),
    )
    .await;
    let mv = op_id(&store).await;
    let mut op = operation(mv, "5005", "058091", Some(2), day(2010, 1, 1));
    op.writes.push(write(
        EntityRef::Soggetto(s),
        "residenza",
        Some(json!({"via": "Po"})),
    ));
    store.apply(op).await.unwrap();
    let ids = |v: Vec<crate::StoredOperation>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let all = OperationQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(store.operations(&all).await.unwrap()), vec![r1, r2, mv]);
    let by_comune = OperationQuery {
        comune: Some(comune("058091")),
        ..all.clone()
    };
    assert_eq!(
        ids(store.operations(&by_comune).await.unwrap()),
        vec![r1, mv]
    );
    let by_code = OperationQuery {
        codice_servizio: Some("5005".parse().unwrap()),
        ..all.clone()
    };
    assert_eq!(ids(store.operations(&by_code).await.unwrap()), vec![mv]);
    let by_entity = OperationQuery {
        entity: Some(EntityRef::Soggetto(s)),
        ..all.clone()
    };
    assert_eq!(
        ids(store.operations(&by_entity).await.unwrap()),
        vec![r1, mv]
    );
    let page = OperationQuery {
        limit: 1,
        dopo: Some(r1),
        ..all.clone()
    };
    assert_eq!(ids(store.operations(&page).await.unwrap()), vec![r2]);
    let future = OperationQuery {
        dal: Some(now() + chrono::Duration::hours(1)),
        ..all.clone()
    };
    assert!(store.operations(&future).await.unwrap().is_empty());
    let past = OperationQuery {
        al: Some(now() - chrono::Duration::hours(1)),
        ..all.clone()
    };
    assert!(store.operations(&past).await.unwrap().is_empty());
    let by_state = OperationQuery {
        stato: Some(StatoOperazione::Annullata),
        ..all
    };
    assert!(store.operations(&by_state).await.unwrap().is_empty());
}

pub async fn sequences_are_unique_under_concurrency(store: Arc<impl Store>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::new();
            for _ in 0..50 {
                v.push(store.next_id(Sequence::Soggetto).await.unwrap());
            }
            v
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "duplicate ids allocated");
    assert!(all.iter().all(|&id| id > 0));
    let f = store.next_id(Sequence::Famiglia).await.unwrap();
    assert!(f > 0);
}

pub async fn concurrent_operations_keep_the_chain(store: Arc<impl Store>) {
    // Four municipalities write at once, each with its own increasing ids.
    let mut tasks = Vec::new();
    for (t, code) in ["058091", "015146", "001272", "063049"]
        .into_iter()
        .enumerate()
    {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let cf = format!("RSSMRA80A01H{:03}U", t as u64 * 100 + i);
                register(&store, code, Some(1 + i), &cf, "Rossi", day(2000, 1, 1)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let page = store.audit_page(0, 1000).await.unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(
        verifica_catena(&page, store.audit_head().await.unwrap().as_ref()),
        Ok(100)
    );
    let found = store
        .find_subjects(&SubjectQuery {
            comune: Some(comune("015146")),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 25);
}

pub async fn baseline_raw_insert_works(store: Arc<impl Store>) {
    store.baseline_raw_insert(10).await.unwrap();
    store.baseline_raw_insert(10).await.unwrap();
    // The baseline must not touch the registry.
    assert!(store
        .operations(&OperationQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.audit_head().await.unwrap(), None);
}

fn residence(id: IdOperazioneAnpr, s: IdAnprSoggetto, from: NaiveDate, via: &str) -> NewOperation {
    let mut op = operation(id, "5005", "058091", None, from);
    op.writes.push(write(
        EntityRef::Soggetto(s),
        "residenza",
        Some(json!({"via": via})),
    ));
    op
}

/// Ids are allocated before `apply`, so two concurrent requests can commit out of id
/// order: "newest" must mean the order of application.
pub async fn newest_first_follows_the_order_of_application_not_the_ids(store: Arc<impl Store>) {
    let (s, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let e = EntityRef::Soggetto(s);
    let before = store.record(e, None).await.unwrap();
    let first_id = op_id(&store).await;
    let second_id = op_id(&store).await;
    store
        .apply(residence(second_id, s, day(2010, 1, 1), "Po 2"))
        .await
        .unwrap();
    store
        .apply(residence(first_id, s, day(2011, 1, 1), "Dante 3"))
        .await
        .unwrap();
    let ann = op_id(&store).await;
    match store
        .annul(
            second_id,
            operation(ann, "5012", "058091", None, day(2012, 1, 1)),
        )
        .await
    {
        Err(StoreError::NotNewest { newer, .. }) => assert_eq!(newer, first_id),
        other => panic!("expected NotNewest, got {other:?}"),
    }
    store
        .annul(
            first_id,
            operation(ann, "5012", "058091", None, day(2012, 1, 1)),
        )
        .await
        .unwrap();
    let ann2 = op_id(&store).await;
    store
        .annul(
            second_id,
            operation(ann2, "5012", "058091", None, day(2012, 1, 1)),
        )
        .await
        .unwrap();
    assert_eq!(store.record(e, None).await.unwrap(), before);
}

/// An operation may replace the same section twice (e.g. a correction inside one
/// request): annulling it must leave exactly the version it found.
pub async fn one_operation_writing_a_section_twice_annuls_cleanly(store: Arc<impl Store>) {
    let (s, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let e = EntityRef::Soggetto(s);
    let id = op_id(&store).await;
    let mut op = residence(id, s, day(2010, 1, 1), "Po 2");
    op.writes
        .push(write(e, "residenza", Some(json!({"via": "Po 4"}))));
    store.apply(op).await.unwrap();
    assert_eq!(
        store
            .record(e, None)
            .await
            .unwrap()
            .unwrap()
            .get("residenza"),
        Some(&json!({"via": "Po 4"}))
    );
    let ann = op_id(&store).await;
    store
        .annul(id, operation(ann, "5012", "058091", None, day(2011, 1, 1)))
        .await
        .unwrap();
    let history = store.history(e, "residenza").await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!((history[0].valido_al, history[0].chiusa_da), (None, None));
    assert_eq!(
        store
            .record(e, None)
            .await
            .unwrap()
            .unwrap()
            .get("residenza"),
        Some(&json!({"via": "Roma 1"}))
    );
}

/// An audit entry for a non-operation write (suspended operations).
fn audit_entry(azione: &str, oggetto: Option<String>) -> NuovaVoceAudit {
    NuovaVoceAudit {
        istante: now(),
        evento: TipoEvento::Amministrazione,
        azione: azione.into(),
        utente: "RSSMRA80A01H501U".into(),
        comune: Some("058091".into()),
        postazione: None,
        canale: "rest".into(),
        oggetto,
        id_operazione_anpr: None,
        esito: "ok".into(),
    }
}

fn sospesa(
    id: Option<u64>,
    comune_code: &str,
    codice: &str,
    utente: &str,
    soggetto: Option<IdAnprSoggetto>,
    cf: Option<&str>,
    richiesta: serde_json::Value,
) -> NuovaSospesa {
    NuovaSospesa {
        id,
        comune: comune(comune_code),
        codice_servizio: codice.parse().expect("valid service code"),
        utente: utente.into(),
        istante: now(),
        soggetto,
        codice_fiscale: cf.map(str::to_owned),
        richiesta,
        note: Some("in attesa del documento".into()),
        audit: audit_entry("salvaSospesa", None),
    }
}

/// Suspended operations: insert, read, list by every filter, update (owner, service,
/// municipality and creation time kept), delete; each write chains its audit entry.
pub async fn suspended_operations_are_saved_listed_updated_and_deleted(store: Arc<impl Store>) {
    let s = subject_id(&store).await;
    let a = store
        .salva_sospesa(sospesa(
            None,
            "058091",
            "1002",
            "OPERATORE1",
            None,
            Some("RSSMRA80A01H501U"),
            json!({"generalita": {"cognome": "Rossi"}}),
        ))
        .await
        .unwrap();
    assert!(a.id > 0);
    assert_eq!(a.creata_il, a.aggiornata_il);
    assert_eq!(a.richiesta, json!({"generalita": {"cognome": "Rossi"}}));
    assert_eq!(a.note.as_deref(), Some("in attesa del documento"));
    let b = store
        .salva_sospesa(sospesa(
            None,
            "058091",
            "5008",
            "OPERATORE2",
            Some(s),
            None,
            json!({"x": 1}),
        ))
        .await
        .unwrap();
    let c = store
        .salva_sospesa(sospesa(
            None,
            "015146",
            "1001",
            "OPERATORE1",
            None,
            None,
            json!({}),
        ))
        .await
        .unwrap();
    assert!(a.id < b.id && b.id < c.id, "ids increase");
    assert_eq!(store.sospesa(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.sospesa(c.id + 1000).await.unwrap(), None);

    let ids = |f: fn(&mut QuerySospese)| {
        let store = store.clone();
        async move {
            let mut q = QuerySospese {
                limit: 100,
                ..Default::default()
            };
            f(&mut q);
            store
                .sospese(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(|_| {}).await, vec![a.id, b.id, c.id]);
    assert_eq!(
        ids(|q| q.comune = Some(comune("058091"))).await,
        vec![a.id, b.id]
    );
    assert_eq!(
        ids(|q| q.utente = Some("OPERATORE1".into())).await,
        vec![a.id, c.id]
    );
    assert_eq!(
        ids(|q| q.codice_fiscale = Some("RSSMRA80A01H501U".into())).await,
        vec![a.id]
    );
    assert_eq!(
        ids(|q| q.codice_servizio = Some("5008".parse().unwrap())).await,
        vec![b.id]
    );
    let by_subject = store
        .sospese(&QuerySospese {
            soggetto: Some(s),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_subject, vec![b.clone()]);
    let limited = store
        .sospese(&QuerySospese {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert!(store
        .sospese(&QuerySospese::default())
        .await
        .unwrap()
        .is_empty());

    // Update: new content, the rest kept.
    let mut update = sospesa(
        Some(a.id),
        "058091",
        "1002",
        "SUPERUTENTE",
        None,
        Some("RSSMRA80A01H501U"),
        json!({"generalita": {"cognome": "Rossi", "nome": "Mario"}}),
    );
    update.note = None;
    update.istante = a.creata_il + chrono::TimeDelta::seconds(5);
    let updated = store.salva_sospesa(update).await.unwrap();
    assert_eq!(updated.id, a.id);
    assert_eq!(updated.utente, "OPERATORE1", "the owner does not change");
    assert_eq!(updated.creata_il, a.creata_il);
    assert!(updated.aggiornata_il > a.aggiornata_il);
    assert_eq!(updated.note, None);
    assert_eq!(
        updated.richiesta,
        json!({"generalita": {"cognome": "Rossi", "nome": "Mario"}})
    );
    assert_eq!(store.sospesa(a.id).await.unwrap(), Some(updated.clone()));
    // Updating one that does not exist, or through another municipality or service.
    for (id, comune_code, codice) in [
        (c.id + 1000, "058091", "1002"),
        (a.id, "015146", "1002"),
        (a.id, "058091", "5008"),
    ] {
        match store
            .salva_sospesa(sospesa(
                Some(id),
                comune_code,
                codice,
                "X",
                None,
                None,
                json!({}),
            ))
            .await
        {
            Err(StoreError::SospesaNotFound(missing)) => assert_eq!(missing, id),
            other => panic!("expected SospesaNotFound, got {other:?}"),
        }
    }
    assert_eq!(store.sospesa(a.id).await.unwrap(), Some(updated));

    assert!(store
        .elimina_sospesa(b.id, audit_entry("eliminaSospesa", None))
        .await
        .unwrap());
    assert!(!store
        .elimina_sospesa(b.id, audit_entry("eliminaSospesa", None))
        .await
        .unwrap());
    assert_eq!(store.sospesa(b.id).await.unwrap(), None);
    assert_eq!(ids(|_| {}).await, vec![a.id, c.id]);

    // Three saves, one update and one delete were audited (the failed ones were not);
    // an insert's entry names the id it got.
    let page = store.audit_page(0, 100).await.unwrap();
    assert_eq!(
        page[0].voce.oggetto.as_deref(),
        Some(format!("sospesa:{}", a.id).as_str())
    );
    assert_eq!(
        page.iter()
            .map(|v| v.voce.azione.as_str())
            .collect::<Vec<_>>(),
        vec![
            "salvaSospesa",
            "salvaSospesa",
            "salvaSospesa",
            "salvaSospesa",
            "eliminaSospesa"
        ]
    );
    assert_eq!(
        verifica_catena(&page, store.audit_head().await.unwrap().as_ref()),
        Ok(5)
    );
}

/// An operation completing a suspended one deletes it in the same transaction; if it
/// is gone, the whole operation fails and writes nothing.
pub async fn completing_a_suspended_operation_is_atomic(store: Arc<impl Store>) {
    let saved = store
        .salva_sospesa(sospesa(
            None,
            "058091",
            "1002",
            "OPERATORE1",
            None,
            None,
            json!({"parziale": true}),
        ))
        .await
        .unwrap();
    let s = subject_id(&store).await;
    let e = EntityRef::Soggetto(s);
    let first = op_id(&store).await;
    let mut op = operation(first, "1002", "058091", Some(10), day(2020, 1, 1));
    op.writes
        .push(write(e, "generalita", Some(json!({"cognome": "Rossi"}))));
    op.completa_sospesa = Some(saved.id);
    store.apply(op).await.unwrap();
    assert_eq!(store.sospesa(saved.id).await.unwrap(), None);
    let head = store.audit_head().await.unwrap();

    // Completing it again: refused, nothing written (not even the idOperazioneComune).
    let s2 = subject_id(&store).await;
    let second = op_id(&store).await;
    let mut op = operation(second, "1002", "058091", Some(11), day(2020, 1, 1));
    op.writes.push(write(
        EntityRef::Soggetto(s2),
        "generalita",
        Some(json!({"cognome": "Bianchi"})),
    ));
    op.completa_sospesa = Some(saved.id);
    match store.apply(op).await {
        Err(StoreError::SospesaNotFound(id)) => assert_eq!(id, saved.id),
        other => panic!("expected SospesaNotFound, got {other:?}"),
    }
    assert_eq!(store.operation(second).await.unwrap(), None);
    assert_eq!(
        store.record(EntityRef::Soggetto(s2), None).await.unwrap(),
        None
    );
    assert_eq!(store.audit_head().await.unwrap(), head);
    let third = op_id(&store).await;
    store
        .apply(operation(
            third,
            "1002",
            "058091",
            Some(11),
            day(2020, 1, 1),
        ))
        .await
        .expect("idOperazioneComune 11 is still free");

    // A refused operation cannot complete a suspended one.
    let kept = store
        .salva_sospesa(sospesa(
            None,
            "058091",
            "1002",
            "OPERATORE1",
            None,
            None,
            json!({}),
        ))
        .await
        .unwrap();
    let fourth = op_id(&store).await;
    let mut refused = operation(fourth, "1002", "058091", Some(12), day(2020, 1, 1));
    refused.stato = StatoOperazione::Rifiutata;
    refused.completa_sospesa = Some(kept.id);
    assert!(matches!(
        store.apply(refused).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(store.sospesa(kept.id).await.unwrap().is_some());
}

fn procedimento_index(
    id: u64,
    comune_code: &str,
    numero: Option<&str>,
    stato: &str,
    aperto: bool,
    avvio: NaiveDate,
    data_stato: NaiveDate,
) -> ProcedimentoIndex {
    ProcedimentoIndex {
        id,
        comune: comune(comune_code),
        numero_pratica_comune: numero.map(str::to_owned),
        stato: stato.into(),
        aperto,
        motivo_avvio: Some("6".into()),
        data_avvio: avvio,
        data_stato,
        data_chiusura: (!aperto).then_some(data_stato),
    }
}

/// Proceedings are records like the others (sections, as-at reads, annulment) with
/// their own projection; their links are keyed sections found by key.
pub async fn proceedings_are_versioned_records_with_a_searchable_projection(
    store: Arc<impl Store>,
) {
    let (s, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let p = store.next_id(Sequence::Procedimento).await.unwrap();
    let q = store.next_id(Sequence::Procedimento).await.unwrap();
    let (pe, qe) = (EntityRef::Procedimento(p), EntityRef::Procedimento(q));
    let link = format!("soggetto.{s}");
    // Open p (2021) with subject s, and q (2022, another municipality).
    let open = op_id(&store).await;
    let mut op = operation(open, "1014", "058091", None, day(2021, 3, 1));
    op.writes
        .push(write(pe, "stato", Some(json!({"statoProcedimento": "1"}))));
    op.writes.push(SectionWrite {
        entity: pe,
        section: link.clone(),
        value: Some(json!({"idSchedaSoggettoANPR": s.to_string()})),
        key: Some(s.to_string()),
    });
    op.indexes.push(IndexWrite::Procedimento(procedimento_index(
        p,
        "058091",
        Some("PR-1"),
        "1",
        true,
        day(2021, 3, 1),
        day(2021, 3, 1),
    )));
    store.apply(op).await.unwrap();
    let other = op_id(&store).await;
    let mut op = operation(other, "1014", "015146", None, day(2022, 1, 1));
    op.writes
        .push(write(qe, "stato", Some(json!({"statoProcedimento": "1"}))));
    op.indexes.push(IndexWrite::Procedimento(procedimento_index(
        q,
        "015146",
        None,
        "1",
        true,
        day(2022, 1, 1),
        day(2022, 1, 1),
    )));
    store.apply(op).await.unwrap();
    // Close p in 2023 and unlink s.
    let close = op_id(&store).await;
    let mut op = operation(close, "1014", "058091", None, day(2023, 6, 1));
    op.writes
        .push(write(pe, "stato", Some(json!({"statoProcedimento": "2"}))));
    op.writes.push(SectionWrite {
        entity: pe,
        section: link.clone(),
        value: None,
        key: Some(s.to_string()),
    });
    op.indexes.push(IndexWrite::Procedimento(procedimento_index(
        p,
        "058091",
        Some("PR-1"),
        "2",
        false,
        day(2021, 3, 1),
        day(2023, 6, 1),
    )));
    store.apply(op).await.unwrap();

    let find = |f: fn(&mut ProcedimentoQuery)| {
        let store = store.clone();
        async move {
            let mut q = ProcedimentoQuery {
                limit: 100,
                ..Default::default()
            };
            f(&mut q);
            store
                .find_procedimenti(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find(|_| {}).await, vec![p, q]);
    assert_eq!(find(|q| q.comune = Some(comune("015146"))).await, vec![q]);
    assert_eq!(find(|q| q.stato = Some("2".into())).await, vec![p]);
    assert_eq!(find(|q| q.aperto = Some(true)).await, vec![q]);
    assert_eq!(
        find(|q| q.numero_pratica_comune = Some("PR-1".into())).await,
        vec![p]
    );
    assert_eq!(
        find(|q| {
            q.avviato_dal = Some(day(2021, 3, 1));
            q.avviato_al = Some(day(2021, 3, 1));
        })
        .await,
        vec![p],
        "both ends are inclusive"
    );
    assert_eq!(
        find(|q| q.avviato_dal = Some(day(2021, 3, 2))).await,
        vec![q]
    );
    let full = store
        .find_procedimenti(&ProcedimentoQuery {
            id: Some(p),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        full,
        vec![procedimento_index(
            p,
            "058091",
            Some("PR-1"),
            "2",
            false,
            day(2021, 3, 1),
            day(2023, 6, 1)
        )]
    );
    assert!(store
        .find_procedimenti(&ProcedimentoQuery::default())
        .await
        .unwrap()
        .is_empty());

    // As-at reads and keyed links.
    let stato_at = |at: NaiveDate| {
        let store = store.clone();
        async move {
            store
                .record(pe, Some(at))
                .await
                .unwrap()
                .and_then(|r| r.get("stato").cloned())
        }
    };
    assert_eq!(stato_at(day(2020, 1, 1)).await, None);
    assert_eq!(
        stato_at(day(2022, 1, 1)).await,
        Some(json!({"statoProcedimento": "1"}))
    );
    assert_eq!(
        store
            .by_section_key(&link, &s.to_string(), Some(day(2022, 1, 1)))
            .await
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .collect::<Vec<_>>(),
        vec![pe]
    );
    assert!(store
        .by_section_key(&link, &s.to_string(), None)
        .await
        .unwrap()
        .is_empty());
    let ops = store
        .operations(&OperationQuery {
            entity: Some(pe),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ops.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![open, close]
    );
    assert_eq!(ops[0].entities, vec![pe]);

    // Annulment, newest first: the closing goes, the projection and the link come back.
    let ann = op_id(&store).await;
    match store
        .annul(
            open,
            operation(ann, "1013", "058091", None, day(2024, 1, 1)),
        )
        .await
    {
        Err(StoreError::NotNewest { newer, .. }) => assert_eq!(newer, close),
        other => panic!("expected NotNewest, got {other:?}"),
    }
    store
        .annul(
            close,
            operation(ann, "1013", "058091", None, day(2024, 1, 1)),
        )
        .await
        .unwrap();
    assert_eq!(find(|q| q.aperto = Some(true)).await, vec![p, q]);
    assert_eq!(
        store
            .by_section_key(&link, &s.to_string(), None)
            .await
            .unwrap()
            .len(),
        1
    );
    let ann2 = op_id(&store).await;
    store
        .annul(
            open,
            operation(ann2, "1013", "058091", None, day(2024, 1, 1)),
        )
        .await
        .unwrap();
    assert_eq!(
        find(|_| {}).await,
        vec![q],
        "an annulled opening disappears"
    );
    assert_eq!(store.record(pe, None).await.unwrap(), None);
}

/// Every sequence, the proceeding and suspended-operation ones included, hands out
/// increasing ids of its own.
pub async fn new_sequences_are_independent(store: Arc<impl Store>) {
    for seq in Sequence::ALL {
        let a = store.next_id(seq).await.unwrap();
        let b = store.next_id(seq).await.unwrap();
        assert!(a > 0 && b > a, "{seq:?}: {a} then {b}");
    }
    let names: std::collections::BTreeSet<&str> = Sequence::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names.len(),
        Sequence::ALL.len(),
        "sequence names are distinct"
    );
}
