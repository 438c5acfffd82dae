//! Certificates per second on one core: a full certificate (PDF/A-2b, embedded font
//! subset, watermark, QR code with an Ed25519-signed payload) against a same-run
//! baseline, a bare one-page PDF with one line of text in a standard font (no embedding,
//! no PDF/A, no QR, no signature). Prints the medians of 15 batches and the ratio.
//!
//! `cargo bench -p anpr-certificati --bench certificati`

use std::hint::black_box;
use std::time::Instant;

use anpr_certificati::{genera_pdf, Blocco, Documento, Firmatario, PayloadVerifica, Qr};
use chrono::{NaiveDate, TimeZone, Utc};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

const BATCH: u32 = 500;
const BATCHES: usize = 15;

fn certificato(firmatario: &Firmatario, n: u32) -> Vec<u8> {
    genera_pdf(&documento(firmatario, n)).unwrap()
}

fn documento(firmatario: &Firmatario, n: u32) -> Documento {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    let payload = PayloadVerifica {
        id,
        tipi: 1 << 7,
        data_emissione: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        comune: 58091,
        hash_contenuto: [n as u8; 16],
    };
    let url = format!(
        "http://localhost:8080/api/v1/certificati/verifica?c={}",
        firmatario.firma(&payload)
    );
    Documento {
        titolo_metadati: "Certificato di residenza".into(),
        logo: None,
        intestazione: vec!["COMUNE DI ROMA".into(), "Ufficio Anagrafe - Servizi Demografici".into(), format!("Protocollo n. {n}/2026 del 23/11/2026")],
        corpo: vec![
            Blocco::Titolo("CERTIFICATO DI RESIDENZA".into()),
            Blocco::Paragrafo("L'UFFICIALE DI ANAGRAFE, visti gli atti d'ufficio e le risultanze dell'Anagrafe Nazionale della Popolazione Residente, CERTIFICA che:".into()),
            Blocco::Campo { etichetta: "Cognome e nome".into(), valore: "D'ÀNGELO NICOLÒ".into() },
            Blocco::Campo { etichetta: "Nato/a a".into(), valore: "ROMA (RM)".into() },
            Blocco::Campo { etichetta: "Il".into(), valore: "01/01/1980".into() },
            Blocco::Campo { etichetta: "Codice fiscale".into(), valore: "DNGNCL80A01H501X".into() },
            Blocco::Campo { etichetta: "Residenza".into(), valore: "VIA APPIA NUOVA 5 - ROMA".into() },
            Blocco::Campo { etichetta: "Dal".into(), valore: "15/01/2022".into() },
            Blocco::Paragrafo("Si rilascia in data 23/11/2026 a richiesta dell'interessato.".into()),
        ],
        filigrana: Some("BOZZA / ANTEPRIMA - ambiente di test".into()),
        qr: Some(Qr { contenuto: url, didascalia: vec!["Verifica dell'autenticità: inquadrare il codice QR.".into()] }),
        piede: vec!["Il presente certificato non può essere prodotto agli organi della pubblica amministrazione (art. 40 D.P.R. 445/2000).".into(), "Imposta di bollo € 16,00 assolta in modo virtuale.".into()],
        creato: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        id_file: id,
    }
}

fn pdf_minimo(n: u32) -> Vec<u8> {
    let mut pdf = Pdf::new();
    pdf.catalog(Ref::new(1)).pages(Ref::new(2));
    pdf.pages(Ref::new(2)).kids([Ref::new(3)]).count(1);
    let mut page = pdf.page(Ref::new(3));
    page.parent(Ref::new(2))
        .media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
        .contents(Ref::new(4));
    page.resources().fonts().pair(Name(b"F1"), Ref::new(5));
    page.finish();
    let mut c = Content::new();
    let riga = format!("CERTIFICATO DI RESIDENZA n. {n}");
    c.begin_text()
        .set_font(Name(b"F1"), 12.0)
        .next_line(56.0, 780.0)
        .show(Str(riga.as_bytes()))
        .end_text();
    pdf.stream(Ref::new(4), &c.finish());
    pdf.type1_font(Ref::new(5)).base_font(Name(b"Helvetica"));
    pdf.finish()
}

fn mediana(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn misura(mut f: impl FnMut(u32) -> Vec<u8>) -> (f64, usize) {
    let mut byte = 0;
    // Warm-up: the font subset is built once per process, on first use.
    for i in 0..20 {
        byte = black_box(f(i)).len();
    }
    let per_sec = (0..BATCHES)
        .map(|b| {
            let t = Instant::now();
            for i in 0..BATCH {
                black_box(f(b as u32 * BATCH + i));
            }
            f64::from(BATCH) / t.elapsed().as_secs_f64()
        })
        .collect();
    (mediana(per_sec), byte)
}

fn main() {
    let firmatario = Firmatario::effimero().unwrap();
    let (base, base_byte) = misura(pdf_minimo);
    let (cert, cert_byte) = misura(|i| certificato(&firmatario, i));
    let (senza_qr, _) = misura(|i| {
        let mut d = documento(&firmatario, i);
        d.qr = None;
        genera_pdf(&d).unwrap()
    });
    println!(
        "baseline: bare one-page PDF          median {base:>10.0} docs/s  ({base_byte} bytes)"
    );
    println!(
        "certificate: PDF/A-2b + QR + Ed25519 median {cert:>10.0} docs/s  ({cert_byte} bytes)"
    );
    println!("same certificate without the QR code    median {senza_qr:>10.0} docs/s");
    println!(
        "ratio baseline/certificate: {:.0}x slower (target >= 200 certificates/s on one core: {})",
        base / cert,
        if cert >= 200.0 { "met" } else { "NOT met" }
    );
}
