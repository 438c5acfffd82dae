//! The authorisation matrix through the service layer, on SQLite and PostgreSQL: every
//! profile × every permission, and every profile × the use cases that act on a
//! municipality's records or security data, from the own and from another municipality.
//! Everything not allowed is refused with EA401 and audited; municipality A reads
//! nationally but never changes a record of B's competence (EN117). The README's matrix
//! is generated from the code and checked here.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_service::authz::{profili_abilitati, Permesso};
use anpr_service::sicurezza::{AzioneCarta, Sicurezza};
use anpr_service::{Registry, ServiceError};
use anpr_sicurezza::direttorio::{ParametriComune, Utente};
use common::*;
use serde_json::{json, Value};

const PREF_ROMA: &str = "PRFRMO70A01H501A";
const PREF_MILANO: &str = "PRFMLN70A01F205B";
const ALS_ROMA: &str = "LSRMO70A01H501C0";

fn consentito(p: Profilo, perm: Permesso) -> bool {
    perm.pubblico() || profili_abilitati(perm).contains(&p)
}

fn utente(cf: &str) -> Utente {
    Utente {
        codice_fiscale: cf.into(),
        cognome: "Prova".into(),
        nome: "Utente".into(),
        email: format!("{}@comune.example.it", cf.to_lowercase()),
        ruoli: Default::default(),
    }
}

fn contesto(comune: &str, utente: &str, p: Profilo) -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: Some(comune.parse().unwrap()),
        utente: utente.into(),
        profili: BTreeSet::from([p]),
        postazione: None,
        canale: Canale::Rest,
    }
}

fn sistema() -> CallerContext {
    contesto(ROMA, "SISTEMA", Profilo::GestoreSistema)
}

/// The fixture with the security component, its directory in the fixture's store.
async fn con_sicurezza(f: Fixture) -> Fixture {
    let now = anpr_service::clock::Clock::now(&*f.clock);
    let sic = Arc::new(Sicurezza::apri(f.store.clone(), now).await.unwrap());
    f.configura(|r| r.con_sicurezza(sic))
}

async fn ultimo_audit(store: &Arc<dyn anpr_store::Store>) -> (u64, TipoEvento, String) {
    let head = store.audit_head().await.unwrap().map_or(0, |h| h.seq);
    let pagina = store.audit_page(head.saturating_sub(1), 1).await.unwrap();
    let v = pagina.last().unwrap();
    (v.seq, v.voce.evento, v.voce.azione.clone())
}

/// Checks one outcome: allowed ⇒ not an access denial; refused ⇒ EA401 and exactly one
/// new `accessoNegato` audit entry.
async fn verifica_esito<T: std::fmt::Debug>(
    store: &Arc<dyn anpr_store::Store>,
    prima: u64,
    esito: Result<T, ServiceError>,
    atteso: bool,
    cosa: &str,
) {
    match esito {
        Err(ServiceError::AccessoNegato { .. }) => {
            assert!(!atteso, "{cosa}: refused but allowed by the matrix");
            let (n, evento, _) = ultimo_audit(store).await;
            assert_eq!(
                (n, evento),
                (prima + 1, TipoEvento::AccessoNegato),
                "{cosa}"
            );
        }
        Err(e) => {
            assert!(atteso, "{cosa}: expected EA401, got {e:?}");
            assert_ne!(e.anomalie()[0].codice, "EA401", "{cosa}");
        }
        Ok(_) => assert!(atteso, "{cosa}: allowed but refused by the matrix"),
    }
}

async fn numero_audit(store: &Arc<dyn anpr_store::Store>) -> u64 {
    store.audit_head().await.unwrap().map_or(0, |h| h.seq)
}

