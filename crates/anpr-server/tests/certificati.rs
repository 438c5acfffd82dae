//! Certificates over real HTTP on SQLite and PostgreSQL (SPEC M-4.1): every one of the 20
//! types issued for a subject that qualifies — its PDF checked with qpdf, pdffonts,
//! pdfinfo (XMP PDF/A id), pdftotext (accents), pdftoppm + zbarimg (the QR decodes to the
//! URL whose payload verifies at the public endpoint) — and refused with the ANPR code
//! for one that does not; historical residence against the history operations wrote;
//! bilingual, exemption, protocol numbers, annulment, listing with sums, tampering.

mod common;

use std::process::Command;

use base64::Engine;
use common::{famiglia, soggetto, Server};
use serde_json::{json, Value};

fn indirizzo(via: &str, numero: &str) -> Value {
    json!({"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": via}, "numeroCivico": {"numero": numero}})
}

fn chi(id: &str) -> Value {
    json!({"idSchedaSoggettoANPR": id})
}

struct Persona<'a> {
    cognome: &'a str,
    nome: &'a str,
    sesso: &'a str,
    nascita: &'a str,
    cittadinanza: &'a str,
}

fn iscrizione(id: u64, p: &Persona<'_>, famiglia: Option<&str>, legame: &str) -> Value {
    let mut f = json!({"codiceLegame": legame});
    if let Some(id) = famiglia {
        f["idFamigliaConvivenzaANPR"] = json!(id);
    }
    json!({
        "idOperazioneComune": id.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": "2020-03-01",
        "generalita": {"cognome": p.cognome, "nome": p.nome, "sesso": p.sesso, "dataNascita": p.nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": p.cittadinanza}],
        "provenienza": {"codiceStato": "404"},
        "residenza": indirizzo("Nazionale", &id.to_string()),
        "famiglia": f
    })
}

fn persona<'a>(cognome: &'a str, nome: &'a str, sesso: &'a str, nascita: &'a str) -> Persona<'a> {
    Persona {
        cognome,
        nome,
        sesso,
        nascita,
        cittadinanza: "100",
    }
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

/// Checks a certificate PDF with independent tools and returns (text, decoded QR).
fn controlla_pdf(pdf: &[u8], attesi: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pdf");
    std::fs::write(&path, pdf).unwrap();
    let p = path.to_str().unwrap();
    tool("qpdf", &["--check", p]);
    let fonts = tool("pdffonts", &[p]);
    for r in fonts.lines().skip(2) {
        let c: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(c[c.len() - 5], "yes", "font not embedded: {r}");
    }
    let meta = tool("pdfinfo", &["-meta", p]);
    assert!(
        meta.contains("<pdfaid:part>2</pdfaid:part>")
            && meta.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "{meta}"
    );
    let pagine: String = tool("pdfinfo", &[p])
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .to_owned();
    let testo = tool("pdftotext", &["-layout", p, "-"]);
    for a in attesi {
        assert!(testo.contains(a), "missing {a:?} in\n{testo}");
    }
    let png = dir.path().join("r");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "110",
            "-f",
            &pagine,
            "-l",
            &pagine,
            p,
            png.to_str().unwrap(),
        ],
    );
    let img = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    // Only QR symbols: with every symbology enabled zbar sometimes also "reads" a 1-D
    // barcode in the page's text and prints it on a second line.
    let qr = tool(
        "zbarimg",
        &[
            "--raw",
            "-q",
            "-Sdisable",
            "-Sqrcode.enable",
            img.to_str().unwrap(),
        ],
    )
    .trim()
    .to_owned();
    (testo, qr)
}

