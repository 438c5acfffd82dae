//! The municipality's requests and the notifications addressed to it, read back
//! through the service layer (services 3003/3005/3007, REST `/api/v1/notifiche`), on
//! SQLite and on PostgreSQL: how long each stays available (DPCM 194/2014, annex D:
//! registration outcomes one year, notified events 180 days), measured on the
//! registry's clock, and taking a notification.

mod common;

use anpr_domain::caller::Profilo;
use anpr_service::notifiche::{Chiave, Contenuto, Lettura, Selezione, StatoLavorazione};
use anpr_service::operazioni::RispostaOperazione;
use common::{ctx, ids, iscrivi, iscrizione, operatore, Fixture, MILANO};
use serde_json::json;

/// Rome registers a woman (on 2024-12-01), then Milan registers her transfer there
/// (on 2025-01-02): N010 for Rome, queued at the operation's time. Returns the
/// subject's `idANPR` and the transfer's answer.
async fn trasferita_a_milano(
    f: &Fixture,
    cognome: &str,
    nome: &str,
) -> (String, RispostaOperazione) {
    let r = iscrivi(
        f,
        &operatore(),
        &iscrizione(1, cognome, nome, "F", "1990-03-03", "2024-12-01"),
    )
    .await;
    let (soggetto, _) = ids(&r);
    let milano = ctx(Some(MILANO), &[Profilo::OperatoreAnagrafe]);
    let body = json!({
        "idOperazioneComune": "1", "dataDecorrenza": "2025-01-02",
        "soggetti": [{"idSchedaSoggettoANPR": soggetto}],
        "residenza": {"comune": MILANO, "cap": "20121", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Manzoni"}, "numeroCivico": {"numero": "3"}}
    });
    let req = serde_json::from_value(body.clone()).unwrap();
    let t = f
        .registry
        .mutazione_residenza(&milano, &req, &body)
        .await
        .unwrap();
    assert!(t.eseguita, "{}", t.documento);
    (soggetto, t)
}

async fn finestre_di_disponibilita(f: Fixture) {
    let roma = &operatore();
    let (_, t) = trasferita_a_milano(&f, "Verdi", "Giulia").await;
    let registry = &f.registry;
    let notifiche = || Selezione::di_stato(StatoLavorazione::TutteLeNotifiche, 10);
    let richieste = || Selezione::di_stato(StatoLavorazione::Positiva, 10);
    let conta = |sel: Selezione| async move {
        registry
            .richieste_notifiche(roma, &sel, Lettura::IDENTIFICATIVI)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(conta(notifiche()).await, 1);
    assert_eq!(conta(richieste()).await, 1);
    // 179 days on: both still there; 181: the notification is gone, the outcome not.
    f.clock.set("2025-07-08T09:00:00Z");
    assert_eq!(conta(notifiche()).await, 1);
    f.clock.set("2025-07-11T09:00:00Z");
    assert_eq!(conta(notifiche()).await, 0);
    assert_eq!(conta(richieste()).await, 1);
    let singola = registry
        .richiesta_notifica(
            roma,
            Chiave::Anpr(t.id_operazione_anpr),
            None,
            Lettura::IDENTIFICATIVI,
        )
        .await
        .unwrap();
    assert!(singola.is_none(), "{singola:?}");
    // A year and a day on: the registration's outcome is gone too.
    f.clock.set("2026-01-11T09:00:00Z");
    assert_eq!(conta(richieste()).await, 0);
}

async fn prendere_una_notifica(f: Fixture) {
    let roma = operatore();
    let (sara, t) = trasferita_a_milano(&f, "Neri", "Sara").await;
    let milano = ctx(Some(MILANO), &[Profilo::OperatoreAnagrafe]);
    let registry = &f.registry;
    let da_prendere = Selezione::di_stato(StatoLavorazione::NotificheDaPrendere, 10);
    // Contents without taking (REST): still to take.
    let v = registry
        .richieste_notifiche(&roma, &da_prendere, Lettura::CONTENUTI)
        .await
        .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].id_operazione_anpr, t.id_operazione_anpr);
    assert_eq!(v[0].stato, StatoLavorazione::NotificheDaPrendere);
    let Contenuto::Notifica(m) = &v[0].contenuto else {
        panic!("{v:?}")
    };
    assert_eq!(m.message.payload["soggetti"], json!([sara]));
    assert_eq!(m.creato_il.to_rfc3339(), "2025-01-10T09:00:00+00:00");
    // Taken by a delivery (3003): in the answer and from then on.
    let v = registry
        .richieste_notifiche(&roma, &da_prendere, Lettura::CONSEGNA)
        .await
        .unwrap();
    assert_eq!(v[0].stato, StatoLavorazione::NotificheFruite);
    assert!(registry
        .richieste_notifiche(&roma, &da_prendere, Lettura::IDENTIFICATIVI)
        .await
        .unwrap()
        .is_empty());
    // Milan, the sender, reads none; a profile without the permission is refused.
    let milano_tutte = registry
        .richieste_notifiche(
            &milano,
            &Selezione::di_stato(StatoLavorazione::TutteLeNotifiche, 10),
            Lettura::IDENTIFICATIVI,
        )
        .await
        .unwrap();
    assert!(milano_tutte.is_empty());
    let certificatore = ctx(Some(common::ROMA), &[Profilo::OperatoreCertificazione]);
    let e = registry
        .richieste_notifiche(&certificatore, &da_prendere, Lettura::IDENTIFICATIVI)
        .await
        .unwrap_err();
    assert_eq!(e.anomalie()[0].codice, "EA401");
}

on_both_backends!(
    "2025-01-10T09:00:00Z",
    finestre_di_disponibilita,
    prendere_una_notifica
);
