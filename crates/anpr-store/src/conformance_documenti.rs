//! Conformance checks of the document-related store methods (SPEC M-4, M-5.2, M-8.6):
//! issued documents and their protocol register, municipality parameters, children of
//! a parent, proceedings by subject.

use std::collections::BTreeSet;
use std::sync::Arc;

use anpr_domain::audit::{verifica_catena, NuovaVoceAudit, TipoEvento};
use anpr_domain::ids::IdAnprSoggetto;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use serde_json::json;

use super::{comune, day, op_id, operation, procedimento_index, register, write};
use crate::{
    EntityRef, IndexWrite, NuoviParametriComune, NuovoDocumento, ProcedimentoQuery, QueryDocumenti,
    SectionWrite, Sequence, Store, StoreError, SubjectQuery, TipoDocumento, LOGO_MAX_BYTES,
};

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid test time")
}

fn voce(azione: &str) -> NuovaVoceAudit {
    NuovaVoceAudit {
        istante: Utc::now(),
        evento: TipoEvento::Operazione,
        azione: azione.into(),
        utente: "RSSMRA80A01H501U".into(),
        comune: Some("058091".into()),
        postazione: None,
        canale: "rest".into(),
        oggetto: None,
        id_operazione_anpr: None,
        esito: "ok".into(),
    }
}

fn documento(
    id: &str,
    tipo: TipoDocumento,
    comune_code: &str,
    anno: i32,
    soggetto: Option<IdAnprSoggetto>,
    emesso_il: DateTime<Utc>,
) -> NuovoDocumento {
    NuovoDocumento {
        id: id.into(),
        tipo,
        comune: comune(comune_code),
        anno,
        soggetto,
        emesso_il,
        utente: "RSSMRA80A01H501U".into(),
        contenuto: json!({"tipi": [8], "testo": "Nicolò D'Àngelo"}),
        audit: voce("emissione"),
    }
}

async fn audit_ok(store: &Arc<impl Store>) -> Vec<anpr_domain::audit::VoceAudit> {
    let page = store.audit_page(0, 10_000).await.expect("audit page");
    let head = store.audit_head().await.expect("audit head");
    verifica_catena(&page, head.as_ref()).expect("the audit chain verifies");
    page
}

