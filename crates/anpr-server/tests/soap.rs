//! SOAP endpoints end to end, on SQLite and on PostgreSQL: a gestionale generated with
//! Python zeep from the WSDLs our server publishes performs the registry scenario of
//! issue 4 (1002, 1001 with parents, 3002, 5005, 5008, 5012, 2001, 1013, 7001), every
//! request and response validated against the published XSDs (`tests/soap/gestionale.py`);
//! the effects are then checked over REST. The services answered outside the registry
//! pipeline (6001 certificates, 4001-4005 and 7002 extractions, 3004 proceedings) and
//! 5010 have their own scenario, as do the public bodies' (E001, E002) and the
//! consulates' (C001, C010) services with their own callers. Hostile messages (XXE,
//! entity bomb, 100 MB, invalid UTF-8, unknown elements...) get SOAP faults and the
//! server keeps serving.

mod common;

use std::process::Command;

use common::Server;
use serde_json::Value;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Runs the zeep gestionale against `base`; its JSON report.
async fn gestionale(base: &str, scenario: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soap/gestionale.py");
    let (base, scenario) = (base.to_owned(), scenario.to_owned());
    // The server runs on this test's runtime: the client waits on a blocking thread.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .arg(scenario)
            .output()
            .expect("python3 runs (scripts/test installs zeep and xmlschema)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gestionale failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

fn codici(esito: &Value) -> Vec<(String, String)> {
    esito[3]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn scenario_registro(s: Server) {
    let out = gestionale(&s.base, "registry").await;
    let ids = &out["ids"];
    let (anna, marco, luca) = (
        ids["anna"].as_str().unwrap(),
        ids["marco"].as_str().unwrap(),
        ids["luca"].as_str().unwrap(),
    );
    // Every request and response of the scenario was XSD-valid: 12 calls, 2 each.
    assert_eq!(out["validati"], 24, "{out}");

    // 1002 and its replay: the same operation and subject, nothing registered twice.
    assert_eq!(out["1002"][0], "2", "{out}");
    assert_eq!(
        out["1002_replay"], out["1002"],
        "replay returns the original answer"
    );
    assert_eq!(s.scheda(anna, None).await["generalita"]["nome"], "Anna");

    // 1001: the child, linked to both parents, joined the mother's family.
    assert_eq!(out["1001"][0], "2", "{out}");
    let l = s.scheda(luca, None).await;
    assert_eq!(l["genitori"]["madre"]["idAnpr"], anna);
    assert_eq!(l["genitori"]["padre"]["idAnpr"], marco);
    assert_eq!(l["legame"]["codiceLegame"], "3");
    assert_eq!(l["atti"]["attoNascita"]["numeroAtto"], "123");

    // 3002: the record as the registry holds it.
    let c = &out["3002"];
    assert_eq!(c["esito"], "2");
    assert_eq!(c["idANPR"], luca);
    assert_eq!(
        (c["cognome"].as_str(), c["nome"].as_str()),
        (Some("Bianchi"), Some("Luca"))
    );
    assert_eq!(c["codFiscale"], l["codiceFiscale"]["codFiscale"]);
    assert_eq!(c["luogoNascita"], "058091");
    assert_eq!(c["via"], "Nazionale");

    // 5005: mother and child moved.
    assert_eq!(out["5005"][0], "2", "{out}");
    for id in [anna, luca] {
        let r = s.scheda(id, None).await;
        assert_eq!(
            r["residenza"]["indirizzo"]["toponimo"]["denominazioneToponimo"],
            "Po"
        );
    }

    // 5008 succeeded with its warning (esito 6), then 5012 annulled it.
    assert_eq!(out["5008"][0], "6", "{out}");
    assert!(codici(&out["5008"]).contains(&("EA044".into(), "W".into())));
    assert_eq!(out["5012"][0], "2", "{out}");
    let m = s.scheda(marco, Some("2024-01-01")).await;
    assert_eq!(m["generalita"]["nome"], "Marco", "the change was annulled");

    // 2001: removed for death.
    assert_eq!(out["2001"][0], "2", "{out}");
    let m = s.scheda(marco, None).await;
    assert_eq!(m["competenza"]["posizione"], "cancellato");

    // 1013: the mistaken registration is gone.
    assert_eq!(out["1013"][0], "2", "{out}");
    let (status, _) = s
        .post(
            "/api/v1/soggetti/consulta",
            &serde_json::json!({"idANPR": out["carla"]}),
        )
        .await;
    assert_eq!(status, 404);

    // A refusal: rispostaKO naming the element, with the support entry.
    assert_eq!(out["1002_ko"][0], "3", "{out}");
    let ko = codici(&out["1002_ko"]);
    assert_eq!(ko[0].0, "EV106");
    assert_eq!(ko.last().unwrap(), &("EN527".into(), "W".into()));
}

async fn scenario_tabella(s: Server) {
    let out = gestionale(&s.base, "table").await;
    assert_eq!(out["esito"], "2", "{out}");
    assert_eq!(out["idTabella"], "001");
    assert_eq!(out["tabella"], "stato_civile");
    let registry_rows = s
        .registry
        .tables()
        .table("stato_civile")
        .unwrap()
        .rows()
        .len();
    assert_eq!(out["righe"].as_u64().unwrap() as usize, registry_rows);
    assert!(out["codici"].as_array().unwrap().contains(&"2".into()));
    assert_eq!(out["validati"], 2);
}

/// Posts a raw body to a SOAP endpoint: status and text.
async fn raw(
    s: &Server,
    servizio: &str,
    body: impl Into<reqwest::Body>,
    action: Option<&str>,
) -> (u16, String) {
    let mut req = s
        .client
        .post(format!("{}/ws/{servizio}", s.base))
        .header("content-type", "text/xml; charset=utf-8")
        .body(body);
    if let Some(a) = action {
        req = req.header("SOAPAction", a);
    }
    match req.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap()),
        Err(e) => (0, e.to_string()),
    }
}

fn busta(body: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"{SOAP_ENV}\"><s:Body>{body}</s:Body></s:Envelope>")
}

