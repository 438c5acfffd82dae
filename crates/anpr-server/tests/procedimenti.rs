//! Administrative proceedings over HTTP (service 1014, SPEC M-2.6), on SQLite and
//! PostgreSQL: opening with linked subjects and operations, state changes, links and
//! unlinks, closing, the ANPR refusal codes, idempotent replay, search by municipality,
//! state, subject, operation, period and as at a date, and newest-first annulment.

mod support;

use anpr_service::operazioni::{
    CODICE_DECORRENZA_ANTERIORE as DECORRENZA_ANTERIORE, CODICE_NON_ULTIMA as NON_ULTIMA,
};
use anpr_service::procedimenti::{
    CODICE_CAMPO_NON_AMMESSO as CAMPO_NON_AMMESSO, CODICE_COLLEGAMENTO_OPERAZIONE as COLLEGAMENTO,
    CODICE_INNESCO_INESISTENTE as INNESCO_INESISTENTE,
    CODICE_OPERAZIONE_NON_COLLEGABILE as NON_COLLEGABILE,
    CODICE_STATO_INESISTENTE as STATO_INESISTENTE, CODICE_STATO_NON_AMMESSO as STATO_NON_AMMESSO,
};
use serde_json::{json, Value};
use support::{
    iscrizione, start, Backend, Server, ALTRO_COMUNE, ANAGRAFE_A, CERTIFICAZIONE, CONSULTAZIONE,
};

const OP: &str = "/api/v1/operazioni/1014";
const RICERCA: &str = "/api/v1/procedimenti/ricerca";

fn richiesta(id_comune: u64, procedimento: Value) -> Value {
    json!({"idOperazioneComune": id_comune.to_string(), "procedimentoIstruttoria": procedimento})
}

fn numeri(esito: &Value) -> Vec<String> {
    esito["procedimenti"]
        .as_array()
        .unwrap_or_else(|| panic!("{esito}"))
        .iter()
        .map(|p| p["numeroPraticaAnpr"].as_str().unwrap().to_owned())
        .collect()
}

async fn cerca(s: &Server, filtri: Value) -> Value {
    let r = s.post(ANAGRAFE_A, RICERCA, &filtri).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.json
}

