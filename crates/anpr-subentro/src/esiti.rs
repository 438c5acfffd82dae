//! The outcome files of a run (SPEC M-6.3), written into the `esiti` directory:
//!
//! - `esiti.csv`: one row per record read, with the `idANPR` given to each loaded
//!   individual and family/cohabitation record (`file,tipo_scheda,indice,id_scheda_comune,id_anpr,esito`);
//!   empty (header only) when nothing was loaded;
//! - `anomalie_<famiglia>.csv`: one row per anomaly, per family of anomalies (file
//!   level; blocking data; non-blocking data; tax agency), with code, severity, record
//!   ids, field, found and expected value and the suggested procedure of
//!   `tabella_anomalie.rst`;
//! - `riepilogo.csv`: `codice,gravita,conteggio` for monitoring;
//! - `stato_file.csv`: the state of each file.
//!
//! Rows are streamed as records are processed; nothing is kept in memory.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anpr_domain::error::Anomalia;
use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto};
use anpr_store::FileSubentro;

use crate::importa::ErroreSubentro;
use crate::parser::SoggettoLetto;

/// One row of an anomaly file.
#[derive(Debug, Clone)]
pub struct RigaAnomalia<'a> {
    pub anomalia: &'a Anomalia,
    pub file: &'a str,
    /// `S` subject, `F` family/cohabitation, empty for file-level anomalies.
    pub tipo_scheda: &'static str,
    pub indice: Option<u64>,
    pub id_scheda_comune: Option<&'a str>,
    pub id_anpr: Option<String>,
}

impl<'a> RigaAnomalia<'a> {
    pub fn file(a: &'a Anomalia) -> Self {
        Self {
            anomalia: a,
            file: "",
            tipo_scheda: "",
            indice: None,
            id_scheda_comune: None,
            id_anpr: None,
        }
    }

    pub fn soggetto(
        file: &'a str,
        s: &'a SoggettoLetto,
        id: Option<IdAnprSoggetto>,
        a: &'a Anomalia,
    ) -> Self {
        Self {
            anomalia: a,
            file,
            tipo_scheda: "S",
            indice: Some(s.indice),
            id_scheda_comune: s.id_comunale.as_deref(),
            id_anpr: id.map(|i| i.to_string()),
        }
    }

    pub fn famiglia(
        file: &'a str,
        id_comunale: &'a str,
        id: Option<IdAnprFamiglia>,
        a: &'a Anomalia,
    ) -> Self {
        Self {
            anomalia: a,
            file,
            tipo_scheda: "F",
            indice: None,
            id_scheda_comune: Some(id_comunale),
            id_anpr: id.map(|i| i.to_string()),
        }
    }

    /// The anomaly belongs to a subject of the family (EN063).
    pub fn con_soggetto(mut self, id: IdAnprSoggetto) -> Self {
        self.tipo_scheda = "S";
        self.id_anpr = Some(id.to_string());
        self
    }
}

/// Writes the outcome files of one run.
#[derive(Debug)]
pub struct ScrittoreEsiti {
    cartella: PathBuf,
    esiti: BufWriter<File>,
    anomalie: HashMap<&'static str, BufWriter<File>>,
}

const INTESTAZIONE_ANOMALIE: &str = "codice,gravita,file,tipo_scheda,indice,id_scheda_comune,id_anpr,campo,valore,atteso,testo,procedura\n";

fn io(p: &Path) -> impl Fn(std::io::Error) -> ErroreSubentro + '_ {
    move |e| ErroreSubentro::Io(p.to_owned(), e)
}

/// A CSV field, quoted when needed (borrowed when not).
fn campo(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Which anomaly file an anomaly goes to (the families of `tabella_anomalie.rst`).
pub fn famiglia_anomalia(a: &Anomalia) -> &'static str {
    if a.codice.starts_with("EA") {
        return "agenzia_entrate";
    }
    let sezione = anpr_tables::tables()
        .errore(&a.codice)
        .and_then(|e| e.anomalie_section.clone())
        .unwrap_or_default();
    if sezione.contains("file di subentro") {
        "file"
    } else if a.is_blocking() {
        "bloccanti"
    } else {
        "non_vincolanti"
    }
}

impl ScrittoreEsiti {
    pub fn nuovo(cartella: &Path) -> Result<Self, ErroreSubentro> {
        std::fs::create_dir_all(cartella).map_err(io(cartella))?;
        // Anomaly files of an earlier run in the same directory would mix with ours.
        if let Ok(voci) = std::fs::read_dir(cartella) {
            for v in voci.flatten() {
                if v.file_name().to_string_lossy().starts_with("anomalie_") {
                    std::fs::remove_file(v.path()).map_err(io(cartella))?;
                }
            }
        }
        let p = cartella.join("esiti.csv.tmp");
        let mut esiti = BufWriter::new(File::create(&p).map_err(io(&p))?);
        esiti
            .write_all(b"file,tipo_scheda,indice,id_scheda_comune,id_anpr,esito\n")
            .map_err(io(&p))?;
        Ok(Self {
            cartella: cartella.to_owned(),
            esiti,
            anomalie: HashMap::new(),
        })
    }

