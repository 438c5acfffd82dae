//! Conformance checks of the security directory's storage ([`crate::sicurezza`]), run by
//! every backend with [`conformance_sicurezza_tests!`](crate::conformance_sicurezza_tests)
//! on a fresh store per check.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::sicurezza::{
    CaSicurezza, EsitoMail, GettoneSicurezza, ModificaSicurezza, NuovaMailSicurezza, RigaSicurezza,
    StatoMail, TabellaSicurezza, VoceRegistroSicurezza,
};
use crate::{Store, StoreError};

/// Instantiates every security conformance check as a `#[tokio::test]`; `$fresh` as
/// for [`conformance_tests!`](crate::conformance_tests).
#[macro_export]
macro_rules! conformance_sicurezza_tests {
    ($fresh:expr) => {
        $crate::conformance_sicurezza_tests!(@each $fresh;
            directory_changes_are_versioned_and_reloaded_incrementally,
            a_stale_directory_change_is_refused_and_writes_nothing,
            the_register_only_grows_at_its_end,
            the_ca_is_created_once,
            mails_are_leased_retried_and_closed,
            tokens_expire_and_are_consumed_once,
            failed_logins_are_counted_in_a_window,
            concurrent_directory_changes_serialise
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, guard)) = $fresh.await else { return };
                $crate::conformance_sicurezza::$name(std::sync::Arc::new(store)).await;
                drop(guard);
            }
        )*
    };
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("valid test instant")
}

fn riga(tabella: TabellaSicurezza, chiave: &str, dati: Option<serde_json::Value>) -> RigaSicurezza {
    RigaSicurezza {
        tabella,
        chiave: chiave.into(),
        ente: Some("058091".into()),
        titolare: Some("RSSMRA80A01H501U".into()),
        dati,
    }
}

fn voce(numero: u64, precedente: &str) -> VoceRegistroSicurezza {
    VoceRegistroSicurezza {
        numero,
        dati: json!({"evento": "emesso", "n": numero}),
        hash_precedente: precedente.into(),
        hash: format!("h{numero}"),
    }
}

fn mail(dest: &str, at: DateTime<Utc>) -> NuovaMailSicurezza {
    NuovaMailSicurezza {
        destinatario: dest.into(),
        oggetto: "Carta attivata".into(),
        corpo: "seconda metà del PIN: 1234".into(),
        creata_il: at,
    }
}

pub async fn directory_changes_are_versioned_and_reloaded_incrementally(store: Arc<impl Store>) {
    assert_eq!(store.sicurezza_versione().await.unwrap(), 0);
    let vuoto = store.sicurezza_carica(0).await.unwrap();
    assert_eq!(vuoto.versione, 0);
    assert!(vuoto.righe.is_empty() && vuoto.registro.is_empty());

    let v1 = store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 0,
            righe: vec![
                riga(TabellaSicurezza::Utenti, "U1", Some(json!({"nome": "Uno"}))),
                riga(
                    TabellaSicurezza::Carte,
                    "0580910001",
                    Some(json!({"stato": "richiesta"})),
                ),
                riga(
                    TabellaSicurezza::Enti,
                    "058091",
                    Some(json!({"postazioni": 2})),
                ),
            ],
            registro: vec![voce(1, "0"), voce(2, "h1")],
            ultimo_seriale: 7,
            numero_crl: 3,
            posta: vec![],
        })
        .await
        .unwrap();
    assert_eq!(v1, 1);
    let v2 = store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 1,
            righe: vec![
                riga(
                    TabellaSicurezza::Carte,
                    "0580910001",
                    Some(json!({"stato": "attiva"})),
                ),
                riga(TabellaSicurezza::Utenti, "U1", None),
                riga(
                    TabellaSicurezza::Passkey,
                    "cred-1",
                    Some(json!({"contatore": 0})),
                ),
            ],
            registro: vec![voce(3, "h2")],
            ultimo_seriale: 9,
            numero_crl: 4,
            posta: vec![],
        })
        .await
        .unwrap();
    assert_eq!(v2, 2);
    assert_eq!(store.sicurezza_versione().await.unwrap(), 2);

    let tutto = store.sicurezza_carica(0).await.unwrap();
    assert_eq!(
        (tutto.versione, tutto.ultimo_seriale, tutto.numero_crl),
        (2, 9, 4)
    );
    assert_eq!(tutto.righe.len(), 4, "{:?}", tutto.righe);
    let carta = tutto
        .righe
        .iter()
        .find(|r| r.tabella == TabellaSicurezza::Carte)
        .unwrap();
    assert_eq!(carta.dati, Some(json!({"stato": "attiva"})));
    assert_eq!(carta.ente.as_deref(), Some("058091"));
    assert_eq!(carta.titolare.as_deref(), Some("RSSMRA80A01H501U"));
    // A deletion is a tombstone, so other processes learn of it.
    let utente = tutto
        .righe
        .iter()
        .find(|r| r.tabella == TabellaSicurezza::Utenti)
        .unwrap();
    assert_eq!(utente.dati, None);
    assert_eq!(
        tutto.registro.iter().map(|v| v.numero).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    // Only what version 2 wrote.
    let dopo1 = store.sicurezza_carica(1).await.unwrap();
    let mut chiavi: Vec<_> = dopo1.righe.iter().map(|r| r.chiave.as_str()).collect();
    chiavi.sort_unstable();
    assert_eq!(chiavi, vec!["0580910001", "U1", "cred-1"]);
    assert_eq!(dopo1.registro.len(), 1);
    assert_eq!(dopo1.registro[0].hash_precedente, "h2");
    let niente = store.sicurezza_carica(2).await.unwrap();
    assert!(niente.righe.is_empty() && niente.registro.is_empty());
    assert_eq!(niente.versione, 2);
}

