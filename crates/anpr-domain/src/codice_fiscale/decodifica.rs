//! Reading personal data back out of a codice fiscale, and comparing a code with the
//! data it should have been computed from.
//!
//! The code carries only the last two digits of the birth year, so the century is
//! ambiguous: someone born in 1920 and someone born in 2020 on the same day and place
//! have the same date part, and in a registry that holds people over 100 years old both
//! are real. Decoding therefore returns both candidate years and never guesses silently;
//! [`DatiDecodificati::data_nascita_probabile`] makes the usual guess (the latest
//! candidate not after a reference date) for callers that have nothing better, and the
//! registry, which has the recorded birth date, compares with [`coerente_con_dati`].

use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::calcolo::{codice_cognome, codice_nome, CodiceNominativo, DatiCalcolo};
use super::codice::{due_cifre, luogo_base, verifica, CodiceFiscale};
use super::errore::ErroreCodiceFiscale;
use super::omocodia::livello_omocodia;
use super::tabelle;
use crate::ids::{CodiceCatastale, Sesso};

/// A two-digit birth year with the two full years it may stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnnoDueCifre {
    yy: u8,
    candidati: [i32; 2],
}

impl AnnoDueCifre {
    /// `yy` must be below 100; larger values are reduced modulo 100.
    pub fn new(yy: u8) -> Self {
        let yy = yy % 100;
        Self {
            yy,
            candidati: [1900 + i32::from(yy), 2000 + i32::from(yy)],
        }
    }

    /// The two digits as written in the code.
    pub fn yy(&self) -> u8 {
        self.yy
    }

    /// `[1900 + yy, 2000 + yy]`, earlier first.
    pub fn candidati(&self) -> [i32; 2] {
        self.candidati
    }
}

/// Everything a codice fiscale says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatiDecodificati {
    /// The three surname letters (they identify many surnames, not one).
    pub codice_cognome: CodiceNominativo,
    /// The three name letters.
    pub codice_nome: CodiceNominativo,
    pub sesso: Sesso,
    /// Day of the month, 1..=31 (the +40 for women already removed).
    pub giorno: u8,
    /// Month, 1..=12.
    pub mese: u8,
    pub anno: AnnoDueCifre,
    /// Cadastral code of the birth place, with omocodic letters turned back into digits.
    pub luogo_nascita: CodiceCatastale,
    /// How many numeric positions hold omocodic letters (0..=7).
    pub livello_omocodia: u8,
}

impl DatiDecodificati {
    /// The birth date for each candidate year, earlier first; `None` where that date does
    /// not exist (29 February 1900 is the only such case, as 2000 was a leap year).
    pub fn date_candidate(&self) -> [Option<NaiveDate>; 2] {
        self.anno
            .candidati()
            .map(|anno| NaiveDate::from_ymd_opt(anno, u32::from(self.mese), u32::from(self.giorno)))
    }

    /// The latest candidate birth date not after `riferimento` (typically today, or the
    /// date of the document being checked): a newborn rather than a centenarian. `None`
    /// when both candidates are after it.
    pub fn data_nascita_probabile(&self, riferimento: NaiveDate) -> Option<NaiveDate> {
        self.date_candidate()
            .into_iter()
            .rev()
            .flatten()
            .find(|data| *data <= riferimento)
    }
}

/// Checks a codice fiscale (as [`verifica`] does) and decodes it.
///
/// Takes anything that reads as a string, so it serves both raw input and a
/// [`CodiceFiscale`] already parsed (which is then re-checked, cheaply).
pub fn decodifica(cf: impl AsRef<str>) -> Result<DatiDecodificati, ErroreCodiceFiscale> {
    let codice = verifica(cf.as_ref())?;
    let caratteri = codice.caratteri();
    let valore_giorno = due_cifre(caratteri[9], caratteri[10]);
    let (sesso, giorno) = if valore_giorno > 40 {
        (Sesso::Femmina, valore_giorno - 40)
    } else {
        (Sesso::Maschio, valore_giorno)
    };
    let luogo = luogo_base(&codice);
    let luogo_nascita =
        luogo
            .parse::<CodiceCatastale>()
            .map_err(|_| ErroreCodiceFiscale::LuogoNonValido {
                codice: luogo.clone(),
            })?;
    Ok(DatiDecodificati {
        codice_cognome: CodiceNominativo::da_codice(&codice, 0),
        codice_nome: CodiceNominativo::da_codice(&codice, 3),
        sesso,
        giorno,
        // `verifica` accepted the month letter, so the fallback is never taken.
        mese: tabelle::mese(caratteri[8]).unwrap_or(1),
        anno: AnnoDueCifre::new(due_cifre(caratteri[6], caratteri[7])),
        luogo_nascita,
        livello_omocodia: livello_omocodia(&codice),
    })
}

/// One of the five personal data a codice fiscale is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatoAnagrafico {
    Cognome,
    Nome,
    Sesso,
    DataNascita,
    LuogoNascita,
}

