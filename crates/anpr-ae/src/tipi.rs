//! What the registry asks the tax agency and what it gets back.
//!
//! These are the adapter's own types: the registry's use cases build them from a record
//! and read the outcome back into the record's codice fiscale section
//! (`DatiCodiceFiscale`: code, [`StatoCodiceFiscale`], linked codes). The HTTP protocol
//! has separate wire types (see [`crate::protocollo`]).

use std::fmt;
use std::str::FromStr;

use anpr_domain::codice_fiscale::DatoAnagrafico;
use anpr_domain::error::{Anomalia, Gravita};
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, InvalidValue, Sesso};
use anpr_domain::scheda::StatoCodiceFiscale;
use anpr_domain::text::fold_key;
use chrono::NaiveDate;

/// The five personal data a codice fiscale is computed from, as the agency holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatiAnagraficiAe {
    /// Surname as written (for married women, the maiden name).
    pub cognome: String,
    /// All given names as written.
    pub nome: String,
    pub sesso: Sesso,
    pub data_nascita: NaiveDate,
    /// Cadastral code of the municipality or foreign state of birth.
    pub luogo_nascita: CodiceCatastale,
}

impl DatiAnagraficiAe {
    /// Which of the five data differ between `self` and `altri`, in the order surname,
    /// name, sex, birth date, birth place. Names are compared as the agency's archive
    /// writes them: upper case, without accents, separators ignored (`D'Angelo` is
    /// `DANGELO`), so a spelling the registry preserves is not a difference.
    pub fn differenze(&self, altri: &DatiAnagraficiAe) -> Vec<DatoAnagrafico> {
        let mut diverse = Vec::new();
        if chiave_nome(&self.cognome) != chiave_nome(&altri.cognome) {
            diverse.push(DatoAnagrafico::Cognome);
        }
        if chiave_nome(&self.nome) != chiave_nome(&altri.nome) {
            diverse.push(DatoAnagrafico::Nome);
        }
        if self.sesso != altri.sesso {
            diverse.push(DatoAnagrafico::Sesso);
        }
        if self.data_nascita != altri.data_nascita {
            diverse.push(DatoAnagrafico::DataNascita);
        }
        if self.luogo_nascita != altri.luogo_nascita {
            diverse.push(DatoAnagrafico::LuogoNascita);
        }
        diverse
    }

    /// The value of one datum, as shown in anomaly texts.
    pub fn valore(&self, dato: DatoAnagrafico) -> String {
        match dato {
            DatoAnagrafico::Cognome => self.cognome.clone(),
            DatoAnagrafico::Nome => self.nome.clone(),
            DatoAnagrafico::Sesso => self.sesso.code().to_owned(),
            DatoAnagrafico::DataNascita => self.data_nascita.format("%Y-%m-%d").to_string(),
            DatoAnagrafico::LuogoNascita => self.luogo_nascita.as_str().to_owned(),
        }
    }
}

/// A name as the agency's archive compares it: folded, letters and digits only.
pub(crate) fn chiave_nome(nome: &str) -> String {
    fold_key(nome).replace(' ', "")
}

/// Parses a date written exactly `YYYY-MM-DD` (chrono alone would also take `1980-1-1`).
pub(crate) fn data_iso(testo: &str) -> Option<NaiveDate> {
    let b = testo.as_bytes();
    let forma = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !forma {
        return None;
    }
    NaiveDate::parse_from_str(testo, "%Y-%m-%d").ok()
}

/// The field name of a datum in requests (`dati.cognome`, ...).
pub(crate) fn campo_dato(dato: DatoAnagrafico) -> &'static str {
    match dato {
        DatoAnagrafico::Cognome => "dati.cognome",
        DatoAnagrafico::Nome => "dati.nome",
        DatoAnagrafico::Sesso => "dati.sesso",
        DatoAnagrafico::DataNascita => "dati.dataNascita",
        DatoAnagrafico::LuogoNascita => "dati.luogoNascita",
    }
}

/// What the registry asks the agency to do with a subject's code (`tipoGestioneCF`,
/// element `gestioneCF` of services 1001, 1002, A001/A002 and 5008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GestioneCf {
    /// `0`: verify the code the registry holds against the agency's data (also after a
    /// change of personal data, 5008).
    Verifica,
    /// `1`: first attribution of a code (e.g. registration by birth).
    PrimaAttribuzione,
    /// `2`: request an omocode for a person whose data give a code already issued to
    /// someone else.
    RichiestaOmocodice,
    /// `3`: do not call the agency.
    NessunaChiamata,
}

