//! Conformance checks of the asynchronous-request queue and of the reads of extractions
//! and ISTAT tables (migration 7). Instantiated by [`conformance_elaborazioni_tests!`]
//! next to [`crate::conformance_tests!`] in each backend's test crate.

use std::sync::Arc;

use anpr_domain::audit::{verifica_catena, NuovaVoceAudit, TipoEvento};
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use crate::conformance::operation;
use crate::{
    ConclusioneElaborazione, EntityRef, FamilyIndex, FileElaborazione, IndexWrite,
    IntervalloFamiglie, IntervalloIdComunale, NuovaElaborazione, QueryElaborazioni,
    QueryEstrazione, QueryVersioniCampo, SectionWrite, Sequence, StatoElaborazione, Store,
    SubjectIndex,
};

/// Instantiates every check of this module as a `#[tokio::test]` (see
/// [`crate::conformance_tests!`] for `$fresh`).
#[macro_export]
macro_rules! conformance_elaborazioni_tests {
    ($fresh:expr) => {
        $crate::conformance_elaborazioni_tests!(@each $fresh;
            requests_are_queued_claimed_once_and_concluded, expired_leases_are_taken_over,
            extraction_stage_one_filters, batch_section_reads_and_versions_by_field
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, guard)) = $fresh.await else { return };
                $crate::conformance_elaborazioni::$name(std::sync::Arc::new(store)).await;
                drop(guard);
            }
        )*
    };
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

fn comune(code: &str) -> CodiceIstatComune {
    code.parse().expect("valid ISTAT code")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("valid instant")
}

