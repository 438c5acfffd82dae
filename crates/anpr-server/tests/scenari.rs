//! End-to-end scenarios over HTTP, on SQLite and on PostgreSQL: a family's life in the
//! registry (immigration, move, emigration to AIRE, death), reads as at each date in
//! between, newest-first annulment restoring every earlier state exactly, and a
//! transfer between two municipalities.

mod common;

use common::{famiglia, soggetto, start, Backend, Server, OPERATORE};
use serde_json::{json, Value};

fn indirizzo(via: &str, numero: &str) -> Value {
    json!({"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": via}, "numeroCivico": {"numero": numero}})
}

#[allow(clippy::too_many_arguments)]
fn iscrizione(
    id: u64,
    cognome: &str,
    nome: &str,
    sesso: &str,
    nascita: &str,
    decorrenza: &str,
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
        "dataDecorrenza": decorrenza,
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": indirizzo("Nazionale", "10"),
        "famiglia": f
    })
}

fn chi(id: &str) -> Value {
    json!({"idSchedaSoggettoANPR": id})
}

async fn annulla(s: &Server, servizio: &str, id_comune: u64, op: &Value) -> Value {
    s.ok(
        servizio,
        &json!({"idOperazioneComune": id_comune.to_string(), "idOperazioneANPR": op["idOperazioneANPR"]}),
    )
    .await
}