async fn scenario(backend: Backend) {
    let Some(s) = start(backend).await else {
        return;
    };
    // Two residents, registered by 1002.
    let r1 = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1002",
            &iscrizione(1, "Rossi", "Mario", "M", "1980-01-01"),
        )
        .await;
    assert_eq!(r1.status, 200, "{}", r1.raw);
    let s1 = r1.json["soggetti"][0]["idANPR"]
        .as_str()
        .unwrap()
        .to_owned();
    let op1 = r1.json["idOperazioneANPR"].as_str().unwrap().to_owned();
    let r2 = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1002",
            &iscrizione(2, "Bianchi", "Anna", "F", "1982-05-10"),
        )
        .await;
    assert_eq!(r2.status, 200, "{}", r2.raw);
    let s2 = r2.json["soggetti"][0]["idANPR"]
        .as_str()
        .unwrap()
        .to_owned();
    let cf2 = {
        let r = s
            .post(
                ANAGRAFE_A,
                "/api/v1/soggetti/consulta",
                &json!({"idANPR": s2}),
            )
            .await;
        r.json["scheda"]["codiceFiscale"]["codFiscale"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", r.raw))
            .to_owned()
    };

    // Open a proceeding for a residence change, with s1 and the registration linked.
    let mut apertura = richiesta(
        10,
        json!({"tipoOperazione": "I", "numeroPraticaComune": "PR-2024 1", "motivoAvvio": "6",
               "dataStato": "2024-01-10", "statoProcedimento": "1"}),
    );
    apertura["generalitaPerRicerca"] = json!([{"idSchedaSoggettoANPR": s1, "cognome": "ROSSI"}]);
    apertura["operazioniCollegate"] = json!([op1]);
    let opened = s.post(ANAGRAFE_A, OP, &apertura).await;
    assert_eq!(opened.status, 200, "{}", opened.raw);
    assert_eq!(opened.json["esito"], "OK");
    assert_eq!(opened.json["decorrenza"], "2024-01-10");
    let p = numeri(&opened.json).remove(0);
    let op_apertura = opened.json["idOperazioneANPR"].as_str().unwrap().to_owned();
    // Replay: the same bytes.
    let replay = s.post(ANAGRAFE_A, OP, &apertura).await;
    assert_eq!((replay.status, &replay.raw), (200, &opened.raw));

    // Refusals of an opening.
    let open = |id: u64, extra: Value| {
        let mut base = json!({"tipoOperazione": "I", "motivoAvvio": "6", "dataStato": "2024-01-10", "statoProcedimento": "1"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        richiesta(id, base)
    };
    s.post(ANAGRAFE_A, OP, &open(11, json!({"numeroPraticaAnpr": p})))
        .await
        .atteso(422, &["EHR03"]);
    let mut no_motivo = open(12, json!({}));
    no_motivo["procedimentoIstruttoria"]
        .as_object_mut()
        .unwrap()
        .remove("motivoAvvio");
    s.post(ANAGRAFE_A, OP, &no_motivo)
        .await
        .atteso(422, &["EN191"]);
    s.post(ANAGRAFE_A, OP, &open(13, json!({"statoProcedimento": "3"})))
        .await
        .atteso(422, &[STATO_NON_AMMESSO]);
    s.post(ANAGRAFE_A, OP, &open(14, json!({"statoProcedimento": "9"})))
        .await
        .atteso(422, &[STATO_INESISTENTE]);
    s.post(ANAGRAFE_A, OP, &open(15, json!({"motivoAvvio": "77"})))
        .await
        .atteso(422, &[INNESCO_INESISTENTE]);
    s.post(
        ANAGRAFE_A,
        OP,
        &open(16, json!({"numeroPraticaComune": "PR-2024 1"})),
    )
    .await
    .atteso(422, &["EN151"]);
    s.post(ANAGRAFE_A, OP, &open(17, json!({"tipoOperazione": "X"})))
        .await
        .atteso(422, &["EHR01"]);
    s.post(
        ANAGRAFE_A,
        OP,
        &open(18, json!({"dataStato": "2999-01-01"})),
    )
    .await
    .atteso(422, &["EV003"]);
    s.post(ANAGRAFE_A, OP, &open(19, json!({"esitoChiusura": "C"})))
        .await
        .atteso(422, &[CAMPO_NON_AMMESSO]);
    let mut iscr = open(20, json!({"motivoAvvio": "2"}));
    iscr["generalitaPerRicerca"] = json!([{"idSchedaSoggettoANPR": s2}]);
    s.post(ANAGRAFE_A, OP, &iscr).await.atteso(422, &["EN128"]);
    // s1 is already in an open proceeding started by the same event.
    let mut doppio = open(21, json!({}));
    doppio["generalitaPerRicerca"] = json!([{"idSchedaSoggettoANPR": s1}]);
    let dup = s.post(ANAGRAFE_A, OP, &doppio).await;
    dup.atteso(422, &["EN176"]);
    assert!(
        dup.json["anomalie"][0]["testo"]
            .as_str()
            .unwrap()
            .contains("2024-01-10"),
        "{}",
        dup.raw
    );
    let mut ignoto = open(22, json!({}));
    ignoto["generalitaPerRicerca"] = json!([{"codiceFiscale": "VRDLCU90A01H501X"}]);
    let r = s.post(ANAGRAFE_A, OP, &ignoto).await;
    assert_eq!(r.status, 422, "{}", r.raw);
    let mut nome_diverso = open(23, json!({}));
    nome_diverso["generalitaPerRicerca"] = json!([{"idSchedaSoggettoANPR": s2, "nome": "Maria"}]);
    s.post(ANAGRAFE_A, OP, &nome_diverso)
        .await
        .atteso(422, &["EN192"]);
    let mut op_ignota = open(24, json!({}));
    op_ignota["operazioniCollegate"] = json!(["987654"]);
    s.post(ANAGRAFE_A, OP, &op_ignota)
        .await
        .atteso(422, &[NON_COLLEGABILE]);
    // A refusal is stored: its replay is identical.
    let first = s.post(ANAGRAFE_A, OP, &op_ignota).await;
    let second = s.post(ANAGRAFE_A, OP, &op_ignota).await;
    assert_eq!(first.raw, second.raw);

    // Changes: state 3 (investigation opened) on 1 February.
    let change = |id: u64, extra: Value| {
        let mut base = json!({"tipoOperazione": "M", "numeroPraticaAnpr": p, "dataStato": "2024-02-01", "statoProcedimento": "3"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        richiesta(id, base)
    };
    let m = s.post(ANAGRAFE_A, OP, &change(30, json!({}))).await;
    assert_eq!(m.status, 200, "{}", m.raw);
    assert_eq!(numeri(&m.json), vec![p.clone()]);
    s.post(
        ANAGRAFE_A,
        OP,
        &change(31, json!({"dataStato": "2024-01-20"})),
    )
    .await
    .atteso(422, &[DECORRENZA_ANTERIORE]);
    let mut senza_numero = change(32, json!({}));
    senza_numero["procedimentoIstruttoria"]
        .as_object_mut()
        .unwrap()
        .remove("numeroPraticaAnpr");
    s.post(ANAGRAFE_A, OP, &senza_numero)
        .await
        .atteso(422, &["EN247"]);
    s.post(
        ANAGRAFE_A,
        OP,
        &change(33, json!({"numeroPraticaAnpr": "424242"})),
    )
    .await
    .atteso(422, &["EHRA0"]);
    let mut per_numero_comune = change(34, json!({"numeroPraticaComune": "PR-9"}));
    per_numero_comune["procedimentoIstruttoria"]
        .as_object_mut()
        .unwrap()
        .remove("numeroPraticaAnpr");
    s.post(ANAGRAFE_A, OP, &per_numero_comune)
        .await
        .atteso(422, &["EHRA1"]);
    s.post(
        ANAGRAFE_A,
        OP,
        &change(35, json!({"statoProcedimento": "2"})),
    )
    .await
    .atteso(422, &[STATO_NON_AMMESSO]);
    let mut con_soggetti = change(36, json!({}));
    con_soggetti["generalitaPerRicerca"] = json!([{"idSchedaSoggettoANPR": s2}]);
    s.post(ANAGRAFE_A, OP, &con_soggetti)
        .await
        .atteso(422, &[CAMPO_NON_AMMESSO]);
    // Another municipality cannot touch it.
    s.post(ALTRO_COMUNE, OP, &change(37, json!({})))
        .await
        .atteso(422, &["EHRA0"]);

    // Link s2 (by codice fiscale, the municipal number naming the proceeding), then
    // unlink s1.
    let mut associa = richiesta(
        40,
        json!({"tipoOperazione": "A", "numeroPraticaComune": "PR-2024 1", "dataStato": "2024-02-15", "statoProcedimento": "5"}),
    );
    associa["generalitaPerRicerca"] = json!([{"codiceFiscale": cf2}]);
    let a = s.post(ANAGRAFE_A, OP, &associa).await;
    assert_eq!(a.status, 200, "{}", a.raw);
    associa["idOperazioneComune"] = json!("41");
    s.post(ANAGRAFE_A, OP, &associa)
        .await
        .atteso(422, &["EN186"]);
    let mut con_motivo = associa.clone();
    con_motivo["idOperazioneComune"] = json!("42");
    con_motivo["procedimentoIstruttoria"]["motivoAvvio"] = json!("6");
    s.post(ANAGRAFE_A, OP, &con_motivo)
        .await
        .atteso(422, &["EN432", "EN186"]);
    s.post(
        ANAGRAFE_A,
        OP,
        &richiesta(
            43,
            json!({"tipoOperazione": "A", "numeroPraticaAnpr": p, "dataStato": "2024-02-15", "statoProcedimento": "5"}),
        ),
    )
    .await
    .atteso(422, &["EN445"]);
    let mut elimina = richiesta(
        44,
        json!({"tipoOperazione": "E", "numeroPraticaAnpr": p, "dataStato": "2024-03-01", "statoProcedimento": "6"}),
    );
    elimina["generalitaPerRicerca"] = json!([{"idSchedaSoggettoANPR": s1}]);
    let e = s.post(ANAGRAFE_A, OP, &elimina).await;
    assert_eq!(e.status, 200, "{}", e.raw);
    elimina["idOperazioneComune"] = json!("45");
    s.post(ANAGRAFE_A, OP, &elimina)
        .await
        .atteso(422, &["EN433"]);
    let mut di_nuovo = richiesta(
        46,
        json!({"tipoOperazione": "A", "numeroPraticaAnpr": p, "dataStato": "2024-03-01", "statoProcedimento": "6"}),
    );
    di_nuovo["operazioniCollegate"] = json!([op1]);
    s.post(ANAGRAFE_A, OP, &di_nuovo)
        .await
        .atteso(422, &[COLLEGAMENTO]);

    // Search.
    let all = cerca(&s, json!({})).await;
    assert_eq!(numeri(&all), vec![p.clone()]);
    let now = &all["procedimenti"][0];
    assert_eq!(now["statoProcedimento"], "6");
    assert_eq!(
        now["descrizioneStato"],
        "Conferma avvenuta acquisizione dati"
    );
    assert_eq!(now["motivoAvvio"], "6");
    assert_eq!(now["numeroPraticaComune"], "PR-2024 1");
    assert_eq!(now["dataAvvio"], "2024-01-10");
    assert_eq!(now["aperto"], true);
    assert_eq!(now["soggetti"].as_array().unwrap().len(), 1);
    assert_eq!(now["soggetti"][0]["idSchedaSoggettoANPR"], json!(s2));
    assert_eq!(now["soggetti"][0]["cognome"], "Bianchi");
    assert_eq!(now["soggetti"][0]["codiceFiscale"], json!(cf2));
    assert_eq!(now["eventi"][0]["idOperazioneANPR"], json!(op1));
    assert_eq!(now["eventi"][0]["codiceServizio"], "1002");
    assert_eq!(now["eventi"][0]["statoOperazione"], "eseguita");
    assert_eq!(
        numeri(&cerca(&s, json!({"codiceFiscale": cf2})).await),
        vec![p.clone()]
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"idSchedaSoggettoANPR": s1})).await),
        Vec::<String>::new(),
        "s1 was unlinked"
    );
    let then = cerca(
        &s,
        json!({"idSchedaSoggettoANPR": s1, "dataRiferimento": "2024-01-15"}),
    )
    .await;
    assert_eq!(numeri(&then), vec![p.clone()]);
    assert_eq!(then["procedimenti"][0]["statoProcedimento"], "1");
    assert_eq!(
        then["procedimenti"][0]["soggetti"][0]["idSchedaSoggettoANPR"],
        json!(s1)
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"dataRiferimento": "2023-12-31"})).await),
        Vec::<String>::new(),
        "not opened yet"
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"idOperazioneANPR": op1})).await),
        vec![p.clone()]
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"statoProcedimento": "6"})).await),
        vec![p.clone()]
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"statoProcedimento": "3"})).await),
        Vec::<String>::new()
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"aperto": true})).await),
        vec![p.clone()]
    );
    assert_eq!(
        numeri(
            &cerca(
                &s,
                json!({"dataAvvioDal": "2024-01-10", "dataAvvioAl": "2024-01-10"})
            )
            .await
        ),
        vec![p.clone()]
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"dataAvvioDal": "2024-01-11"})).await),
        Vec::<String>::new()
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"numeroPraticaAnpr": p, "codiceFiscale": cf2})).await),
        vec![p.clone()]
    );
    s.post(ANAGRAFE_A, RICERCA, &json!({"statoProcedimento": "99"}))
        .await
        .atteso(422, &[STATO_INESISTENTE]);
    s.post(ANAGRAFE_A, RICERCA, &json!({"dataAvvioDal": "2024-02-30"}))
        .await
        .atteso(422, &["EV001"]);
    s.post(ANAGRAFE_A, RICERCA, &json!({"limite": 0}))
        .await
        .atteso(422, &["EV001"]);
    let other = s.post(ALTRO_COMUNE, RICERCA, &json!({})).await;
    assert_eq!((other.status, numeri(&other.json)), (200, vec![]));
    let consult = s.post(CONSULTAZIONE, RICERCA, &json!({})).await;
    assert_eq!(numeri(&consult.json), vec![p.clone()], "{}", consult.raw);

    // Closing.
    let close = |id: u64, extra: Value| {
        let mut base = json!({"tipoOperazione": "C", "numeroPraticaAnpr": p, "dataStato": "2024-04-01",
                              "statoProcedimento": "2", "esitoChiusura": "C", "noteEsito": "Dichiarazione accolta"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        richiesta(id, base)
    };
    s.post(ANAGRAFE_A, OP, &close(50, json!({"esitoChiusura": "X"})))
        .await
        .atteso(422, &["EHR77"]);
    let mut senza_esito = close(51, json!({}));
    senza_esito["procedimentoIstruttoria"]
        .as_object_mut()
        .unwrap()
        .remove("esitoChiusura");
    s.post(ANAGRAFE_A, OP, &senza_esito)
        .await
        .atteso(422, &["EV002"]);
    s.post(
        ANAGRAFE_A,
        OP,
        &close(52, json!({"statoProcedimento": "4"})),
    )
    .await
    .atteso(422, &[STATO_NON_AMMESSO]);
    s.post(
        ANAGRAFE_A,
        OP,
        &close(53, json!({"noteEsito": "x".repeat(241)})),
    )
    .await
    .atteso(422, &["EV001"]);
    let closed = s.post(ANAGRAFE_A, OP, &close(54, json!({}))).await;
    assert_eq!(closed.status, 200, "{}", closed.raw);
    let op_chiusura = closed.json["idOperazioneANPR"].as_str().unwrap().to_owned();
    s.post(
        ANAGRAFE_A,
        OP,
        &change(55, json!({"dataStato": "2024-04-02"})),
    )
    .await
    .atteso(422, &["EN442"]);
    let archived = cerca(&s, json!({"aperto": false})).await;
    assert_eq!(numeri(&archived), vec![p.clone()]);
    assert_eq!(archived["procedimenti"][0]["dataChiusura"], "2024-04-01");
    assert_eq!(archived["procedimenti"][0]["esitoChiusura"], "C");
    assert_eq!(
        archived["procedimenti"][0]["noteEsito"],
        "Dichiarazione accolta"
    );
    assert_eq!(
        numeri(&cerca(&s, json!({"aperto": true})).await),
        Vec::<String>::new()
    );

    // Annulment (1013, the 1xxx family), newest first.
    s.post(
        ANAGRAFE_A,
        "/api/v1/operazioni/1013",
        &json!({"idOperazioneComune": "60", "idOperazioneANPR": op_apertura}),
    )
    .await
    .atteso(422, &[NON_ULTIMA]);
    let ann = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "61", "idOperazioneANPR": op_chiusura}),
        )
        .await;
    assert_eq!(ann.status, 200, "{}", ann.raw);
    let reopened = cerca(&s, json!({"aperto": true})).await;
    assert_eq!(numeri(&reopened), vec![p.clone()]);
    assert_eq!(reopened["procedimenti"][0]["statoProcedimento"], "6");
    assert_eq!(reopened["procedimenti"][0]["dataChiusura"], Value::Null);
    // The linked registration was not touched by the proceeding: it can still be
    // annulled on its own terms (s1's registration is the newest on s1).
    let a1 = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "62", "idOperazioneANPR": op1}),
        )
        .await;
    assert_eq!(a1.status, 200, "{}", a1.raw);
    let after = cerca(&s, json!({"idOperazioneANPR": op1})).await;
    assert_eq!(
        after["procedimenti"][0]["eventi"][0]["statoOperazione"],
        "annullata"
    );

    // Permissions.
    s.post(
        CERTIFICAZIONE,
        OP,
        &change(70, json!({"dataStato": "2024-04-05"})),
    )
    .await
    .atteso(403, &["EA401"]);
    s.post(
        CONSULTAZIONE,
        OP,
        &change(71, json!({"dataStato": "2024-04-05"})),
    )
    .await
    .atteso(403, &["EA401"]);
    s.post(CERTIFICAZIONE, RICERCA, &json!({}))
        .await
        .atteso(403, &["EA401"]);
    s.post(
        ANAGRAFE_A,
        OP,
        &json!({"procedimentoIstruttoria": {"tipoOperazione": "I"}}),
    )
    .await
    .atteso(400, &["EV001"]);

    assert!(s.audit_intatto().await > 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proceedings_on_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proceedings_on_postgres() {
    scenario(Backend::Postgres).await;
}

/// An operation names its proceeding with `datiDelProcedimento`: linked in the same
/// transaction, found by the proceeding search, gone with the operation's annulment;
/// an unknown or closed proceeding refuses the operation and leaves nothing.
async fn operation_names_its_proceeding(backend: Backend) {
    let Some(s) = start(backend).await else {
        return;
    };
    let apertura = richiesta(
        1,
        json!({"tipoOperazione": "I", "numeroPraticaComune": "IMM-7", "motivoAvvio": "6",
               "dataStato": "2024-01-10", "statoProcedimento": "1"}),
    );
    let opened = s.post(ANAGRAFE_A, OP, &apertura).await;
    assert_eq!(opened.status, 200, "{}", opened.raw);
    let p = numeri(&opened.json).remove(0);

    // Unknown numbers refuse the registration; nothing is registered.
    let mut r = iscrizione(2, "Verdi", "Luca", "M", "1990-03-03");
    r["datiDelProcedimento"] = json!({"numeroPraticaComune": "NON-ESISTE"});
    s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &r)
        .await
        .atteso(422, &["EHRA1"]);
    r["idOperazioneComune"] = json!("3");
    r["datiDelProcedimento"] = json!({"numeroPraticaAnpr": "999999"});
    s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &r)
        .await
        .atteso(422, &["EHRA0"]);
    let trovati = s
        .post(
            ANAGRAFE_A,
            "/api/v1/soggetti/ricerca",
            &json!({"criteriRicerca": {"cognome": "Verdi", "nome": "Luca"}}),
        )
        .await;
    assert_eq!(trovati.status, 200, "{}", trovati.raw);
    assert_eq!(trovati.json["soggetti"], json!([]), "{}", trovati.raw);

    // By the municipal number: linked, and named in the answer.
    r["idOperazioneComune"] = json!("4");
    r["datiDelProcedimento"] =
        json!({"numeroPraticaComune": "IMM-7", "dataDefinizionePratica": "2024-01-09"});
    let ok = s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &r).await;
    assert_eq!(ok.status, 200, "{}", ok.raw);
    assert_eq!(numeri(&ok.json), vec![p.clone()]);
    let op = ok.json["idOperazioneANPR"].as_str().unwrap().to_owned();
    let found = cerca(&s, json!({"idOperazioneANPR": op})).await;
    assert_eq!(numeri(&found), vec![p.clone()]);
    assert_eq!(
        found["procedimenti"][0]["eventi"][0]["codiceServizio"],
        "1002"
    );

    // Annulling the registration removes the link with it.
    let annulled = s
        .post(
            ANAGRAFE_A,
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "5", "idOperazioneANPR": op}),
        )
        .await;
    assert_eq!(annulled.status, 200, "{}", annulled.raw);
    let after = cerca(&s, json!({"idOperazioneANPR": op})).await;
    assert_eq!(after["procedimenti"], json!([]), "{after}");

    // A closed proceeding takes no more operations.
    let close = richiesta(
        6,
        json!({"tipoOperazione": "C", "numeroPraticaAnpr": p, "dataStato": "2024-02-01",
               "statoProcedimento": "2", "esitoChiusura": "C"}),
    );
    let closed = s.post(ANAGRAFE_A, OP, &close).await;
    assert_eq!(closed.status, 200, "{}", closed.raw);
    r["idOperazioneComune"] = json!("7");
    r["datiDelProcedimento"] = json!({"numeroPraticaAnpr": p});
    s.post(ANAGRAFE_A, "/api/v1/operazioni/1002", &r)
        .await
        .atteso(422, &["EN442"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_names_its_proceeding_on_sqlite() {
    operation_names_its_proceeding(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_names_its_proceeding_on_postgres() {
    operation_names_its_proceeding(Backend::Postgres).await;
}
