//! The generator's contract: files valid against `subentro.xsd` (checked by xmllint, an
//! independent validator), byte-identical output for the same seed, and an
//! `anomalie-attese.csv` that lists exactly what was injected.

use std::path::{Path, PathBuf};
use std::process::Command;

use anpr_generatore::{genera, Configurazione};
use chrono::NaiveDate;

fn configurazione(cartella: &Path, seme: u64, anomalie: f64) -> Configurazione {
    Configurazione {
        comuni: vec!["001272".parse().unwrap(), "058091".parse().unwrap()],
        persone: 2500,
        seme,
        anomalie,
        totali_errati: false,
        data_estrazione: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        cartella: cartella.to_owned(),
    }
}

fn xsd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../anpr-subentro/xsd/subentro.xsd")
}

#[test]
fn every_generated_file_validates_against_the_published_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let r = genera(&configurazione(dir.path(), 7, 0.02)).unwrap();
    assert_eq!(r.file.len(), 4, "APR and AIRE for two municipalities");
    for f in &r.file {
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(xsd())
            .arg(f)
            .output()
            .expect("xmllint is installed by scripts/test");
        assert!(
            out.status.success(),
            "{} does not validate: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let nomi: Vec<String> = r
        .file
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        nomi,
        [
            "APR_001272_001_001.xml",
            "AIRE_001272_001_001.xml",
            "APR_058091_001_001.xml",
            "AIRE_058091_001_001.xml"
        ]
    );
    // No temporary file is left behind.
    let restanti = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        restanti, 6,
        "4 subentro files, the AE register, the expected anomalies"
    );
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let ra = genera(&configurazione(a.path(), 42, 0.05)).unwrap();
    genera(&configurazione(b.path(), 42, 0.05)).unwrap();
    genera(&configurazione(c.path(), 43, 0.05)).unwrap();
    for f in ra.file.iter().chain([&ra.registro_ae, &ra.anomalie_attese]) {
        let nome = f.file_name().unwrap();
        let x = std::fs::read(f).unwrap();
        assert_eq!(x, std::fs::read(b.path().join(nome)).unwrap(), "{nome:?}");
        assert_ne!(x, std::fs::read(c.path().join(nome)).unwrap(), "{nome:?}");
    }
}

#[test]
fn expected_anomalies_are_listed_with_their_counts() {
    let dir = tempfile::tempdir().unwrap();
    let r = genera(&configurazione(dir.path(), 3, 0.05)).unwrap();
    let testo = std::fs::read_to_string(&r.anomalie_attese).unwrap();
    let mut righe = testo.lines();
    assert_eq!(righe.next(), Some("codice,conteggio"));
    let mut totale = 0;
    for riga in righe {
        let (codice, n) = riga.split_once(',').unwrap();
        assert_eq!(r.anomalie[codice], n.parse::<u64>().unwrap());
        totale += n.parse::<u64>().unwrap();
    }
    // 5% of ~5000 persons, give or take the binomial spread.
    assert!((150..=350).contains(&totale), "{totale} anomalies");
    for codice in [
        "ES092", "EN481", "EA038", "EA042", "EA029", "EA030", "EA031", "EC053", "EC032",
    ] {
        assert!(
            r.anomalie.contains_key(codice),
            "{codice} injected at least once: {testo}"
        );
    }
    // A clean population has no expected anomaly at all.
    let pulita = tempfile::tempdir().unwrap();
    let r = genera(&configurazione(pulita.path(), 3, 0.0)).unwrap();
    assert!(r.anomalie.is_empty());
    assert_eq!(
        std::fs::read_to_string(&r.anomalie_attese).unwrap(),
        "codice,conteggio\n"
    );
}
