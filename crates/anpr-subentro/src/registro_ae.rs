//! A compact, read-only view of a tax-agency register file (the simulator's CSV, see
//! `anpr_ae::seme`) for onboarding from the command line.
//!
//! The onboarding asks the agency one thing per record: does it hold a position for this
//! code ([`AgenziaEntrate::presenti`], one call per batch). The full simulator keeps every
//! position with its data, links and indexes, several hundred bytes each: a million
//! positions took most of a gigabyte. This view streams the same file through the same
//! row checks (`anpr_ae::seme::scorri_csv`) and keeps only the codes, 16 bytes each,
//! sorted: a lookup is a binary search, a million positions take 16 MiB.
//!
//! It answers presence only. The other calls of the port (attribution, verification,
//! alignment, links, detailed consultation) need the data it does not keep: they answer
//! "not available" ([`ErroreAe::NonRaggiungibile`]), which the registry treats as an
//! agency that did not answer. The onboarding never makes them.

use std::io::BufRead;
use std::path::Path;

use anpr_ae::{
    AgenziaEntrate, ErroreAe, ErroreSeme, EsitoAe, PosizioneAe, RichiestaAe, RichiestaAllineamento,
    RichiestaCollegamento,
};
use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use async_trait::async_trait;

/// A code as a fixed-size key: the 16 characters (an 11-digit numeric code is padded
/// with zero bytes, which no code contains).
type Chiave = [u8; 16];

pub(crate) fn chiave(codice: &str) -> Option<Chiave> {
    let b = codice.as_bytes();
    if b.len() > 16 {
        return None;
    }
    let mut k = [0u8; 16];
    k[..b.len()].copy_from_slice(b);
    Some(k)
}

/// The codes of a register, for presence checks (see the module documentation).
#[derive(Debug, Default)]
pub struct RegistroCodiciAe {
    codici: Vec<Chiave>,
    sola_lettura: bool,
}

impl RegistroCodiciAe {
    /// Reads a register file; refused as the simulator refuses it: a malformed row, a
    /// code twice, a link to a code the file does not hold.
    pub fn da_csv_file(percorso: &Path) -> Result<Self, ErroreSeme> {
        let nome = percorso.display().to_string();
        let file = std::fs::File::open(percorso).map_err(|e| ErroreSeme::Lettura {
            file: nome.clone(),
            dettaglio: e.to_string(),
        })?;
        Self::da_csv(&nome, std::io::BufReader::with_capacity(1 << 16, file))
    }

    /// As [`RegistroCodiciAe::da_csv_file`], from any reader (`file` names it in errors).
    pub fn da_csv(file: &str, input: impl BufRead) -> Result<Self, ErroreSeme> {
        let mut righe: Vec<(Chiave, u32)> = Vec::new();
        // Links are rare: their targets are checked once every code is known.
        let mut collegamenti: Vec<(Chiave, usize, String)> = Vec::new();
        let errore = |riga: usize, colonna: &str, valore: &str, testo: &str, atteso: &str| {
            ErroreSeme::Riga {
                file: file.to_owned(),
                riga,
                anomalia: Anomalia::errore(CODICE_VALORE_NON_VALIDO, testo)
                    .campo(colonna)
                    .valore(valore)
                    .atteso(atteso),
            }
        };
        anpr_ae::seme::scorri_csv(file, input, |riga, p| {
            let codice = p.codice_fiscale.as_str();
            let k = chiave(codice).ok_or_else(|| {
                errore(
                    riga,
                    "codice_fiscale",
                    codice,
                    "codice fiscale troppo lungo",
                    "16 caratteri o 11 cifre",
                )
            })?;
            if let Some(c) = &p.collegato_a {
                collegamenti.push((
                    chiave(c.as_str()).unwrap_or_default(),
                    riga,
                    c.as_str().to_owned(),
                ));
            }
            righe.push((k, u32::try_from(riga).unwrap_or(u32::MAX)));
            Ok(())
        })?;
        righe.sort_unstable();
        if let Some(w) = righe.windows(2).find(|w| w[0].0 == w[1].0) {
            let codice = String::from_utf8_lossy(&w[1].0)
                .trim_end_matches('\0')
                .to_owned();
            return Err(errore(
                w[0].1.max(w[1].1) as usize,
                "codice_fiscale",
                &codice,
                "codice fiscale già presente nel registro simulato",
                "un codice non ancora caricato",
            ));
        }
        let codici: Vec<Chiave> = righe.into_iter().map(|(k, _)| k).collect();
        for (k, riga, testo) in collegamenti {
            if codici.binary_search(&k).is_err() {
                return Err(errore(
                    riga,
                    "collegato_a",
                    &testo,
                    "codice collegato sconosciuto",
                    "un codice presente nel file",
                ));
            }
        }
        Ok(Self {
            codici,
            sola_lettura: false,
        })
    }

    /// Answers like an agency in read-only mode (pre-subentro).
    pub fn imposta_sola_lettura(&mut self, sola_lettura: bool) {
        self.sola_lettura = sola_lettura;
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.codici.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codici.is_empty()
    }