async fn vita_di_una_famiglia(backend: Backend) {
    let Some(s) = start(backend).await else {
        return;
    };
    // 2020-03-01: the family immigrates from abroad.
    let r = s
        .ok(
            "1002",
            &iscrizione(
                1,
                "Rossi",
                "Mario",
                "M",
                "1980-01-01",
                "2020-03-01",
                None,
                "1",
            ),
        )
        .await;
    let (mario, fam) = (soggetto(&r), famiglia(&r));
    let anna = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                2,
                "Bianchi",
                "Anna",
                "F",
                "1982-02-02",
                "2020-03-01",
                Some(&fam),
                "2",
            ),
        )
        .await,
    );
    let luca = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                3,
                "Rossi",
                "Luca",
                "M",
                "2005-06-01",
                "2020-03-01",
                Some(&fam),
                "3",
            ),
        )
        .await,
    );
    // 2021-05-10: a child is born in Rome; parents found in the registry, the child
    // joins their family as a son.
    let nascita = s
        .ok("1001", &json!({
            "idOperazioneComune": "4",
            "generalita": {"cognome": "Rossi", "nome": "Paolo", "sesso": "M", "dataNascita": "2021-05-10", "luogoNascita": "H501"},
            "attoNascita": {"comuneRegistrazione": "058091", "anno": 2021, "numeroAtto": "123", "parte": "1", "serie": "A"},
            "cittadinanza": [{"codiceStato": "100"}],
            "paternita": chi(&mario),
            "maternita": chi(&anna)
        }))
        .await;
    let paolo = soggetto(&nascita);
    assert_eq!(famiglia(&nascita), fam);
    let p = s.scheda(&paolo, None).await;
    assert_eq!(p["legame"]["codiceLegame"], "3");
    assert_eq!(p["genitori"]["madre"]["idAnpr"], anna.as_str());
    assert_eq!(p["codiceFiscale"]["codFiscale"].as_str().unwrap().len(), 16);
    assert_eq!(p["residenza"]["dataDecorrenzaResidenza"], "2021-05-10");
    assert_eq!(s.componenti(&fam, Some("2021-05-09")).await.len(), 3);
    assert_eq!(s.componenti(&fam, Some("2021-05-10")).await.len(), 4);
    let prima_del_trasloco = (s.scheda(&mario, None).await, s.scheda(&luca, None).await);

    // 2022-01-15: the whole family moves within Rome.
    let trasloco = s
        .ok(
            "5005",
            &json!({
                "idOperazioneComune": "40", "dataDecorrenza": "2022-01-15",
                "soggetti": [chi(&mario), chi(&anna), chi(&luca), chi(&paolo)],
                "residenza": indirizzo("Appia Nuova", "5")
            }),
        )
        .await;
    assert_eq!(trasloco["famiglie"][0]["idANPR"], fam.as_str());
    let prima_dell_espatrio = (s.scheda(&mario, None).await, s.scheda(&luca, None).await);

    // 2023-06-01: Luca moves to Germany and stays in Rome's AIRE.
    let espatrio = s
        .ok("2003", &json!({
            "idOperazioneComune": "50", "motivoCancellazione": "8", "dataDecorrenza": "2023-06-01",
            "soggetto": chi(&luca),
            "aire": {"consolato": "2300300", "residenzaEstera": {"codiceStato": "216", "localita": "Berlin", "indirizzo": "Unter den Linden 1"}}
        }))
        .await;
    let fam_aire = espatrio["famiglie"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["idANPR"].as_str().unwrap().to_owned())
        .find(|f| f != &fam)
        .expect("a new AIRE family");
    let prima_del_decesso = (s.scheda(&mario, None).await, s.scheda(&anna, None).await);

    // 2024-02-01: Mario dies; Anna becomes the head.
    let decesso = s
        .ok(
            "2001",
            &json!({
                "idOperazioneComune": "60", "motivoCancellazione": "1",
                "soggetto": chi(&mario),
                "datiDecesso": {"dataMorte": "2024-02-01"},
                "elencoSoggettiFamiglia": [{"idSchedaSoggettoANPR": anna, "codiceLegame": "1"}]
            }),
        )
        .await;
    assert!(common::codici(&decesso).is_empty(), "{decesso}");

    // Reads as at each date in between return the state of that date.
    let at = |d: &'static str| Some(d);
    let m = s.scheda(&mario, at("2021-01-01")).await;
    assert_eq!(m["competenza"]["posizione"], "residente");
    assert_eq!(
        m["residenza"]["indirizzo"]["toponimo"]["denominazioneToponimo"],
        "Nazionale"
    );
    assert_eq!(s.componenti(&fam, at("2021-01-01")).await.len(), 3);
    let p = s.scheda(&paolo, at("2022-06-01")).await;
    assert_eq!(
        p["residenza"]["indirizzo"]["toponimo"]["denominazioneToponimo"],
        "Appia Nuova"
    );
    let m = s.scheda(&mario, at("2022-06-01")).await;
    assert_eq!(
        m["residenza"]["indirizzo"]["toponimo"]["denominazioneToponimo"],
        "Appia Nuova"
    );
    let l = s.scheda(&luca, at("2023-07-01")).await;
    assert_eq!(l["competenza"]["posizione"], "aire");
    assert_eq!(l["residenza"]["indirizzoEstero"]["localita"], "Berlin");
    assert_eq!(l["legame"]["idFamigliaConvivenzaAnpr"], fam_aire.as_str());
    let membri = s.componenti(&fam, at("2023-07-01")).await;
    assert_eq!(membri.len(), 3, "{membri:?}");
    assert!(!membri.iter().any(|(id, _)| id == &luca));
    let m = s.scheda(&mario, None).await;
    assert_eq!(m["competenza"]["posizione"], "cancellato");
    assert_eq!(
        m["cancellazione"]["dataDecorrenzaCancellazione"],
        "2024-02-01"
    );
    assert!(m.get("legame").is_none(), "{m}");
    assert_eq!(
        s.componenti(&fam, None).await,
        vec![
            (anna.clone(), "1".to_owned()),
            (paolo.clone(), "3".to_owned())
        ]
    );
    let (_, f) = s
        .post("/api/v1/famiglie/consulta", &json!({"idANPR": fam}))
        .await;
    assert_eq!(f["scheda"]["intestatario"]["idAnpr"], anna.as_str());

    // Out of order: the move is not the newest operation on these records.
    let (codes, _) = s
        .ko(
            "5012",
            &json!({"idOperazioneComune": "70", "idOperazioneANPR": trasloco["idOperazioneANPR"]}),
        )
        .await;
    assert_eq!(codes, vec!["EN077"]);

    // Newest first, each annulment restores the state before the operation exactly.
    annulla(&s, "2011", 80, &decesso).await;
    assert_eq!(
        (s.scheda(&mario, None).await, s.scheda(&anna, None).await),
        prima_del_decesso
    );
    annulla(&s, "2011", 90, &espatrio).await;
    assert_eq!(
        (s.scheda(&mario, None).await, s.scheda(&luca, None).await),
        prima_dell_espatrio
    );
    let (status, _) = s
        .post("/api/v1/famiglie/consulta", &json!({"idANPR": fam_aire}))
        .await;
    assert_eq!(
        status, 404,
        "the AIRE family created by the annulled operation is gone"
    );
    annulla(&s, "5012", 100, &trasloco).await;
    assert_eq!(
        (s.scheda(&mario, None).await, s.scheda(&luca, None).await),
        prima_del_trasloco
    );
    assert_eq!(s.componenti(&fam, None).await.len(), 4);
}

#[tokio::test]
async fn vita_di_una_famiglia_sqlite() {
    vita_di_una_famiglia(Backend::Sqlite).await;
}

#[tokio::test]
async fn vita_di_una_famiglia_postgres() {
    vita_di_una_famiglia(Backend::Postgres).await;
}