const TESTATA_7003: &str = "<testataRichiesta><idOperazioneComune>1</idOperazioneComune>\
    <codMittente>058091</codMittente><codDestinatario>999999</codDestinatario>\
    <operazioneRichiesta>7003</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta>\
    <tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio></testataRichiesta>";

fn versioni() -> String {
    busta(&format!(
        "<t:Richiesta7003 xmlns:t=\"http://sogei.it/ANPR/7001scaricoTabelle\">{TESTATA_7003}<datiRichiesta/></t:Richiesta7003>"
    ))
}

/// The fault code in our detail (`codiceErroreAnomalia` of the first error).
fn codice_fault(text: &str) -> String {
    let start = text
        .find("<codiceErroreAnomalia>")
        .unwrap_or_else(|| panic!("no coded fault in {text}"))
        + "<codiceErroreAnomalia>".len();
    text[start..start + text[start..].find('<').unwrap()].to_owned()
}

async fn scenario_ostili(s: Server) {
    // The well-formed request works before and after every hostile one.
    let (status, text) = raw(&s, "AnprService7001", versioni(), Some("\"\"")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("<VersioneCompleta>"), "{text}");
    assert!(
        text.contains("<esitoOperazione>2</esitoOperazione>"),
        "{text}"
    );

    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        busta("<x>&xxe;</x>")
    );
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]>{}",
        (1..10)
            .map(|i| format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&lol{};", i - 1).repeat(10)
            ))
            .collect::<String>()
            .replace("&lol0;", "&lol;"),
        busta("<x>&lol9;</x>")
    );
    let entita_non_dichiarata = busta("<x>&lol9;</x>");
    let mut non_utf8 = busta("<x>").into_bytes();
    non_utf8.extend_from_slice(b"\xff\xfe");
    non_utf8.extend_from_slice(busta("</x>").as_bytes());
    let sconosciuto = busta(&format!(
        "<t:Richiesta7003 xmlns:t=\"http://sogei.it/ANPR/7001scaricoTabelle\">{TESTATA_7003}<datiRichiesta/><intruso>1</intruso></t:Richiesta7003>"
    ));
    let namespace_errato = busta(&format!(
        "<t:Richiesta7003 xmlns:t=\"http://example.org/altro\">{TESTATA_7003}<datiRichiesta/></t:Richiesta7003>"
    ));
    let operazione_ignota =
        busta("<t:Richiesta9999 xmlns:t=\"http://sogei.it/ANPR/7001scaricoTabelle\"/>");
    let soap12 =
        "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body/></e:Envelope>";
    // (case, body, SOAPAction, HTTP status, our code in the fault detail)
    type Caso<'a> = (&'a str, Vec<u8>, Option<&'a str>, u16, &'a str);
    let cases: Vec<Caso> = vec![
        ("XXE", xxe.into_bytes(), None, 400, "EV111"),
        ("billion laughs", bomb.into_bytes(), None, 400, "EV111"),
        (
            "undeclared entity",
            entita_non_dichiarata.into_bytes(),
            None,
            400,
            "EV111",
        ),
        ("invalid UTF-8", non_utf8, None, 400, "EV110"),
        ("not XML", b"hello".to_vec(), None, 400, "EV110"),
        (
            "unknown element",
            sconosciuto.into_bytes(),
            None,
            400,
            "EV101",
        ),
        (
            "wrong namespace",
            namespace_errato.into_bytes(),
            None,
            400,
            "EV114",
        ),
        (
            "unknown operation",
            operazione_ignota.into_bytes(),
            None,
            400,
            "EV114",
        ),
        (
            "wrong SOAPAction",
            versioni().into_bytes(),
            Some("urn:altro"),
            400,
            "EV115",
        ),
        ("SOAP 1.2", soap12.as_bytes().to_vec(), None, 400, "EV113"),
    ];
    for (nome, body, action, status, codice) in cases {
        let (st, text) = raw(&s, "AnprService7001", body, action).await;
        assert_eq!(st, status, "{nome}: {text}");
        assert!(text.contains("<soap:Fault>"), "{nome}: {text}");
        assert_eq!(codice_fault(&text), codice, "{nome}: {text}");
        assert!(
            !text.contains("root:"),
            "{nome}: nothing of the file system leaks"
        );
    }
    let (_, text) = raw(
        &s,
        "AnprService7001",
        busta(&format!(
            "<t:Richiesta7003 xmlns:t=\"http://sogei.it/ANPR/7001scaricoTabelle\">{TESTATA_7003}<datiRichiesta/><intruso>1</intruso></t:Richiesta7003>"
        )),
        None,
    )
    .await;
    assert!(
        text.contains("<campoErroreAnomalia>Richiesta7003/intruso</campoErroreAnomalia>"),
        "the path of the unknown element is named: {text}"
    );

    // The XSD's patterns, primitive types and element order are enforced: one fault
    // lists every finding with its element path and what the schema expects.
    let (st, text) = raw(
        &s,
        "AnprService7001",
        versioni()
            .replace(
                "<idOperazioneComune>1</idOperazioneComune>",
                "<idOperazioneComune>1-2</idOperazioneComune>",
            )
            .replace("2026-11-23T10:00:00", "2026-11-31T10:00:00")
            .replace(
                "<tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio>",
                "<tipoInvio>TEST</tipoInvio><tipoOperazione>C</tipoOperazione>",
            ),
        None,
    )
    .await;
    assert_eq!((st, codice_fault(&text).as_str()), (400, "EV101"), "{text}");
    for (campo, atteso) in [
        (
            "Richiesta7003/testataRichiesta/idOperazioneComune",
            "([0-9a-zA-Z])*",
        ),
        (
            "Richiesta7003/testataRichiesta/dataOraRichiesta",
            "xs:dateTime",
        ),
        (
            "Richiesta7003/testataRichiesta/tipoOperazione",
            "l&apos;ordine dello schema",
        ),
    ] {
        let i = text
            .find(&format!(
                "<campoErroreAnomalia>{campo}</campoErroreAnomalia>"
            ))
            .unwrap_or_else(|| panic!("{campo} not named: {text}"));
        let voce = &text[text[..i].rfind("<errore>").unwrap()..];
        let voce = &voce[..voce.find("</errore>").unwrap()];
        assert!(voce.contains(atteso), "{campo}: {voce}");
    }

    // Header rules answer rispostaKO with their codes (and the support entry).
    for (da, a, codice) in [
        (
            "<codDestinatario>999999</codDestinatario>",
            "<codDestinatario>111111</codDestinatario>",
            "EV102",
        ),
        (
            "<operazioneRichiesta>7003</operazioneRichiesta>",
            "<operazioneRichiesta>7001</operazioneRichiesta>",
            "EV103",
        ),
        (
            "<tipoInvio>TEST</tipoInvio>",
            "<tipoInvio>PROVA</tipoInvio>",
            "EV104",
        ),
    ] {
        let (st, text) = raw(&s, "AnprService7001", versioni().replace(da, a), None).await;
        assert_eq!(st, 200, "{text}");
        assert!(text.contains("<ns:rispostaKO>"), "{text}");
        assert!(
            text.contains("<esitoOperazione>3</esitoOperazione>"),
            "{text}"
        );
        assert_eq!(codice_fault(&text), codice, "{text}");
        assert!(
            text.contains("<codiceErroreAnomalia>EN527</codiceErroreAnomalia>"),
            "{text}"
        );
    }
    // The development identity is never accepted for produzione.
    let identita =
        "<s:Header><a:identitaSviluppo xmlns:a=\"urn:anpr:soap\"><utente>BNCLRA70A41H501X</utente>\
        <profili>OPERATORE_ANAGRAFE</profili></a:identitaSviluppo></s:Header><s:Body>";
    let prod = versioni()
        .replace("<tipoInvio>TEST</tipoInvio>", "<tipoInvio>PROD</tipoInvio>")
        .replace("<s:Body>", identita);
    let (st, text) = raw(&s, "AnprService7001", prod, None).await;
    assert_eq!((st, codice_fault(&text).as_str()), (403, "EA402"), "{text}");

    // 100 MB: refused at the size limit, without reading it all.
    let big = vec![b'a'; 100 * 1024 * 1024];
    let (st, text) = raw(&s, "AnprService7001", big, None).await;
    assert_eq!(st, 413, "{text}");
    assert_eq!(codice_fault(&text), "EV112");

    // Unknown endpoint and documents.
    let (st, text) = raw(&s, "AnprServiceNessuno", versioni(), None).await;
    assert_eq!((st, codice_fault(&text).as_str()), (404, "EV116"));

    // Still serving.
    let (status, text) = raw(&s, "AnprService7001", versioni(), None).await;
    assert_eq!(status, 200, "{text}");
    let health = s
        .client
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

