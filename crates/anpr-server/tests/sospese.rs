//! Suspended operations over HTTP (SPEC M-2.5), on SQLite and PostgreSQL: save, list,
//! resume, update and delete under the owner/super-user rule; blocking of conflicting
//! operations (a 1002 for the same codice fiscale, an annulment touching the subject);
//! completion inside the operation's own transaction.

mod support;

use anpr_service::sospese::{
    CODICE_RICHIESTA_SOSPESA_NON_VALIDA as NON_VALIDA,
    CODICE_SERVIZIO_NON_SOSPENDIBILE as NON_SOSPENDIBILE,
    CODICE_SOGGETTO_NON_DEL_COMUNE as NON_DEL_COMUNE, CODICE_SOSPESA_ALTRUI as ALTRUI,
    CODICE_SOSPESA_INESISTENTE as INESISTENTE, CODICE_SOSPESA_IN_CONFLITTO as CONFLITTO,
};
use serde_json::{json, Value};
use support::{
    iscrizione, start, Backend, Server, ALTRO_COMUNE, ANAGRAFE_A, ANAGRAFE_B, CONSULTAZIONE, SUPER,
};

const SOSPESE: &str = "/api/v1/operazioni-sospese";

async fn codice_fiscale(
    s: &Server,
    cognome: &str,
    nome: &str,
    sesso: &str,
    nascita: &str,
) -> String {
    let r = s
        .post(
            ANAGRAFE_A,
            "/api/v1/codice-fiscale/calcola",
            &json!({"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.json["codiceFiscale"].as_str().unwrap().to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["operazioniSospese"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["idOperazioneSospesa"].as_str().unwrap().to_owned())
        .collect()
}

async fn scenario(backend: Backend) {
    let Some(s) = start(backend).await else {
        return;
    };
    let cf = codice_fiscale(&s, "Rossi", "Mario", "M", "1980-01-01").await;
    let mut parziale = iscrizione(1, "Rossi", "Mario", "M", "1980-01-01");
    parziale["generalita"]["codiceFiscale"] = json!(cf);
    parziale.as_object_mut().unwrap().remove("residenza");

    // A saves a registration part-way; the codice fiscale comes from the request.
    let saved = s
        .post(
            ANAGRAFE_A,
            SOSPESE,
            &json!({"codiceServizio": "1002", "richiesta": parziale, "note": "manca l'indirizzo"}),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.raw);
    let id = saved.json["idOperazioneSospesa"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(saved.json["codiceFiscale"], json!(cf));
    assert_eq!(saved.json["utente"], json!(ANAGRAFE_A.utente));
    assert_eq!(saved.json["richiesta"], parziale);
    let path = format!("{SOSPESE}/{id}");

    // Listing: own ones, no saved request in the list.
    let mine = s.get(ANAGRAFE_A, SOSPESE).await;
    assert_eq!(mine.status, 200, "{}", mine.raw);
    assert_eq!(ids(&mine.json), vec![id.clone()]);
    assert_eq!(mine.json["operazioniSospese"][0]["richiesta"], Value::Null);
    assert_eq!(
        ids(&s
            .get(ANAGRAFE_A, &format!("{SOSPESE}?codiceServizio=5008"))
            .await
            .json),
        Vec::<String>::new()
    );
    // Another operator sees none of them and may not touch A's.
    assert_eq!(
        ids(&s.get(ANAGRAFE_B, SOSPESE).await.json),
        Vec::<String>::new()
    );
    s.get(ANAGRAFE_B, &path).await.atteso(422, &[ALTRUI]);
    s.delete(ANAGRAFE_B, &path).await.atteso(422, &[ALTRUI]);
    s.post(
        ANAGRAFE_B,
        &format!("{SOSPESE}/ricerca"),
        &json!({"utente": ANAGRAFE_A.utente}),
    )
    .await
    .atteso(422, &[ALTRUI]);
    // The super-user sees all of the municipality's, with filters in the body.
    let all = s.get(SUPER, SOSPESE).await;
    assert_eq!(ids(&all.json), vec![id.clone()]);
    let by_cf = s
        .post(
            SUPER,
            &format!("{SOSPESE}/ricerca"),
            &json!({"codiceFiscale": cf}),
        )
        .await;
    assert_eq!(ids(&by_cf.json), vec![id.clone()], "{}", by_cf.raw);
    let resumed = s.get(SUPER, &path).await;
    assert_eq!(resumed.status, 200, "{}", resumed.raw);
    assert_eq!(resumed.json["richiesta"], parziale);
    // Another municipality: it does not exist.
    s.get(ALTRO_COMUNE, &path).await.atteso(404, &["EV404"]);
    assert_eq!(
        ids(&s.get(ALTRO_COMUNE, SOSPESE).await.json),
        Vec::<String>::new()
    );
    // Profiles without the permission.
    s.get(CONSULTAZIONE, SOSPESE).await.atteso(403, &["EA401"]);
    s.get(ANAGRAFE_A, &format!("{SOSPESE}/abc"))
        .await
        .atteso(400, &["EV001"]);

    // A updates it: new content, same id, owner and creation time.
    let mut completa = iscrizione(1, "Rossi", "Mario", "M", "1980-01-01");
    completa["generalita"]["codiceFiscale"] = json!(cf);
    let updated = s
        .post(
            ANAGRAFE_A,
            SOSPESE,
            &json!({"idOperazioneSospesa": id, "codiceServizio": "1002", "richiesta": completa}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.raw);
    assert_eq!(updated.json["idOperazioneSospesa"], json!(id));
    assert_eq!(updated.json["creataIl"], saved.json["creataIl"]);
    assert_eq!(updated.json["note"], Value::Null);
    s.post(
        ANAGRAFE_B,
        SOSPESE,
        &json!({"idOperazioneSospesa": id, "codiceServizio": "1002", "richiesta": {}}),
    )
    .await
    .atteso(422, &[ALTRUI]);
    s.post(
        ANAGRAFE_A,
        SOSPESE,
        &json!({"idOperazioneSospesa": id, "codiceServizio": "A002", "richiesta": {}}),
    )
    .await
    .atteso(422, &[NON_SOSPENDIBILE]);

    // What cannot be saved.
    s.post(
        ANAGRAFE_A,
        SOSPESE,
        &json!({"codiceServizio": "1002", "richiesta": [1, 2]}),
    )
    .await
    .atteso(422, &[NON_VALIDA]);
    s.post(
        ANAGRAFE_A,
        SOSPESE,
        &json!({"codiceServizio": "1002", "richiesta": {"x": "a".repeat(300 * 1024)}}),
    )
    .await
    .atteso(422, &[NON_VALIDA]);
    s.post(
        ANAGRAFE_A,
        SOSPESE,
        &json!({"codiceServizio": "5005", "richiesta": {}}),
    )
    .await
    .atteso(422, &[NON_SOSPENDIBILE]);
    s.post(
        ANAGRAFE_A,
        SOSPESE,
        &json!({"codiceServizio": "5008", "richiesta": {}, "idSchedaSoggettoANPR": "999999"}),
    )
    .await
    .atteso(422, &[NON_DEL_COMUNE]);
    s.post(
        ANAGRAFE_A,
        SOSPESE,
        &json!({"codiceServizio": "1002", "richiesta": {}, "idOperazioneSospesa": "424242"}),
    )
    .await
    .atteso(422, &[INESISTENTE]);
    let bad_cf = s
        .post(
            ANAGRAFE_A,
            SOSPESE,
            &json!({"codiceServizio": "1002", "richiesta": {}, "codiceFiscale": "RSSMRA80A01H501X"}),
        )
        .await;
    assert_eq!(bad_cf.status, 422, "{}", bad_cf.raw);
    assert_eq!(bad_cf.json["anomalie"][0]["campo"], "codiceFiscale");
    s.post(ANAGRAFE_A, SOSPESE, &json!({"codiceServizio": "1002"}))
        .await
        .atteso(400, &["EV001"]);

    // B registers the same person: blocked while A's suspended operation exists. The
    // refusal is an operation outcome, stored for replay.
    let blocked = s
        .post(
            ANAGRAFE_B,
            "/api/v1/operazioni/1002",
            &iscrizione(5, "Rossi", "Mario", "M", "1980-01-01"),
        )
        .await;
    blocked.atteso(422, &[CONFLITTO]);
    let testo = blocked.json["anomalie"][0]["testo"].as_str().unwrap();
    assert!(
        testo.contains(&id) && testo.contains("1002") && testo.contains(ANAGRAFE_A.utente),
        "{testo}"
    );
    assert_eq!(blocked.json["anomalie"][0]["campo"], "codiceFiscale");
    let again = s
        .post(
            ANAGRAFE_B,
            "/api/v1/operazioni/1002",
            &iscrizione(5, "Rossi", "Mario", "M", "1980-01-01"),
        )
        .await;
    assert_eq!((again.status, &again.raw), (422, &blocked.raw));
    // B cannot complete A's suspended operation either.
    let mut by_b = iscrizione(6, "Rossi", "Mario", "M", "1980-01-01");
    by_b["idOperazioneSospesa"] = json!(id);
    s.post(ANAGRAFE_B, "/api/v1/operazioni/1002", &by_b)
        .await
        .atteso(422, &[ALTRUI]);

    // A completes it: the registration is applied and the suspended operation is gone
    // in the same transaction.
    let mut by_a = iscrizione(7, "Rossi", "Mario", "M", "1980-01-01");
    by_a["idOperazioneSospesa"] = json!(id);
    let done = s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &by_a).await;
    assert_eq!(done.status, 200, "{}", done.raw);
    let soggetto = done.json["soggetti"][0]["idANPR"]
        .as_str()
        .unwrap()
        .to_owned();
    let op_iscrizione = done.json["idOperazioneANPR"].as_str().unwrap().to_owned();
    s.get(ANAGRAFE_A, &path).await.atteso(404, &["EV404"]);
    assert_eq!(ids(&s.get(SUPER, SOSPESE).await.json), Vec::<String>::new());
    // Completing it again: it no longer exists.
    let mut twice = iscrizione(8, "Verdi", "Luca", "M", "1990-01-01");
    twice["idOperazioneSospesa"] = json!(id);
    s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &twice)
        .await
        .atteso(422, &[INESISTENTE]);
    // A suspended A002 cannot be completed by a 1002.
    let aire = s
        .post(
            ANAGRAFE_A,
            SOSPESE,
            &json!({"codiceServizio": "A002", "richiesta": {}}),
        )
        .await;
    let aire_id = aire.json["idOperazioneSospesa"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut wrong = iscrizione(9, "Verdi", "Luca", "M", "1990-01-01");
    wrong["idOperazioneSospesa"] = json!(aire_id);
    s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &wrong)
        .await
        .atteso(422, &[NON_SOSPENDIBILE]);

    // A suspended change of all data on the registered subject blocks every operation
    // on that subject, here the annulment of its registration, until it is deleted.
    let change = s
        .post(
            ANAGRAFE_B,
            SOSPESE,
            &json!({"codiceServizio": "5008", "idSchedaSoggettoANPR": soggetto, "richiesta": {"generalita": {"nome": "Mario Luigi"}}}),
        )
        .await;
    assert_eq!(change.status, 200, "{}", change.raw);
    assert_eq!(change.json["codiceFiscale"], Value::Null);
    let change_id = change.json["idOperazioneSospesa"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "10", "idOperazioneANPR": op_iscrizione}),
        )
        .await;
    refused.atteso(422, &[CONFLITTO]);
    assert_eq!(refused.json["anomalie"][0]["campo"], "idSchedaSoggettoANPR");
    assert_eq!(refused.json["anomalie"][0]["valore"], json!(soggetto));
    // The super-user may delete B's; then the annulment goes through.
    let del = s.delete(SUPER, &format!("{SOSPESE}/{change_id}")).await;
    assert_eq!(del.status, 200, "{}", del.raw);
    s.delete(SUPER, &format!("{SOSPESE}/{change_id}"))
        .await
        .atteso(404, &["EV404"]);
    let annulled = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "11", "idOperazioneANPR": op_iscrizione}),
        )
        .await;
    assert_eq!(annulled.status, 200, "{}", annulled.raw);

    // Every save, delete, read and operation is in an intact audit chain.
    assert!(s.audit_intatto().await > 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_operations_on_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_operations_on_postgres() {
    scenario(Backend::Postgres).await;
}