/// Issued documents: gap-free protocol numbers per municipality and year (also under
/// concurrency), shared by certificates and identity cards; reads, filters, annulment
/// once, each write audited in its transaction.
pub async fn documents_have_protocols_filters_and_annulment(store: Arc<impl Store>) {
    let (s, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA80A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let audit_before = audit_ok(&store).await.len();
    let d1 = store
        .emetti_documento(documento(
            "a1",
            TipoDocumento::Certificato,
            "058091",
            2026,
            Some(s),
            at(2026, 3, 1, 9),
        ))
        .await
        .unwrap();
    let d2 = store
        .emetti_documento(documento(
            "a2",
            TipoDocumento::CartaIdentita,
            "058091",
            2026,
            Some(s),
            at(2026, 3, 2, 9),
        ))
        .await
        .unwrap();
    let other = store
        .emetti_documento(documento(
            "b1",
            TipoDocumento::Certificato,
            "015146",
            2026,
            None,
            at(2026, 3, 3, 9),
        ))
        .await
        .unwrap();
    let next_year = store
        .emetti_documento(documento(
            "a3",
            TipoDocumento::Certificato,
            "058091",
            2027,
            None,
            at(2027, 1, 2, 9),
        ))
        .await
        .unwrap();
    // Certificates and cards share the register; each municipality and year from 1.
    assert_eq!(
        (
            d1.protocollo,
            d2.protocollo,
            other.protocollo,
            next_year.protocollo
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(d2.tipo, TipoDocumento::CartaIdentita);
    assert_eq!(d1.contenuto["testo"], "Nicolò D'Àngelo");
    assert_eq!(store.documento("a1").await.unwrap().as_ref(), Some(&d1));
    assert!(store.documento("missing").await.unwrap().is_none());
    // A duplicate id is refused and takes no protocol number.
    assert!(store
        .emetti_documento(documento(
            "a1",
            TipoDocumento::Certificato,
            "058091",
            2026,
            None,
            at(2026, 3, 4, 9),
        ))
        .await
        .is_err());

    // Concurrent issues: distinct numbers, no gap.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .emetti_documento(documento(
                    &format!("c{i}"),
                    TipoDocumento::Certificato,
                    "058091",
                    2026,
                    None,
                    at(2026, 4, 1, 9),
                ))
                .await
                .unwrap()
                .protocollo
        }));
    }
    let mut numeri = BTreeSet::new();
    for t in tasks {
        numeri.insert(t.await.unwrap());
    }
    assert_eq!(numeri, (3..=14).collect::<BTreeSet<u64>>());

    let query = |f: fn(&mut QueryDocumenti)| {
        let store = store.clone();
        async move {
            let mut q = QueryDocumenti {
                limit: 100,
                ..Default::default()
            };
            f(&mut q);
            store
                .documenti(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(query(|q| q.comune = Some(comune("015146"))).await, ["b1"]);
    assert_eq!(
        query(|q| q.tipo = Some(TipoDocumento::CartaIdentita)).await,
        ["a2"]
    );
    assert_eq!(
        query(|q| {
            q.dal = Some(at(2026, 3, 2, 0));
            q.al = Some(at(2026, 3, 3, 9));
        })
        .await,
        ["a2"],
        "start inclusive, end exclusive"
    );
    assert_eq!(
        query(|q| {
            q.comune = Some(comune("058091"));
            q.limit = 2;
        })
        .await,
        ["a1", "a2"],
        "ordered by issue time"
    );
    assert!(query(|q| q.limit = 0).await.is_empty());
    let del_soggetto = store
        .documenti(&QueryDocumenti {
            soggetto: Some(s),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(del_soggetto.len(), 2);

    // Annulment: once, audited once; the second answers the annulled document as is.
    let quando = Utc::now().trunc_subsecs(6);
    let annullato = store
        .annulla_documento("a2", quando, "errore materiale".into(), voce("annulla"))
        .await
        .unwrap()
        .expect("document exists");
    assert_eq!(annullato.annullato_il, Some(quando));
    assert_eq!(
        annullato.motivo_annullamento.as_deref(),
        Some("errore materiale")
    );
    let again = store
        .annulla_documento(
            "a2",
            quando + Duration::seconds(5),
            "di nuovo".into(),
            voce("annulla"),
        )
        .await
        .unwrap()
        .expect("document exists");
    assert_eq!(again, annullato, "unchanged");
    assert!(store
        .annulla_documento("missing", quando, "x".into(), voce("annulla"))
        .await
        .unwrap()
        .is_none());
    let audit = audit_ok(&store).await;
    // 4 + 12 issues and one annulment; the refused duplicate and the repeated or
    // missing annulments chained nothing.
    assert_eq!(audit.len() - audit_before, 17);
    assert_eq!(
        audit.iter().filter(|v| v.voce.azione == "annulla").count(),
        1
    );
    assert!(audit
        .iter()
        .any(|v| v.voce.oggetto.as_deref() == Some("documento:a1")));
}

/// Municipality parameters: absent until saved, replaced whole and versioned by each
/// save, isolated per municipality, audited in the same transaction; an oversized logo
/// writes nothing.
pub async fn municipality_parameters_are_saved_whole_and_audited(store: Arc<impl Store>) {
    let roma = comune("058091");
    assert!(store.parametri_comune(&roma).await.unwrap().is_none());
    let logo: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let nuovi = |valori: serde_json::Value, logo: Option<Vec<u8>>| NuoviParametriComune {
        comune: roma.clone(),
        valori,
        logo,
        istante: Utc::now().trunc_subsecs(6),
        utente: "RSSMRA80A01H501U".into(),
        audit: voce("parametriComune"),
    };
    let primo = store
        .salva_parametri_comune(nuovi(
            json!({"importoBollo": 1600, "sindaco": "Nicolò Rossi"}),
            Some(logo.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(primo.versione, 1);
    assert_eq!(primo.logo.as_deref(), Some(logo.as_slice()));
    assert_eq!(primo.valori["sindaco"], "Nicolò Rossi");
    assert_eq!(
        store.parametri_comune(&roma).await.unwrap(),
        Some(primo.clone())
    );

    let secondo = store
        .salva_parametri_comune(nuovi(json!({"importoBollo": 1800}), None))
        .await
        .unwrap();
    assert_eq!(secondo.versione, 2);
    assert!(secondo.logo.is_none(), "the save replaces the logo too");
    assert!(secondo.valori.get("sindaco").is_none(), "replaced whole");

    let troppo = vec![0u8; LOGO_MAX_BYTES + 1];
    assert!(matches!(
        store
            .salva_parametri_comune(nuovi(json!({}), Some(troppo)))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.parametri_comune(&roma).await.unwrap(),
        Some(secondo),
        "nothing written"
    );
    assert!(store
        .parametri_comune(&comune("015146"))
        .await
        .unwrap()
        .is_none());
    let audit = audit_ok(&store).await;
    assert_eq!(
        audit
            .iter()
            .filter(|v| v.voce.oggetto.as_deref() == Some("parametri:058091"))
            .count(),
        2
    );
}

/// Children of a parent (current `genitori` sections by father or mother id, changes
/// and annulment followed) and proceedings by linked subject.
pub async fn children_by_parent_and_proceedings_by_subject(store: Arc<impl Store>) {
    let (padre, _) = register(
        &store,
        "058091",
        None,
        "RSSMRA60A01H501U",
        "Rossi",
        day(1990, 1, 1),
    )
    .await;
    let (madre, _) = register(
        &store,
        "058091",
        None,
        "BNCNNA62A41H501U",
        "Bianchi",
        day(1990, 1, 1),
    )
    .await;
    let (c1, _) = register(
        &store,
        "058091",
        None,
        "RSSLCU00A01H501U",
        "Rossi",
        day(2000, 1, 1),
    )
    .await;
    let (c2, _) = register(
        &store,
        "015146",
        None,
        "BNCGNN05A01H501U",
        "Bianchi",
        day(2005, 1, 1),
    )
    .await;
    let genitori = |entity, value: serde_json::Value, from| {
        let store = store.clone();
        async move {
            let id = op_id(&store).await;
            let mut op = operation(id, "5008", "058091", None, from);
            op.writes.push(write(entity, "genitori", Some(value)));
            store.apply(op).await.unwrap();
            id
        }
    };
    genitori(
        EntityRef::Soggetto(c1),
        json!({"padre": {"idAnpr": padre.to_string()}, "madre": {"idAnpr": madre.to_string()}}),
        day(2000, 1, 1),
    )
    .await;
    genitori(
        EntityRef::Soggetto(c2),
        json!({"madre": {"idAnpr": madre.to_string(), "cognome": "Bianchi"}}),
        day(2005, 1, 1),
    )
    .await;
    let figli = |g: IdAnprSoggetto, comune_code: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .find_subjects(&SubjectQuery {
                    genitore: Some(g),
                    comune: comune_code.map(comune),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(figli(padre, None).await, [c1]);
    assert_eq!(figli(madre, None).await, [c1, c2]);
    assert_eq!(
        figli(madre, Some("015146")).await,
        [c2],
        "with other filters"
    );
    assert!(figli(c1, None).await.is_empty());
    // The mother removed from c2's record: only the current version counts...
    let revoca = genitori(
        EntityRef::Soggetto(c2),
        json!({"padre": {"cognome": "Ignoto"}}),
        day(2010, 1, 1),
    )
    .await;
    assert_eq!(figli(madre, None).await, [c1]);
    // ...and annulling the change restores it.
    let annul = op_id(&store).await;
    store
        .annul(
            revoca,
            operation(annul, "5012", "058091", None, day(2010, 1, 1)),
        )
        .await
        .unwrap();
    assert_eq!(figli(madre, None).await, [c1, c2]);

    // Proceedings by linked subject: linked now, not once unlinked.
    let p = store.next_id(Sequence::Procedimento).await.unwrap();
    let pe = EntityRef::Procedimento(p);
    let link = |value: Option<serde_json::Value>| SectionWrite {
        entity: pe,
        section: format!("soggetto.{c1}"),
        value,
        key: Some(c1.to_string()),
    };
    let open = op_id(&store).await;
    let mut op = operation(open, "1014", "058091", None, day(2021, 3, 1));
    op.writes
        .push(write(pe, "stato", Some(json!({"statoProcedimento": "1"}))));
    op.writes
        .push(link(Some(json!({"idSchedaSoggettoANPR": c1.to_string()}))));
    op.indexes.push(IndexWrite::Procedimento(procedimento_index(
        p,
        "058091",
        Some("PR-9"),
        "1",
        true,
        day(2021, 3, 1),
        day(2021, 3, 1),
    )));
    store.apply(op).await.unwrap();
    let per_soggetto = |s: IdAnprSoggetto, aperto: Option<bool>| {
        let store = store.clone();
        async move {
            store
                .find_procedimenti(&ProcedimentoQuery {
                    soggetto: Some(s),
                    aperto,
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(per_soggetto(c1, None).await, [p]);
    assert_eq!(per_soggetto(c1, Some(true)).await, [p]);
    assert!(per_soggetto(c1, Some(false)).await.is_empty());
    assert!(per_soggetto(c2, None).await.is_empty());
    let unlink = op_id(&store).await;
    let mut op = operation(unlink, "1014", "058091", None, day(2022, 1, 1));
    op.writes.push(link(None));
    store.apply(op).await.unwrap();
    assert!(per_soggetto(c1, None).await.is_empty());
}