async fn every_profile_against_every_permission(f: Fixture) {
    let f = con_sicurezza(f).await;
    let (registry, store) = (&f.registry, &f.store);
    for p in Profilo::ALL {
        for perm in Permesso::ALL {
            let ctx = contesto(ROMA, "BNCLRA70A41H501X", p);
            let prima = numero_audit(store).await;
            let esito = registry.autorizza(&ctx, perm, "matrice").await;
            let err = esito.as_ref().err().map(|e| e.anomalie()[0].codice.clone());
            assert_eq!(esito.is_ok(), consentito(p, perm), "{p:?} {perm:?}");
            if let Some(code) = err {
                assert_eq!(code, "EA401");
                let (n, evento, azione) = ultimo_audit(store).await;
                assert_eq!(
                    (n, evento, azione.as_str()),
                    (prima + 1, TipoEvento::AccessoNegato, "matrice")
                );
            }
        }
    }
}

fn iscrizione_roma(n: u64) -> Value {
    // Distinct birth dates give distinct tax codes.
    let nascita = format!("19{:02}-0{}-{:02}", 50 + n % 40, 1 + n % 9, 1 + n % 28);
    iscrizione(n, "Rossi", "Maria", "F", &nascita, "2026-01-10")
}

async fn registra_a_roma(registry: &Registry, n: u64) -> String {
    let body = iscrizione_roma(n);
    let req = serde_json::from_value(body.clone()).unwrap();
    let r = registry
        .iscrizione_altri_motivi(&operatore(), &req, &body)
        .await
        .unwrap();
    assert!(r.eseguita, "{}", r.documento);
    let doc: Value = serde_json::from_str(&r.documento).unwrap();
    doc["soggetti"][0]["idANPR"].as_str().unwrap().to_owned()
}

async fn records_are_read_nationally_and_changed_only_by_their_municipality(f: Fixture) {
    let f = con_sicurezza(f).await;
    let (registry, store) = (&f.registry, &f.store);
    let rossi = registra_a_roma(registry, 1).await;
    let id: anpr_domain::ids::IdAnprSoggetto = rossi.parse().unwrap();
    let mut n = 100;
    for p in Profilo::ALL {
        for (comune, proprio) in [(ROMA, true), (MILANO, false)] {
            let ctx = contesto(comune, "BNCLRA70A41H501X", p);
            let cosa = format!("{p:?} from {comune}");
            // Reading: national for whoever may read.
            let prima = numero_audit(store).await;
            let lettura = registry.leggi_scheda(&ctx, id, None, None).await;
            verifica_esito(
                store,
                prima,
                lettura,
                consentito(p, Permesso::ConsultaScheda),
                &format!("read {cosa}"),
            )
            .await;

            // Removing: only the municipality of competence.
            n += 2;
            let bersaglio = if proprio && consentito(p, Permesso::Cancellazione) {
                // A subject of its own to remove, so the loop keeps its shared one.
                registra_a_roma(registry, n - 1).await
            } else {
                rossi.clone()
            };
            let body = json!({"idOperazioneComune": n.to_string(), "motivoCancellazione": "6", "dataDecorrenza": "2026-06-01", "soggetto": {"idSchedaSoggettoANPR": bersaglio}});
            let req = serde_json::from_value(body.clone()).unwrap();
            let prima = numero_audit(store).await;
            let esito = registry.cancellazione_altri_motivi(&ctx, &req, &body).await;
            match esito {
                Ok(r) if !proprio => {
                    let doc: Value = serde_json::from_str(&r.documento).unwrap();
                    assert!(!r.eseguita, "{cosa}: changed another municipality's record");
                    assert!(doc.to_string().contains("EN117"), "{cosa}: {doc}");
                }
                Ok(r) => assert!(r.eseguita, "{cosa}: {}", r.documento),
                Err(ServiceError::Rifiutata { anomalie, .. }) if !proprio => {
                    assert_eq!(anomalie[0].codice, "EN117", "{cosa}");
                }
                other => {
                    verifica_esito(store, prima, other, false, &format!("remove {cosa}")).await
                }
            }
        }
    }
    // The shared subject is still there, unchanged by anyone but Rome.
    let r = registry
        .leggi_scheda(&operatore(), id, None, None)
        .await
        .unwrap();
    assert_eq!(
        r.scheda.competenza.as_ref().unwrap().comune.to_string(),
        ROMA
    );
}