fn audit(azione: &str) -> NuovaVoceAudit {
    NuovaVoceAudit {
        istante: Utc::now(),
        evento: TipoEvento::Lettura,
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

async fn nuova(store: &Arc<impl Store>, idc: Option<u64>, creata: &str) -> NuovaElaborazione {
    NuovaElaborazione {
        id: store.next_id(Sequence::Operazione).await.expect("id"),
        servizio: "4001".into(),
        comune: comune("058091"),
        id_operazione_comune: idc,
        utente: "RSSMRA80A01H501U".into(),
        postazione: Some("058091-PC-0001".into()),
        canale: "rest".into(),
        richiesta: json!({"criteri": {"sesso": "F"}, "formato": "csv"}),
        creata_il: t(creata),
        audit: audit("estrazione"),
    }
}

async fn chain_ok(store: &Arc<impl Store>) -> u64 {
    let entries = store.audit_page(0, 10_000).await.expect("audit page");
    let head = store.audit_head().await.expect("audit head");
    verifica_catena(&entries, head.as_ref()).expect("chain verifies");
    entries.len() as u64
}

pub async fn requests_are_queued_claimed_once_and_concluded(store: Arc<impl Store>) {
    let a = nuova(&store, Some(10), "2026-11-23T10:00:00Z").await;
    let (ea, creata) = store.inserisci_elaborazione(a.clone()).await.unwrap();
    assert!(creata);
    assert_eq!(ea.stato, StatoElaborazione::Inserita);
    assert_eq!(ea.richiesta, a.richiesta);
    assert_eq!(ea.tentativi, 0);
    assert_eq!(chain_ok(&store).await, 1, "the submission is audited");
    // The same municipal id again: the first request, nothing written.
    let mut dup = nuova(&store, Some(10), "2026-11-23T10:01:00Z").await;
    dup.richiesta = json!({"altro": true});
    let (again, creata) = store.inserisci_elaborazione(dup.clone()).await.unwrap();
    assert!(!creata);
    assert_eq!(again.id, ea.id);
    assert_eq!(again.richiesta, a.richiesta);
    assert!(store.elaborazione(dup.id).await.unwrap().is_none());
    assert_eq!(chain_ok(&store).await, 1);
    let b = nuova(&store, None, "2026-11-23T10:02:00Z").await;
    let (eb, _) = store.inserisci_elaborazione(b).await.unwrap();

    // Oldest first, each once.
    let now = t("2026-11-23T10:05:00Z");
    let lease = now + Duration::minutes(2);
    let p1 = store
        .prendi_elaborazione(now, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p1.id, ea.id);
    assert_eq!(p1.stato, StatoElaborazione::InElaborazione);
    assert_eq!(p1.tentativi, 1);
    assert_eq!(p1.scadenza_presa, Some(lease));
    let p2 = store
        .prendi_elaborazione(now, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p2.id, eb.id);
    assert!(store
        .prendi_elaborazione(now, lease)
        .await
        .unwrap()
        .is_none());

    // Concluding with another attempt number does nothing.
    let conclusione = |id: u64, tentativo: u32, stato: StatoElaborazione| ConclusioneElaborazione {
        id,
        tentativo,
        stato,
        conclusa_il: t("2026-11-23T10:06:00Z"),
        esito: json!({"soggetti": 2}),
        file: Some(FileElaborazione {
            nome: format!("estrazione-{id}.csv"),
            formato: "csv".into(),
            contenuto: b"idANPR\n1\n2\n".to_vec(),
        }),
        audit: audit("estrazioneConclusa"),
    };
    assert!(!store
        .concludi_elaborazione(conclusione(p1.id, 2, StatoElaborazione::Completata))
        .await
        .unwrap());
    assert!(store
        .concludi_elaborazione(conclusione(p1.id, 1, StatoElaborazione::Completata))
        .await
        .unwrap());
    // Concluded once: a second conclusion is refused.
    assert!(!store
        .concludi_elaborazione(conclusione(p1.id, 1, StatoElaborazione::Errore))
        .await
        .unwrap());
    let done = store.elaborazione(p1.id).await.unwrap().unwrap();
    assert_eq!(done.stato, StatoElaborazione::Completata);
    assert_eq!(done.esito, Some(json!({"soggetti": 2})));
    assert_eq!(done.file_byte, Some(11));
    assert_eq!(done.file_formato.as_deref(), Some("csv"));
    assert_eq!(done.file_sha256.as_deref().map(str::len), Some(64));
    let f = store.file_elaborazione(p1.id).await.unwrap().unwrap();
    assert_eq!(f.contenuto, b"idANPR\n1\n2\n");
    assert!(store.file_elaborazione(p2.id).await.unwrap().is_none());
    // A refusal without a file.
    let mut rif = conclusione(p2.id, 1, StatoElaborazione::Rifiutata);
    rif.file = None;
    assert!(store.concludi_elaborazione(rif).await.unwrap());
    assert_eq!(chain_ok(&store).await, 4);

    // Listing by municipality, state, service, period and id.
    let q = |f: fn(&mut QueryElaborazioni)| {
        let mut q = QueryElaborazioni {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let ids = |v: Vec<crate::Elaborazione>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .elaborazioni(&q(|q| q.comune = Some(comune("058091"))))
            .await
            .unwrap()),
        vec![ea.id, eb.id]
    );
    assert_eq!(
        ids(store
            .elaborazioni(&q(|q| q.stato = Some(StatoElaborazione::Rifiutata)))
            .await
            .unwrap()),
        vec![eb.id]
    );
    assert_eq!(
        ids(store
            .elaborazioni(&q(|q| q.al = Some(t("2026-11-23T10:01:00Z"))))
            .await
            .unwrap()),
        vec![ea.id]
    );
    assert!(store
        .elaborazioni(&q(|q| q.comune = Some(comune("015146"))))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .elaborazioni(&q(|q| q.servizio = Some("4003".into())))
        .await
        .unwrap()
        .is_empty());
    let mut page = q(|q| q.limit = 1);
    assert_eq!(ids(store.elaborazioni(&page).await.unwrap()), vec![ea.id]);
    page.dopo = Some(ea.id);
    assert_eq!(ids(store.elaborazioni(&page).await.unwrap()), vec![eb.id]);
}

pub async fn expired_leases_are_taken_over(store: Arc<impl Store>) {
    let a = nuova(&store, None, "2026-11-23T10:00:00Z").await;
    store.inserisci_elaborazione(a.clone()).await.unwrap();
    let t0 = t("2026-11-23T10:00:00Z");
    let first = store
        .prendi_elaborazione(t0, t0 + Duration::minutes(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.tentativi, 1);
    // Within the lease nobody else takes it.
    assert!(store
        .prendi_elaborazione(t0 + Duration::minutes(1), t0 + Duration::minutes(3))
        .await
        .unwrap()
        .is_none());
    // After it (a worker died, or the process restarted), another worker does.
    let second = store
        .prendi_elaborazione(t0 + Duration::minutes(3), t0 + Duration::minutes(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.id, a.id);
    assert_eq!(second.tentativi, 2);
    let fine = |tentativo: u32| ConclusioneElaborazione {
        id: a.id,
        tentativo,
        stato: StatoElaborazione::Completata,
        conclusa_il: t0 + Duration::minutes(4),
        esito: json!({"tentativo": tentativo}),
        file: None,
        audit: audit("fine"),
    };
    // The first worker, late, cannot overwrite the second's work.
    assert!(!store.concludi_elaborazione(fine(1)).await.unwrap());
    assert!(store.concludi_elaborazione(fine(2)).await.unwrap());
    let e = store.elaborazione(a.id).await.unwrap().unwrap();
    assert_eq!(e.esito, Some(json!({"tentativo": 2})));
    assert!(store
        .prendi_elaborazione(t0 + Duration::hours(1), t0 + Duration::hours(2))
        .await
        .unwrap()
        .is_none());
}

#[derive(Clone, Copy)]
struct Soggetto {
    comune: &'static str,
    posizione: &'static str,
    sesso: &'static str,
    nascita: NaiveDate,
    id_comunale: Option<&'static str>,
    cognome: Option<&'static str>,
    indirizzo: &'static str,
}

/// Registers subjects (one operation each) with the given index rows, all members of
/// `famiglia` when given; returns their ids in order.
async fn registra(
    store: &Arc<impl Store>,
    soggetti: &[Soggetto],
    famiglia: Option<IdAnprFamiglia>,
) -> Vec<IdAnprSoggetto> {
    let mut out = Vec::new();
    for s in soggetti {
        let id = IdAnprSoggetto::new(store.next_id(Sequence::Soggetto).await.unwrap()).unwrap();
        let op_id =
            IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap();
        let mut op = operation(op_id, "1002", s.comune, None, day(2020, 1, 1));
        let e = EntityRef::Soggetto(id);
        op.writes.push(SectionWrite {
            entity: e,
            section: "competenza".into(),
            value: Some(json!({"comune": s.comune, "posizione": "residente"})),
            key: None,
        });
        op.writes.push(SectionWrite {
            entity: e,
            section: "generalita".into(),
            value: Some(json!({"sesso": s.sesso})),
            key: None,
        });
        op.indexes.push(IndexWrite::Soggetto(SubjectIndex {
            id,
            comune: comune(s.comune),
            posizione: s.posizione.into(),
            codice_fiscale: None,
            cognome_key: s.cognome.map(anpr_domain::text::fold_key),
            nome_key: Some("MARIO".into()),
            sesso: Some(s.sesso.into()),
            data_nascita: Some(s.nascita),
            id_comunale: s.id_comunale.map(str::to_owned),
            id_famiglia: famiglia,
            chiave_indirizzo: Some(s.indirizzo.into()),
        }));
        store.apply(op).await.unwrap();
        out.push(id);
    }
    out
}

pub async fn extraction_stage_one_filters(store: Arc<impl Store>) {
    let fam = IdAnprFamiglia::new(store.next_id(Sequence::Famiglia).await.unwrap()).unwrap();
    let fop = IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap();
    let mut op = operation(fop, "1010", "058091", None, day(2020, 1, 1));
    op.writes.push(SectionWrite {
        entity: EntityRef::Famiglia(fam),
        section: "dati".into(),
        value: Some(json!({"tipo": "convivenza"})),
        key: None,
    });
    op.indexes.push(IndexWrite::Famiglia(FamilyIndex {
        id: fam,
        comune: comune("058091"),
        tipo: "C".into(),
        stato: "A".into(),
        id_comunale: Some("77".into()),
        chiave_indirizzo: None,
    }));
    store.apply(op).await.unwrap();
    let base = Soggetto {
        comune: "058091",
        posizione: "R",
        sesso: "M",
        nascita: day(1980, 5, 1),
        id_comunale: None,
        cognome: Some("Rossi"),
        indirizzo: "058091 VIA ROMA 1",
    };
    let ids = registra(
        &store,
        &[
            Soggetto {
                id_comunale: Some("9"),
                ..base
            },
            Soggetto {
                sesso: "F",
                id_comunale: Some("10"),
                ..base
            },
            Soggetto {
                posizione: "A",
                id_comunale: Some("100"),
                ..base
            },
            Soggetto {
                nascita: day(2015, 1, 1),
                cognome: None,
                indirizzo: "058091 PIAZZA GARIBALDI 3",
                ..base
            },
            Soggetto {
                comune: "015146",
                ..base
            },
        ],
        None,
    )
    .await;
    let membri = registra(&store, &[Soggetto { sesso: "F", ..base }], Some(fam)).await;
    let run = |f: Box<dyn Fn(&mut QueryEstrazione) + Send>| {
        let store = store.clone();
        async move {
            let mut q = QueryEstrazione {
                comune: Some(comune("058091")),
                limit: 100,
                ..Default::default()
            };
            f(&mut q);
            store
                .soggetti_per_estrazione(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        run(Box::new(|_| {})).await,
        vec![ids[0], ids[1], ids[2], ids[3], membri[0]]
    );
    assert_eq!(
        run(Box::new(|q| q.posizioni = vec!["R".into()])).await,
        vec![ids[0], ids[1], ids[3], membri[0]]
    );
    assert_eq!(
        run(Box::new(|q| q.sesso = Some("F".into()))).await,
        vec![ids[1], membri[0]]
    );
    let (a, b) = (ids[1].get(), ids[3].get());
    assert_eq!(
        run(Box::new(move |q| {
            q.id_da = Some(a);
            q.id_a = Some(b);
        }))
        .await,
        vec![ids[1], ids[2], ids[3]]
    );
    // Municipal ids compare as numbers: 9 < 10 < 100.
    assert_eq!(
        run(Box::new(|q| {
            q.id_comunale = Some(IntervalloIdComunale {
                da: "9".into(),
                a: "10".into(),
            })
        }))
        .await,
        vec![ids[0], ids[1]]
    );
    assert_eq!(
        run(Box::new(|q| {
            q.id_comunale = Some(IntervalloIdComunale {
                da: "10".into(),
                a: "999".into(),
            })
        }))
        .await,
        vec![ids[1], ids[2]]
    );
    assert_eq!(
        run(Box::new(|q| {
            q.nascita_dal = Some(day(2010, 1, 1));
            q.nascita_al = Some(day(2020, 1, 1));
        }))
        .await,
        vec![ids[3]]
    );
    assert_eq!(
        run(Box::new(|q| q.senza_cognome = true)).await,
        vec![ids[3]]
    );
    assert_eq!(
        run(Box::new(
            |q| q.prefisso_indirizzo = Some("058091 PIAZZA".into())
        ))
        .await,
        vec![ids[3]]
    );
    let solo = vec![ids[0].get(), ids[4].get(), membri[0].get()];
    assert_eq!(
        run(Box::new(move |q| q.solo_id = Some(solo.clone()))).await,
        vec![ids[0], membri[0]],
        "only subjects of the municipality"
    );
    let f = fam.get();
    assert_eq!(
        run(Box::new(move |q| {
            q.famiglie = Some(IntervalloFamiglie {
                tipo: "C".into(),
                id_da: Some(f),
                id_a: Some(f),
                id_comunale: None,
            })
        }))
        .await,
        vec![membri[0]]
    );
    assert_eq!(
        run(Box::new(|q| {
            q.famiglie = Some(IntervalloFamiglie {
                tipo: "C".into(),
                id_da: None,
                id_a: None,
                id_comunale: Some(IntervalloIdComunale {
                    da: "70".into(),
                    a: "80".into(),
                }),
            })
        }))
        .await,
        vec![membri[0]]
    );
    assert!(run(Box::new(|q| {
        q.famiglie = Some(IntervalloFamiglie {
            tipo: "F".into(),
            id_da: Some(1),
            id_a: Some(u64::MAX >> 2),
            id_comunale: None,
        })
    }))
    .await
    .is_empty());
    // Keyset pages.
    let first = ids[0].get();
    assert_eq!(run(Box::new(|q| q.limit = 2)).await, vec![ids[0], ids[1]]);
    assert_eq!(
        run(Box::new(move |q| {
            q.limit = 2;
            q.dopo = Some(first);
        }))
        .await,
        vec![ids[1], ids[2]]
    );
}

pub async fn batch_section_reads_and_versions_by_field(store: Arc<impl Store>) {
    let base = Soggetto {
        comune: "058091",
        posizione: "R",
        sesso: "M",
        nascita: day(1980, 5, 1),
        id_comunale: None,
        cognome: Some("Rossi"),
        indirizzo: "058091 VIA ROMA 1",
    };
    let ids = registra(&store, &[base, Soggetto { sesso: "F", ..base }], None).await;
    // The second moves to 015146 on 2024-03-10.
    let op_id = IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap();
    let mut op = operation(op_id, "5005", "015146", None, day(2024, 3, 10));
    op.writes.push(SectionWrite {
        entity: EntityRef::Soggetto(ids[1]),
        section: "competenza".into(),
        value: Some(json!({"comune": "015146", "posizione": "residente"})),
        key: None,
    });
    store.apply(op).await.unwrap();

    let entita: Vec<EntityRef> = ids.iter().rev().map(|i| EntityRef::Soggetto(*i)).collect();
    let sezioni = vec!["competenza".to_string(), "generalita".to_string()];
    let now = store.sezioni_di(&entita, &sezioni, None).await.unwrap();
    assert_eq!(now.len(), 2);
    assert_eq!(now[0].0, entita[0], "in the caller's order");
    assert_eq!(now[0].1.get("competenza").unwrap()["comune"], "015146");
    assert_eq!(now[0].1.get("generalita").unwrap()["sesso"], "F");
    assert_eq!(now[1].1.get("competenza").unwrap()["comune"], "058091");
    let before = store
        .sezioni_di(&entita, &sezioni[..1], Some(day(2024, 3, 9)))
        .await
        .unwrap();
    assert_eq!(before[0].1.get("competenza").unwrap()["comune"], "058091");
    assert!(
        before[0].1.get("generalita").is_none(),
        "only what was asked"
    );
    assert!(store
        .sezioni_di(&entita, &sezioni, Some(day(2019, 1, 1)))
        .await
        .unwrap()
        .is_empty());

    let q = |valore: &str, dal, al| QueryVersioniCampo {
        sezione: "competenza".into(),
        campo: "comune".into(),
        valore: valore.into(),
        dal,
        al,
    };
    // Rome in March 2024: both were there at its start; one version ends in it.
    let roma = store
        .versioni_per_campo(&q("058091", day(2024, 3, 1), day(2024, 3, 31)))
        .await
        .unwrap();
    assert_eq!(roma.len(), 2);
    let chiusa = roma
        .iter()
        .find(|v| v.entity == EntityRef::Soggetto(ids[1]))
        .unwrap();
    assert_eq!(chiusa.valido_al, Some(day(2024, 3, 10)));
    assert_eq!(chiusa.chiusa_da, Some(op_id));
    // Rome in April: only the one who stayed.
    let aprile = store
        .versioni_per_campo(&q("058091", day(2024, 4, 1), day(2024, 4, 30)))
        .await
        .unwrap();
    assert_eq!(aprile.len(), 1);
    // Milan in March: the arrival, created by the transfer.
    let milano = store
        .versioni_per_campo(&q("015146", day(2024, 3, 1), day(2024, 3, 31)))
        .await
        .unwrap();
    assert_eq!(milano.len(), 1);
    assert_eq!(milano[0].valido_dal, day(2024, 3, 10));
    assert_eq!(milano[0].creata_da, op_id);
    assert!(store
        .versioni_per_campo(&q("015146", day(2024, 1, 1), day(2024, 3, 9)))
        .await
        .unwrap()
        .is_empty());
    let mut cattiva = q("058091", day(2024, 1, 1), day(2024, 1, 1));
    cattiva.campo = "comune') OR ('1'='1".into();
    assert!(store.versioni_per_campo(&cattiva).await.is_err());
}