    /// Whether the register holds `codice` (read as the simulator reads it).
    pub fn contiene(&self, codice: &str) -> bool {
        codice
            .trim()
            .parse::<CodiceFiscaleSoggetto>()
            .ok()
            .and_then(|c| chiave(c.as_str()))
            .is_some_and(|k| self.codici.binary_search(&k).is_ok())
    }
}

fn non_disponibile() -> ErroreAe {
    ErroreAe::NonRaggiungibile {
        dettaglio: "registro compatto dell'Agenzia delle Entrate: solo verifiche di presenza"
            .into(),
    }
}

#[async_trait]
impl AgenziaEntrate for RegistroCodiciAe {
    async fn valida(&self, _req: &RichiestaAe) -> Result<EsitoAe, ErroreAe> {
        Err(non_disponibile())
    }

    async fn consulta(&self, _codice_fiscale: &str) -> Result<Option<PosizioneAe>, ErroreAe> {
        Err(non_disponibile())
    }

    async fn conferma_dati_ae(&self, _req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe> {
        Err(non_disponibile())
    }

    async fn conferma_dati_anpr(&self, _req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe> {
        Err(non_disponibile())
    }

    async fn collega(&self, _req: &RichiestaCollegamento) -> Result<EsitoAe, ErroreAe> {
        Err(non_disponibile())
    }

    fn sola_lettura(&self) -> bool {
        self.sola_lettura
    }

    async fn presenti(&self, codici: &[String]) -> Result<Vec<bool>, ErroreAe> {
        Ok(codici.iter().map(|c| self.contiene(c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTESTAZIONE: &str =
        "codice_fiscale,cognome,nome,sesso,data_nascita,luogo_nascita,stato,collegato_a,in_trattamento\n";

    fn registro(righe: &str) -> Result<RegistroCodiciAe, ErroreSeme> {
        RegistroCodiciAe::da_csv("ae.csv", format!("{INTESTAZIONE}{righe}").as_bytes())
    }

    fn codice(cognome: &str, nome: &str, data: (i32, u32, u32), luogo: &str) -> String {
        use anpr_domain::codice_fiscale::{calcola, DatiCalcolo};
        calcola(&DatiCalcolo {
            cognome,
            nome,
            sesso: anpr_domain::ids::Sesso::Maschio,
            data_nascita: chrono::NaiveDate::from_ymd_opt(data.0, data.1, data.2).unwrap(),
            luogo_nascita: &luogo.parse().unwrap(),
        })
        .unwrap()
        .as_str()
        .to_owned()
    }

    #[tokio::test]
    async fn presence_agrees_with_the_simulator_on_the_same_file() {
        let a = codice("Rossi", "Mario", (1980, 1, 2), "H501");
        let b = codice("Bianchi", "Luca", (1975, 6, 30), "F205");
        let assente = codice("Verdi", "Carlo", (1990, 3, 4), "L219");
        let righe = format!(
            "{a},Rossi,Mario,M,1980-01-02,H501,,,\n{b},Bianchi,Luca,M,1975-06-30,F205,marcato,,false\n"
        );
        let r = registro(&righe).unwrap();
        let sim = anpr_ae::Simulatore::new();
        sim.carica_csv("ae.csv", format!("{INTESTAZIONE}{righe}").as_bytes())
            .unwrap();
        assert_eq!(r.len(), 2);
        let domande = vec![
            a.clone(),
            b.to_lowercase(),
            assente,
            "NONVALIDO".into(),
            String::new(),
        ];
        let attese = vec![true, true, false, false, false];
        assert_eq!(r.presenti(&domande).await.unwrap(), attese);
        assert_eq!(sim.presenti(&domande).await.unwrap(), attese);
        // The default (code by code through `consulta`) answers the same.
        let mut una_per_volta = Vec::new();
        for d in &domande {
            una_per_volta.push(sim.consulta(d).await.unwrap().is_some());
        }
        assert_eq!(una_per_volta, attese);
        // Everything else is not available from a presence-only register.
        assert_eq!(r.consulta(&a).await.unwrap_err().codice(), "EV060");
    }

    #[test]
    fn duplicates_dangling_links_and_bad_rows_are_refused_with_the_line() {
        let a = codice("Rossi", "Mario", (1980, 1, 2), "H501");
        let b = codice("Bianchi", "Luca", (1975, 6, 30), "F205");
        let e = registro(&format!(
            "{a},Rossi,Mario,M,1980-01-02,H501,,,\n{a},Rossi,Mario,M,1980-01-02,H501,,,\n"
        ))
        .unwrap_err();
        assert_eq!(e.riga(), Some(3));
        assert_eq!(
            e.anomalia().unwrap().campo.as_deref(),
            Some("codice_fiscale")
        );
        let e = registro(&format!("{a},Rossi,Mario,M,1980-01-02,H501,,{b},\n")).unwrap_err();
        assert_eq!(e.riga(), Some(2));
        assert_eq!(e.anomalia().unwrap().campo.as_deref(), Some("collegato_a"));
        let e = registro(&format!("{a},Rossi,Mario,X,1980-01-02,H501,,,\n")).unwrap_err();
        assert_eq!(e.riga(), Some(2));
        assert_eq!(e.anomalia().unwrap().campo.as_deref(), Some("sesso"));
    }
}