pub async fn a_stale_directory_change_is_refused_and_writes_nothing(store: Arc<impl Store>) {
    store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 0,
            righe: vec![riga(TabellaSicurezza::Utenti, "U1", Some(json!(1)))],
            ..ModificaSicurezza::default()
        })
        .await
        .unwrap();
    let err = store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 0,
            righe: vec![riga(TabellaSicurezza::Utenti, "U2", Some(json!(2)))],
            registro: vec![voce(1, "0")],
            ultimo_seriale: 99,
            numero_crl: 99,
            posta: vec![mail("a@comune.it", t("2026-11-23T10:00:00Z"))],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::ConflittoSicurezza {
                attesa: 0,
                trovata: 1
            }
        ),
        "{err:?}"
    );
    let c = store.sicurezza_carica(0).await.unwrap();
    assert_eq!(c.versione, 1);
    assert_eq!(c.righe.len(), 1);
    assert!(c.registro.is_empty());
    assert_eq!(c.ultimo_seriale, 0);
    assert!(store.sicurezza_posta(None, 10).await.unwrap().is_empty());
}

pub async fn the_register_only_grows_at_its_end(store: Arc<impl Store>) {
    store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 0,
            registro: vec![voce(1, "0")],
            ..ModificaSicurezza::default()
        })
        .await
        .unwrap();
    for (sbagliata, perche) in [
        (vec![voce(1, "0")], "number already used"),
        (vec![voce(3, "h2")], "gap"),
        (vec![voce(2, "altro")], "wrong previous hash"),
        (
            vec![voce(2, "h1"), voce(3, "x")],
            "broken inside the change",
        ),
    ] {
        let err = store
            .sicurezza_salva(ModificaSicurezza {
                versione_attesa: 1,
                registro: sbagliata,
                righe: vec![riga(TabellaSicurezza::Enti, "058091", Some(json!(1)))],
                ..ModificaSicurezza::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{perche}: {err:?}");
    }
    let c = store.sicurezza_carica(0).await.unwrap();
    assert_eq!(c.versione, 1, "nothing of the refused changes stayed");
    assert_eq!(c.registro.len(), 1);
    assert!(c.righe.is_empty());
    store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 1,
            registro: vec![voce(2, "h1"), voce(3, "h2")],
            ..ModificaSicurezza::default()
        })
        .await
        .unwrap();
    assert_eq!(store.sicurezza_carica(0).await.unwrap().registro.len(), 3);
}

pub async fn the_ca_is_created_once(store: Arc<impl Store>) {
    let prima = CaSicurezza {
        certificato_der: vec![1, 2, 3],
        chiave_pem: "chiave-uno".into(),
    };
    let seconda = CaSicurezza {
        certificato_der: vec![9],
        chiave_pem: "chiave-due".into(),
    };
    assert_eq!(store.sicurezza_ca(prima.clone()).await.unwrap(), prima);
    assert_eq!(store.sicurezza_ca(seconda).await.unwrap(), prima);
    assert!(!format!("{prima:?}").contains("chiave-uno"));
}

