//! Synthetic population generator for subentro (municipality onboarding) files.
//!
//! [`genera`] writes, for each municipality asked for, the APR file and the AIRE file in
//! the bulk format of `subentro.xsd` (named as [`nome_file`] says), the tax-agency
//! register the simulator can be seeded with (`ae-registro.csv`, format of
//! `anpr_ae::seme`), and `anomalie-attese.csv` (`codice,conteggio`): exactly the
//! anomalies injected, which an onboarding of all the files, in the order written, must
//! report.
//!
//! The output is a pure function of the configuration: one ChaCha stream seeded with
//! `seme`, no clock, no hash-map iteration order. Files are written as a stream (the
//! body first to a temporary file, then the header with the counted totals followed by
//! the body), so a million-person file never sits in memory.
#![forbid(unsafe_code)]

mod nomi;
mod parti;
mod popolazione;
mod xml;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anpr_domain::ids::CodiceIstatComune;
use chrono::NaiveDate;

pub use parti::dividi_in_parti;
pub use popolazione::TipoAnomalia;

/// The kind of subentro file: resident registry or registry of Italians abroad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TipoFile {
    Apr,
    Aire,
}

impl TipoFile {
    pub fn prefisso(self) -> &'static str {
        match self {
            TipoFile::Apr => "APR",
            TipoFile::Aire => "AIRE",
        }
    }
}

/// The file name convention: `APR_<ISTAT>_<progressivo>_<totale>.xml` (and `AIRE_...`),
/// progressivo and totale on three digits. It carries what the file-level checks
/// compare (EN001 form, EN008 part number, EN038 total, EN039 municipality).
pub fn nome_file(
    tipo: TipoFile,
    comune: &CodiceIstatComune,
    progressivo: u32,
    totale: u32,
) -> String {
    format!(
        "{}_{}_{:03}_{:03}.xml",
        tipo.prefisso(),
        comune,
        progressivo,
        totale
    )
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Configurazione {
    pub comuni: Vec<CodiceIstatComune>,
    /// Persons per municipality (APR and AIRE together, before injected extra records).
    pub persone: u64,
    pub seme: u64,
    /// Probability, per person, of injecting one anomaly (0 = a clean population).
    pub anomalie: f64,
    /// Declare wrong totals in the APR file of the first municipality (EN011: the file
    /// must end INSERITO KO with nothing loaded).
    pub totali_errati: bool,
    /// The extraction date written in the files; ages and dates are relative to it.
    pub data_estrazione: NaiveDate,
    pub cartella: PathBuf,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct Riepilogo {
    /// Subentro files, in the order they must be onboarded.
    pub file: Vec<PathBuf>,
    pub registro_ae: PathBuf,
    pub anomalie_attese: PathBuf,
    /// Subject records written (all files).
    pub soggetti: u64,
    /// Family and cohabitation records written.
    pub famiglie: u64,
    /// Injected anomalies per ANPR code.
    pub anomalie: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ErroreGeneratore {
    #[error("municipality {0} is not active in the decoding tables")]
    ComuneSconosciuto(String),
    #[error("anomaly rate {0} is not between 0 and 1")]
    TassoNonValido(f64),
    #[error("writing {path}: {source}")]
    Scrittura { path: PathBuf, source: io::Error },
}

/// Generates the population and writes every file into `cfg.cartella`.
pub fn genera(cfg: &Configurazione) -> Result<Riepilogo, ErroreGeneratore> {
    if !(0.0..=1.0).contains(&cfg.anomalie) {
        return Err(ErroreGeneratore::TassoNonValido(cfg.anomalie));
    }
    let tabelle = anpr_tables::tables();
    for c in &cfg.comuni {
        if tabelle.comune_by_istat(c, cfg.data_estrazione).is_none() {
            return Err(ErroreGeneratore::ComuneSconosciuto(c.to_string()));
        }
    }
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| ErroreGeneratore::Scrittura { path, source }
    };
    std::fs::create_dir_all(&cfg.cartella).map_err(err(&cfg.cartella))?;
    let registro_path = cfg.cartella.join("ae-registro.csv");
    let mut registro = BufWriter::new(File::create(&registro_path).map_err(err(&registro_path))?);
    writeln!(
        registro,
        "codice_fiscale,cognome,nome,sesso,data_nascita,luogo_nascita,stato,collegato_a,in_trattamento,comune_residenza"
    )
    .map_err(err(&registro_path))?;

    let mut mondo = popolazione::Mondo::new(cfg, tabelle);
    let mut riepilogo = Riepilogo {
        registro_ae: registro_path.clone(),
        ..Riepilogo::default()
    };
    for (i, comune) in cfg.comuni.iter().enumerate() {
        let apr = cfg.cartella.join(nome_file(TipoFile::Apr, comune, 1, 1));
        let aire = cfg.cartella.join(nome_file(TipoFile::Aire, comune, 1, 1));
        let mut scrittore_apr = xml::ScrittoreFile::nuovo(&apr).map_err(err(&apr))?;
        let mut scrittore_aire = xml::ScrittoreFile::nuovo(&aire).map_err(err(&aire))?;
        mondo
            .genera_comune(
                comune,
                &mut scrittore_apr,
                &mut scrittore_aire,
                &mut registro,
            )
            .map_err(err(&apr))?;
        let errati = cfg.totali_errati && i == 0;
        if errati {
            *riepilogo.anomalie.entry("EN011".to_owned()).or_default() += 1;
        }
        for (scrittore, path, errati) in [
            (scrittore_apr, &apr, errati),
            (scrittore_aire, &aire, false),
        ] {
            riepilogo.soggetti += scrittore.totali.soggetti;
            riepilogo.famiglie += scrittore.totali.famiglie + scrittore.totali.convivenze;
            scrittore
                .chiudi(cfg.data_estrazione, errati)
                .map_err(err(path))?;
            riepilogo.file.push(path.clone());
        }
    }
    registro.flush().map_err(err(&registro_path))?;
    for (codice, n) in mondo.anomalie() {
        *riepilogo.anomalie.entry(codice.to_owned()).or_default() += n;
    }
    let attese = cfg.cartella.join("anomalie-attese.csv");
    let mut f = BufWriter::new(File::create(&attese).map_err(err(&attese))?);
    writeln!(f, "codice,conteggio").map_err(err(&attese))?;
    for (codice, n) in &riepilogo.anomalie {
        writeln!(f, "{codice},{n}").map_err(err(&attese))?;
    }
    f.flush().map_err(err(&attese))?;
    riepilogo.anomalie_attese = attese;
    Ok(riepilogo)
}