async fn security_console_is_scoped_to_the_own_body(f: Fixture) {
    let f = con_sicurezza(f).await;
    let (registry, store) = (&f.registry, &f.store);
    let profili = |ps: &[Profilo]| ps.iter().copied().collect::<BTreeSet<_>>();
    // Registry staff census both prefectures, Rome's ALS with a card, Rome's workstations.
    registry
        .censisci_utente(
            &sistema(),
            "058",
            utente(PREF_ROMA),
            profili(&[Profilo::AmministratorePrefettura]),
        )
        .await
        .unwrap();
    registry
        .censisci_utente(
            &sistema(),
            "015",
            utente(PREF_MILANO),
            profili(&[Profilo::AmministratorePrefettura]),
        )
        .await
        .unwrap();
    registry
        .censisci_utente(
            &sistema(),
            ROMA,
            utente(ALS_ROMA),
            profili(&[Profilo::AmministratoreSicurezza]),
        )
        .await
        .unwrap();
    let carta = registry
        .richiedi_carta(&sistema(), ROMA, ALS_ROMA)
        .await
        .unwrap();
    registry
        .dichiara_postazioni(&sistema(), ROMA, 1)
        .await
        .unwrap();

    let mut k = 0;
    for p in Profilo::ALL {
        for (comune, pref, proprio) in [(ROMA, PREF_ROMA, true), (MILANO, PREF_MILANO, false)] {
            let ctx = contesto(comune, pref, p);
            let ammesso =
                |perm: Permesso| consentito(p, perm) && (proprio || p == Profilo::GestoreSistema);
            let cosa = |uc: &str| format!("{uc} by {p:?} from {comune}");
            k += 1;
            let nuovo = format!("NUOVO{k:011}");
            let prima = numero_audit(store).await;
            let e = registry
                .censisci_utente(
                    &ctx,
                    ROMA,
                    utente(&nuovo),
                    profili(&[Profilo::OperatoreConsultazione]),
                )
                .await;
            verifica_esito(
                store,
                prima,
                e,
                ammesso(Permesso::CensimentoUtenti),
                &cosa("census"),
            )
            .await;

            let prima = numero_audit(store).await;
            let e = registry.dichiara_postazioni(&ctx, ROMA, 1).await;
            verifica_esito(
                store,
                prima,
                e,
                ammesso(Permesso::CensimentoUtenti),
                &cosa("workstations"),
            )
            .await;

            for azione in [
                AzioneCarta::AvvioProduzione,
                AzioneCarta::Consegna,
                AzioneCarta::Registrazione,
                AzioneCarta::Blocco,
            ] {
                let prima = numero_audit(store).await;
                let e = registry.evento_carta(&ctx, &carta, azione).await;
                verifica_esito(
                    store,
                    prima,
                    e,
                    ammesso(azione.permesso()),
                    &cosa(azione.nome()),
                )
                .await;
            }

            let prima = numero_audit(store).await;
            let e = registry.emetti_certificati_postazione(&ctx, ROMA).await;
            verifica_esito(
                store,
                prima,
                e,
                ammesso(Permesso::GestionePostazioni),
                &cosa("certificates"),
            )
            .await;

            let prima = numero_audit(store).await;
            let e = registry
                .imposta_parametri(&ctx, ROMA, ParametriComune::default())
                .await;
            verifica_esito(
                store,
                prima,
                e,
                ammesso(Permesso::ParametriComune),
                &cosa("parameters"),
            )
            .await;

            let prima = numero_audit(store).await;
            let e = registry
                .imposta_indirizzi_autorizzati(&ctx, ROMA, vec!["10.0.0.1".parse().unwrap()])
                .await;
            verifica_esito(
                store,
                prima,
                e,
                ammesso(Permesso::IndirizziAutorizzati),
                &cosa("authorised IPs"),
            )
            .await;

            let prima = numero_audit(store).await;
            let e = registry
                .concedi_password_giornaliera(&ctx, ROMA, ALS_ROMA)
                .await;
            verifica_esito(
                store,
                prima,
                e,
                ammesso(Permesso::GestioneCarte),
                &cosa("daily password"),
            )
            .await;
        }
    }
    // Allowed changes were audited as administration events.
    let voci = store.audit_page(0, 10_000).await.unwrap();
    assert!(voci
        .iter()
        .any(|v| v.voce.evento == TipoEvento::Amministrazione
            && v.voce.azione == "certificatiEmessi"));
    assert!(voci
        .iter()
        .any(|v| v.voce.evento == TipoEvento::Amministrazione
            && v.voce.azione == "cartaInProduzione"));
}

