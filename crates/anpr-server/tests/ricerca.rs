//! Searches (`POST /api/v1/soggetti/ricerca`, `POST /api/v1/famiglie/ricerca`) and
//! operations monitoring (`GET /api/v1/operazioni`) over real HTTP, on SQLite and on
//! PostgreSQL: answers, coded 400/403/422 errors, pagination, and the audit entries the
//! reads leave.

mod common;

use anpr_domain::audit::TipoEvento;
use common::{codes, Server};
use serde_json::{json, Value};

const OPERATORE: [(&str, &str); 3] = [
    ("x-anpr-utente", "BNCLRA70A41H501X"),
    ("x-anpr-comune", "058091"),
    (
        "x-anpr-profili",
        "OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE",
    ),
];

const MONITOR: [(&str, &str); 3] = [
    ("x-anpr-utente", "VRDLCU80A01H501X"),
    ("x-anpr-comune", "058091"),
    ("x-anpr-profili", "OPERATORE_MONITORAGGIO"),
];

fn iscrizione(
    id_comune: u64,
    cognome: &str,
    nome: &str,
    numero: &str,
    famiglia: Option<&str>,
) -> Value {
    let mut famiglia_json = json!({"codiceLegame": if famiglia.is_some() { "2" } else { "1" }});
    if let Some(f) = famiglia {
        famiglia_json["idFamigliaConvivenzaANPR"] = json!(f);
    }
    json!({
        "idOperazioneComune": id_comune.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": "F", "dataNascita": "1980-01-01", "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": numero}},
        "famiglia": famiglia_json
    })
}

/// Registers over HTTP; returns (operation id, subject id, family id).
async fn iscrivi(s: &Server, body: &Value) -> (String, String, String) {
    let (status, doc) = s.post_id("/api/v1/operazioni/1002", body, &OPERATORE).await;
    assert_eq!(status, 200, "{doc}");
    (
        doc["idOperazioneANPR"].as_str().unwrap().to_owned(),
        doc["soggetti"][0]["idANPR"].as_str().unwrap().to_owned(),
        doc["famiglie"][0]["idANPR"].as_str().unwrap().to_owned(),
    )
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["idAnpr"].as_str().unwrap().to_owned())
        .collect()
}

