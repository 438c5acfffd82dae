//! Service 5021 (polygamous marriages) over HTTP on both backends: a second marriage,
//! widowhood and divorce of one pair while the other marriage stays open, modification,
//! annulment of the last polygamy operation, and every refusal with its code and field.

mod common;

use common::{codici, famiglia, soggetto, Server};
use serde_json::{json, Value};

fn iscrizione(id: u64, cognome: &str, nome: &str, sesso: &str, famiglia: Option<&str>) -> Value {
    let mut f = json!({"codiceLegame": if famiglia.is_some() { "2" } else { "1" }});
    if let Some(id) = famiglia {
        f["idFamigliaConvivenzaANPR"] = json!(id);
    }
    json!({
        "idOperazioneComune": id.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": "1970-01-01", "luogoNascita": "Z330"},
        "cittadinanza": [{"codiceStato": "436"}],
        "residenza": {"comune": "058091", "cap": "00100", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Appia"}, "numeroCivico": {"numero": "7"}},
        "famiglia": f
    })
}

fn chi(id: &str) -> Value {
    json!({"idSchedaSoggettoANPR": id})
}

/// The (code, field) pairs of a refused 5021.
async fn refused(s: &Server, body: Value) -> Vec<(String, String)> {
    let (_, v) = s.ko("5021", &body).await;
    assert!(v["riferimento"]["id"].as_str().is_some(), "{v}");
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

/// (status code, marriage events as (type, date, spouse surname)) of a record.
async fn stato(
    s: &Server,
    id: &str,
    data: Option<&str>,
) -> (String, Vec<(String, String, String)>) {
    let sc = s.scheda(id, data).await["statoCivile"].clone();
    let eventi = sc["eventi"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["tipo"].as_str().unwrap().to_owned(),
                e["dataEvento"].as_str().unwrap().to_owned(),
                e["coniuge"]["cognome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (sc["statoCivile"].as_str().unwrap_or("").to_owned(), eventi)
}

fn ev(tipo: &str, data: &str, coniuge: &str) -> (String, String, String) {
    (tipo.into(), data.into(), coniuge.into())
}

async fn polygamy(s: Server) {
    let r = s
        .ok("1002", &iscrizione(1, "Haddad", "Karim", "M", None))
        .await;
    let (karim, fam) = (soggetto(&r), famiglia(&r));
    let r = s
        .ok("1002", &iscrizione(2, "Saleh", "Leila", "F", Some(&fam)))
        .await;
    let leila = soggetto(&r);
    let r = s
        .ok("1002", &iscrizione(3, "Nasser", "Omar", "M", None))
        .await;
    let omar = soggetto(&r);

    // A first marriage goes through 5008, not 5021.
    let b = json!({"idOperazioneComune": "10", "dataDecorrenza": "2021-01-01", "tipoMutazione": "01",
        "matrimonioPerRicerca": {"coniuge1": chi(&omar)},
        "matrimonio": {"dataEvento": "2020-06-01", "coniuge": {"cognome": "Farah", "nome": "Mina"}}});
    assert_eq!(
        refused(&s, b).await,
        vec![("EV046".into(), "matrimonioPerRicerca.coniuge1".into())]
    );
    let b = json!({"idOperazioneComune": "11", "dataDecorrenza": "2020-05-01", "soggetto": chi(&karim),
        "matrimonio": {"dataEvento": "2000-05-01", "coniuge": chi(&leila)}});
    s.ok("5008", &b).await;

    // Second marriage of Karim, with a spouse not in the registry.
    let b = json!({"idOperazioneComune": "12", "dataDecorrenza": "2021-01-01", "tipoMutazione": "01",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim)},
        "matrimonio": {"dataEvento": "2005-06-01", "luogoEvento": "Z330", "coniuge": {"cognome": "Amrani", "nome": "Nadia"}}});
    s.ok("5021", &b).await;
    assert_eq!(
        stato(&s, &karim, None).await,
        (
            "2".into(),
            vec![
                ev("matrimonio", "2000-05-01", "Saleh"),
                ev("matrimonio", "2005-06-01", "Amrani")
            ]
        )
    );
    // The same pair cannot marry twice while married.
    let mut dup = b.clone();
    dup["idOperazioneComune"] = json!("13");
    assert_eq!(
        refused(&s, dup).await,
        vec![("EV047".into(), "matrimonio.coniuge".into())]
    );

    // Leila dies (2001): Karim gets the widowhood of that pair and stays married.
    let b = json!({"idOperazioneComune": "14", "motivoCancellazione": "1", "soggetto": chi(&leila),
        "datiDecesso": {"dataMorte": "2021-02-01"}});
    let (status, v) = s.post("/api/v1/operazioni/2001", &b).await;
    assert_eq!(status, 200, "{v}");
    assert!(codici(&v).contains(&"EN300".to_owned()), "{v}");
    let (codice, eventi) = stato(&s, &karim, None).await;
    assert_eq!(codice, "2", "{eventi:?}");
    assert_eq!(eventi.last(), Some(&ev("vedovanza", "2021-02-01", "Saleh")));

    // Widowhood of a pair that is no longer open.
    let b = json!({"idOperazioneComune": "15", "dataDecorrenza": "2021-04-01", "tipoMutazione": "02",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim), "coniuge2": chi(&leila)},
        "vedovanza": {"dataEvento": "2021-02-01"}});
    assert_eq!(
        refused(&s, b).await,
        vec![("EV048".into(), "matrimonioPerRicerca.coniuge2".into())]
    );
    // The end of a marriage dated before it.
    let nadia = json!({"cognome": "Amrani", "nome": "Nadia"});
    let b = json!({"idOperazioneComune": "16", "dataDecorrenza": "2021-04-01", "tipoMutazione": "03",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim), "coniuge2": nadia},
        "separazioneAnnullamentoCessazioneMatrimonio": {"dataEvento": "2004-01-01", "tipoCessazione": "3"}});
    assert_eq!(
        refused(&s, b).await,
        vec![(
            "EV049".into(),
            "separazioneAnnullamentoCessazioneMatrimonio.dataEvento".into()
        )]
    );
    // Type 02 without the other spouse; a type code outside 01-07.
    let b = json!({"idOperazioneComune": "17", "dataDecorrenza": "2021-04-01", "tipoMutazione": "02",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim)}, "vedovanza": {"dataEvento": "2021-02-01"}});
    assert_eq!(
        refused(&s, b).await,
        vec![("EV002".into(), "matrimonioPerRicerca.coniuge2".into())]
    );
    let b = json!({"idOperazioneComune": "18", "dataDecorrenza": "2021-04-01", "tipoMutazione": "09",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim)}});
    assert_eq!(
        refused(&s, b).await,
        vec![("EV001".into(), "tipoMutazione".into())]
    );

    // Modify the second marriage's date (type 04).
    let b = json!({"idOperazioneComune": "19", "dataDecorrenza": "2021-05-01", "tipoMutazione": "04",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim), "coniuge2": nadia},
        "matrimonio": {"dataEvento": "2005-07-01"}});
    s.ok("5021", &b).await;
    assert!(stato(&s, &karim, None)
        .await
        .1
        .contains(&ev("matrimonio", "2005-07-01", "Amrani")));

    // Divorce from Nadia (type 03): the last marriage ends, Karim is divorced.
    let b = json!({"idOperazioneComune": "20", "dataDecorrenza": "2021-06-01", "tipoMutazione": "03",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim), "coniuge2": nadia},
        "separazioneAnnullamentoCessazioneMatrimonio": {"dataEvento": "2021-05-15", "tipoCessazione": "99"}});
    let r = s.ok("5021", &b).await;
    // A code not in the table is reported (EC165 is a warning), not blocking.
    assert_eq!(codici(&r), vec!["EC165"], "{r}");
    let divorzio = r["idOperazioneANPR"].as_str().unwrap().to_owned();
    let (codice, eventi) = stato(&s, &karim, None).await;
    assert_eq!(codice, "4");
    assert_eq!(eventi.last(), Some(&ev("divorzio", "2021-05-15", "Amrani")));
    // As at a date before the divorce, still married.
    assert_eq!(stato(&s, &karim, Some("2021-05-20")).await.0, "2");

    // Type 07 annuls only 5021 operations, of the subject named.
    let b = json!({"idOperazioneComune": "21", "tipoMutazione": "07",
        "matrimonioPerRicerca": {"coniuge1": chi(&omar)},
        "datiAnnullamento": {"idOperazioneANPR": divorzio}});
    assert_eq!(
        refused(&s, b).await,
        vec![("EN314".into(), "datiAnnullamento.idOperazioneANPR".into())]
    );
    let b = json!({"idOperazioneComune": "22", "tipoMutazione": "07",
        "matrimonioPerRicerca": {"coniuge1": chi("999999")},
        "datiAnnullamento": {"idOperazioneANPR": divorzio}});
    assert_eq!(
        refused(&s, b).await,
        vec![(
            "ES101".into(),
            "matrimonioPerRicerca.coniuge1.idSchedaSoggettoANPR".into()
        )]
    );
    let b = json!({"idOperazioneComune": "23", "tipoMutazione": "07",
        "matrimonioPerRicerca": {"coniuge1": chi(&karim)},
        "datiAnnullamento": {"idOperazioneANPR": divorzio}});
    s.ok("5021", &b).await;
    let (codice, eventi) = stato(&s, &karim, None).await;
    assert_eq!(codice, "2");
    assert_eq!(eventi.last(), Some(&ev("vedovanza", "2021-02-01", "Saleh")));
}

on_both_backends!(polygamy);