impl GestioneCf {
    /// The XSD value, `0` to `3`.
    pub fn codice(self) -> &'static str {
        match self {
            GestioneCf::Verifica => "0",
            GestioneCf::PrimaAttribuzione => "1",
            GestioneCf::RichiestaOmocodice => "2",
            GestioneCf::NessunaChiamata => "3",
        }
    }

    /// Whether the agency is called at all (every value but `3`).
    pub fn chiama_ae(self) -> bool {
        self != GestioneCf::NessunaChiamata
    }

    /// Whether the agency writes (issues a code): `1` and `2`.
    pub fn scrive(self) -> bool {
        matches!(
            self,
            GestioneCf::PrimaAttribuzione | GestioneCf::RichiestaOmocodice
        )
    }
}

impl FromStr for GestioneCf {
    type Err = InvalidValue;
    /// Parses the XSD value (`numerico1`): exactly one digit, `0` to `3`.
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "0" => Ok(GestioneCf::Verifica),
            "1" => Ok(GestioneCf::PrimaAttribuzione),
            "2" => Ok(GestioneCf::RichiestaOmocodice),
            "3" => Ok(GestioneCf::NessunaChiamata),
            _ => Err(InvalidValue::new(
                "gestioneCF",
                s,
                "0 (verifica), 1 (prima attribuzione), 2 (omocodice) or 3 (nessuna chiamata)",
            )),
        }
    }
}

impl fmt::Display for GestioneCf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codice())
    }
}

/// A call made on registration (1001/1002/A001/A002) or change of generalities (5008).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichiestaAe {
    pub gestione: GestioneCf,
    /// The code the registry holds (16 characters, or 11 digits for a provisional one):
    /// required with `0`, refused with `1` and `2`, passed through with `3`. Kept as the
    /// text received, so the agency's answer can name a malformed one.
    pub codice_fiscale: Option<String>,
    /// The subject's data as the registry holds them.
    pub dati: DatiAnagraficiAe,
    /// The municipality making the call (the subject's residence: the agency always takes
    /// the residence from the registry).
    pub comune: CodiceIstatComune,
}

/// The agency's answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsitoAe {
    /// The code the record must hold after the call: the one attributed, verified or, for
    /// a code linked to a newer one, the newer one. `None` when no code results.
    pub codice_fiscale: Option<String>,
    /// The state the record's code takes.
    pub stato: StatoCodiceFiscale,
    /// The person's other codes (oldest first), linked to `codice_fiscale`.
    pub codici_collegati: Vec<String>,
    /// The agency's messages (`E` blocks the operation, `W` is reported), each with its
    /// remedy in `atteso`.
    pub anomalie: Vec<Anomalia>,
    /// The agency's personal data for `codice_fiscale`, when it holds them: what
    /// "Conferma AE" tells the registry to adopt, and what differs under EAV31.
    pub dati_ae: Option<DatiAnagraficiAe>,
}

impl EsitoAe {
    /// The answer to `gestioneCF` 3: no call, the code (if any) stays not validated.
    pub fn senza_chiamata(req: &RichiestaAe) -> Self {
        Self {
            codice_fiscale: req.codice_fiscale.clone(),
            stato: StatoCodiceFiscale::NonValidato,
            codici_collegati: Vec::new(),
            anomalie: Vec::new(),
            dati_ae: None,
        }
    }

    /// A refusal: the code (if any) not validated, with the blocking `anomalia`.
    pub fn rifiuto(codice_fiscale: Option<String>, anomalia: Anomalia) -> Self {
        Self {
            codice_fiscale,
            stato: StatoCodiceFiscale::NonValidato,
            codici_collegati: Vec::new(),
            anomalie: vec![anomalia],
            dati_ae: None,
        }
    }

    /// Whether any anomaly blocks the operation.
    pub fn bloccante(&self) -> bool {
        self.anomalie.iter().any(|a| a.gravita == Gravita::Errore)
    }

    /// The codes of the anomalies, in order (handy for callers and tests).
    pub fn codici_anomalie(&self) -> Vec<&str> {
        self.anomalie.iter().map(|a| a.codice.as_str()).collect()
    }
}

/// One position of the agency's register, as its consultation shows it ("Consultazione
/// AE", the equivalent of a PuntoFisco query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosizioneAe {
    pub codice_fiscale: String,
    pub dati: DatiAnagraficiAe,
    /// Marked: aligned with a registry record (validated through ANPR, same data).
    pub marcato: bool,
    /// Being processed at the agency: writes answer EAM15 until it ends.
    pub in_trattamento: bool,
    /// For a code linked to a newer one, the person's current code.
    pub codice_attuale: Option<String>,
    /// Every other code of the same person, in the order they were issued or linked
    /// (oldest first); the current one, if it is not this, included.
    pub codici_collegati: Vec<String>,
    /// Municipality of residence the agency last received from the registry, if any.
    pub comune_residenza: Option<CodiceIstatComune>,
}