async fn ricerche_su_http(s: Server) {
    let (_, anna, f1) = iscrivi(&s, &iscrizione(1, "D'Àngelo", "Anna", "10", None)).await;
    let (_, lucia, _) = iscrivi(&s, &iscrizione(2, "D'Angelis", "Lucia", "10", Some(&f1))).await;
    let (_, _, f2) = iscrivi(&s, &iscrizione(3, "Esposito", "Rita", "12", None)).await;
    let subjects = "/api/v1/soggetti/ricerca";

    // Accents and case do not matter; the answer names the environment and the date.
    let (status, body) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"cognome": "D'ANGELO"}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totale"], 1);
    assert_eq!(body["ambiente"], "test");
    assert_eq!(body["dataRiferimento"], Value::Null);
    assert_eq!(ids(&body, "soggetti"), vec![anna.clone()]);
    assert_eq!(
        body["soggetti"][0]["scheda"]["generalita"]["cognome"],
        "D'Àngelo"
    );
    // The search and the record read are in the audit log.
    let audit = s.store.audit_page(0, 10_000).await.unwrap();
    let tail: Vec<(TipoEvento, &str, Option<&str>)> = audit[audit.len() - 2..]
        .iter()
        .map(|v| {
            (
                v.voce.evento,
                v.voce.azione.as_str(),
                v.voce.oggetto.as_deref(),
            )
        })
        .collect();
    let read = format!("soggetto:{anna}");
    assert_eq!(
        tail,
        vec![
            (
                TipoEvento::Lettura,
                "ricercaSoggetti",
                Some("criterio:generalita")
            ),
            (TipoEvento::Lettura, "ricercaSoggetti", Some(read.as_str())),
        ]
    );

    // Partial keys, chosen sections.
    let (status, body) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"cognome": "d'angeli"}, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": 1}, "datiRichiesta": {"sezioni": ["generalita"]}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body, "soggetti"), vec![lucia.clone()]);
    let sections: Vec<&String> = body["soggetti"][0]["scheda"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(sections, vec!["generalita"]);
    let (_, body) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"cognome": "d"}, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": 1}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(codes(&body), vec!["EHR62"]);
    // As at a date before the registrations: nothing.
    let (status, body) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"idANPR": anna}, "datiRichiesta": {"dataRiferimentoRichiesta": "2019-12-31"}}),
            &OPERATORE,
        )
        .await;
    assert_eq!((status, body["totale"].clone()), (200, json!(0)), "{body}");
    assert_eq!(body["dataRiferimento"], "2019-12-31");

    // Malformed criteria: coded 400s naming the environment.
    for (request, expected) in [
        (json!({"criteriRicerca": {}}), vec!["EN448"]),
        (
            json!({"criteriRicerca": {"idANPR": "1", "cognome": "Rossi"}}),
            vec!["EV050"],
        ),
        (
            json!({"criteriRicerca": {"cognome": "Rossi", "sesso": "Q"}, "datiRichiesta": {"limit": 0}}),
            vec!["EV001", "EV001"],
        ),
        (
            json!({"criteriRicerca": {"cognome": "Rossi", "eta": 3}}),
            vec!["EV001"],
        ),
        (json!({"cognome": "Rossi"}), vec!["EV001"]),
    ] {
        let (status, body) = s.post_id(subjects, &request, &OPERATORE).await;
        assert_eq!(
            (status, codes(&body)),
            (400, expected.iter().map(ToString::to_string).collect()),
            "{request} -> {body}"
        );
    }
    // Too many: 422 EN115.
    let (status, body) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"cognome": "d"}, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": 0}, "datiRichiesta": {"posizioni": ["residente"], "limit": 1}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(
        (status, body["totale"].clone()),
        (200, json!(0)),
        "the exact surname D matches nobody: {body}"
    );
    let (status, body) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"cognome": "d ang"}, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": 1}, "datiRichiesta": {"limit": 1}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(
        (status, codes(&body)),
        (422, vec!["EN115".to_owned()]),
        "{body}"
    );
    // Denied: anonymous and profiles without search.
    let (status, body) = s
        .post_id(subjects, &json!({"criteriRicerca": {"idANPR": anna}}), &[])
        .await;
    assert_eq!((status, codes(&body)), (403, vec!["EA401".to_owned()]));
    let (status, _) = s
        .post_id(
            subjects,
            &json!({"criteriRicerca": {"idANPR": anna}}),
            &[
                ("x-anpr-utente", "X"),
                ("x-anpr-profili", "OPERATORE_SUBENTRO"),
            ],
        )
        .await;
    assert_eq!(status, 403);

    // Families at a building, with their members.
    let families = "/api/v1/famiglie/ricerca";
    let (status, body) = s
        .post_id(
            families,
            &json!({"criteriRicerca": {"indirizzo": {"comune": "058091", "toponimo": {"specie": "via", "denominazioneToponimo": "NAZIONALE"}, "numeroCivico": {"numero": "10", "interno": "3"}}}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body, "famiglie"), vec![f1.clone()]);
    let members: Vec<&str> = body["famiglie"][0]["componenti"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["idAnpr"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec![anna.as_str(), lucia.as_str()]);
    let (_, body) = s
        .post_id(
            families,
            &json!({"criteriRicerca": {"idANPR": lucia}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(ids(&body, "famiglie"), vec![f1.clone()]);
    let (_, body) = s
        .post_id(
            families,
            &json!({"criteriRicerca": {"idFamigliaConvivenzaANPR": f2}}),
            &OPERATORE,
        )
        .await;
    assert_eq!(ids(&body, "famiglie"), vec![f2.clone()]);
    let (status, body) = s
        .post_id(
            families,
            &json!({"criteriRicerca": {"idFamigliaConvivenzaComune": "F-77"}}),
            &OPERATORE,
        )
        .await;
    assert_eq!((status, codes(&body)), (400, vec!["EN053".to_owned()]));
    assert_eq!(body["ambiente"], "test");
}

async fn monitoraggio_su_http(s: Server) {
    let (op1, s1, _) = iscrivi(&s, &iscrizione(1, "Rossi", "Anna", "10", None)).await;
    let (op2, _, _) = iscrivi(&s, &iscrizione(2, "Bianchi", "Rita", "10", None)).await;
    let (status, doc) = s
        .post_id(
            "/api/v1/operazioni/1013",
            &json!({"idOperazioneComune": "3", "idOperazioneANPR": op2}),
            &OPERATORE,
        )
        .await;
    assert_eq!(status, 200, "{doc}");
    let op3 = doc["idOperazioneANPR"].as_str().unwrap().to_owned();
    let list = |body: &Value| -> Vec<String> {
        body["operazioni"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["idOperazioneANPR"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, body, env) = s.get_id("/api/v1/operazioni", &MONITOR).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.as_deref(), Some("test"));
    assert_eq!(list(&body), vec![op1.clone(), op2.clone(), op3.clone()]);
    assert_eq!(body["ambiente"], "test");
    assert!(body.get("prossimaPagina").is_none());
    let first = &body["operazioni"][0];
    assert_eq!(first["codiceServizio"], "1002");
    assert_eq!(first["stato"], "eseguita");
    assert_eq!(first["idOperazioneComune"], "1");
    assert_eq!(first["soggetti"], json!([s1]));
    assert!(first.get("richiesta").is_none());
    let audit = s.store.audit_page(0, 10_000).await.unwrap();
    let last = &audit.last().unwrap().voce;
    assert_eq!(
        (last.evento, last.azione.as_str(), last.esito.as_str()),
        (
            TipoEvento::Lettura,
            "monitoraggioOperazioni",
            "3 operazioni"
        )
    );

    // Filters and pages.
    let (_, body, _) = s
        .get_id("/api/v1/operazioni?stato=annullata", &MONITOR)
        .await;
    assert_eq!(list(&body), vec![op2.clone()]);
    assert_eq!(body["operazioni"][0]["annullataDa"], json!(op3));
    let (_, body, _) = s
        .get_id("/api/v1/operazioni?codiceServizio=1013", &MONITOR)
        .await;
    assert_eq!(list(&body), vec![op3.clone()]);
    assert_eq!(body["operazioni"][0]["annulla"], json!(op2));
    let (_, body, _) = s
        .get_id(&format!("/api/v1/operazioni?idANPR={s1}"), &MONITOR)
        .await;
    assert_eq!(list(&body), vec![op1.clone()]);
    let (_, body, _) = s.get_id("/api/v1/operazioni?limit=2", &MONITOR).await;
    assert_eq!(list(&body), vec![op1.clone(), op2.clone()]);
    assert_eq!(body["prossimaPagina"], json!(op2));
    let (_, body, _) = s
        .get_id(&format!("/api/v1/operazioni?limit=2&dopo={op2}"), &MONITOR)
        .await;
    assert_eq!(list(&body), vec![op3.clone()]);
    assert!(body.get("prossimaPagina").is_none());
    let today = chrono::Utc::now().date_naive();
    let (_, body, _) = s
        .get_id(
            &format!(
                "/api/v1/operazioni?dal={}&al={}",
                today.pred_opt().unwrap(),
                today.succ_opt().unwrap()
            ),
            &MONITOR,
        )
        .await;
    assert_eq!(list(&body).len(), 3);
    let (_, body, _) = s
        .get_id("/api/v1/operazioni?dal=2020-01-01&al=2020-01-31", &MONITOR)
        .await;
    assert!(list(&body).is_empty());

    // Bad filters: coded 400s.
    for (query, expected) in [
        ("stato=sospesa", vec!["EV001"]),
        ("dal=2026-02-30", vec!["EV001"]),
        ("dal=2026-03-02&al=2026-03-01", vec!["EN478"]),
        ("limit=0", vec!["EV001"]),
        ("limit=501", vec!["EV001"]),
        ("limit=tanti&stato=boh", vec!["EV001", "EV001"]),
        ("ordine=desc", vec!["EV001"]),
    ] {
        let (status, body, _) = s
            .get_id(&format!("/api/v1/operazioni?{query}"), &MONITOR)
            .await;
        assert_eq!(
            (status, codes(&body)),
            (400, expected.iter().map(ToString::to_string).collect()),
            "{query} -> {body}"
        );
    }
    // Scope and documents.
    let (status, body, _) = s.get_id("/api/v1/operazioni?comune=015146", &MONITOR).await;
    assert_eq!((status, codes(&body)), (403, vec!["EA401".to_owned()]));
    let (status, _, _) = s
        .get_id("/api/v1/operazioni?documenti=true", &MONITOR)
        .await;
    assert_eq!(status, 403);
    let superuser = [
        ("x-anpr-utente", "VRDLCU80A01H501X"),
        ("x-anpr-comune", "058091"),
        ("x-anpr-profili", "SUPER_UTENTE"),
    ];
    let (status, body, _) = s
        .get_id("/api/v1/operazioni?documenti=true&limit=1", &superuser)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["operazioni"][0]["richiesta"]["generalita"]["cognome"],
        "Rossi"
    );
    assert_eq!(
        body["operazioni"][0]["risposta"]["idOperazioneANPR"],
        json!(op1)
    );
    let (status, _, _) = s.get_id("/api/v1/operazioni", &[]).await;
    assert_eq!(status, 403);
}

/// Every `$ref` of the OpenAPI document resolves, and the new paths are documented.
async fn openapi_documenta_ricerche(s: Server) {
    let (status, doc, _) = s.get_id("/api/v1/openapi.json", &[]).await;
    assert_eq!(status, 200);
    for (path, method) in [
        ("/api/v1/soggetti/ricerca", "post"),
        ("/api/v1/famiglie/ricerca", "post"),
        ("/api/v1/operazioni", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }
}

on_both_backends!(
    ricerche_su_http,
    monitoraggio_su_http,
    openapi_documenta_ricerche
);