async fn trasferimento_tra_comuni(backend: Backend) {
    let Some(mut s) = start(backend).await else {
        return;
    };
    // Registered in Rome...
    let r = s
        .ok(
            "1002",
            &iscrizione(
                1,
                "Verdi",
                "Giulia",
                "F",
                "1990-03-03",
                "2020-03-01",
                None,
                "1",
            ),
        )
        .await;
    let (giulia, fam) = (soggetto(&r), famiglia(&r));
    // ...moves to Milan (015146): Milan registers the transfer.
    s.come_comune("015146");
    let body = json!({
        "idOperazioneComune": "1", "dataDecorrenza": "2023-09-01",
        "soggetti": [chi(&giulia)],
        "residenza": {"comune": "015146", "cap": "20121", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Manzoni"}, "numeroCivico": {"numero": "3"}}
    });
    let t = s.ok("5005", &body).await;
    let now = s.scheda(&giulia, None).await;
    assert_eq!(now["competenza"]["comune"], "015146");
    assert_eq!(now["residenza"]["indirizzo"]["comune"], "015146");
    let before = s.scheda(&giulia, Some("2023-08-31")).await;
    assert_eq!(before["competenza"]["comune"], "058091");
    let (_, f) = s
        .post("/api/v1/famiglie/consulta", &json!({"idANPR": fam}))
        .await;
    assert_eq!(f["scheda"]["dati"]["comune"], "015146");
    // The origin gets notification N010 in the outbox.
    let pending = s.store.outbox_pending(10).await.unwrap();
    let n010: Vec<_> = pending
        .iter()
        .filter(|m| m.message.tipo == "N010")
        .collect();
    assert_eq!(n010.len(), 1, "{pending:?}");
    assert_eq!(n010[0].message.destinatario, "058091");
    assert_eq!(n010[0].message.payload["soggetti"][0], giulia.as_str());
    assert_eq!(
        n010[0].id_operazione_anpr.map(|i| i.to_string()),
        t["idOperazioneANPR"].as_str().map(str::to_owned)
    );
    // Rome can no longer change her record; Milan can.
    s.come_comune("058091");
    let (codes, _) = s
        .ko("2003", &json!({"idOperazioneComune": "2", "motivoCancellazione": "6", "dataDecorrenza": "2024-01-01", "soggetto": chi(&giulia)}))
        .await;
    assert_eq!(codes, vec!["EN117"]);
    // The history of the residence shows both municipalities.
    let storia = s
        .store
        .history(
            anpr_store::EntityRef::Soggetto(giulia.parse().unwrap()),
            "competenza",
        )
        .await
        .unwrap();
    let comuni: Vec<_> = storia
        .iter()
        .map(|v| {
            v.value.as_ref().unwrap()["comune"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(comuni, vec!["058091", "015146"]);
    // Rome reads the notification over REST, acknowledges it, and it is taken.
    let id_t = t["idOperazioneANPR"].as_str().unwrap().to_owned();
    let milano = [
        ("x-anpr-utente", "BNCLRA70A41H501X"),
        ("x-anpr-comune", "015146"),
        ("x-anpr-profili", "OPERATORE_ANAGRAFE"),
    ];
    let (status, elenco, _) = s.get_id("/api/v1/notifiche", &OPERATORE).await;
    assert_eq!(status, 200, "{elenco}");
    let n = &elenco["notifiche"];
    assert_eq!(n.as_array().unwrap().len(), 1, "{elenco}");
    assert_eq!(n[0]["idOperazioneANPR"], id_t.as_str());
    assert_eq!(n[0]["tipo"], "N010");
    assert_eq!(n[0]["stato"], "daPrendere");
    assert_eq!(n[0]["contenuto"]["soggetti"][0], giulia.as_str());
    assert_eq!(n[0]["contenuto"]["comuneDestinazione"], "015146");
    // Milan, the sender, has no notification; reading took nothing.
    let (_, altro, _) = s.get_id("/api/v1/notifiche?stato=tutte", &milano).await;
    assert_eq!(altro["notifiche"], json!([]), "{altro}");
    let (status, ack) = s
        .post(
            "/api/v1/notifiche/presa-in-carico",
            &json!({"idOperazioneANPR": [id_t, "999999"]}),
        )
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["prese"], json!([id_t]));
    assert_eq!(ack["nonTrovate"], json!(["999999"]));
    let (_, vuoto, _) = s.get_id("/api/v1/notifiche", &OPERATORE).await;
    assert_eq!(vuoto["notifiche"], json!([]), "{vuoto}");
    let (_, prese, _) = s
        .get_id("/api/v1/notifiche?stato=prese&tipo=N010", &OPERATORE)
        .await;
    assert_eq!(prese["notifiche"][0]["stato"], "presa", "{prese}");
    assert!(prese["notifiche"][0]["presaIl"].is_string(), "{prese}");
    // Malformed filters: every one coded.
    let (status, err, _) = s
        .get_id(
            "/api/v1/notifiche?stato=lette&dal=2024-13-01&limit=0",
            &OPERATORE,
        )
        .await;
    assert_eq!(status, 400);
    let mut c = common::codes(&err);
    c.sort();
    assert_eq!(c, vec!["EV001", "EV001", "EV001"], "{err}");
}

#[tokio::test]
async fn trasferimento_tra_comuni_sqlite() {
    trasferimento_tra_comuni(Backend::Sqlite).await;
}

#[tokio::test]
async fn trasferimento_tra_comuni_postgres() {
    trasferimento_tra_comuni(Backend::Postgres).await;
}