/// A misalignment resolution on one code (M-3.3): "Conferma AE" (the registry adopts the
/// agency's data) or "Conferma ANPR" (the agency's data are rectified with the
/// registry's). The residence always comes from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichiestaAllineamento {
    /// The code the registry holds.
    pub codice_fiscale: String,
    /// The registry's data for the subject.
    pub dati: DatiAnagraficiAe,
    /// The subject's municipality of residence in the registry.
    pub comune: CodiceIstatComune,
}

/// A link of two codes of the same person (M-3.3 "Collega codici fiscali"): the numeric
/// provisional code the registry holds, validated and marked, to the agency's definitive
/// alphanumeric code, not marked. After the link the registry replaces its code with the
/// agency's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichiestaCollegamento {
    /// The numeric provisional code held by the registry record.
    pub codice_anpr: String,
    /// The alphanumeric code the agency holds for the same person.
    pub codice_ae: String,
    /// The subject's municipality of residence in the registry.
    pub comune: CodiceIstatComune,
}

/// Builds the EAV31-style description of differing data: the fields in `campo`, the
/// agency's values in `valore` (`cognome=ROSSA; nome=MARIA`).
pub(crate) fn con_differenze(
    anomalia: Anomalia,
    diverse: &[DatoAnagrafico],
    ae: &DatiAnagraficiAe,
) -> Anomalia {
    let campi: Vec<&str> = diverse.iter().map(|d| campo_dato(*d)).collect();
    let valori: Vec<String> = diverse
        .iter()
        .map(|d| format!("{}={}", d, ae.valore(*d)))
        .collect();
    anomalia.campo(campi.join(",")).valore(valori.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dati(cognome: &str, nome: &str) -> DatiAnagraficiAe {
        DatiAnagraficiAe {
            cognome: cognome.to_owned(),
            nome: nome.to_owned(),
            sesso: Sesso::Maschio,
            data_nascita: NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
            luogo_nascita: "H501".parse().unwrap(),
        }
    }

    #[test]
    fn gestione_cf_parses_the_xsd_values_only() {
        for (testo, atteso) in [
            ("0", GestioneCf::Verifica),
            ("1", GestioneCf::PrimaAttribuzione),
            ("2", GestioneCf::RichiestaOmocodice),
            ("3", GestioneCf::NessunaChiamata),
        ] {
            let g: GestioneCf = testo.parse().unwrap();
            assert_eq!(g, atteso);
            assert_eq!(g.codice(), testo);
        }
        for sbagliato in ["", "4", "01", " 1", "a", "-1"] {
            let err = sbagliato.parse::<GestioneCf>().unwrap_err();
            assert_eq!(err.what, "gestioneCF", "{sbagliato:?}");
        }
        assert!(!GestioneCf::NessunaChiamata.chiama_ae());
        assert!(GestioneCf::Verifica.chiama_ae() && !GestioneCf::Verifica.scrive());
        assert!(GestioneCf::RichiestaOmocodice.scrive());
    }

    #[test]
    fn dates_are_strictly_iso() {
        assert_eq!(data_iso("1980-01-31"), NaiveDate::from_ymd_opt(1980, 1, 31));
        for sbagliata in [
            "1980-1-31",
            "1980-02-30",
            "31/01/1980",
            "1980-01-31 ",
            "",
            "+1980-01-3",
        ] {
            assert_eq!(data_iso(sbagliata), None, "{sbagliata:?}");
        }
    }

    #[test]
    fn differences_ignore_case_accents_and_separators() {
        let a = dati("D'Angelo", "Niccolò");
        assert!(a.differenze(&dati("DANGELO", "NICCOLO'")).is_empty());
        assert!(a.differenze(&dati("d angelo", "niccolo")).is_empty());
        assert_eq!(
            a.differenze(&dati("D'Angeli", "Niccolò")),
            vec![DatoAnagrafico::Cognome]
        );
        let mut b = dati("Rossi", "Maria");
        b.sesso = Sesso::Femmina;
        b.data_nascita = NaiveDate::from_ymd_opt(1980, 1, 2).unwrap();
        b.luogo_nascita = "F205".parse().unwrap();
        assert_eq!(
            a.differenze(&b),
            vec![
                DatoAnagrafico::Cognome,
                DatoAnagrafico::Nome,
                DatoAnagrafico::Sesso,
                DatoAnagrafico::DataNascita,
                DatoAnagrafico::LuogoNascita
            ]
        );
    }

    #[test]
    fn differing_data_are_named_with_the_agency_values() {
        let ae = dati("Rossa", "Maria");
        let registro = dati("Rossi", "Mario");
        let a = con_differenze(crate::codici::eav31(), &registro.differenze(&ae), &ae);
        assert_eq!(a.campo.as_deref(), Some("dati.cognome,dati.nome"));
        assert_eq!(a.valore.as_deref(), Some("cognome=Rossa; nome=Maria"));
    }
}
