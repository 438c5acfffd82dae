//! Identity cards (SPEC M-4.2), municipality parameters (M-4.1, M-8.6), certifiability
//! (5010, table 42) and the open-proceeding block (EN181), and the children-of-a-parent
//! search (M-5.2), over real HTTP on SQLite and PostgreSQL. PDFs are parsed back with
//! qpdf, pdfinfo, pdftotext and pdfimages.

mod common;

use std::process::Command;

use base64::Engine;
use common::{codici, soggetto, Server};
use serde_json::{json, Value};

const SINDACO_ROMA: [(&str, &str); 3] = [
    ("x-anpr-utente", "RSSMRA60A01H501U"),
    ("x-anpr-comune", "058091"),
    ("x-anpr-profili", "SINDACO"),
];

fn indirizzo(via: &str, numero: &str) -> Value {
    json!({"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": via}, "numeroCivico": {"numero": numero}})
}

fn chi(id: &str) -> Value {
    json!({"idSchedaSoggettoANPR": id})
}

fn iscrizione(id: u64, cognome: &str, nome: &str, sesso: &str, nascita: &str) -> Value {
    json!({
        "idOperazioneComune": id.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": indirizzo("Nazionale", &id.to_string()),
        "famiglia": {"codiceLegame": "1"}
    })
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} missing (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks a PDF with independent tools; returns (pages, text, image list).
fn leggi_pdf(pdf: &[u8]) -> (u32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.pdf");
    std::fs::write(&path, pdf).unwrap();
    let p = path.to_str().unwrap();
    tool("qpdf", &["--check", p]);
    let meta = tool("pdfinfo", &["-meta", p]);
    assert!(meta.contains("<pdfaid:part>2</pdfaid:part>"), "{meta}");
    for r in tool("pdffonts", &[p]).lines().skip(2) {
        let c: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(c[c.len() - 5], "yes", "font not embedded: {r}");
    }
    let pagine = tool("pdfinfo", &[p])
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (
        pagine,
        tool("pdftotext", &["-layout", p, "-"]),
        tool("pdfimages", &["-list", p]),
    )
}

fn pdf_di(body: &Value, campo: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(
            body[campo]
                .as_str()
                .unwrap_or_else(|| panic!("no {campo}: {body}")),
        )
        .unwrap()
}

/// A 30x30 opaque dark-blue PNG.
fn logo() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 30, 30);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(&[0, 0, 120].repeat(900))
            .unwrap();
    }
    out
}