async fn scenario_documenti(s: Server) {
    let get = |q: &str| {
        let url = format!("{}/ws/AnprService1000{q}", s.base);
        let client = s.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, wsdl) = get("?wsdl").await;
    assert_eq!(st, 200);
    assert!(wsdl.contains(&format!("location=\"{}/ws/AnprService1000\"", s.base)));
    assert!(wsdl.contains(&format!(
        "schemaLocation=\"{}/ws/AnprService1000?xsd=1000iscrizione.xsd\"",
        s.base
    )));
    let (st, xsd) = get("?xsd=tipoDato.xsd").await;
    assert_eq!(st, 200);
    assert!(xsd.contains("tipoDatoTestataRichiesta"));
    let (st, text) = get("?xsd=..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!((st, codice_fault(&text).as_str()), (404, "EV116"));
}

on_both_backends!(scenario_registro, scenario_tabella);
on_both_backends!(scenario_ostili, scenario_documenti);

/// Every other operation of the WSDLs, one call each (table-driven): the outcome and
/// codes expected, every request and response XSD-valid.
async fn scenario_tutte(s: Server) {
    let out = gestionale(&s.base, "all").await;
    let attesi: &[(&str, &str, &[&str])] = &[
        ("1010", "6", &["EV105"]),
        ("1014", "2", &[]),
        ("2003", "2", &[]),
        ("2009", "3", &["EF002", "EN527"]),
        ("2011", "2", &[]),
        ("2012", "3", &["EV100", "EN527"]),
        ("3006", "2", &[]),
        ("5001", "2", &[]),
        ("5013", "3", &["EV043", "EN527"]),
        ("5014", "2", &[]),
        ("7002", "3", &["EV404", "EN527"]),
        ("7003", "2", &[]),
        ("A001", "2", &[]),
        ("A002", "2", &[]),
        ("A006", "2", &[]),
    ];
    for (codice, esito, codici) in attesi {
        assert_eq!(
            out[codice],
            serde_json::json!([esito, codici]),
            "{codice}: {out}"
        );
    }
    assert_eq!(out["3001"], serde_json::json!(["2", [1]]), "{out}");
    // 19 calls (two 1002, two 3001), each request and response validated.
    assert_eq!(out["validati"], 38, "{out}");
    // Effects, read back over REST: Pietro joined Giulia's family (5001) and his
    // removal (2003) was annulled (2011); Elena is in AIRE.
    let ids = &out["ids"];
    let pietro = s.scheda(ids["pietro"].as_str().unwrap(), None).await;
    assert_eq!(
        pietro["legame"]["idFamigliaConvivenzaAnpr"],
        ids["famiglia_giulia"]
    );
    assert_eq!(pietro["competenza"]["posizione"], "residente");
    let elena = s.scheda(ids["elena"].as_str().unwrap(), None).await;
    assert_eq!(elena["competenza"]["posizione"], "aire");
}

/// Every operation of every published WSDL without a use case in this release answers
/// the coded refusal EV100 (with the EN527 entry), valid against its family's XSD.
async fn scenario_non_disponibili(s: Server) {
    let out = gestionale(&s.base, "unavailable").await;
    let ops = out.as_object().unwrap();
    // 54 operations in the WSDLs, 41 served (S001: tests/soap_s001.rs).
    assert_eq!(ops.len(), 54 - 41, "{out}");
    for (op, v) in ops {
        assert_eq!(v, &serde_json::json!([200, ["EV100", "EN527"]]), "{op}");
    }
}

on_both_backends!(scenario_tutte, scenario_non_disponibili);

/// The (type, date) of the civil-status events of a record, and its status code.
async fn eventi(s: &Server, id: &str) -> (String, Vec<(String, String)>) {
    let sc = s.scheda(id, None).await["statoCivile"].clone();
    let ev = sc["eventi"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["tipo"].as_str().unwrap_or_default().to_owned(),
                e["dataEvento"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (
        sc["statoCivile"].as_str().unwrap_or_default().to_owned(),
        ev,
    )
}

fn e(tipo: &str, data: &str) -> (String, String) {
    (tipo.into(), data.into())
}

/// Civil-status events (5008) and polygamy (5021) over SOAP, read back over REST.
async fn scenario_stato_civile(s: Server) {
    let out = gestionale(&s.base, "civil_status").await;
    assert_eq!(
        out["5008_matrimonio"],
        serde_json::json!(["2", []]),
        "{out}"
    );
    // The spouse's birth data and the marriage order are not kept: said, not dropped.
    assert_eq!(
        out["5021_01"],
        serde_json::json!([
            "6",
            ["EV105", "EV105", "EV105"],
            "01",
            [
                "matrimonio/coniuge/dataNascita",
                "matrimonio/coniuge/sesso",
                "matrimonio/ordineMatrimonio"
            ]
        ]),
        "{out}"
    );
    assert_eq!(
        out["5021_03"],
        serde_json::json!(["6", ["EV105", "EV105"], "03"])
    );
    assert_eq!(out["5021_07"], serde_json::json!(["2", [], "07"]));
    assert_eq!(
        out["5021_ko"],
        serde_json::json!([
            "3",
            ["EV046", "EN527"],
            "01",
            ["EV046", "matrimonioPerRicerca.coniuge1"]
        ])
    );
    for k in [
        "5008_permesso",
        "5008_unione",
        "5008_matrimonio_esterno",
        "5008_vedovanza",
    ] {
        assert_eq!(out[k], serde_json::json!(["2", []]), "{k}: {out}");
    }
    for k in ["5008_scioglimento", "5008_convivenza", "5008_risoluzione"] {
        assert_eq!(out[k], serde_json::json!(["6", ["EV105"]]), "{k}: {out}");
    }
    assert_eq!(
        out["5008_procedimento"],
        serde_json::json!(["3", ["EHRA1", "EN527"]])
    );
    assert_eq!(
        out["5008_senza_giorno"],
        serde_json::json!([
            "3",
            ["EV105", "EN527"],
            ["EV105", "matrimonio/datiMatrimonio/senzaGiorno"]
        ])
    );
    // 18 calls, each request and response validated against the XSD.
    assert_eq!(out["validati"], 36, "{out}");

    let id = |k: &str| out["ids"][k].as_str().unwrap().to_owned();
    // Karim: married to Leila (5008) and to Nadia (5021); the divorce was annulled.
    assert_eq!(
        eventi(&s, &id("karim")).await,
        (
            "2".into(),
            vec![e("matrimonio", "2000-05-01"), e("matrimonio", "2005-06-01")]
        )
    );
    let k = s.scheda(&id("karim"), None).await;
    let ev = &k["statoCivile"]["eventi"];
    assert_eq!(ev[0]["coniuge"]["idAnpr"], id("leila"));
    assert_eq!(ev[0]["luogoEvento"]["codiceIstat"], "058091");
    assert_eq!(ev[0]["atto"]["numeroAtto"], "45");
    assert_eq!(ev[1]["coniuge"]["cognome"], "Amrani");
    assert_eq!(ev[1]["luogoEvento"]["codiceStato"], "436");
    // The marriage with a registered spouse is on her record too.
    assert_eq!(eventi(&s, &id("leila")).await.0, "2");
    // Omar: permit and other data; civil union dissolved (8).
    let o = s.scheda(&id("omar"), None).await;
    assert_eq!(o["permessoSoggiorno"]["numeroSoggiorno"], "RM1234567");
    assert_eq!(o["permessoSoggiorno"]["tipoSoggiorno"], "2");
    assert_eq!(o["altriDati"]["titoloStudio"], "3");
    assert_eq!(
        eventi(&s, &id("omar")).await,
        (
            "8".into(),
            vec![
                e("unioneCivile", "2021-02-20"),
                e("scioglimentoUnione", "2022-02-01")
            ]
        )
    );
    // Sara: widowed; the cohabitation contract and its end are recorded.
    assert_eq!(
        eventi(&s, &id("sara")).await,
        (
            "3".into(),
            vec![
                e("matrimonio", "2009-09-09"),
                e("vedovanza", "2014-12-01"),
                e("convivenzaDiFatto", "2015-12-01"),
                e("risoluzioneConvivenza", "2016-11-30")
            ]
        )
    );
}

on_both_backends!(scenario_stato_civile);

/// Data groups beyond the registry scenario: family split (5001), the whole AIRE
/// family's foreign address (A006), removal reasons Richiesta2003 cannot carry (EV117)
/// and elements still refused (EV105), read back over REST.
async fn scenario_gruppi(s: Server) {
    let out = gestionale(&s.base, "groups").await;
    assert_eq!(out["5001_scissione"], serde_json::json!(["2", []]), "{out}");
    assert_eq!(
        out["A006_altra_famiglia"],
        serde_json::json!(["3", ["EF002", "EN527"]]),
        "{out}"
    );
    assert_eq!(out["A006_famiglia"], serde_json::json!(["2", []]), "{out}");
    for m in ["8", "10"] {
        assert_eq!(
            out[format!("2003_{m}")],
            serde_json::json!([
                "3",
                ["EV117", "EN527"],
                ["EV117", "datiCancellazione/motivoCancellazione"]
            ]),
            "{out}"
        );
    }
    assert_eq!(
        out["5008_carta"],
        serde_json::json!([
            "3",
            ["EV105", "EN527"],
            ["EV105", "Richiesta5008/cartaIdentita"]
        ])
    );
    // 13 calls, each request and response validated against the XSD.
    assert_eq!(out["validati"], 26, "{out}");

    let id = |k: &str| out["ids"][k].as_str().unwrap().to_owned();
    // The split: Giorgio heads a new family with Piero; Marta's family is hers alone.
    let g = s.scheda(&id("giorgio"), None).await;
    let p = s.scheda(&id("piero"), None).await;
    let nuova = g["legame"]["idFamigliaConvivenzaAnpr"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(nuova, id("famiglia"));
    assert_eq!(g["legame"]["codiceLegame"], "1");
    assert_eq!(p["legame"]["idFamigliaConvivenzaAnpr"], nuova.as_str());
    assert_eq!(p["legame"]["codiceLegame"], "3");
    assert_eq!(
        s.componenti(&id("famiglia"), None).await,
        vec![(id("marta"), "1".to_owned())]
    );
    // A006 for the family: mother and son both live in Boston now.
    for k in ["elena", "tommaso"] {
        let r = s.scheda(&id(k), None).await;
        assert_eq!(
            r["residenza"]["indirizzoEstero"]["localita"], "BOSTON",
            "{k}: {r}"
        );
    }
    // Nothing of the refused requests was written.
    let m = s.scheda(&id("marta"), None).await;
    assert_eq!(m["competenza"]["posizione"], "residente");
    assert!(m.get("cartaIdentita").is_none(), "{m}");
}

on_both_backends!(scenario_gruppi);

/// 3002/3006 answer with the whole record the registry holds (every data group the
/// XSD can carry), as at `dataRiferimentoRichiesta`, restricted to the groups asked
/// for; `schedaAnagraficaRichiesta` 2 answers the whole family; every answer is
/// XSD-valid (checked by the gestionale).
async fn scenario_scheda(s: Server) {
    let out = gestionale(&s.base, "record").await;
    let ids = &out["ids"];
    let id = |k: &str| ids[k].as_str().unwrap().to_owned();
    let elementi = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    // The child: parents, birth deed, relationship, family and its head, registration.
    let l = &out["luca"];
    assert_eq!(
        elementi(&l["elementi"]),
        [
            "attoNascita",
            "cittadinanza",
            "datiIscrizione",
            "famigliaConvivenza",
            "generalita",
            "identificativi",
            "legameSoggetto",
            "maternita",
            "paternita",
            "residenza",
            "tutoreIntestatario"
        ],
        "{out}"
    );
    assert_eq!(l["padre"], id("marco").as_str());
    assert_eq!(l["madre"], id("anna").as_str());
    assert_eq!(l["atto"], "123");
    assert_eq!(l["legame"], "3");
    assert_eq!(l["famiglia"], id("famiglia").as_str());
    assert_eq!(l["tutore"], id("anna").as_str());
    assert_eq!(l["motivoIscrizione"], "1");
    // The CF validation state as the registry holds it.
    let luca = s.scheda(&id("luca"), None).await;
    let validato = luca["codiceFiscale"]["stato"] == "validato";
    assert_eq!(l["validitaCF"], if validato { "1" } else { "9" });

    // The polygamous father: the last marriage, the other in listaDatiPoligamia.
    let m = &out["marco"];
    assert_eq!(m["statoCivile"], "2");
    assert_eq!(
        (m["coniuge"].as_str(), m["ordine"].as_str()),
        (Some("Amrani"), Some("2"))
    );
    assert_eq!(m["poligamia"], serde_json::json!(["Rossi"]));
    assert_eq!(m["luogoPrimo"], "058091");
    assert_eq!(m["permesso"], "RM7654321");
    assert_eq!(m["titoloStudio"], "3");
    for e in [
        "listaDatiPoligamia",
        "provenienza",
        "altriDati",
        "statoCivile",
    ] {
        assert!(
            elementi(&m["elementi"]).contains(&e.to_owned()),
            "{e}: {out}"
        );
    }

    // Only the groups asked for (2 generalities, 10 residence).
    assert_eq!(
        elementi(&out["anna_2_10"]),
        ["generalita", "identificativi", "residenza"]
    );
    // As at a date before the marriage (decorrenza 2020-04-01): no civil status yet.
    assert!(!elementi(&out["anna_prima"]).contains(&"statoCivile".to_owned()));
    assert_eq!(out["anna_dopo"], "2");
    // The whole family, head first.
    assert_eq!(
        out["famiglia"],
        serde_json::json!([[id("anna"), "1"], [id("marco"), "2"], [id("luca"), "3"]])
    );
    // AIRE: the foreign address with its consulate, the AIRE registration data.
    let e = &out["elena"];
    assert_eq!(
        (
            e["consolato"].as_str(),
            e["localita"].as_str(),
            e["aire"].as_str(),
            e["motivo"].as_str()
        ),
        (Some("2810703"), Some("NEW YORK"), Some("S"), Some("C01"))
    );
    // A group the registry does not hold is said so (3002 erroriAnomalie).
    assert_eq!(out["censimento"], serde_json::json!([["EV105", "W"]]));
    // 3006 carries the same data in its own shape (no identificativi).
    assert!(!elementi(&out["marco_3006"]).contains(&"identificativi".to_owned()));
    assert!(elementi(&out["marco_3006"]).contains(&"matrimonio".to_owned()));
    // 17 calls, each request and response validated against the XSD.
    assert_eq!(out["validati"], 34, "{out}");
}

on_both_backends!(scenario_scheda);

/// Certificates (6001), extractions and ISTAT tables (4001-4005, 7002), proceedings
/// (3004) and certifiability (5010) from the zeep gestionale: outcomes, codes and
/// files; every request and answer valid against the published XSDs.
async fn scenario_servizi(s: Server) {
    anpr_service::estrazioni::avvia_lavoratore(s.registry.clone());
    let out = gestionale(&s.base, "services").await;
    let sara = out["sara"].as_str().unwrap().to_owned();
    let c = &out["6001"];
    assert_eq!(c["esito"], "2", "{out}");
    assert_eq!(c["pdf"], "%PDF-");
    assert_eq!(
        (c["bollo"].as_str(), c["diritti"].as_str()),
        (Some("1600"), Some("52"))
    );
    assert_eq!(c["tipi"], serde_json::json!(["8", "5"]));
    assert!(c["protocollo"].as_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Exempt: no stamp, reduced fee; modalita is not recorded (W EV105).
    assert_eq!(
        out["6001_esente"],
        serde_json::json!(["6", "0", "26", ["EV105"]])
    );
    assert_eq!(
        out["6001_dati"],
        serde_json::json!(["3", ["EV118", "EN527"]])
    );
    assert_eq!(
        out["6001_morte"],
        serde_json::json!(["3", ["EN061", "EN527"]])
    );
    // The extraction: CSV with idANPR first, one subject.
    assert_eq!(out["4001"], serde_json::json!(["2", ["2", "10"]]));
    let e = &out["4005"];
    assert_eq!(e[0], "2", "{out}");
    assert_eq!(e[1], "csv");
    assert_eq!(e[2][0], "idANPR");
    assert_eq!(e[3], 2, "header and one row: {out}");
    assert_eq!(out["7002"], serde_json::json!(["2", "csv", true]));
    assert_eq!(out["7002_ko"], serde_json::json!(["3", ["EV404", "EN527"]]));
    assert_eq!(out["3005"], serde_json::json!(["2", true]), "{out}");
    assert_eq!(out["4002"][0], "2");
    assert_eq!(out["4002"][1], "2", "{out}");
    assert_eq!(out["4003"], serde_json::json!(["2", "2"]));
    assert_eq!(out["4004"], serde_json::json!(["2", "2"]));
    assert_eq!(out["4004_ko"], serde_json::json!(["3", ["EN167", "EN527"]]));
    assert_eq!(out["4005_elenco"], serde_json::json!([out["4001_id"]]));
    assert_eq!(out["4005_ko"], serde_json::json!(["3", ["EV118", "EN527"]]));
    assert_eq!(
        out["4005_ko_percorsi"],
        serde_json::json!(["Richiesta4005/elaborazione/dettaglioDati"])
    );
    // Proceedings: by number and by the linked subject.
    assert_eq!(out["1014"], "2");
    for k in ["3004_numero", "3004_soggetto"] {
        assert_eq!(out[k], serde_json::json!(["2", ["PR 3004"], [sara]]), "{k}");
    }
    assert_eq!(out["3004_ko"], serde_json::json!(["3", ["EV404", "EN527"]]));
    assert_eq!(
        out["3004_non_gestito"],
        serde_json::json!([
            "3",
            ["EV105", "EN527"],
            ["Richiesta3004/parametriRicerca3004/idOpComunaleCollegata"]
        ])
    );
    // 5010 recorded (over REST too), and certificates then follow it (EN046).
    assert_eq!(out["5010"][0], "2", "{out}");
    let scheda = s.scheda(&sara, None).await;
    assert_eq!(
        scheda["attributi"]["soggettoCertificabile"], "1",
        "{scheda}"
    );
    assert_eq!(
        out["6001_dopo_5010"],
        serde_json::json!(["3", ["EN046", "EN527"]])
    );
    // Every call (their number depends on the 4005 polls) validated both ways.
    assert!(out["chiamate"].as_u64().unwrap() >= 22, "{out}");
    assert_eq!(
        out["validati"],
        2 * out["chiamate"].as_u64().unwrap(),
        "{out}"
    );
}

on_both_backends!(scenario_servizi);

/// The public bodies' services (E001 tables, E002 consultation) for a caller holding
/// ENTE_FRUITORE, with no municipality (`codMittente` is the body's code); municipal
/// operators, consulates and anonymous callers are refused with EA401. Every request
/// and answer valid against `E000Vocabolario.xsd`.
async fn scenario_enti(s: Server) {
    let out = gestionale(&s.base, "bodies").await;
    let ids = &out["ids"];
    let (carla, dario) = (
        ids["carla"].as_str().unwrap().to_owned(),
        ids["dario"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        out["E001"],
        serde_json::json!(["2", "001", "xml", "1", true]),
        "{out}"
    );
    assert_eq!(
        out["E001_compressione"],
        serde_json::json!(["3", ["EV118", "EN527"]])
    );
    assert_eq!(
        out["E001_inesistente"],
        serde_json::json!(["3", ["EV020", "EN527"]])
    );
    assert_eq!(
        out["E002_id"],
        serde_json::json!([["2", []], [[carla, "Ferri", "Carla"]]]),
        "{out}"
    );
    assert_eq!(out["E002_residenza"], "058091", "{out}");
    assert_eq!(
        out["E002_generalita"],
        serde_json::json!([["6", ["EV105"]], [[dario, "Ferri", "Dario"]]]),
        "{out}"
    );
    let mut famiglia = vec![carla.clone(), dario.clone()];
    famiglia.sort();
    assert_eq!(
        out["E002_famiglia"],
        serde_json::json!([["2", []], famiglia]),
        "{out}"
    );
    assert_eq!(out["E002_nessuno"], serde_json::json!(["2", []]), "{out}");
    assert_eq!(
        out["E002_verifica"],
        serde_json::json!(["3", ["EV105", "EN527"]])
    );
    for k in ["E002_operatore", "E001_consolato", "E001_anonimo"] {
        assert_eq!(
            out[k],
            serde_json::json!(["3", ["EA401", "EN527"]]),
            "{k}: {out}"
        );
    }
    assert_eq!(
        out["validati"],
        2 * out["chiamate"].as_u64().unwrap(),
        "{out}"
    );
}

on_both_backends!(scenario_enti);

/// The consulates' AIRE queries (C001 records, C010 yes/no) for a caller holding
/// CONSOLATO, with no municipality; residents are not found; municipal operators and
/// public bodies are refused with EA401. Every message valid against
/// `CONSOLATIServizi.xsd`.
async fn scenario_consolati(s: Server) {
    let out = gestionale(&s.base, "consulates").await;
    let irene = out["ids"]["irene"].as_str().unwrap().to_owned();
    assert_eq!(
        out["C001_id"],
        serde_json::json!([["2", []], [[irene, "Neri"]]]),
        "{out}"
    );
    assert_eq!(out["C001_consolato"], "2810703", "{out}");
    assert_eq!(
        out["C001_generalita"],
        serde_json::json!([["2", []], [[irene, "Neri"]]]),
        "{out}"
    );
    assert_eq!(
        out["C001_residente"],
        serde_json::json!([["2", []], []]),
        "{out}"
    );
    assert_eq!(
        out["C001_per_consolato"],
        serde_json::json!(["3", ["EV105", "EN527"]])
    );
    assert_eq!(out["C010_aire"], serde_json::json!([["2", []], true]));
    assert_eq!(out["C010_residente"], serde_json::json!([["2", []], false]));
    for k in ["C001_operatore", "C010_ente"] {
        assert_eq!(
            out[k],
            serde_json::json!(["3", ["EA401", "EN527"]]),
            "{k}: {out}"
        );
    }
    assert_eq!(
        out["validati"],
        2 * out["chiamate"].as_u64().unwrap(),
        "{out}"
    );
}

on_both_backends!(scenario_consolati);

/// 3007, 3003, 3005: Roma reads back its requests by processing state, service, id
/// ranges and subject, with ANPR's answers (each validated against its XSD by the
/// gestionale), and the N010 notification of Milano's transfer of one of its residents,
/// which 3003 takes (7 -> 8); refusals are coded; Milano sees only its own.
async fn scenario_richieste(s: Server) {
    let out = gestionale(&s.base, "requests").await;
    let ops = &out["operazioni"];
    let id = |k: &str| ops[k][1].as_str().unwrap().to_owned();
    let (anna, marco, cambio, rifiuto) = (id("anna"), id("marco"), id("cambio"), id("rifiuto"));
    let (annullato, annullamento) = (id("annullato"), id("annullamento"));
    let trasferimento = out["trasferimento"][1].as_str().unwrap().to_owned();
    let soggetto_anna = ops["anna"][2][0].as_str().unwrap().to_owned();
    // What happened: two registrations, a change with a warning, a refusal, a change
    // annulled, Milano's transfer.
    assert_eq!(ops["cambio"][0], "6", "{out}");
    assert_eq!(ops["rifiuto"][0], "3", "{out}");
    assert_eq!(out["trasferimento"][0], "2", "{out}");
    let voce = |stato: &str, tipo: &str, id: &str| serde_json::json!([stato, tipo, id]);
    let attesi = [
        (
            "3007_2",
            vec![
                voce("2", "1002", &anna),
                voce("2", "1002", &marco),
                voce("2", "5012", &annullamento),
            ],
        ),
        ("3007_3", vec![voce("3", "5008", &rifiuto)]),
        ("3007_4", vec![voce("4", "5008", &annullato)]),
        ("3007_5", vec![]),
        ("3007_6", vec![voce("6", "5008", &cambio)]),
        ("3007_7", vec![voce("7", "N010", &trasferimento)]),
        ("3007_9", vec![voce("7", "N010", &trasferimento)]),
        (
            "3007_1002",
            vec![voce("2", "1002", &anna), voce("2", "1002", &marco)],
        ),
        (
            "3007_intervallo",
            vec![voce("2", "1002", &marco), voce("2", "5012", &annullamento)],
        ),
        ("3007_id_comune", vec![voce("2", "1002", &anna)]),
        ("3007_periodo_vuoto", vec![]),
        ("3007_soggetto", vec![voce("6", "5008", &cambio)]),
        ("3007_altro_soggetto", vec![]),
        // Taken by 3003: no longer to take, now taken.
        ("3007_7_dopo", vec![]),
        ("3007_8_dopo", vec![voce("8", "N010", &trasferimento)]),
        ("3007_milano", vec![voce("2", "5005", &trasferimento)]),
    ];
    for (k, v) in attesi {
        assert_eq!(out[k], serde_json::json!(v), "{k}: {out}");
    }
    // 3003: each answer is the XSD-valid RispostaNNNN the municipality had, with its
    // outcome and ids; the notification names its operation and subjects.
    let risposta = |stato: &str, tipo: &str, esito: &str, id: &str| {
        serde_json::json!([stato, tipo, [format!("Risposta{tipo}"), esito, id]])
    };
    let notifica = serde_json::json!([
        "8",
        "N010",
        ["notifica", "N010", trasferimento, [soggetto_anna]]
    ]);
    assert_eq!(
        out["3003_2"],
        serde_json::json!([
            risposta("2", "1002", "2", &anna),
            risposta("2", "1002", "2", &marco),
            risposta("2", "5012", "2", &annullamento)
        ]),
        "{out}"
    );
    assert_eq!(out["3003_7"], serde_json::json!([notifica]), "{out}");
    assert_eq!(
        out["3003_singola_notifica"],
        serde_json::json!([notifica]),
        "{out}"
    );
    assert_eq!(
        out["3003_singola"],
        serde_json::json!([risposta("2", "1002", "2", &marco)]),
        "{out}"
    );
    assert_eq!(
        out["3003_singola_comune"],
        serde_json::json!([risposta("6", "5008", "6", &cambio)]),
        "{out}"
    );
    // 3005: by id.
    let f = &out["3005"];
    assert_eq!(
        f["marco"],
        serde_json::json!(["Risposta1002", "2", marco]),
        "{out}"
    );
    assert_eq!(f["notifica"], notifica[2], "{out}");
    assert_eq!(
        f["milano"],
        serde_json::json!(["Risposta5005", "2", trasferimento]),
        "{out}"
    );
    for k in ["ignoto", "milano_di_roma"] {
        assert_eq!(
            f[k],
            serde_json::json!(["3", ["EV404", "EN527"]]),
            "{k}: {out}"
        );
    }
    // Refusals.
    for (k, codice) in [
        ("3007_altro_comune", "EN167"),
        ("3007_stato_errato", "EV001"),
        ("3007_due_modi", "EV050"),
        ("3007_protocollo", "EV105"),
        ("3007_id_fuori", "EV001"),
        ("3007_periodo_rovesciato", "EN478"),
        ("3007_certificazione", "EA401"),
    ] {
        assert_eq!(
            out[k],
            serde_json::json!(["3", [codice, "EN527"]]),
            "{k}: {out}"
        );
    }
    assert_eq!(
        out["validati"],
        2 * out["chiamate"].as_u64().unwrap(),
        "{out}"
    );
    // The reads are audited: the listings, and each content returned.
    let audit = s.store.audit_page(0, 1000).await.unwrap();
    let letture: Vec<_> = audit
        .iter()
        .filter(|v| v.voce.azione == "richiesteNotifiche")
        .filter_map(|v| v.voce.oggetto.clone())
        .collect();
    assert!(letture.contains(&"comune:058091".to_owned()), "{letture:?}");
    assert!(
        letture.contains(&format!("notifica:N010:{trasferimento}")),
        "{letture:?}"
    );
    assert!(
        letture.contains(&format!("operazione:{marco}")),
        "{letture:?}"
    );
}

on_both_backends!(scenario_richieste);
