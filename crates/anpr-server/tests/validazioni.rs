//! Every validation rule of the operations, triggered over HTTP on SQLite: the code, the
//! field and the message of each refusal; and every operation's main path at least
//! once (the scenarios cover the rest, on both backends).

mod common;

use common::{codici, famiglia, soggetto, start, Backend, Server};
use serde_json::{json, Value};

fn indirizzo(via: &str) -> Value {
    json!({"comune": "058091", "cap": "00100", "toponimo": {"specie": "VIA", "denominazioneToponimo": via}, "numeroCivico": {"numero": "1"}})
}

fn iscrizione(
    id: u64,
    cognome: &str,
    nome: &str,
    sesso: &str,
    nascita: &str,
    famiglia: Option<&str>,
    legame: &str,
) -> Value {
    let mut f = json!({"codiceLegame": legame});
    if let Some(id) = famiglia {
        f["idFamigliaConvivenzaANPR"] = json!(id);
    }
    json!({
        "idOperazioneComune": id.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "residenza": indirizzo("Nazionale"),
        "famiglia": f
    })
}

fn chi(id: &str) -> Value {
    json!({"idSchedaSoggettoANPR": id})
}

/// The (code, field) pairs of a refusal, and checks every anomaly has a text and the
/// refusal a support reference.
fn esito(v: &Value) -> Vec<(String, String)> {
    assert!(
        v["riferimento"]["id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    v["anomalie"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert!(a["testo"].as_str().is_some_and(|t| t.len() > 10), "{a}");
            (
                a["codice"].as_str().unwrap().to_owned(),
                a["campo"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn refused(s: &Server, codice: &str, body: Value) -> Vec<(String, String)> {
    let (_, v) = s.ko(codice, &body).await;
    esito(&v)
}

/// A server with a family of two in Rome: (server, head, spouse, family).
async fn con_famiglia() -> (Server, String, String, String) {
    let s = start(Backend::Sqlite).await.unwrap();
    let r = s
        .ok(
            "1002",
            &iscrizione(1, "Neri", "Carlo", "M", "1970-01-01", None, "1"),
        )
        .await;
    let (carlo, fam) = (soggetto(&r), famiglia(&r));
    let r = s
        .ok(
            "1002",
            &iscrizione(2, "Gialli", "Sara", "F", "1972-02-02", Some(&fam), "2"),
        )
        .await;
    (s, carlo, soggetto(&r), fam)
}

#[tokio::test]
async fn registration_rules() {
    let (s, carlo, _sara, fam) = con_famiglia().await;
    // Unknown registration reason; registration before birth.
    let mut b = iscrizione(10, "Blu", "Ada", "F", "1990-01-01", None, "1");
    b["motivoIscrizione"]["idMotivoIscrizione"] = json!("77");
    b["dataDecorrenza"] = json!("1980-01-01");
    assert_eq!(
        refused(&s, "1002", b).await,
        vec![
            ("EC006".into(), "motivoIscrizione.idMotivoIscrizione".into()),
            ("EHA3".into(), "dataDecorrenza".into())
        ]
    );
    // Birth place not valid at the birth date: Z404 (USA) fine, but a municipality
    // created in 2009 cannot be a 1950 birth place.
    let mut b = iscrizione(11, "Blu", "Ada", "F", "1950-01-01", None, "1");
    b["generalita"]["luogoNascita"] = json!("M297"); // Fonte Nuova, since 2001
    let r = refused(&s, "1002", b).await;
    assert_eq!(r, vec![("EC007".into(), "generalita.luogoNascita".into())]);
    // Unknown foreign state of citizenship.
    let mut b = iscrizione(12, "Blu", "Ada", "F", "1990-01-01", None, "1");
    b["cittadinanza"] = json!([{"codiceStato": "555"}]);
    assert_eq!(
        refused(&s, "1002", b).await,
        vec![("EC036".into(), "cittadinanza[0].codiceStato".into())]
    );
    // Address in another municipality.
    let mut b = iscrizione(13, "Blu", "Ada", "F", "1990-01-01", None, "1");
    b["residenza"]["comune"] = json!("015146");
    assert_eq!(
        refused(&s, "1002", b).await,
        vec![("EN378".into(), "residenza.comune".into())]
    );
    // Duplicate CF of a live subject.
    let carlo_cf = s.scheda(&carlo, None).await["codiceFiscale"]["codFiscale"].clone();
    let mut b = iscrizione(14, "Neri", "Carlo", "M", "1970-01-01", None, "1");
    b["generalita"]["codiceFiscale"] = carlo_cf;
    assert_eq!(
        refused(&s, "1002", b).await,
        vec![("EN248".into(), "generalita.codiceFiscale".into())]
    );
    // A second head; an unknown relationship; a new family with a non-head.
    assert_eq!(
        refused(
            &s,
            "1002",
            iscrizione(15, "Blu", "Ada", "F", "1990-01-01", Some(&fam), "1")
        )
        .await,
        vec![("EF007".into(), "famiglia.codiceLegame".into())]
    );
    assert_eq!(
        refused(
            &s,
            "1002",
            iscrizione(16, "Blu", "Ada", "F", "1990-01-01", Some(&fam), "77")
        )
        .await,
        vec![("EC002".into(), "famiglia.codiceLegame".into())]
    );
    assert_eq!(
        refused(
            &s,
            "1002",
            iscrizione(17, "Blu", "Ada", "F", "1990-01-01", None, "3")
        )
        .await,
        vec![("EF021".into(), "famiglia.codiceLegame".into())]
    );
    // A family that does not exist.
    assert_eq!(
        refused(
            &s,
            "1002",
            iscrizione(18, "Blu", "Ada", "F", "1990-01-01", Some("999999"), "3")
        )
        .await,
        vec![("EF002".into(), "famiglia.idFamigliaConvivenzaANPR".into())]
    );
    // A date in the future.
    let mut b = iscrizione(19, "Blu", "Ada", "F", "1990-01-01", None, "1");
    b["dataDecorrenza"] = json!("2099-01-01");
    assert_eq!(
        refused(&s, "1002", b).await,
        vec![("EV003".into(), "dataDecorrenza".into())]
    );
}

#[tokio::test]
async fn birth_rules() {
    let (s, carlo, sara, fam) = con_famiglia().await;
    let nascita = |id: u64, padre: Value, madre: Value| {
        json!({
            "idOperazioneComune": id.to_string(),
            "generalita": {"cognome": "Neri", "nome": "Bruno", "sesso": "M", "dataNascita": "2024-01-05", "luogoNascita": "H501"},
            "attoNascita": {"comuneRegistrazione": "058091", "anno": 2024, "numeroAtto": "7"},
            "cittadinanza": [{"codiceStato": "100"}],
            "paternita": padre, "maternita": madre
        })
    };
    // Parents not in the registry: one, the other, both.
    assert_eq!(
        refused(&s, "1001", nascita(10, chi("987654"), chi(&sara))).await,
        vec![("EN142".into(), "paternita".into())]
    );
    assert_eq!(
        refused(&s, "1001", nascita(11, chi(&carlo), chi("987654"))).await,
        vec![("EN143".into(), "maternita".into())]
    );
    assert_eq!(
        refused(
            &s,
            "1001",
            nascita(
                12,
                json!({"codiceFiscale": "RSSMRA80A01H501U"}),
                chi("987654")
            )
        )
        .await,
        vec![
            ("EN144".into(), "paternita, maternita".into()),
            ("EF006".into(), "famiglia".into()),
            ("EF023".into(), "residenza".into())
        ]
    );
    // Birth deed missing.
    let mut b = nascita(13, chi(&carlo), chi(&sara));
    b.as_object_mut().unwrap().remove("attoNascita");
    assert_eq!(
        refused(&s, "1001", b).await,
        vec![("ES080".into(), "attoNascita".into())]
    );
    // Deed before the birth.
    let mut b = nascita(14, chi(&carlo), chi(&sara));
    b["attoNascita"]["anno"] = json!(2019);
    assert_eq!(
        refused(&s, "1001", b).await,
        vec![("ES013".into(), "attoNascita.anno".into())]
    );
    // Parents only by name and no family: the child needs a family.
    let b = nascita(
        15,
        json!({"cognome": "Ignoto"}),
        json!({"cognome": "Ignota"}),
    );
    assert_eq!(
        refused(&s, "1001", b).await,
        vec![
            ("EF006".into(), "famiglia".into()),
            ("EF023".into(), "residenza".into())
        ]
    );
    // The good case: the child joins the parents' family as a son.
    let r = s.ok("1001", &nascita(16, chi(&carlo), chi(&sara))).await;
    assert_eq!(famiglia(&r), fam);
    assert_eq!(
        s.scheda(&soggetto(&r), None).await["legame"]["codiceLegame"],
        "3"
    );
}

#[tokio::test]
async fn change_and_removal_rules() {
    let (mut s, carlo, sara, fam) = con_famiglia().await;
    // Move of part of a family without a destination.
    let b = json!({"idOperazioneComune": "10", "dataDecorrenza": "2022-01-01", "soggetti": [chi(&sara)], "residenza": indirizzo("Po")});
    assert_eq!(
        refused(&s, "5005", b).await,
        vec![("EV039".into(), "famiglia".into())]
    );
    // A new family without a head; with two heads.
    let b = json!({"idOperazioneComune": "11", "dataDecorrenza": "2022-01-01", "soggetti": [{"idSchedaSoggettoANPR": sara, "codiceLegame": "2"}], "residenza": indirizzo("Po"), "famiglia": {}});
    assert_eq!(
        refused(&s, "5005", b).await,
        vec![("EF008".into(), "soggetti".into())]
    );
    // Move before birth.
    let b = json!({"idOperazioneComune": "12", "dataDecorrenza": "1960-01-01", "soggetti": [chi(&carlo), chi(&sara)], "residenza": indirizzo("Po")});
    assert_eq!(
        refused(&s, "5005", b).await,
        vec![
            ("ES008".into(), "dataDecorrenza".into()),
            ("ES008".into(), "dataDecorrenza".into())
        ]
    );
    // Split: Sara heads a new family at a new address; the old one keeps Carlo.
    let b = json!({"idOperazioneComune": "13", "dataDecorrenza": "2022-01-01", "soggetti": [{"idSchedaSoggettoANPR": sara, "codiceLegame": "1"}], "residenza": indirizzo("Po"), "famiglia": {}});
    let r = s.ok("5005", &b).await;
    let nuova = r["famiglie"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["idANPR"].as_str().unwrap().to_owned())
        .find(|f| f != &fam)
        .unwrap();
    assert_eq!(
        s.componenti(&nuova, None).await,
        vec![(sara.clone(), "1".to_owned())]
    );
    assert_eq!(
        s.componenti(&fam, None).await,
        vec![(carlo.clone(), "1".to_owned())]
    );
    // Merge back with 5001: Sara joins Carlo's family as spouse; her family is archived.
    let b = json!({"idOperazioneComune": "14", "dataDecorrenza": "2023-01-01", "idFamigliaConvivenzaANPR": fam, "elencoSoggettiFamiglia": [{"idSchedaSoggettoANPR": sara, "codiceLegame": "2"}]});
    s.ok("5001", &b).await;
    assert_eq!(s.componenti(&fam, None).await.len(), 2);
    let (_, f) = s
        .post("/api/v1/famiglie/consulta", &json!({"idANPR": nuova}))
        .await;
    assert_eq!(f["scheda"]["stato"], "archiviata");
    // Two heads in one family.
    let b = json!({"idOperazioneComune": "15", "dataDecorrenza": "2023-02-01", "idFamigliaConvivenzaANPR": fam, "elencoSoggettiFamiglia": [{"idSchedaSoggettoANPR": sara, "codiceLegame": "1"}]});
    assert_eq!(
        refused(&s, "5001", b).await,
        vec![("EF009".into(), "elencoSoggettiFamiglia".into())]
    );
    // New head without the old head's new relationship.
    let b = json!({"idOperazioneComune": "16", "dataDecorrenza": "2023-02-01", "idFamigliaConvivenzaANPR": fam, "elencoSoggettiFamiglia": [{"idSchedaSoggettoANPR": sara, "codiceLegame": "1"}, {"idSchedaSoggettoANPR": carlo, "codiceLegame": "1"}]});
    assert_eq!(
        refused(&s, "5001", b).await,
        vec![("EF009".into(), "elencoSoggettiFamiglia".into())]
    );
    let b = json!({"idOperazioneComune": "17", "dataDecorrenza": "2023-02-01", "idFamigliaConvivenzaANPR": fam, "elencoSoggettiFamiglia": [{"idSchedaSoggettoANPR": sara, "codiceLegame": "1"}, {"idSchedaSoggettoANPR": carlo, "codiceLegame": "2"}]});
    s.ok("5001", &b).await;
    let (_, f) = s
        .post("/api/v1/famiglie/consulta", &json!({"idANPR": fam}))
        .await;
    assert_eq!(f["scheda"]["intestatario"]["idAnpr"], sara.as_str());
    // Marriage recorded on both records; widowhood of someone married only.
    let b = json!({"idOperazioneComune": "18", "dataDecorrenza": "2023-05-01", "soggetto": chi(&carlo), "matrimonio": {"dataEvento": "2023-05-01", "coniuge": chi(&sara)}});
    s.ok("5008", &b).await;
    assert_eq!(
        s.scheda(&sara, None).await["statoCivile"]["statoCivile"],
        "2"
    );
    let b = json!({"idOperazioneComune": "19", "dataDecorrenza": "2023-06-01", "soggetto": chi(&carlo), "unioneCivile": {"dataEvento": "2023-06-01"}});
    assert_eq!(
        refused(&s, "5008", b).await,
        vec![("EV042".into(), "unioneCivile".into())]
    );
    // Generalities change: the CF is re-derived and the old one linked.
    let vecchio = s.scheda(&carlo, None).await["codiceFiscale"]["codFiscale"].clone();
    let b = json!({"idOperazioneComune": "20", "dataDecorrenza": "2023-07-01", "soggetto": chi(&carlo), "generalita": {"nome": "Carlo Alberto"}});
    let r = s.ok("5008", &b).await;
    assert_eq!(codici(&r), vec!["EA044"]);
    let cf = &s.scheda(&carlo, None).await["codiceFiscale"];
    assert_ne!(cf["codFiscale"], vecchio);
    assert_eq!(cf["codiciCollegati"][0], vecchio);
    // Revocation of a datum not present; then of the marriage.
    let b = json!({"idOperazioneComune": "21", "dataDecorrenza": "2023-08-01", "soggetto": chi(&carlo), "tipoRevoca": "3", "motivoRevoca": "1"});
    assert_eq!(
        refused(&s, "5013", b).await,
        vec![("EV043".into(), "tipoRevoca".into())]
    );
    let b = json!({"idOperazioneComune": "22", "dataDecorrenza": "2023-08-01", "soggetto": chi(&carlo), "tipoRevoca": "6", "motivoRevoca": "1"});
    s.ok("5013", &b).await;
    assert_eq!(
        s.scheda(&carlo, None).await["statoCivile"]["statoCivile"],
        "1"
    );
    // Rectification: registration date after the residence date is incoherent.
    let b = json!({"idOperazioneComune": "23", "soggetto": chi(&carlo), "richiestaRettifica103": {"dataPrimaIscrizioneComune": "2024-01-01"}});
    assert_eq!(
        refused(&s, "5014", b).await,
        vec![("ES127".into(), "dataPrimaIscrizioneComune".into())]
    );
    let b = json!({"idOperazioneComune": "24", "soggetto": chi(&carlo), "richiestaRettifica102": {"idMotivoIscrizione": "3", "provenienza": {"comune": "015146"}}});
    s.ok("5014", &b).await;
    assert_eq!(
        s.scheda(&carlo, None).await["iscrizione"]["motivoIscrizione"],
        "3"
    );
    // Another municipality cannot change or remove Rome's subjects.
    s.come_comune("015146");
    let b = json!({"idOperazioneComune": "1", "dataDecorrenza": "2024-01-01", "soggetto": chi(&carlo), "motivoCancellazione": "6"});
    assert_eq!(
        refused(&s, "2003", b).await,
        vec![("EN117".into(), "soggetto".into())]
    );
    s.come_comune("058091");
    // Death with an unknown place; then the good case; then again: already cancelled.
    let b = json!({"idOperazioneComune": "25", "motivoCancellazione": "1", "soggetto": chi(&carlo), "datiDecesso": {"dataMorte": "2024-03-01", "comuneMorte": "999999"}});
    assert_eq!(
        refused(&s, "2001", b).await,
        vec![("EC106".into(), "datiDecesso.comuneMorte".into())]
    );
    let b = json!({"idOperazioneComune": "26", "motivoCancellazione": "2", "soggetto": chi(&carlo), "datiDecesso": {"dataMorte": "2024-03-01"}});
    assert_eq!(
        refused(&s, "2001", b).await,
        vec![("EHR93".into(), "datiSentenza".into())]
    );
    let b = json!({"idOperazioneComune": "27", "motivoCancellazione": "1", "soggetto": chi(&carlo), "datiDecesso": {"dataMorte": "2024-03-01"}});
    s.ok("2001", &b).await;
    let b = json!({"idOperazioneComune": "28", "motivoCancellazione": "1", "soggetto": chi(&carlo), "datiDecesso": {"dataMorte": "2024-03-01"}});
    assert_eq!(
        refused(&s, "2001", b).await,
        vec![("EN184".into(), "soggetto".into())]
    );
    // Unknown removal reason; transfer to an unknown municipality.
    let b = json!({"idOperazioneComune": "29", "dataDecorrenza": "2024-04-01", "soggetto": chi(&sara), "motivoCancellazione": "55"});
    assert_eq!(
        refused(&s, "2003", b).await,
        vec![("EN371".into(), "motivoCancellazione".into())]
    );
    let b = json!({"idOperazioneComune": "30", "dataDecorrenza": "2024-04-01", "soggetto": chi(&sara), "motivoCancellazione": "3", "destinazione": {"comune": "999999"}});
    assert_eq!(
        refused(&s, "2003", b).await,
        vec![("EC172".into(), "destinazione.comune".into())]
    );
}

#[tokio::test]
async fn double_registration_and_re_registration() {
    let s = start(Backend::Sqlite).await.unwrap();
    // The same person registered twice under two codes (a provisional one here).
    let r = s
        .ok(
            "1002",
            &iscrizione(1, "Doppi", "Eva", "F", "1985-05-05", None, "1"),
        )
        .await;
    let eva = soggetto(&r);
    let mut b = iscrizione(2, "Doppi", "Eva", "F", "1985-05-05", None, "1");
    b["generalita"]["codiceFiscale"] = json!("12345678903");
    let eva2 = soggetto(&s.ok("1002", &b).await);
    let other = soggetto(
        &s.ok(
            "1002",
            &iscrizione(3, "Altri", "Ugo", "M", "1960-01-01", None, "1"),
        )
        .await,
    );
    // Not the same person: refused.
    let b = json!({"idOperazioneComune": "4", "dataDecorrenza": "2024-01-01", "soggetto": chi(&eva2), "motivoCancellazione": "10", "soggettoPrevalente": chi(&other)});
    assert_eq!(
        refused(&s, "2003", b).await,
        vec![("EV041".into(), "soggettoPrevalente".into())]
    );
    let b = json!({"idOperazioneComune": "5", "dataDecorrenza": "2024-01-01", "soggetto": chi(&eva2), "motivoCancellazione": "10", "soggettoPrevalente": chi(&eva)});
    s.ok("2003", &b).await;
    let e2 = s.scheda(&eva2, None).await;
    assert_eq!(
        (
            e2["competenza"]["posizione"].as_str(),
            e2["cancellazione"]["motivoCancellazione"].as_str()
        ),
        (Some("cancellato"), Some("10"))
    );
    assert_eq!(
        s.scheda(&eva, None).await["codiceFiscale"]["codiciCollegati"][0],
        "12345678903"
    );
    // Untraceable, then back: registering the same CF without the id is refused with
    // the id to use (EN190); with it, the subject keeps its idANPR.
    let b = json!({"idOperazioneComune": "6", "dataDecorrenza": "2024-02-01", "soggetto": chi(&other), "motivoCancellazione": "6"});
    s.ok("2003", &b).await;
    let mut b = iscrizione(7, "Altri", "Ugo", "M", "1960-01-01", None, "1");
    b["motivoIscrizione"]["idMotivoIscrizione"] = json!("5");
    b["dataDecorrenza"] = json!("2024-06-01");
    let (_, v) = s.ko("1002", &b).await;
    assert_eq!(codici(&v), vec!["EN190"]);
    assert!(
        v["anomalie"][0]["testo"].as_str().unwrap().contains(&other),
        "{v}"
    );
    b["idOperazioneComune"] = json!("8");
    b["generalita"]["idSchedaSoggettoANPR"] = json!(other);
    let r = s.ok("1002", &b).await;
    assert_eq!(soggetto(&r), other);
    assert_eq!(
        s.scheda(&other, None).await["competenza"]["posizione"],
        "residente"
    );
    assert_eq!(
        s.scheda(&other, Some("2024-03-01")).await["competenza"]["posizione"],
        "cancellato"
    );
}

#[tokio::test]
async fn cohabitation_and_aire() {
    let s = start(Backend::Sqlite).await.unwrap();
    // A cohabitation with an unknown kind; then a good one, a member, and archiving
    // refused while it has members.
    let b = json!({"idOperazioneComune": "1", "dataDecorrenza": "2020-01-01", "denominazioneConvivenza": "Casa di riposo Aurora", "specieConvivenza": "77", "residenza": indirizzo("Aurelia")});
    assert_eq!(
        refused(&s, "1010", b).await,
        vec![("EC005".into(), "specieConvivenza".into())]
    );
    let b = json!({"idOperazioneComune": "2", "dataDecorrenza": "2020-01-01", "denominazioneConvivenza": "Casa di riposo Aurora", "specieConvivenza": "3", "residenza": indirizzo("Aurelia")});
    let conv = famiglia(&s.ok("1010", &b).await);
    let ospite = soggetto(
        &s.ok(
            "1002",
            &iscrizione(3, "Anziani", "Rosa", "F", "1930-01-01", Some(&conv), "2"),
        )
        .await,
    );
    let b = json!({"idOperazioneComune": "4", "dataDecorrenza": "2021-01-01", "idFamigliaConvivenzaANPR": conv});
    assert_eq!(
        refused(&s, "2009", b).await,
        vec![("EN126".into(), "idFamigliaConvivenzaANPR".into())]
    );
    let b = json!({"idOperazioneComune": "5", "motivoCancellazione": "1", "soggetto": chi(&ospite), "datiDecesso": {"dataMorte": "2021-02-01"}});
    s.ok("2001", &b).await;
    let b = json!({"idOperazioneComune": "6", "dataDecorrenza": "2021-03-01", "idFamigliaConvivenzaANPR": conv});
    s.ok("2009", &b).await;
    // AIRE: registration by birth must use C02 and needs Italian citizenship.
    let aire = |id: u64, servizio_motivo: &str, cittadinanza: &str| {
        json!({
            "idOperazioneComune": id.to_string(),
            "motivoIscrizione": {"idMotivoIscrizione": servizio_motivo},
            "dataDecorrenza": "2022-01-01",
            "generalita": {"cognome": "Esteri", "nome": "Lia", "sesso": "F", "dataNascita": "1995-01-01", "luogoNascita": "Z112"},
            "cittadinanza": [{"codiceStato": cittadinanza}],
            "residenzaEstera": {"codiceStato": "216", "localita": "Berlin", "indirizzo": "Alexanderplatz 1"},
            "consolato": "2300300",
            "famiglia": {"codiceLegame": "1"}
        })
    };
    assert_eq!(
        refused(&s, "A001", aire(7, "C01", "100"))
            .await
            .first()
            .cloned(),
        Some(("ES071".into(), "motivoIscrizione.idMotivoIscrizione".into()))
    );
    assert_eq!(
        refused(&s, "A002", aire(8, "C01", "216")).await,
        vec![("EN421".into(), "cittadinanza".into())]
    );
    let lia = soggetto(&s.ok("A002", &aire(9, "C01", "100")).await);
    assert_eq!(
        s.scheda(&lia, None).await["competenza"]["posizione"],
        "aire"
    );
    // A006 changes the foreign address; refused for a resident.
    let b = json!({"idOperazioneComune": "10", "dataDecorrenza": "2023-01-01", "soggetto": chi(&lia), "residenzaEstera": {"codiceStato": "216", "localita": "Hamburg", "indirizzo": "Hafen 2"}, "tuttaLaFamiglia": true});
    s.ok("A006", &b).await;
    assert_eq!(
        s.scheda(&lia, None).await["residenza"]["indirizzoEstero"]["localita"],
        "Hamburg"
    );
    let b = json!({"idOperazioneComune": "11", "dataDecorrenza": "2023-01-01", "soggetto": chi(&ospite), "consolato": "2300300"});
    assert_eq!(
        refused(&s, "A006", b).await,
        vec![("EN413".into(), "soggetto".into())]
    );
}

#[tokio::test]
async fn cf_attribution_annulment_and_replays() {
    let s = start(Backend::Sqlite).await.unwrap();
    let r = s
        .ok(
            "1002",
            &iscrizione(1, "Annulli", "Gino", "M", "1977-07-07", None, "1"),
        )
        .await;
    let gino = soggetto(&r);
    let cf = s.scheda(&gino, None).await["codiceFiscale"]["codFiscale"].clone();
    // Annulling a change with the CF flag is refused; the registration (within 24 h)
    // can be annulled with its CF attribution, which goes to the tax agency's outbox.
    let b = json!({"idOperazioneComune": "2", "dataDecorrenza": "2021-01-01", "soggetto": chi(&gino), "altriDati": {"titoloStudio": "9"}});
    let op = s.ok("5008", &b).await;
    let b = json!({"idOperazioneComune": "3", "idOperazioneANPR": op["idOperazioneANPR"], "annullamentoAttribuzioneCF": true});
    assert_eq!(
        refused(&s, "5012", b).await,
        vec![("EV045".into(), "annullamentoAttribuzioneCF".into())]
    );
    s.ok(
        "5012",
        &json!({"idOperazioneComune": "4", "idOperazioneANPR": op["idOperazioneANPR"]}),
    )
    .await;
    // Annulling an operation that does not exist.
    let b = json!({"idOperazioneComune": "5", "idOperazioneANPR": "99999999"});
    assert_eq!(
        refused(&s, "1013", b).await,
        vec![("EN078".into(), "idOperazioneANPR".into())]
    );
    s.ok("1013", &json!({"idOperazioneComune": "6", "idOperazioneANPR": r["idOperazioneANPR"], "annullamentoAttribuzioneCF": true})).await;
    let pending = s.store.outbox_pending(10).await.unwrap();
    assert!(
        pending
            .iter()
            .any(|m| m.message.tipo == "AE-ANNULLA-CF" && m.message.payload["codiceFiscale"] == cf),
        "{pending:?}"
    );
    let (status, _) = s
        .post("/api/v1/soggetti/consulta", &json!({"idANPR": gino}))
        .await;
    assert_eq!(status, 404);

    // 1,000 operations, then all of them again: identical answers, nothing changes.
    let mut first = Vec::new();
    for i in 0..1000u64 {
        let body = iscrizione(
            100 + i,
            "Replay",
            &format!("Nome{}", char::from(b'A' + (i % 26) as u8)),
            "F",
            &format!("19{:02}-01-{:02}", 40 + i / 28 % 60, 1 + i % 28),
            None,
            "1",
        );
        let (status, text) = s.post_raw("/api/v1/operazioni/1002", &body).await;
        first.push((body, status, text));
    }
    let ok = first.iter().filter(|(_, st, _)| *st == 200).count();
    assert!(ok > 900, "most registrations succeed ({ok})");
    let ops_before = s
        .store
        .operations(&anpr_store::OperationQuery {
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    let head_before = s.store.audit_head().await.unwrap();
    for (body, status, text) in &first {
        let (st, t) = s.post_raw("/api/v1/operazioni/1002", body).await;
        assert_eq!((st, &t), (*status, text));
    }
    let ops_after = s
        .store
        .operations(&anpr_store::OperationQuery {
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(ops_after, ops_before);
    assert_eq!(s.store.audit_head().await.unwrap(), head_before);
}

#[tokio::test]
async fn tax_agency_validates_blocks_and_may_be_down() {
    use std::sync::Arc;
    // A seeded agency: Mario Rossi's code is being processed (EAM15, blocking).
    let sim = anpr_ae::Simulatore::new();
    let csv = "codice_fiscale,cognome,nome,sesso,data_nascita,luogo_nascita,stato,collegato_a,in_trattamento\n\
               RSSMRA80A01Z404R,ROSSI,MARIO,M,1980-01-01,Z404,marcato,,true\n";
    sim.carica_csv("seme.csv", csv.as_bytes()).unwrap();
    let s = common::start_con(Backend::Sqlite, |r| {
        r.con_agenzia_entrate(anpr_domain::caller::Ambiente::Test, Arc::new(sim))
    })
    .await
    .unwrap();
    // A first attribution: the agency attributes the code, the record says validated.
    let r = s
        .ok(
            "1002",
            &iscrizione(1, "Verdi", "Lina", "F", "1991-09-09", None, "1"),
        )
        .await;
    let cf = &s.scheda(&soggetto(&r), None).await["codiceFiscale"];
    assert_eq!(cf["stato"], "validato", "{cf}");
    // The agency's blocking message refuses the registration, with its remedy.
    let mut b = iscrizione(2, "Rossi", "Mario", "M", "1980-01-01", None, "1");
    b["generalita"]["codiceFiscale"] = json!("RSSMRA80A01Z404R");
    let (_, v) = s.ko("1002", &b).await;
    assert_eq!(codici(&v), vec!["EAM15"]);
    assert!(
        v["anomalie"][0]["atteso"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    // gestioneCF 3: no call, the code stays not validated.
    let mut b = iscrizione(3, "Bruni", "Ezio", "M", "1966-06-06", None, "1");
    b["generalita"]["gestioneCF"] = json!("3");
    let r = s.ok("1002", &b).await;
    assert_eq!(
        s.scheda(&soggetto(&r), None).await["codiceFiscale"]["stato"],
        "nonValidato"
    );

    // An agency that cannot be reached: the registration goes on, warned, not validated.
    let down =
        anpr_ae::ClientHttp::new(anpr_ae::ConfigurazioneClientHttp::new("http://127.0.0.1:9"))
            .unwrap();
    let s = common::start_con(Backend::Sqlite, |r| {
        r.con_agenzia_entrate(anpr_domain::caller::Ambiente::Test, Arc::new(down))
    })
    .await
    .unwrap();
    let r = s
        .ok(
            "1002",
            &iscrizione(1, "Verdi", "Lina", "F", "1991-09-09", None, "1"),
        )
        .await;
    assert_eq!(codici(&r), vec!["EV060"]);
    assert_eq!(
        s.scheda(&soggetto(&r), None).await["codiceFiscale"]["stato"],
        "nonValidato"
    );
}