async fn put(s: &Server, path: &str, body: &Value, id: &[(&str, &str)]) -> (u16, Value) {
    let mut req = s.client.put(format!("{}{path}", s.base)).json(body);
    for (k, v) in id {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn con_profili(s: &mut Server, profili: &str) {
    for (k, v) in &mut s.headers {
        if k == "x-anpr-profili" {
            *v = profili.to_owned();
        }
    }
}

async fn get(s: &Server, path: &str) -> (u16, Value) {
    let mut req = s.client.get(format!("{}{path}", s.base));
    for (k, v) in &s.headers {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn documenti_su_http(mut s: Server) {
    const PARAMETRI: &str = "/api/v1/comuni/058091/parametri";
    // --- Municipality parameters: mayor/APL of the municipality only.
    let (status, _) = s.get_id(PARAMETRI, &common::OPERATORE).await.into_pair();
    assert_eq!(
        status, 403,
        "a registry officer does not hold ParametriComune"
    );
    let (status, p, _) = s.get_id(PARAMETRI, &SINDACO_ROMA).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (p["versione"].as_u64(), p["importoBollo"].as_u64()),
        (Some(0), Some(1600))
    );
    let (status, _, _) = s
        .get_id("/api/v1/comuni/015146/parametri", &SINDACO_ROMA)
        .await;
    assert_eq!(status, 403, "another municipality's parameters");
    let (status, body) = put(
        &s,
        PARAMETRI,
        &json!({"logo": {"dati": base64::engine::general_purpose::STANDARD.encode(b"GIF89a not an image")}}),
        &SINDACO_ROMA,
    )
    .await;
    assert_eq!((status, codici(&body)), (422, vec!["EV253".to_owned()]));
    let (status, body) = put(
        &s,
        PARAMETRI,
        &json!({"importoBollo": 100_001, "secondaLingua": "EN"}),
        &SINDACO_ROMA,
    )
    .await;
    assert_eq!(
        (status, codici(&body)),
        (422, vec!["EV001".to_owned(), "EV250".to_owned()])
    );
    let nuovi = json!({
        "importoBollo": 1700, "dirittiSegreteria": 60, "dirittiCartaIdentita": 600,
        "autorizzazioneBolloVirtuale": "Aut. Agenzia delle Entrate n. 4242 del 01/02/2020",
        "ufficialeAnagrafe": "Dott.ssa Nicoletta Lucà", "sindaco": "Roberto Gualtieri",
        "secondaLingua": "DE",
        "logo": {"dati": base64::engine::general_purpose::STANDARD.encode(logo())}
    });
    let (status, p) = put(&s, PARAMETRI, &nuovi, &SINDACO_ROMA).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (p["versione"].as_u64(), p["logoMime"].as_str()),
        (Some(1), Some("image/png"))
    );
    let (_, letti, _) = s.get_id(PARAMETRI, &SINDACO_ROMA).await;
    assert_eq!(letti["ufficialeAnagrafe"], "Dott.ssa Nicoletta Lucà");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(letti["logo"].as_str().unwrap())
            .unwrap(),
        logo()
    );

    // --- Subjects: a father (CF validated by the simulator), a child, a resident whose
    // CF is not validated, a resident of Milan.
    let padre = soggetto(
        &s.ok(
            "1002",
            &iscrizione(1, "D'Àngelo", "Nicolò", "M", "1980-01-01"),
        )
        .await,
    );
    let madre = soggetto(
        &s.ok("1002", &iscrizione(2, "Bianchi", "Anna", "F", "1982-02-02"))
            .await,
    );
    let mut b = iscrizione(3, "Bruni", "Ezio", "M", "1966-06-06");
    b["generalita"]["gestioneCF"] = json!("3");
    let ezio = soggetto(&s.ok("1002", &b).await);
    assert_eq!(
        s.scheda(&ezio, None).await["codiceFiscale"]["stato"],
        "nonValidato"
    );
    let scheda_padre = s.scheda(&padre, None).await;
    assert_eq!(scheda_padre["codiceFiscale"]["stato"], "validato");
    let cf_padre = scheda_padre["codiceFiscale"]["codFiscale"]
        .as_str()
        .unwrap()
        .to_owned();
    let figlio = soggetto(&s.ok("1001", &json!({
        "idOperazioneComune": "4",
        "generalita": {"cognome": "D'Àngelo", "nome": "Luca", "sesso": "M", "dataNascita": "2024-01-05", "luogoNascita": "H501"},
        "attoNascita": {"comuneRegistrazione": "058091", "anno": 2024, "numeroAtto": "7"},
        "cittadinanza": [{"codiceStato": "100"}],
        "paternita": chi(&padre), "maternita": chi(&madre)
    })).await);

    // --- Children of a parent: by idANPR and by CF, with or without the mother.
    let figli = |criterio: Value| {
        let s = &s;
        async move {
            let (status, r) = s
                .post("/api/v1/soggetti/ricerca", &json!({"criteriRicerca": {"genitore": criterio}, "datiRichiesta": {"sezioni": ["generalita"]}}))
                .await;
            assert_eq!(status, 200, "{r}");
            r["soggetti"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["idAnpr"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        figli(json!({"idANPR": padre})).await,
        std::slice::from_ref(&figlio)
    );
    assert_eq!(
        figli(json!({"idANPR": madre})).await,
        std::slice::from_ref(&figlio)
    );
    assert_eq!(
        figli(json!({"codiceFiscale": cf_padre})).await,
        std::slice::from_ref(&figlio)
    );
    assert!(figli(json!({"idANPR": ezio})).await.is_empty());
    let (status, r) = s
        .post(
            "/api/v1/soggetti/ricerca",
            &json!({"criteriRicerca": {"genitore": {"idANPR": padre, "codiceFiscale": cf_padre}}}),
        )
        .await;
    assert_eq!((status, codici(&r)), (400, vec!["EV050".to_owned()]));
    let (status, r) = s
        .post(
            "/api/v1/soggetti/ricerca",
            &json!({"criteriRicerca": {"genitore": {"idANPR": padre}, "cognome": "Rossi"}}),
        )
        .await;
    assert_eq!((status, codici(&r)), (400, vec!["EV050".to_owned()]));

    // --- Certificates use the parameters: fees, authorisation, officer, logo, language.
    let (status, c) = s
        .post(
            "/api/v1/certificati",
            &json!({"idANPR": padre.parse::<u64>().unwrap(), "tipiCertificato": [8]}),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        c["certificato"]["importi"],
        json!({"bollo": 1700, "dirittiSegreteria": 60})
    );
    let (_, testo, immagini) = leggi_pdf(&pdf_di(&c, "certificatoPdf"));
    for atteso in [
        "Aut. Agenzia delle Entrate n. 4242",
        "Dott.ssa Nicoletta Lucà",
        "€ 17,00",
        "D'ÀNGELO NICOLÒ",
    ] {
        assert!(testo.contains(atteso), "missing {atteso:?}:\n{testo}");
    }
    assert_eq!(immagini.lines().skip(2).count(), 1, "the logo: {immagini}");
    let (status, c) = s
        .post("/api/v1/certificati", &json!({"idANPR": padre.parse::<u64>().unwrap(), "tipiCertificato": [8], "linguaCertificato": "DE"}))
        .await;
    assert_eq!(status, 200, "the parameter makes Rome bilingual (DE): {c}");
    let (status, c) = s
        .post("/api/v1/certificati", &json!({"idANPR": padre.parse::<u64>().unwrap(), "tipiCertificato": [8], "linguaCertificato": "FR"}))
        .await;
    assert_eq!((status, codici(&c)), (422, vec!["EV250".to_owned()]));
    let (_, elenco) = get(&s, "/api/v1/certificati").await;
    assert_eq!(
        (
            elenco["totaleBollo"].as_u64(),
            elenco["totaleDirittiSegreteria"].as_u64()
        ),
        (Some(3400), Some(120))
    );

    // --- Certifiability (5010): not certifiable, partial, annulled.
    let certifica = |tipi: Value| {
        let s = &s;
        let padre = padre.clone();
        async move {
            s.post(
                "/api/v1/certificati",
                &json!({"idANPR": padre.parse::<u64>().unwrap(), "tipiCertificato": tipi}),
            )
            .await
        }
    };
    let (_, r) = s.ko("5010", &json!({"idOperazioneComune": "10", "soggetto": chi(&padre), "certificabilita": {"soggettoCertificabile": "9"}})).await;
    assert_eq!(codici(&r), ["EC023"]);
    let (_, r) = s.ko("5010", &json!({"idOperazioneComune": "11", "soggetto": chi(&padre), "certificabilita": {"soggettoCertificabile": "0"}, "liste": {}})).await;
    assert_eq!(codici(&r), ["EV254"]);
    s.ok("5010", &json!({"idOperazioneComune": "12", "soggetto": chi(&padre), "certificabilita": {"soggettoCertificabile": "0"}})).await;
    assert_eq!(
        s.scheda(&padre, None).await["attributi"]["soggettoCertificabile"],
        "0"
    );
    let (status, r) = certifica(json!([8])).await;
    assert_eq!((status, codici(&r)), (422, vec!["EN047".to_owned()]));
    assert!(
        r["anomalie"][0]["testo"]
            .as_str()
            .unwrap()
            .contains("NON CERTIFICABILE"),
        "{r}"
    );
    let (_, r) = s.ko("5010", &json!({"idOperazioneComune": "13", "soggetto": chi(&padre), "certificabilita": {"soggettoCertificabile": "0"}})).await;
    assert_eq!(codici(&r), ["EV044"], "nothing changes");
    let parziale = s.ok("5010", &json!({"idOperazioneComune": "14", "soggetto": chi(&padre), "certificabilita": {"soggettoCertificabile": "1"}})).await;
    assert_eq!(
        certifica(json!([8])).await.0,
        200,
        "residence still certifiable"
    );
    let (status, r) = certifica(json!([7])).await;
    assert_eq!((status, codici(&r)), (422, vec!["EN046".to_owned()]));
    let id_parziale = parziale["idOperazioneANPR"].as_str().unwrap();
    s.ok(
        "5012",
        &json!({"idOperazioneComune": "15", "idOperazioneANPR": id_parziale}),
    )
    .await;
    let (status, r) = certifica(json!([7])).await;
    assert_eq!(
        (status, codici(&r)),
        (422, vec!["EN047".to_owned()]),
        "back to 0 after the annulment"
    );
    s.ok("5010", &json!({"idOperazioneComune": "16", "soggetto": chi(&padre), "certificabilita": {"soggettoCertificabile": "2"}})).await;
    assert_eq!(certifica(json!([7])).await.0, 200);

    // --- An open administrative proceeding blocks certificates (EN181) until closed.
    let aperto = s.ok("1014", &json!({"idOperazioneComune": "17", "procedimentoIstruttoria": {"tipoOperazione": "I", "numeroPraticaComune": "PR-1", "motivoAvvio": "6", "dataStato": "2024-01-10", "statoProcedimento": "1"}, "generalitaPerRicerca": [chi(&padre)]})).await;
    let numero = aperto["procedimenti"][0]["numeroPraticaAnpr"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, r) = certifica(json!([8])).await;
    assert_eq!((status, codici(&r)), (422, vec!["EN181".to_owned()]));
    assert_eq!(
        certifica_altro(&s, &madre).await,
        200,
        "other subjects are not blocked"
    );
    s.ok("1014", &json!({"idOperazioneComune": "18", "procedimentoIstruttoria": {"tipoOperazione": "C", "numeroPraticaAnpr": numero, "dataStato": "2024-02-01", "statoProcedimento": "2", "esitoChiusura": "C"}})).await;
    assert_eq!(
        certifica(json!([8])).await.0,
        200,
        "closed: certifiable again"
    );

    // --- Identity cards: officer of the identity card profile only.
    let base = |id: &str, tipo: &str, numero: &str| {
        json!({"idSchedaSoggettoANPR": id, "cartaceaElettronica": tipo, "numero": numero,
        "statura": 178, "coloreCapelli": "castani", "coloreOcchi": "verdi",
        "testimoni": [
            {"cognome": "Žižek", "nome": "Ana", "luogoNascita": "Trieste", "dataNascita": "1970-03-03", "documento": "patente RM1234567"},
            {"cognome": "Lucà", "nome": "Niccolò", "residenza": "Via Appia 1, Roma"}
        ]})
    };
    let (status, _) = carta(&s, base(&padre, "C", "CA00001AA")).await;
    assert_eq!(status, 403, "OPERATORE_ANAGRAFE does not issue cards");
    con_profili(&mut s, "OPERATORE_CARTA_IDENTITA");
    let (status, r) = carta(&s, base(&padre, "X", "CA00001AA")).await;
    assert_eq!((status, codici(&r)), (422, vec!["EC059".to_owned()]));
    let (status, r) = carta(&s, base(&ezio, "E", "CA00002AA")).await;
    assert_eq!(
        (status, codici(&r)),
        (422, vec!["EN141".to_owned()]),
        "CIE without a validated CF"
    );
    assert_eq!(r["anomalie"][0]["valore"], "nonValidato");
    let (status, r) = carta(&s, base(&padre, "E", "CA00003AA")).await;
    assert_eq!(status, 200, "CIE with a validated CF: {r}");
    assert!(
        r.get("cartaIdentitaPdf").is_none(),
        "a CIE is not printed here"
    );
    assert_eq!(r["cartaIdentita"]["diritti"], 0);
    let (status, r) = carta(&s, base(&ezio, "C", "CA00004AA")).await;
    assert_eq!(status, 200, "a paper card needs no validated CF: {r}");
    let card = r["cartaIdentita"].clone();
    assert_eq!(card["diritti"], 600, "the municipality's fee");
    assert_eq!(card["validaEspatrio"], true);
    assert_eq!(
        card["dataScadenza"].as_str().unwrap()[4..],
        *"-06-06",
        "expires on the birthday"
    );
    let pdf = pdf_di(&r, "cartaIdentitaPdf");
    if let Ok(dir) = std::env::var("ANPR_TEST_SALVA_PDF") {
        std::fs::write(format!("{dir}/carta.pdf"), &pdf).unwrap();
    }
    let (pagine, testo, immagini) = leggi_pdf(&pdf);
    assert_eq!(pagine, 2, "the card, then the two copies of the cartellino");
    for atteso in [
        "CARTA D'IDENTITÀ",
        "BRUNI EZIO",
        "CA00004AA",
        "VALIDA PER L'ESPATRIO",
        "178 cm",
        "COPIA PER IL COMUNE",
        "COPIA PER LA QUESTURA",
        "ŽIŽEK ANA",
        "LUCÀ NICCOLÒ",
        "RM1234567",
        "€ 6,00",
        "Dott.ssa Nicoletta Lucà",
    ] {
        assert!(testo.contains(atteso), "missing {atteso:?}:\n{testo}");
    }
    assert_eq!(immagini.lines().skip(2).count(), 1, "the logo: {immagini}");
    let id_carta = card["idCarta"].as_str().unwrap().to_owned();
    // Certificates and cards share the protocol register.
    assert!(card["numeroProtocollo"].as_u64().unwrap() > 5, "{card}");
    // Refusals about the holder.
    let (status, r) = carta(
        &s,
        json!({"idSchedaSoggettoANPR": "999999", "cartaceaElettronica": "C", "numero": "X1"}),
    )
    .await;
    assert_eq!(status, 404, "{r}");
    let (status, r) = carta(&s, json!({"idSchedaSoggettoANPR": ezio, "cartaceaElettronica": "C", "numero": "X1", "testimoni": [{"cognome": "A", "nome": "B"}, {"cognome": "C", "nome": "D"}, {"cognome": "E", "nome": "F"}]})).await;
    assert_eq!((status, codici(&r)), (422, vec!["EV001".to_owned()]));
    s.come_comune("015146");
    let (status, r) = carta(&s, base(&ezio, "C", "MI00001AA")).await;
    assert_eq!(
        (status, codici(&r)),
        (422, vec!["EV255".to_owned()]),
        "issued by the municipality of residence"
    );
    let (status, _) = get(&s, &format!("/api/v1/carte-identita/{id_carta}/pdf")).await;
    assert_eq!(
        status, 404,
        "another municipality's card does not exist for the caller"
    );
    s.come_comune("058091");

    // Reprint, list, annulment.
    let r = s
        .client
        .get(format!("{}/api/v1/carte-identita/{id_carta}/pdf", s.base))
        .headers(intestazioni(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, testo, _) = leggi_pdf(&r.bytes().await.unwrap());
    assert!(testo.contains("BRUNI EZIO"));
    let (status, elenco) = get(&s, "/api/v1/carte-identita").await;
    assert_eq!(status, 200, "{elenco}");
    assert_eq!(elenco["carte"].as_array().unwrap().len(), 2);
    assert_eq!(elenco["totaleDiritti"], 600);
    let (status, r) = s
        .post(
            &format!("/api/v1/carte-identita/{id_carta}/annulla"),
            &json!({"motivo": "errore materiale nel numero"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["cartaIdentita"]["annullataIl"].is_string());
    let (status, r) = s
        .post(
            &format!("/api/v1/carte-identita/{id_carta}/annulla"),
            &json!({"motivo": "di nuovo"}),
        )
        .await;
    assert_eq!((status, codici(&r)), (422, vec!["EV256".to_owned()]));
    let (_, elenco) = get(&s, "/api/v1/carte-identita").await;
    assert_eq!(elenco["totaleDiritti"], 0, "annulled cards owe nothing");
    let r = s
        .client
        .get(format!("{}/api/v1/carte-identita/{id_carta}/pdf", s.base))
        .headers(intestazioni(&s))
        .send()
        .await
        .unwrap();
    let (_, testo, _) = leggi_pdf(&r.bytes().await.unwrap());
    assert!(testo.contains("ANNULLATA"), "{testo}");
    let (status, _) = get(&s, "/api/v1/carte-identita/not-an-id/pdf").await;
    assert_eq!(status, 400);

    // Every change of parameters and every card is in the audit log.
    let audit = s.store.audit_page(0, 10_000).await.unwrap();
    let conta = |azione: &str, esito: &str| {
        audit
            .iter()
            .filter(|v| v.voce.azione == azione && v.voce.esito.starts_with(esito))
            .count()
    };
    assert_eq!(conta("salvaParametriComune", "ok"), 1);
    assert_eq!(conta("leggiParametriComune", "negato"), 2, "denials too");
    assert_eq!(conta("emissioneCartaIdentita", "soggetto:"), 2);
    assert_eq!(conta("emissioneCartaIdentita", "negato"), 1);
    assert_eq!(conta("annullamentoCartaIdentita", "annullata"), 1);
}

async fn carta(s: &Server, richiesta: Value) -> (u16, Value) {
    s.post("/api/v1/carte-identita", &richiesta).await
}

async fn certifica_altro(s: &Server, id: &str) -> u16 {
    s.post(
        "/api/v1/certificati",
        &json!({"idANPR": id.parse::<u64>().unwrap(), "tipiCertificato": [8]}),
    )
    .await
    .0
}

fn intestazioni(s: &Server) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in &s.headers {
        h.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

trait Coppia {
    fn into_pair(self) -> (u16, Value);
}

impl Coppia for (u16, Value, Option<String>) {
    fn into_pair(self) -> (u16, Value) {
        (self.0, self.1)
    }
}

on_both_backends!(documenti_su_http);