impl fmt::Display for DatoAnagrafico {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatoAnagrafico::Cognome => "cognome",
            DatoAnagrafico::Nome => "nome",
            DatoAnagrafico::Sesso => "sesso",
            DatoAnagrafico::DataNascita => "data di nascita",
            DatoAnagrafico::LuogoNascita => "luogo di nascita",
        })
    }
}

/// A datum that disagrees with the codice fiscale: what the data give and what the code
/// says, both in the code's own terms (letters, `M`/`F`, `dd/mm/yy`, cadastral code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepanza {
    pub dato: DatoAnagrafico,
    /// The value computed from the data; empty when the datum cannot be coded at all (a
    /// name without letters).
    pub dai_dati: String,
    pub nel_codice: String,
}

impl Discrepanza {
    /// The ANPR code that reports this disagreement: EA042 (sex) and EA038 (birth date)
    /// from the subentro anomaly table, EN339/EN340 (birth municipality / foreign state
    /// incongruent with the CF's cadastral code, chosen by the recorded place) and ENT02
    /// ("CF incongruente con i dati anagrafici") for the names, which have no code of
    /// their own.
    pub fn codice_anpr(&self) -> &'static str {
        match self.dato {
            DatoAnagrafico::Sesso => "EA042",
            DatoAnagrafico::DataNascita => "EA038",
            DatoAnagrafico::LuogoNascita if self.dai_dati.starts_with('Z') => "EN340",
            DatoAnagrafico::LuogoNascita => "EN339",
            DatoAnagrafico::Cognome | DatoAnagrafico::Nome => "ENT02",
        }
    }
}

impl fmt::Display for Discrepanza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: dai dati {:?}, nel codice fiscale {:?}",
            self.dato, self.dai_dati, self.nel_codice
        )
    }
}