    pub fn soggetto(
        &mut self,
        file: &str,
        s: &SoggettoLetto,
        id: Option<IdAnprSoggetto>,
    ) -> Result<(), ErroreSubentro> {
        // One row per record read: written straight into the buffer, no allocation
        // unless a field needs quoting.
        let w = &mut self.esiti;
        let esito = (|| {
            w.write_all(campo(file).as_bytes())?;
            write!(w, ",S,{},", s.indice)?;
            w.write_all(campo(s.id_comunale.as_deref().unwrap_or("")).as_bytes())?;
            match id {
                Some(i) => writeln!(w, ",{i},CARICATO"),
                None => w.write_all(b",,SCARTATO\n"),
            }
        })();
        esito.map_err(|e| ErroreSubentro::Io(self.cartella.join("esiti.csv"), e))
    }

    pub fn famiglia(
        &mut self,
        file: &str,
        id_comunale: &str,
        convivenza: bool,
        id: Option<IdAnprFamiglia>,
    ) -> Result<(), ErroreSubentro> {
        let w = &mut self.esiti;
        let esito = (|| {
            w.write_all(campo(file).as_bytes())?;
            w.write_all(if convivenza { b",C,," } else { b",F,," })?;
            w.write_all(campo(id_comunale).as_bytes())?;
            match id {
                Some(i) => writeln!(w, ",{i},CARICATO"),
                None => w.write_all(b",,SCARTATO\n"),
            }
        })();
        esito.map_err(|e| ErroreSubentro::Io(self.cartella.join("esiti.csv"), e))
    }

    pub fn anomalia(&mut self, r: &RigaAnomalia<'_>) -> Result<(), ErroreSubentro> {
        let a = r.anomalia;
        let famiglia = famiglia_anomalia(a);
        let p = self.cartella.join(format!("anomalie_{famiglia}.csv"));
        if !self.anomalie.contains_key(famiglia) {
            let mut w = BufWriter::new(File::create(&p).map_err(io(&p))?);
            w.write_all(INTESTAZIONE_ANOMALIE.as_bytes())
                .map_err(io(&p))?;
            self.anomalie.insert(famiglia, w);
        }
        let procedura = anpr_tables::tables()
            .errore(&a.codice)
            .and_then(|e| e.anomalie_procedure.clone())
            .unwrap_or_default();
        let indice = r.indice.map(|i| i.to_string()).unwrap_or_default();
        let campi: [&str; 12] = [
            &campo(&a.codice),
            a.gravita.code(),
            &campo(r.file),
            r.tipo_scheda,
            &indice,
            &campo(r.id_scheda_comune.unwrap_or("")),
            r.id_anpr.as_deref().unwrap_or(""),
            &campo(a.campo.as_deref().unwrap_or("")),
            &campo(a.valore.as_deref().unwrap_or("")),
            &campo(a.atteso.as_deref().unwrap_or("")),
            &campo(&a.testo),
            &campo(&procedura),
        ];
        let riga = campi.join(",");
        let w = self.anomalie.get_mut(famiglia).expect("opened above");
        writeln!(w, "{riga}").map_err(io(&p))
    }

    /// Closes the files: the outcome list is kept only if the load was committed.
    pub fn concludi(
        mut self,
        positivo: bool,
        riepilogo: &BTreeMap<(String, String), u64>,
        files: &[FileSubentro],
    ) -> Result<(), ErroreSubentro> {
        let tmp = self.cartella.join("esiti.csv.tmp");
        let finale = self.cartella.join("esiti.csv");
        self.esiti.flush().map_err(io(&tmp))?;
        drop(self.esiti);
        if positivo {
            std::fs::rename(&tmp, &finale).map_err(io(&finale))?;
        } else {
            std::fs::remove_file(&tmp).map_err(io(&tmp))?;
            std::fs::write(
                &finale,
                "file,tipo_scheda,indice,id_scheda_comune,id_anpr,esito\n",
            )
            .map_err(io(&finale))?;
        }
        for (nome, mut w) in self.anomalie.drain() {
            let p = self.cartella.join(format!("anomalie_{nome}.csv"));
            w.flush().map_err(io(&p))?;
        }
        let p = self.cartella.join("riepilogo.csv");
        let mut testo = String::from("codice,gravita,conteggio\n");
        for ((codice, gravita), n) in riepilogo {
            testo.push_str(&format!("{codice},{gravita},{n}\n"));
        }
        std::fs::write(&p, testo).map_err(io(&p))?;
        let p = self.cartella.join("stato_file.csv");
        let mut testo = String::from("nome_file,stato,sha256,soggetti,famiglie\n");
        for f in files {
            testo.push_str(&format!(
                "{},{},{},{},{}\n",
                campo(&f.nome_file),
                f.stato,
                f.sha256,
                f.soggetti,
                f.famiglie
            ));
        }
        std::fs::write(&p, testo).map_err(io(&p))?;
        Ok(())
    }
}