pub async fn mails_are_leased_retried_and_closed(store: Arc<impl Store>) {
    let t0 = t("2026-11-23T10:00:00Z");
    store
        .sicurezza_salva(ModificaSicurezza {
            versione_attesa: 0,
            posta: vec![
                mail("a@comune.it", t0),
                mail("b@comune.it", t0),
                mail("c@comune.it", t0 + Duration::hours(1)),
            ],
            ..ModificaSicurezza::default()
        })
        .await
        .unwrap();
    let lease = Duration::minutes(5);
    let prese = store.sicurezza_posta_prendi(t0, lease, 10).await.unwrap();
    assert_eq!(
        prese
            .iter()
            .map(|m| m.mail.destinatario.as_str())
            .collect::<Vec<_>>(),
        vec!["a@comune.it", "b@comune.it"],
        "the third is not due yet"
    );
    assert!(prese.iter().all(|m| m.stato == StatoMail::InCoda));
    // Leased: a second worker gets nothing until the lease ends.
    assert!(store
        .sicurezza_posta_prendi(t0 + Duration::minutes(1), lease, 10)
        .await
        .unwrap()
        .is_empty());
    let (a, b) = (prese[0].id, prese[1].id);
    store
        .sicurezza_posta_esito(
            a,
            EsitoMail::Consegnata {
                istante: t0 + Duration::seconds(1),
                corpo_conservato: "[rimosso dopo l'invio]".into(),
            },
        )
        .await
        .unwrap();
    store
        .sicurezza_posta_esito(
            b,
            EsitoMail::Riprova {
                errore: "451 try later".into(),
                riprova_dal: t0 + Duration::minutes(30),
            },
        )
        .await
        .unwrap();
    let ora = t0 + Duration::minutes(10);
    assert!(store
        .sicurezza_posta_prendi(ora, lease, 10)
        .await
        .unwrap()
        .is_empty());
    let di_nuovo = store
        .sicurezza_posta_prendi(t0 + Duration::hours(2), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        di_nuovo.iter().map(|m| m.id).collect::<Vec<_>>().len(),
        2,
        "b after its backoff, c now due"
    );
    assert_eq!(di_nuovo[0].id, b);
    assert_eq!(di_nuovo[0].tentativi, 1);
    assert_eq!(di_nuovo[0].ultimo_errore.as_deref(), Some("451 try later"));
    store
        .sicurezza_posta_esito(
            b,
            EsitoMail::Fallita {
                errore: "550 no such user".into(),
                corpo_conservato: "[rimosso]".into(),
            },
        )
        .await
        .unwrap();
    let consegnate = store
        .sicurezza_posta(Some(StatoMail::Consegnata), 10)
        .await
        .unwrap();
    assert_eq!(consegnate.len(), 1);
    assert_eq!(consegnate[0].mail.corpo, "[rimosso dopo l'invio]");
    assert_eq!(consegnate[0].tentativi, 1);
    assert_eq!(consegnate[0].consegnata_il, Some(t0 + Duration::seconds(1)));
    let fallite = store
        .sicurezza_posta(Some(StatoMail::Fallita), 10)
        .await
        .unwrap();
    assert_eq!(fallite.len(), 1);
    assert_eq!(fallite[0].tentativi, 2);
    assert_eq!(store.sicurezza_posta(None, 10).await.unwrap().len(), 3);
    // A retry of a mail no longer queued, or of an unknown one, is refused.
    assert!(matches!(
        store
            .sicurezza_posta_esito(
                b,
                EsitoMail::Riprova {
                    errore: "x".into(),
                    riprova_dal: t0
                }
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .sicurezza_posta_esito(
                9999,
                EsitoMail::Fallita {
                    errore: "x".into(),
                    corpo_conservato: String::new()
                }
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn tokens_expire_and_are_consumed_once(store: Arc<impl Store>) {
    let t0 = t("2026-11-23T10:00:00Z");
    let g = GettoneSicurezza {
        impronta: "aa".repeat(32),
        tipo: "sessione".into(),
        titolare: Some("RSSMRA80A01H501U".into()),
        ente: Some("058091".into()),
        dati: json!({"profili": ["OPERATORE_ANAGRAFE"]}),
        creato_il: t0,
        scade_il: t0 + Duration::hours(1),
    };
    store.sicurezza_gettone_crea(g.clone()).await.unwrap();
    let letto = store
        .sicurezza_gettone(&g.impronta, "sessione", t0 + Duration::minutes(59))
        .await
        .unwrap();
    assert_eq!(letto.as_ref(), Some(&g));
    assert!(store
        .sicurezza_gettone(&g.impronta, "sfidaWebauthn", t0)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .sicurezza_gettone(&g.impronta, "sessione", t0 + Duration::hours(1))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .sicurezza_gettone_consuma(&g.impronta, "sessione", t0)
            .await
            .unwrap(),
        Some(g.clone())
    );
    assert!(store
        .sicurezza_gettone_consuma(&g.impronta, "sessione", t0)
        .await
        .unwrap()
        .is_none());
    // An expired one is not returned by consuming either, and creating a token prunes
    // the expired ones.
    let vecchio = GettoneSicurezza {
        impronta: "bb".repeat(32),
        scade_il: t0 + Duration::minutes(1),
        ..g.clone()
    };
    store.sicurezza_gettone_crea(vecchio.clone()).await.unwrap();
    assert!(store
        .sicurezza_gettone_consuma(&vecchio.impronta, "sessione", t0 + Duration::minutes(2))
        .await
        .unwrap()
        .is_none());
}

pub async fn failed_logins_are_counted_in_a_window(store: Arc<impl Store>) {
    let t0 = t("2026-11-23T10:00:00Z");
    let finestra = Duration::minutes(15);
    for i in 0..3 {
        let at = t0 + Duration::minutes(i);
        let n = store
            .sicurezza_accesso_fallito("password:A", at, at - finestra)
            .await
            .unwrap();
        assert_eq!(n, u32::try_from(i + 1).unwrap());
    }
    store
        .sicurezza_accesso_fallito("password:B", t0, t0 - finestra)
        .await
        .unwrap();
    assert_eq!(
        store
            .sicurezza_accessi_falliti("password:A", t0 + Duration::minutes(2) - finestra)
            .await
            .unwrap(),
        3
    );
    // Later, the first two have left the window.
    let tardi = t0 + Duration::minutes(16) + Duration::seconds(30);
    assert_eq!(
        store
            .sicurezza_accessi_falliti("password:A", tardi - finestra)
            .await
            .unwrap(),
        1
    );
    store
        .sicurezza_azzera_accessi_falliti("password:A")
        .await
        .unwrap();
    assert_eq!(
        store
            .sicurezza_accessi_falliti("password:A", t0 - finestra)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .sicurezza_accessi_falliti("password:B", t0 - finestra)
            .await
            .unwrap(),
        1
    );
}

pub async fn concurrent_directory_changes_serialise(store: Arc<impl Store>) {
    const N: u64 = 12;
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflitti = 0u32;
            loop {
                let c = store.sicurezza_carica(0).await.unwrap();
                let numero = c.registro.last().map_or(0, |v| v.numero);
                let precedente = c
                    .registro
                    .last()
                    .map_or_else(|| "0".to_owned(), |v| v.hash.clone());
                let esito = store
                    .sicurezza_salva(ModificaSicurezza {
                        versione_attesa: c.versione,
                        righe: vec![riga(
                            TabellaSicurezza::Utenti,
                            &format!("U{i}"),
                            Some(json!(i)),
                        )],
                        registro: vec![VoceRegistroSicurezza {
                            numero: numero + 1,
                            dati: json!(i),
                            hash_precedente: precedente,
                            hash: format!("h-{i}"),
                        }],
                        ultimo_seriale: c.ultimo_seriale + 1,
                        numero_crl: c.numero_crl,
                        posta: vec![],
                    })
                    .await;
                match esito {
                    Ok(_) => return conflitti,
                    Err(StoreError::ConflittoSicurezza { .. }) => conflitti += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = store.sicurezza_carica(0).await.unwrap();
    assert_eq!(c.versione, N);
    assert_eq!(c.ultimo_seriale, N, "no lost update of the counters");
    assert_eq!(c.righe.len(), usize::try_from(N).unwrap());
    assert_eq!(c.registro.len(), usize::try_from(N).unwrap());
    for w in c.registro.windows(2) {
        assert_eq!(w[1].hash_precedente, w[0].hash, "one unbroken chain");
    }
}