/// Says which of the five data disagree with `cf`, taking omocodia into account (the
/// code is compared in its base form, so an issued variant is coherent with its data).
///
/// Only the two-digit year is compared: the code cannot tell 1920 from 2020. A sex
/// mismatch is reported once, as sex, not also as a date mismatch (the +40 on the day is
/// how the code records sex).
pub fn coerente_con_dati(
    cf: &CodiceFiscale,
    dati: &DatiCalcolo<'_>,
) -> Result<(), Vec<Discrepanza>> {
    let mut discrepanze = Vec::new();
    let mut confronta = |dato, dai_dati: String, nel_codice: String| {
        if dai_dati != nel_codice {
            discrepanze.push(Discrepanza {
                dato,
                dai_dati,
                nel_codice,
            });
        }
    };
    let codice_dai_dati = |risultato: Result<CodiceNominativo, _>| {
        risultato.map(|c| c.to_string()).unwrap_or_default()
    };
    confronta(
        DatoAnagrafico::Cognome,
        codice_dai_dati(codice_cognome(dati.cognome)),
        cf.codice_cognome().to_owned(),
    );
    confronta(
        DatoAnagrafico::Nome,
        codice_dai_dati(codice_nome(dati.nome)),
        cf.codice_nome().to_owned(),
    );

    let caratteri = cf.caratteri();
    let valore_giorno = due_cifre(caratteri[9], caratteri[10]);
    let sesso_codice = if valore_giorno > 40 {
        Sesso::Femmina
    } else {
        Sesso::Maschio
    };
    confronta(
        DatoAnagrafico::Sesso,
        dati.sesso.code().to_owned(),
        sesso_codice.code().to_owned(),
    );

    let data = dati.data_nascita;
    let mese_codice = tabelle::mese(caratteri[8]).unwrap_or(0);
    confronta(
        DatoAnagrafico::DataNascita,
        format!(
            "{:02}/{:02}/{:02}",
            data.day(),
            data.month(),
            data.year().rem_euclid(100)
        ),
        format!(
            "{:02}/{:02}/{:02}",
            valore_giorno % 40,
            mese_codice,
            due_cifre(caratteri[6], caratteri[7])
        ),
    );
    confronta(
        DatoAnagrafico::LuogoNascita,
        dati.luogo_nascita.as_str().to_owned(),
        luogo_base(cf),
    );

    if discrepanze.is_empty() {
        Ok(())
    } else {
        Err(discrepanze)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codice_fiscale::{calcola, omocodici};

    fn data(anno: i32, mese: u32, giorno: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(anno, mese, giorno).unwrap()
    }

    fn check(cf: &str, sesso: Sesso, giorno: u8, mese: u8, yy: u8, luogo: &str, livello: u8) {
        let dati = decodifica(cf).unwrap();
        assert_eq!(dati.sesso, sesso, "{cf}");
        assert_eq!(
            (dati.giorno, dati.mese, dati.anno.yy()),
            (giorno, mese, yy),
            "{cf}"
        );
        assert_eq!(dati.luogo_nascita.as_str(), luogo, "{cf}");
        assert_eq!(dati.livello_omocodia, livello, "{cf}");
        assert_eq!(dati.codice_cognome.as_str(), &cf[0..3]);
        assert_eq!(dati.codice_nome.as_str(), &cf[3..6]);
    }

    #[test]
    fn decodes_public_examples() {
        check("RSSMRA80A01H501U", Sesso::Maschio, 1, 1, 80, "H501", 0);
        check("MRTMTT25D09F205Z", Sesso::Maschio, 9, 4, 25, "F205", 0);
        check("MLLSNT82P65Z404U", Sesso::Femmina, 25, 9, 82, "Z404", 0);
        check("VRNGNYLTDSUCPRMT", Sesso::Femmina, 28, 4, 7, "C351", 7);
        check("KKALMNVMAPLB331E", Sesso::Maschio, 30, 1, 91, "B331", 4);
        assert_eq!(
            decodifica("RSSMRA80A01H501X").map(|d| d.sesso),
            Err(verifica("RSSMRA80A01H501X").unwrap_err())
        );
    }

    #[test]
    fn both_centuries_are_candidates() {
        let dati = decodifica("MRTMTT25D09F205Z").unwrap();
        assert_eq!(dati.anno.candidati(), [1925, 2025]);
        assert_eq!(
            dati.date_candidate(),
            [Some(data(1925, 4, 9)), Some(data(2025, 4, 9))]
        );
        assert_eq!(
            dati.data_nascita_probabile(data(2026, 1, 1)),
            Some(data(2025, 4, 9))
        );
        assert_eq!(
            dati.data_nascita_probabile(data(2025, 4, 8)),
            Some(data(1925, 4, 9))
        );
        assert_eq!(dati.data_nascita_probabile(data(1925, 4, 8)), None);
        // 29 February "00" exists only in 2000.
        let persona = CodiceCatastale::try_from("H501".to_owned()).unwrap();
        let cf = calcola(&DatiCalcolo {
            cognome: "Rossi",
            nome: "Mario",
            sesso: Sesso::Maschio,
            data_nascita: data(2000, 2, 29),
            luogo_nascita: &persona,
        })
        .unwrap();
        let dati = decodifica(cf).unwrap();
        assert_eq!(dati.date_candidate(), [None, Some(data(2000, 2, 29))]);
        assert_eq!(
            dati.data_nascita_probabile(data(2100, 1, 1)),
            Some(data(2000, 2, 29))
        );
    }

    fn check_coerenza(
        cf: &str,
        cognome: &str,
        nome: &str,
        sesso: Sesso,
        nascita: NaiveDate,
        luogo: &str,
        attese: &[(DatoAnagrafico, &str)],
    ) {
        let luogo = CodiceCatastale::try_from(luogo.to_owned()).unwrap();
        let dati = DatiCalcolo {
            cognome,
            nome,
            sesso,
            data_nascita: nascita,
            luogo_nascita: &luogo,
        };
        let risultato = coerente_con_dati(&verifica(cf).unwrap(), &dati);
        let trovate: Vec<(DatoAnagrafico, &str)> = match &risultato {
            Ok(()) => Vec::new(),
            Err(discrepanze) => discrepanze
                .iter()
                .map(|d| (d.dato, d.codice_anpr()))
                .collect(),
        };
        assert_eq!(trovate, attese, "{cf}: {risultato:?}");
    }

    #[test]
    fn coherence_with_personal_data() {
        let nascita = data(1980, 1, 1);
        check_coerenza(
            "RSSMRA80A01H501U",
            "Rossi",
            "Mario",
            Sesso::Maschio,
            nascita,
            "H501",
            &[],
        );
        // A century apart is still coherent: the code cannot tell.
        check_coerenza(
            "RSSMRA80A01H501U",
            "Rossi",
            "Mario",
            Sesso::Maschio,
            data(1880, 1, 1),
            "H501",
            &[],
        );
        check_coerenza(
            "RSSMRA80A01H501U",
            "Russo",
            "Marta",
            Sesso::Femmina,
            nascita,
            "H501",
            &[
                (DatoAnagrafico::Nome, "ENT02"),
                (DatoAnagrafico::Sesso, "EA042"),
            ],
        );
        check_coerenza(
            "RSSMRA80A01H501U",
            "Bianchi",
            "Mario",
            Sesso::Maschio,
            data(1980, 1, 2),
            "Z404",
            &[
                (DatoAnagrafico::Cognome, "ENT02"),
                (DatoAnagrafico::DataNascita, "EA038"),
                (DatoAnagrafico::LuogoNascita, "EN340"),
            ],
        );
        check_coerenza(
            "RSSMRA80A01H501U",
            "",
            "Mario",
            Sesso::Maschio,
            nascita,
            "F205",
            &[
                (DatoAnagrafico::Cognome, "ENT02"),
                (DatoAnagrafico::LuogoNascita, "EN339"),
            ],
        );
        // Every issued variant is coherent with the same data.
        for variante in omocodici(&verifica("RSSMRA80A01H501U").unwrap()) {
            check_coerenza(
                variante.as_str(),
                "Rossi",
                "Mario",
                Sesso::Maschio,
                nascita,
                "H501",
                &[],
            );
        }
    }
}
