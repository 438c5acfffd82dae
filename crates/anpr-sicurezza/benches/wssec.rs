//! Cost of verifying a WS-Security signed SOAP request against a same-run baseline:
//! parsing the same request unsigned into our tree (what the SOAP edge does for any
//! message). Two signed messages: signed by the municipality's server certificate only,
//! and with the second signature by the workstation certificate (issue 7 item 5).
//! Prints the median per message of each and the cost verification adds.
//!
//! `cargo bench -p anpr-sicurezza --bench wssec` (needs xmlsec1 to sign the sample).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;

use anpr_domain::caller::Profilo;
use anpr_sicurezza::ca::AutoritaCertificazione;
use anpr_sicurezza::catena::Fiducia;
use anpr_sicurezza::direttorio::{Direttorio, Utente};
use anpr_sicurezza::wssec::{verifica_messaggio, Politica};
use anpr_sicurezza::xml::analizza;
use chrono::{Duration, Utc};

const ROMA: &str = "058091";
const CF: &str = "RSSMRA80A01H501U";

/// A registration-sized body (about 2 KB, 40 elements).
fn corpo() -> String {
    let mut s = String::from("<op:Richiesta1002 xmlns:op=\"http://sogei.it/ANPR/1002\"><op:testataRichiesta><op:idOperazioneComune>123456</op:idOperazioneComune><op:codMittente>058091</op:codMittente><op:codDestinatario>ANPR02</op:codDestinatario></op:testataRichiesta>");
    for i in 0..12 {
        s.push_str(&format!("<op:soggetto n=\"{i}\"><op:cognome>ROSSI &amp; BIANCHI</op:cognome><op:nome>MARIA</op:nome><op:dataNascita>1980-05-{:02}</op:dataNascita></op:soggetto>", i + 1));
    }
    s.push_str("</op:Richiesta1002>");
    s
}

/// Median seconds per call of `f`, over `lotti` batches of `n` calls.
fn mediana(n: u32, lotti: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..lotti)
        .map(|_| {
            let s = Instant::now();
            for _ in 0..n {
                f();
            }
            s.elapsed().as_secs_f64() / f64::from(n)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let adesso = Utc::now();
    let ca = AutoritaCertificazione::nuova(adesso - Duration::days(1)).expect("CA");
    let mut d = Direttorio::default();
    d.censisci(
        ROMA,
        Utente {
            codice_fiscale: CF.into(),
            cognome: "Rossi".into(),
            nome: "Mario".into(),
            email: "mario.rossi@comune.roma.it".into(),
            ruoli: Default::default(),
        },
        BTreeSet::from([Profilo::OperatoreAnagrafe]),
    )
    .expect("census");
    d.dichiara_postazioni(ROMA, 1).expect("workstations");
    d.emetti_certificati_postazione(&ca, ROMA, "ALP", adesso - Duration::hours(1))
        .expect("certificates");
    let fiducia = Fiducia::nuova(
        ca.certificato_der().to_vec(),
        d.crl(&ca, adesso - Duration::minutes(10)).expect("crl"),
    );
    let server = d
        .certificato_attuale("058091-SERVER")
        .expect("server")
        .emesso
        .clone();
    let postazione = d
        .certificato_attuale("058091-PC-0001")
        .expect("workstation")
        .emesso
        .clone();
    let busta = anpr_sicurezza::testing::busta(CF, &corpo(), adesso);
    let firmato = anpr_sicurezza::testing::firma_xmlsec1(&busta, &server);
    let due_firme = anpr_sicurezza::testing::firma_xmlsec1_postazione(
        &anpr_sicurezza::testing::busta_con_postazione(CF, &corpo(), "058091-PC-0001", adesso),
        &server,
        &postazione,
    );
    let non_firmato = busta.into_bytes();
    let politica = Politica::standard(&fiducia, adesso + Duration::seconds(5));
    verifica_messaggio(&firmato, &politica, &d, &[Profilo::OperatoreAnagrafe], None)
        .expect("valid sample");
    let due = verifica_messaggio(
        &due_firme,
        &politica,
        &d,
        &[Profilo::OperatoreAnagrafe],
        None,
    )
    .expect("valid sample with the workstation's signature");
    assert_eq!(due.firma.postazione.as_deref(), Some("058091-PC-0001"));

    // `cargo test --all-targets` runs this without `--bench`: one quick pass as a smoke
    // test, the numbers are meaningless in a debug build.
    let misura = std::env::args().any(|a| a == "--bench");
    let (lotti, n_base, n_firma) = if misura { (31, 500, 200) } else { (1, 1, 1) };
    let base = mediana(n_base, lotti, || {
        black_box(analizza(black_box(&non_firmato)).expect("parse"));
    });
    let firma = mediana(n_firma, lotti, || {
        black_box(
            verifica_messaggio(
                black_box(&firmato),
                &politica,
                &d,
                &[Profilo::OperatoreAnagrafe],
                None,
            )
            .expect("verify"),
        );
    });
    let postazione = mediana(n_firma, lotti, || {
        black_box(
            verifica_messaggio(
                black_box(&due_firme),
                &politica,
                &d,
                &[Profilo::OperatoreAnagrafe],
                None,
            )
            .expect("verify"),
        );
    });
    // The same two-signature message when no certificate is remembered (a new trust per
    // message: both chains and the CRL's signature verified every time).
    let fredda = mediana(n_firma, lotti, || {
        let nuova = Fiducia::nuova(fiducia.ca_der.clone(), fiducia.crl_der.clone());
        let politica = Politica::standard(&nuova, adesso + Duration::seconds(5));
        black_box(
            verifica_messaggio(
                black_box(&due_firme),
                &politica,
                &d,
                &[Profilo::OperatoreAnagrafe],
                None,
            )
            .expect("verify"),
        );
    });
    println!(
        "messaggio firmato: {} byte, con la firma della postazione {} byte, non firmato {} byte",
        firmato.len(),
        due_firme.len(),
        non_firmato.len()
    );
    println!(
        "baseline  analisi XML del messaggio non firmato  mediana {:>9.1} µs",
        base * 1e6
    );
    println!(
        "verifica  firma WS-Security completa             mediana {:>9.1} µs  ({:.1}× la baseline)",
        firma * 1e6,
        firma / base
    );
    println!(
        "costo aggiunto dalla verifica per messaggio       {:>9.1} µs  (obiettivo < 1000 µs)",
        (firma - base) * 1e6
    );
    println!(
        "verifica  con la firma della postazione (2 firme)  mediana {:>9.1} µs  ({:.1}× la baseline)",
        postazione * 1e6,
        postazione / base
    );
    println!(
        "costo aggiunto dalla verifica con due firme        {:>9.1} µs  (obiettivo < 1000 µs)",
        (postazione - base) * 1e6
    );
    println!(
        "    senza certificati ricordati (2 firme)          mediana {:>9.1} µs  ({:.1}× la baseline)",
        fredda * 1e6,
        fredda / base
    );
}