async fn a_daily_password_stops_at_midnight_and_a_replaced_card_at_once(f: Fixture) {
    let f = con_sicurezza(f).await;
    let (registry, store, rest) = (&f.registry, &f.store, &f);
    let profili = |ps: &[Profilo]| ps.iter().copied().collect::<BTreeSet<_>>();
    registry
        .censisci_utente(
            &sistema(),
            ROMA,
            utente(ALS_ROMA),
            profili(&[Profilo::AmministratoreSicurezza, Profilo::OperatoreAnagrafe]),
        )
        .await
        .unwrap();
    let als = contesto(ROMA, ALS_ROMA, Profilo::AmministratoreSicurezza);

    // 22:30 in Rome (CET): the password works until midnight in Rome, 23:00 UTC.
    rest.clock.set("2026-11-23T21:30:00Z");
    let pw = registry
        .concedi_password_giornaliera(&als, ROMA, ALS_ROMA)
        .await
        .unwrap();
    let ctx = registry
        .accedi_con_password(Ambiente::Test, ROMA, ALS_ROMA, &pw, Canale::Web)
        .await
        .unwrap();
    assert!(ctx.has(Profilo::OperatoreAnagrafe));
    rest.clock.set("2026-11-23T22:59:59Z");
    assert!(registry
        .accedi_con_password(Ambiente::Test, ROMA, ALS_ROMA, &pw, Canale::Web)
        .await
        .is_ok());
    rest.clock.set("2026-11-23T23:00:00Z");
    let err = registry
        .accedi_con_password(Ambiente::Test, ROMA, ALS_ROMA, &pw, Canale::Web)
        .await
        .unwrap_err();
    assert_eq!(err.anomalie()[0].codice, "EV206");
    let (_, evento, azione) = ultimo_audit(store).await;
    assert_eq!(
        (evento, azione.as_str()),
        (TipoEvento::Amministrazione, "accessoFallito")
    );

    // The card: produced, delivered, registered by the ALS (here the mayor's delegate).
    let numero = registry
        .richiedi_carta(&sistema(), ROMA, ALS_ROMA)
        .await
        .unwrap();
    registry
        .evento_carta(&sistema(), &numero, AzioneCarta::AvvioProduzione)
        .await
        .unwrap();
    registry
        .evento_carta(&sistema(), &numero, AzioneCarta::ArrivoInPrefettura)
        .await
        .unwrap();
    registry
        .censisci_utente(
            &sistema(),
            "058",
            utente(PREF_ROMA),
            profili(&[Profilo::AmministratorePrefettura]),
        )
        .await
        .unwrap();
    let pref = CallerContext {
        comune: None,
        ..contesto(ROMA, PREF_ROMA, Profilo::AmministratorePrefettura)
    };
    registry
        .evento_carta(&pref, &numero, AzioneCarta::Consegna)
        .await
        .unwrap();
    let esito = registry
        .evento_carta(&als, &numero, AzioneCarta::Registrazione)
        .await
        .unwrap();
    assert_eq!(esito.stato, "attiva");
    assert_eq!(
        esito.mail_inviate,
        vec![format!("{}@comune.example.it", ALS_ROMA.to_lowercase())]
    );

    let sic = registry.sicurezza_configurata().unwrap().clone();
    let cert_vecchio = {
        let d = sic.direttorio();
        let s = d.carta(&numero).unwrap().seriale_certificato.unwrap();
        d.certificati[&s].emesso.der.clone()
    };
    let ctx = registry
        .chiamante_da_certificato(Ambiente::Test, &cert_vecchio, Canale::Rest)
        .await
        .unwrap();
    assert_eq!(ctx.utente, ALS_ROMA);
    assert!(ctx.has(Profilo::AmministratoreSicurezza));

    // Blocked: refused at once (and on the CRL as a hold); unblocked: works again.
    registry
        .evento_carta(&als, &numero, AzioneCarta::Blocco)
        .await
        .unwrap();
    let err = registry
        .chiamante_da_certificato(Ambiente::Test, &cert_vecchio, Canale::Rest)
        .await
        .unwrap_err();
    assert_eq!(err.anomalie()[0].codice, "EV205");
    let adesso = anpr_service::clock::Clock::now(&*rest.clock);
    assert_eq!(
        sic.fiducia()
            .verifica(&cert_vecchio, adesso)
            .unwrap_err()
            .codice(),
        "EV226"
    );
    registry
        .evento_carta(&als, &numero, AzioneCarta::Sblocco)
        .await
        .unwrap();
    sic.fiducia().verifica(&cert_vecchio, adesso).unwrap();
    assert!(registry
        .chiamante_da_certificato(Ambiente::Test, &cert_vecchio, Canale::Rest)
        .await
        .is_ok());

    let sost = registry
        .evento_carta(&als, &numero, AzioneCarta::Sostituzione)
        .await
        .unwrap();
    assert_eq!(sost.stato, "sostituita");
    let nuova = sost.nuova_carta.unwrap();
    // At once: the old card's certificate no longer identifies anyone and is on the CRL.
    let err = registry
        .chiamante_da_certificato(Ambiente::Test, &cert_vecchio, Canale::Rest)
        .await
        .unwrap_err();
    assert_eq!(err.anomalie()[0].codice, "EV205");
    let (_, _, azione) = ultimo_audit(store).await;
    assert_eq!(azione, "accessoFallito");
    let adesso = anpr_service::clock::Clock::now(&*rest.clock);
    assert_eq!(
        sic.fiducia()
            .verifica(&cert_vecchio, adesso)
            .unwrap_err()
            .codice(),
        "EV226"
    );
    // The new card is on its way (produced; registered later by the ALS).
    assert_eq!(
        sic.direttorio().carta(&nuova).unwrap().stato.nome(),
        "inProduzione"
    );
    // One person, one card: a further request is refused.
    let err = registry
        .richiedi_carta(&sistema(), ROMA, ALS_ROMA)
        .await
        .unwrap_err();
    assert_eq!(err.anomalie()[0].codice, "EV203");
}