async fn get(s: &Server, path: &str, identity: bool) -> (u16, Value) {
    let mut req = s.client.get(format!("{}{path}", s.base));
    if identity {
        for (k, v) in &s.headers {
            req = req.header(k, v);
        }
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Issues; returns (status, body).
async fn emetti(s: &Server, id: &str, tipi: &[u8], extra: Value) -> (u16, Value) {
    let mut body = json!({"idANPR": id.parse::<u64>().unwrap(), "tipiCertificato": tipi});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    s.post("/api/v1/certificati", &body).await
}

fn codici(body: &Value) -> Vec<String> {
    body["anomalie"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["codice"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One type: (type, qualifying subject, its extra fields, texts its PDF must show,
/// subject refused, its extra fields, expected code).
type Caso<'a> = (u8, &'a str, Value, Vec<&'a str>, &'a str, Value, &'a str);

async fn certificati_su_http(mut s: Server) {
    // Rome: a family that marries, moves house and sees a son emigrate.
    let r = s
        .ok(
            "1002",
            &iscrizione(
                1,
                &persona("D'Àngelo", "Nicolò", "M", "1980-01-01"),
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
                &persona("Bianchi", "Anna", "F", "1982-02-02"),
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
                &persona("D'Àngelo", "Luca", "M", "2005-06-01"),
                Some(&fam),
                "3",
            ),
        )
        .await,
    );
    s.ok("5008", &json!({"idOperazioneComune": "4", "dataDecorrenza": "2020-06-01", "soggetto": chi(&mario), "matrimonio": {"dataEvento": "2020-06-01", "coniuge": chi(&anna)}})).await;
    s.ok("5005", &json!({"idOperazioneComune": "5", "dataDecorrenza": "2022-01-15", "soggetti": [chi(&mario), chi(&anna), chi(&luca)], "residenza": indirizzo("Appia Nuova", "5")})).await;
    s.ok("2003", &json!({"idOperazioneComune": "6", "motivoCancellazione": "8", "dataDecorrenza": "2023-06-01", "soggetto": chi(&luca),
        "aire": {"consolato": "2300300", "residenzaEstera": {"codiceStato": "216", "localita": "Berlin", "indirizzo": "Unter den Linden 1"}}})).await;
    // A civil union, a de facto cohabitation contract, a foreigner.
    let sara = soggetto(
        &s.ok(
            "1002",
            &iscrizione(7, &persona("Ferri", "Sara", "F", "1985-01-01"), None, "1"),
        )
        .await,
    );
    let rita = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                8,
                &Persona {
                    cittadinanza: "216",
                    ..persona("Müller", "Rita", "F", "1986-01-01")
                },
                None,
                "1",
            ),
        )
        .await,
    );
    s.ok("5008", &json!({"idOperazioneComune": "9", "dataDecorrenza": "2021-01-01", "soggetto": chi(&sara), "unioneCivile": {"dataEvento": "2021-01-01", "coniuge": chi(&rita)}})).await;
    let paolo = soggetto(
        &s.ok(
            "1002",
            &iscrizione(10, &persona("Conti", "Paolo", "M", "1970-01-01"), None, "1"),
        )
        .await,
    );
    let giulia = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                11,
                &persona("Greco", "Giulia", "F", "1972-01-01"),
                None,
                "1",
            ),
        )
        .await,
    );
    s.ok("5008", &json!({"idOperazioneComune": "12", "dataDecorrenza": "2021-02-01", "soggetto": chi(&paolo), "convivenzaDiFatto": {"dataEvento": "2021-02-01", "coniuge": chi(&giulia)}})).await;
    // A death that widows a spouse; a removal for untraceability.
    let r = s
        .ok(
            "1002",
            &iscrizione(13, &persona("Russo", "Piero", "M", "1950-01-01"), None, "1"),
        )
        .await;
    let (piero, fam_piero) = (soggetto(&r), famiglia(&r));
    let bruna = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                14,
                &persona("Russo", "Bruna", "F", "1952-01-01"),
                Some(&fam_piero),
                "2",
            ),
        )
        .await,
    );
    s.ok("5008", &json!({"idOperazioneComune": "15", "dataDecorrenza": "2020-04-01", "soggetto": chi(&piero), "matrimonio": {"dataEvento": "2020-04-01", "coniuge": chi(&bruna)}})).await;
    s.ok("2001", &json!({"idOperazioneComune": "16", "motivoCancellazione": "1", "soggetto": chi(&piero), "datiDecesso": {"dataMorte": "2024-02-01"},
        "elencoSoggettiFamiglia": [{"idSchedaSoggettoANPR": bruna, "codiceLegame": "1"}]})).await;
    let elena = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                17,
                &persona("Marino", "Elena", "F", "1960-01-01"),
                None,
                "1",
            ),
        )
        .await,
    );
    s.ok("2003", &json!({"idOperazioneComune": "18", "motivoCancellazione": "6", "dataDecorrenza": "2024-01-01", "soggetto": chi(&elena)})).await;
    // A cohabitation (religious community).
    let conv = famiglia(&s.ok("1010", &json!({"idOperazioneComune": "19", "dataDecorrenza": "2020-01-01", "denominazioneConvivenza": "Convento di Sant'Antonio", "specieConvivenza": "3", "residenza": indirizzo("Aurelia", "1")})).await);
    let frate = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                20,
                &persona("Santoro", "Fabrizio", "M", "1940-01-01"),
                Some(&conv),
                "1",
            ),
        )
        .await,
    );

    // Each type: a subject that qualifies (with text the PDF must show) and one refused.
    let casi: Vec<Caso<'_>> = vec![
        (
            1,
            &mario,
            json!({}),
            vec!["CERTIFICATO ANAGRAFICO DI NASCITA", "D'ÀNGELO NICOLÒ"],
            &piero,
            json!({}),
            "EN228",
        ),
        (
            2,
            &piero,
            json!({}),
            vec!["CERTIFICATO ANAGRAFICO DI MORTE", "01/02/2024"],
            &mario,
            json!({}),
            "EN061",
        ),
        (
            3,
            &mario,
            json!({}),
            vec!["MATRIMONIO", "BIANCHI ANNA"],
            &sara,
            json!({}),
            "EN160",
        ),
        (
            4,
            &elena,
            json!({}),
            vec!["CANCELLAZIONE ANAGRAFICA", "Irreperibilit"],
            &mario,
            json!({}),
            "EN163",
        ),
        (
            5,
            &mario,
            json!({}),
            vec!["CERTIFICATO DI CITTADINANZA", "ITALIANA"],
            &rita,
            json!({}),
            "EN110",
        ),
        (
            6,
            &mario,
            json!({}),
            vec!["STORICO DI CITTADINANZA"],
            &rita,
            json!({}),
            "EN110",
        ),
        (
            7,
            &mario,
            json!({}),
            vec!["ESISTENZA IN VITA"],
            &piero,
            json!({}),
            "EN228",
        ),
        (
            8,
            &mario,
            json!({}),
            vec!["CERTIFICATO DI RESIDENZA", "APPIA NUOVA 5"],
            &luca,
            json!({}),
            "EN044",
        ),
        (
            9,
            &mario,
            json!({}),
            vec![
                "STORICO DI RESIDENZA",
                "NAZIONALE 1",
                "APPIA NUOVA 5",
                "Dal 01/03/2020 al 15/01/2022",
            ],
            &frate,
            json!({"dataRiferimento": "2019-01-01"}),
            "EN419",
        ),
        (
            10,
            &luca,
            json!({}),
            vec!["RESIDENZA AIRE", "Berlin"],
            &mario,
            json!({}),
            "EN164",
        ),
        (
            11,
            &mario,
            json!({}),
            vec!["CERTIFICATO DI STATO CIVILE", "CONIUGATO"],
            &frate,
            json!({}),
            "EN138",
        ),
        (
            12,
            &mario,
            json!({}),
            vec!["STATO DI FAMIGLIA", "BIANCHI ANNA"],
            &frate,
            json!({}),
            "EN055",
        ),
        (
            13,
            &mario,
            json!({}),
            vec!["STATO DI FAMIGLIA E DI STATO CIVILE", "coniugato"],
            &sara,
            json!({}),
            "EN059",
        ),
        (
            14,
            &frate,
            json!({}),
            vec![
                "RESIDENZA IN CONVIVENZA",
                "NAZIONALE 20",
                "Convento di Sant'Antonio",
            ],
            &mario,
            json!({}),
            "EN056",
        ),
        (
            15,
            &luca,
            json!({}),
            vec!["STATO DI FAMIGLIA AIRE", "D'ÀNGELO LUCA"],
            &mario,
            json!({}),
            "EN164",
        ),
        (
            16,
            &mario,
            json!({}),
            vec!["STATO DI FAMIGLIA CON", "BIANCHI ANNA"],
            &sara,
            json!({}),
            "EN059",
        ),
        (
            17,
            &bruna,
            json!({}),
            vec!["STATO LIBERO", "VEDOVO/A"],
            &mario,
            json!({}),
            "EN060",
        ),
        (
            18,
            &sara,
            json!({}),
            vec!["UNIONE CIVILE", "MÜLLER RITA"],
            &mario,
            json!({}),
            "EN160",
        ),
        (
            19,
            &paolo,
            json!({}),
            vec!["CONTRATTO DI CONVIVENZA", "GRECO GIULIA"],
            &mario,
            json!({}),
            "EN354",
        ),
        (
            20,
            &mario,
            json!({"dataRiferimento": "2021-01-01"}),
            vec!["ALLA DATA", "NAZIONALE 1", "Alla data del 01/01/2021"],
            &mario,
            json!({"dataRiferimento": "2019-01-01"}),
            "EN419",
        ),
    ];
    let mut protocolli = Vec::new();
    let mut payload_annullare = None;
    for (tipo, si, extra_si, attesi, no, extra_no, codice) in &casi {
        let (status, body) = emetti(&s, si, &[*tipo], extra_si.clone()).await;
        assert_eq!(status, 200, "type {tipo}: {body}");
        let c = &body["certificato"];
        protocolli.push(c["numeroProtocollo"].as_u64().unwrap());
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(body["certificatoPdf"].as_str().unwrap())
            .unwrap();
        let mut attesi = attesi.clone();
        attesi.push("COMUNE DI ROMA");
        let (_, qr) = controlla_pdf(&pdf, &attesi);
        assert_eq!(qr, c["urlVerifica"].as_str().unwrap(), "type {tipo}");
        // The QR code's payload verifies at the public endpoint, without login.
        let payload = qr.rsplit("c=").next().unwrap().to_owned();
        let (status, v) = get(
            &s,
            &format!("/api/v1/certificati/verifica?c={payload}"),
            false,
        )
        .await;
        assert_eq!(status, 200, "type {tipo}: {v}");
        assert_eq!(v["esito"], "valido");
        assert_eq!(v["comune"], "ROMA");
        assert!(
            !v.to_string().contains("NICOL"),
            "no personal data in the verification: {v}"
        );
        if *tipo == 8 {
            payload_annullare = Some((c["idCertificato"].as_str().unwrap().to_owned(), payload));
        }
        let (status, body) = emetti(&s, no, &[*tipo], extra_no.clone()).await;
        assert_eq!(status, 422, "type {tipo} for the wrong subject: {body}");
        assert_eq!(
            codici(&body),
            vec![codice.to_string()],
            "type {tipo}: {body}"
        );
    }
    // Protocol numbers of the municipality and year: 1, 2, 3... in issue order.
    assert_eq!(protocolli, (1..=20).collect::<Vec<u64>>());

    // Several at once; incompatible combinations refused with their code.
    let (status, body) = emetti(&s, &mario, &[8, 5, 7, 11], json!({})).await;
    assert_eq!(status, 200, "{body}");
    for (tipi, codice) in [
        (vec![2u8, 7], "EN153"),
        (vec![8, 9], "EN153"),
        (vec![3, 17], "EN152"),
        (vec![12, 13], "EN155"),
        (vec![10, 8], "EN287"),
    ] {
        let (status, body) = emetti(&s, &mario, &tipi, json!({})).await;
        assert_eq!(
            (status, codici(&body)),
            (422, vec![codice.to_string()]),
            "{tipi:?}"
        );
    }

    // Exemption from stamp duty (adoption: also from the secretarial fee).
    let (_, body) = emetti(&s, &mario, &[8], json!({"esenzioneBollo": "6"})).await;
    assert_eq!(
        body["certificato"]["importi"],
        json!({"bollo": 0, "dirittiSegreteria": 0})
    );
    let (status, body) = emetti(&s, &mario, &[8], json!({"esenzioneBollo": "99"})).await;
    assert_eq!((status, codici(&body)), (422, vec!["EV002".to_string()]));

    // Annulment for material error: the verification then says so; a second one is refused.
    let (id, payload) = payload_annullare.unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/certificati/{id}/annulla"),
            &json!({"motivo": "errore materiale"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, v) = get(
        &s,
        &format!("/api/v1/certificati/verifica?c={payload}"),
        false,
    )
    .await;
    assert_eq!(v["esito"], "annullato");
    let (status, body) = s
        .post(
            &format!("/api/v1/certificati/{id}/annulla"),
            &json!({"motivo": "ancora"}),
        )
        .await;
    assert_eq!((status, codici(&body)), (422, vec!["EV251".to_string()]));
    // A tampered payload fails; every verification is audited.
    let mut chars: Vec<char> = payload.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let (status, v) = get(
        &s,
        &format!("/api/v1/certificati/verifica?c={tampered}"),
        false,
    )
    .await;
    assert_eq!((status, codici(&v)), (422, vec!["EV252".to_string()]));
    let audit = s.store.audit_page(0, 100_000).await.unwrap();
    let verifiche = audit
        .iter()
        .filter(|a| a.voce.azione == "verificaCertificato")
        .count();
    assert_eq!(verifiche, 22);

    // The list with the sums due: 20 + 1 stamped, 1 exempt, one annulled (not counted).
    let (status, elenco) = get(&s, "/api/v1/certificati", true).await;
    assert_eq!(status, 200, "{elenco}");
    assert_eq!(elenco["certificati"].as_array().unwrap().len(), 22);
    assert_eq!(elenco["totaleBollo"], 20 * 1600);
    assert_eq!(elenco["totaleDirittiSegreteria"], 20 * 52);
    // The PDF prints again identically (same QR payload).
    let r = s
        .client
        .get(format!("{}/api/v1/certificati/{id}/pdf", s.base))
        .headers({
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in &s.headers {
                h.insert(
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            h
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let (testo, qr) = controlla_pdf(&r.bytes().await.unwrap(), &["CERTIFICATO ANNULLATO"]);
    assert!(qr.ends_with(&payload), "{qr}");
    assert!(testo.contains("Protocollo n. 8/"), "{testo}");

    // Bilingual only where the municipality has a second language (Bolzano: German).
    let (status, body) = emetti(&s, &mario, &[8], json!({"linguaCertificato": "DE"})).await;
    assert_eq!((status, codici(&body)), (422, vec!["EV250".to_string()]));
    s.come_comune("021008");
    let (status, body) = emetti(&s, &mario, &[8], json!({"linguaCertificato": "DE"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["certificato"]["numeroProtocollo"], 1,
        "Bolzano's own register"
    );
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(body["certificatoPdf"].as_str().unwrap())
        .unwrap();
    controlla_pdf(
        &pdf,
        &["Wohnsitzbescheinigung", "COMUNE DI BOLZANO / BOZEN"],
    );
    // Another municipality's certificate does not exist for the caller.
    let (status, _) = s
        .post(
            &format!("/api/v1/certificati/{id}/annulla"),
            &json!({"motivo": "x"}),
        )
        .await;
    assert_eq!(status, 404);
}

on_both_backends!(certificati_su_http);
