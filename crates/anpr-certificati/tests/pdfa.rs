//! The written PDF checked by independent tools: qpdf (structure), pdffonts (every font
//! embedded), pdftotext (accents come back right), pdftoppm (renders) and zbarimg (the
//! QR code decodes to the signed payload, which verifies).

use std::process::Command;

use anpr_certificati::{genera_pdf, Blocco, Documento, Firmatario, PayloadVerifica, Qr};
use chrono::{NaiveDate, TimeZone, Utc};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} not available (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn documento(qr: String, filigrana: Option<String>, righe: usize) -> Documento {
    let mut corpo = vec![
        Blocco::Titolo("CERTIFICATO DI RESIDENZA".into()),
        Blocco::Sottotitolo("Wohnsitzbescheinigung".into()),
        Blocco::Paragrafo(
            "L'UFFICIALE DI ANAGRAFE, visti gli atti d'ufficio, CERTIFICA che:".into(),
        ),
        Blocco::Campo {
            etichetta: "Cognome e nome".into(),
            valore: "D'ÀNGELO NICOLÒ ŽIVKOVIČ".into(),
        },
        Blocco::Campo {
            etichetta: "Residenza".into(),
            valore: "VIA DELLA LIBERTÀ 12, città di Forlì — è qui".into(),
        },
        Blocco::Separatore,
    ];
    for i in 0..righe {
        corpo.push(Blocco::Paragrafo(format!("Riga {i} perché sì, più lunga del solito per andare a capo più volte nella pagina del certificato anagrafico.")));
    }
    Documento {
        titolo_metadati: "Certificato di residenza".into(),
        logo: None,
        intestazione: vec!["COMUNE DI FORLÌ".into(), "Servizi demografici".into()],
        corpo,
        filigrana,
        qr: Some(Qr {
            contenuto: qr,
            didascalia: vec!["Verifica l'autenticità inquadrando il codice QR".into()],
        }),
        piede: vec!["Imposta di bollo assolta in modo virtuale.".into()],
        creato: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        id_file: [3u8; 16],
    }
}

#[test]
fn certificate_pdf_is_pdfa_with_embedded_font_accents_and_a_verifiable_qr() {
    let firmatario = Firmatario::effimero().unwrap();
    let payload = PayloadVerifica {
        id: [5u8; 16],
        tipi: 1 << 7,
        data_emissione: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        comune: 40012,
        hash_contenuto: [1u8; 16],
    };
    let firmato = firmatario.firma(&payload);
    let url = format!("https://anpr.example/api/v1/certificati/verifica?c={firmato}");
    // Long enough to flow onto a second page.
    let pdf = genera_pdf(&documento(
        url.clone(),
        Some("BOZZA / ANTEPRIMA - ambiente di test".into()),
        60,
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let p = path.to_str().unwrap();

    run("qpdf", &["--check", p]);
    let info = run("pdfinfo", &[p]);
    let pagine: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap();
    assert!(pagine >= 2, "the body should flow onto more pages: {info}");
    let fonts = run("pdffonts", &[p]);
    let righe: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!righe.is_empty(), "{fonts}");
    for r in &righe {
        // columns: name type encoding emb sub uni ...
        let c: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(c[c.len() - 5], "yes", "font not embedded: {r}");
        assert_eq!(c[c.len() - 3], "yes", "font without ToUnicode: {r}");
    }
    let meta = run("pdfinfo", &["-meta", p]);
    assert!(meta.contains("<pdfaid:part>2</pdfaid:part>"), "{meta}");
    assert!(
        meta.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "{meta}"
    );
    // The output intent is there (PDF/A requires one) and the ICC profile embedded.
    let bytes = String::from_utf8_lossy(&pdf);
    assert!(bytes.contains("/GTS_PDFA1"));
    assert!(bytes.contains("/DestOutputProfile"));

    let testo = run("pdftotext", &["-layout", p, "-"]);
    for atteso in [
        "COMUNE DI FORLÌ",
        "D'ÀNGELO NICOLÒ ŽIVKOVIČ",
        "LIBERTÀ",
        "città",
        "perché sì",
        "Wohnsitzbescheinigung",
    ] {
        assert!(testo.contains(atteso), "missing {atteso:?} in\n{testo}");
    }

    // The diagonal watermark comes out one glyph per line: compare without spaces.
    let grezzo: String = run("pdftotext", &["-raw", p, "-"])
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(
        grezzo.contains("BOZZA/ANTEPRIMA-ambienteditest"),
        "{grezzo}"
    );

    let png = dir.path().join("r");
    let ultima = pagine.to_string();
    // The QR code is on the last page.
    run(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "150",
            "-f",
            &ultima,
            "-l",
            &ultima,
            p,
            png.to_str().unwrap(),
        ],
    );
    let immagine = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .expect("pdftoppm wrote a page image");
    let letto = run(
        "zbarimg",
        &[
            "--raw",
            "-q",
            "-Sdisable",
            "-Sqrcode.enable",
            immagine.to_str().unwrap(),
        ],
    );
    assert_eq!(letto.trim(), url);
    let c = letto.trim().rsplit("c=").next().unwrap();
    assert_eq!(firmatario.verifica(c).unwrap(), payload);
}

#[test]
fn production_documents_have_no_watermark_and_fit_one_page() {
    let pdf = genera_pdf(&documento("x".into(), None, 0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let p = path.to_str().unwrap();
    run("qpdf", &["--check", p]);
    let testo = run("pdftotext", &[p, "-"]);
    assert!(!testo.contains("BOZZA"), "{testo}");
    assert!(run("pdfinfo", &[p]).contains("Pages:           1"));
}

/// A 40x20 PNG: left half opaque pure red, right half fully transparent.
fn logo_png() -> Vec<u8> {
    let mut pixel = Vec::new();
    for _ in 0..20 {
        for x in 0..40 {
            pixel.extend(if x < 20 {
                [255, 0, 0, 255]
            } else {
                [0, 0, 0, 0]
            });
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 40, 20);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(&pixel)
            .unwrap();
    }
    out
}

#[test]
fn logo_boxes_and_page_breaks_render_in_a_valid_pdf() {
    let mut doc = documento("x".into(), None, 0);
    doc.logo = Some(std::sync::Arc::new(
        anpr_certificati::Immagine::da_file(&logo_png()).unwrap(),
    ));
    doc.corpo.push(Blocco::NuovaPagina);
    for copia in ["COPIA PER IL COMUNE", "COPIA PER LA QUESTURA"] {
        doc.corpo.push(Blocco::Riquadro {
            titolo: format!("CARTELLINO — {copia}"),
            righe: vec![
                ("Cognome e nome".into(), "D'ÀNGELO NICOLÒ".into()),
                ("Testimone".into(), "ŽIVKOVIČ ANA".into()),
            ],
        });
    }
    let pdf = genera_pdf(&doc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let p = path.to_str().unwrap();
    run("qpdf", &["--check", p]);
    assert!(run("pdfinfo", &[p]).contains("Pages:           2"));
    // One 8-bit RGB image, on page 1, without a soft mask (transparency flattened).
    let immagini = run("pdfimages", &["-list", p]);
    let righe: Vec<&str> = immagini.lines().skip(2).collect();
    assert_eq!(righe.len(), 1, "{immagini}");
    let c: Vec<&str> = righe[0].split_whitespace().collect();
    assert_eq!(
        (c[0], c[3], c[4], c[5], c[6]),
        ("1", "40", "20", "rgb", "3"),
        "{immagini}"
    );
    let secondo = run("pdftotext", &["-f", "2", "-l", "2", p, "-"]);
    assert!(secondo.contains("COPIA PER LA QUESTURA"), "{secondo}");
    assert!(secondo.contains("ŽIVKOVIČ ANA"), "{secondo}");
    // The logo is drawn centred at the top: red on its left half, white on the right.
    let out = dir.path().join("pagina");
    run(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "72",
            "-f",
            "1",
            "-l",
            "1",
            p,
            out.to_str().unwrap(),
        ],
    );
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let decoder = png::Decoder::new(std::fs::File::open(file).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let canali = info.color_type.samples();
    let px = |x: usize, y: usize| {
        let i = (y * info.width as usize + x) * canali;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    // At 72 dpi one point is one pixel: the logo is 92x46 from x = 251.5, y = 56.
    assert_eq!(px(275, 79), (255, 0, 0), "left half of the logo");
    assert_eq!(px(320, 79), (255, 255, 255), "transparent half on white");
}
