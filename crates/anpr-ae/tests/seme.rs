//! Seeding the simulator from CSV files: links, deliberate discrepancies, and refusals that
//! name the line and the column and load nothing.

mod common;

use std::io::Write;

use anpr_ae::{AgenziaEntrate, ErroreSeme, GestioneCf, Simulatore};
use anpr_domain::scheda::StatoCodiceFiscale;
use common::*;

const INTESTAZIONE: &str =
    "codice_fiscale,cognome,nome,sesso,data_nascita,luogo_nascita,stato,collegato_a,in_trattamento,comune_residenza\n";

fn file_csv(righe: &[&str]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(INTESTAZIONE.as_bytes()).unwrap();
    for riga in righe {
        writeln!(file, "{riga}").unwrap();
    }
    file.flush().unwrap();
    file
}

/// Expects the file refused at `riga`, column `campo`, with `codice`, and nothing loaded.
fn check_rifiuto(sim: &Simulatore, righe: &[&str], riga: usize, campo: &str, codice: &str) {
    let prima = sim.len();
    let file = file_csv(righe);
    let errore = sim.carica_csv_file(file.path()).unwrap_err();
    let anomalia = errore.anomalia().unwrap_or_else(|| panic!("{errore}"));
    assert_eq!(
        (
            errore.riga(),
            anomalia.campo.as_deref(),
            anomalia.codice.as_str()
        ),
        (Some(riga), Some(campo), codice),
        "{errore}"
    );
    let nome = file.path().display().to_string();
    assert!(errore.to_string().starts_with(&format!("{nome}:{riga}: ")));
    assert_eq!(sim.len(), prima, "nothing loaded");
}

#[tokio::test]
async fn a_file_seeds_positions_links_and_discrepancies() {
    let sim = Simulatore::new();
    let file = file_csv(&[
        // A chain: the oldest code, then the next, then the current one.
        "RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,BNCMRA80A01H501A,false,",
        "BNCMRA80A01H501A,Bianchi,Mario,M,1980-01-01,H501,non_marcato,VRDMRA80A01H501Q,0,",
        "VRDMRA80A01H501Q,Verdi,Mario,M,1980-01-01,H501,marcato,,,058091",
        // Deliberate discrepancies.
        "01234567897,Neri,Luca,M,1970-05-06,Z404,,,true,",
        "NREGNN70E06Z404N,Neri,Gianni,M,1970-05-06,Z404,non_unificabile,,,",
    ]);
    assert_eq!(sim.carica_csv_file(file.path()).unwrap(), 5);
    assert_eq!(sim.len(), 5);

    let attuale = sim.posizione("VRDMRA80A01H501Q").unwrap();
    assert!(attuale.marcato);
    assert_eq!(
        attuale.codici_collegati,
        vec!["RSSMRA80A01H501U".to_owned(), "BNCMRA80A01H501A".to_owned()]
    );
    assert_eq!(
        attuale.comune_residenza.map(|c| c.to_string()).as_deref(),
        Some(ROMA)
    );
    for vecchio in ["RSSMRA80A01H501U", "BNCMRA80A01H501A"] {
        let p = sim.posizione(vecchio).unwrap();
        assert_eq!(
            p.codice_attuale.as_deref(),
            Some("VRDMRA80A01H501Q"),
            "{vecchio}"
        );
    }

    let esito = sim
        .valida(&richiesta(
            GestioneCf::Verifica,
            Some("RSSMRA80A01H501U"),
            dati("Rossi", "Mario"),
        ))
        .await
        .unwrap();
    assert_eq!(esito.stato, StatoCodiceFiscale::Collegato);
    assert_eq!(esito.codice_fiscale.as_deref(), Some("VRDMRA80A01H501Q"));

    let mut neri = dati("Neri", "Luca");
    neri.data_nascita = data("1970-05-06");
    neri.luogo_nascita = "Z404".parse().unwrap();
    let esito = sim
        .valida(&richiesta(GestioneCf::Verifica, Some(NUMERICO), neri))
        .await
        .unwrap();
    assert_eq!(codici(&esito), vec![e("EAM15")]);
    let mut gianni = dati("Neri", "Gianni");
    gianni.data_nascita = data("1970-05-06");
    gianni.luogo_nascita = "Z404".parse().unwrap();
    let esito = sim
        .valida(&richiesta(
            GestioneCf::Verifica,
            Some("NREGNN70E06Z404N"),
            gianni,
        ))
        .await
        .unwrap();
    assert_eq!(codici(&esito), vec![e("EAM9C")]);

    // A later file may link to codes already loaded.
    let seconda =
        file_csv(&["LBRLCU75A01F205R,Alberti,Luca,M,1975-01-01,F205,,VRDMRA80A01H501Q,,"]);
    assert_eq!(sim.carica_csv_file(seconda.path()).unwrap(), 1);
    assert_eq!(
        sim.posizione("VRDMRA80A01H501Q")
            .unwrap()
            .codici_collegati
            .len(),
        3
    );
}

#[test]
fn malformed_files_load_nothing_and_name_line_and_column() {
    let sim = Simulatore::new();
    let buona = "RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,,,";
    check_rifiuto(
        &sim,
        &[
            buona,
            "BNCMRA80A01H501A,Bianchi,Mario,M,1980-01-01,H501,,,,7",
        ],
        3,
        "comune_residenza",
        "EV001",
    );
    check_rifiuto(
        &sim,
        &[buona, "BNCMRA80A01H501A,Bianchi,Mario,M,1980-1-1,H501,,,,"],
        3,
        "data_nascita",
        "EV001",
    );
    check_rifiuto(
        &sim,
        &[buona, "BNCMRA80A01H501A,Bianchi,,M,1980-01-01,H501,,,,"],
        3,
        "nome",
        "EV002",
    );
    // Duplicate code in the file.
    check_rifiuto(&sim, &[buona, buona], 3, "codice_fiscale", "EV001");
    // Link to a code nowhere.
    check_rifiuto(
        &sim,
        &[buona.replace(",,,,", ",,BNCMRA80A01H501A,,").as_str()],
        2,
        "collegato_a",
        "EV001",
    );
    // Link to itself, and a cycle.
    check_rifiuto(
        &sim,
        &[buona.replace(",,,,", ",,RSSMRA80A01H501U,,").as_str()],
        2,
        "collegato_a",
        "EV001",
    );
    check_rifiuto(
        &sim,
        &[
            "RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,BNCMRA80A01H501A,,",
            "BNCMRA80A01H501A,Bianchi,Mario,M,1980-01-01,H501,,RSSMRA80A01H501U,,",
        ],
        2,
        "collegato_a",
        "EV001",
    );
    // A replaced code cannot be marked.
    check_rifiuto(
        &sim,
        &[
            "RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,marcato,BNCMRA80A01H501A,,",
            "BNCMRA80A01H501A,Bianchi,Mario,M,1980-01-01,H501,,,,",
        ],
        2,
        "stato",
        "EV001",
    );
    assert!(sim.is_empty());

    // A code already in the register.
    let file = file_csv(&[buona]);
    sim.carica_csv_file(file.path()).unwrap();
    check_rifiuto(&sim, &[buona], 2, "codice_fiscale", "EV001");
    let errore = sim
        .inserisci(posizione("RSSMRA80A01H501U", dati("Rossi", "Mario")))
        .unwrap_err();
    assert_eq!(errore.riga(), Some(0));

    let errore = sim
        .carica_csv_file(std::path::Path::new("/nonexistent/ae.csv"))
        .unwrap_err();
    assert!(matches!(errore, ErroreSeme::Lettura { .. }), "{errore}");
}