on_both_backends!(
    "2026-11-23T10:00:00Z",
    every_profile_against_every_permission,
    records_are_read_nationally_and_changed_only_by_their_municipality,
    security_console_is_scoped_to_the_own_body,
    a_daily_password_stops_at_midnight_and_a_replaced_card_at_once,
);

/// The README's permission matrix is the code's.
#[test]
fn readme_matrix_is_current() {
    let mut t = String::from("| permission |");
    for p in Profilo::ALL {
        t.push_str(&format!(" {} |", p.nome()));
    }
    t.push_str("\n|---|");
    for _ in Profilo::ALL {
        t.push_str(":-:|");
    }
    t.push('\n');
    for perm in Permesso::ALL {
        let nome = serde_json::to_value(perm)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        t.push_str(&format!("| `{nome}` |"));
        for p in Profilo::ALL {
            t.push_str(if perm.pubblico() {
                " pub |"
            } else if consentito(p, perm) {
                " ✓ |"
            } else {
                " |"
            });
        }
        t.push('\n');
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let inizio = "<!-- matrice-permessi:inizio -->\n";
    let fine = "<!-- matrice-permessi:fine -->";
    let a = readme.find(inizio).map(|i| i + inizio.len());
    let b = readme.find(fine);
    let attuale = a.zip(b).map(|(a, b)| &readme[a..b]);
    if attuale != Some(t.as_str()) {
        let nuovo = std::env::temp_dir().join("anpr-matrice-permessi.md");
        std::fs::write(&nuovo, &t).unwrap();
        panic!(
            "README permission matrix is stale; the current one is in {}",
            nuovo.display()
        );
    }
}
