//! Why a codice fiscale was refused or could not be computed.
//!
//! Each variant has a stable `code()`. The only ANPR code that names one precise formal
//! defect is EA001 ("Codice fiscale di lunghezza errata"), so the length error uses it; the
//! other defects get our own `CF-...` codes, which say exactly what is wrong (an operator
//! can fix "wrong check character" at once, not a generic "malformed"). `codice_anpr()` then
//! gives the ANPR anomaly each defect falls under, for the places (subentro anomaly lists,
//! SOAP faults) where only ANPR's vocabulary may appear:
//!
//! | variant | `code()` | `codice_anpr()` |
//! |---|---|---|
//! | `LunghezzaErrata` | `EA001` | `EA001` |
//! | `CarattereNonValido` | `CF-CARATTERE` | `EA048` |
//! | `SostituzioneOmocodiaNonValida` | `CF-OMOCODIA` | `EA048` |
//! | `MeseNonValido` | `CF-MESE` | `EA048` |
//! | `GiornoNonValido` | `CF-GIORNO` | `EA048` |
//! | `DataInesistente` | `CF-DATA` | `EA048` |
//! | `LuogoNonValido` | `CF-LUOGO` | `EA048` |
//! | `CarattereControlloErrato` | `CF-CONTROLLO` | `EA048` |
//! | `CifraControlloErrata` | `CF-CONTROLLO-NUMERICO` | `EA048` |
//! | `CodiceNumericoNullo` | `CF-NUMERICO-NULLO` | `EA048` |
//! | `NessunaLettera` | `CF-SENZA-LETTERE` | none |
//! | `CarattereNonTraslitterabile` | `CF-NON-TRASLITTERABILE` | none |
//!
//! EA048 is "Codice fiscale formalmente errato" in the subentro anomaly table
//! (`docs/subentro/tabella_anomalie.rst`, procedure 001). Beware: the merged `errors.csv`
//! gives EA048 the text of the tax agency's sheet ("Residenza non congruente con Agenzia
//! delle Entrate") and keeps the anomaly-table text only as `text_variant`; we follow the
//! anomaly table, which is the document that lists it among CF errors. The two calculation
//! errors describe the *personal data*, not a code, so no ANPR code fits them.

use std::fmt;

/// Which name a calculation error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampoNominativo {
    Cognome,
    Nome,
}

impl fmt::Display for CampoNominativo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CampoNominativo::Cognome => "cognome",
            CampoNominativo::Nome => "nome",
        })
    }
}

/// A refused codice fiscale, or personal data from which none can be computed.
///
/// Positions are counted from 1, as the tax agency's documents count them. Messages are in
/// Italian because they are shown to registry operators as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErroreCodiceFiscale {
    /// Not 16 characters (11 for the numeric provisional code).
    #[error("codice fiscale di lunghezza errata: {trovata} caratteri, attesi {attesa}")]
    LunghezzaErrata {
        trovata: usize,
        attesa: &'static str,
    },

    /// A character that cannot appear at that position.
    #[error("carattere {carattere:?} non valido in posizione {posizione}: atteso {atteso}")]
    CarattereNonValido {
        posizione: usize,
        carattere: char,
        atteso: &'static str,
    },

    /// A letter in a numeric position that is not one of the omocodia letters LMNPQRSTUV.
    #[error(
        "carattere {carattere:?} in posizione {posizione}: attesa una cifra o una lettera \
         di omocodia (LMNPQRSTUV)"
    )]
    SostituzioneOmocodiaNonValida { posizione: usize, carattere: char },

    /// The 9th character is a letter but no month has it.
    #[error("lettera del mese {carattere:?} non valida: attesa una tra ABCDEHLMPRST")]
    MeseNonValido { carattere: char },

    /// Day field outside 01..=31 (men) and 41..=71 (women).
    #[error("giorno {valore:02} non valido: atteso 01-31 (maschi) o 41-71 (femmine)")]
    GiornoNonValido { valore: u8 },

    /// A day that the month does not have (31 April, 29 February of a year that is not a
    /// leap year in either candidate century).
    #[error(
        "data di nascita inesistente: giorno {giorno} del mese {mese} \
         dell'anno ..{anno_due_cifre:02}"
    )]
    DataInesistente {
        giorno: u8,
        mese: u8,
        anno_due_cifre: u8,
    },

    /// A place code that no cadastral code can be (first letter outside A..M and Z).
    #[error(
        "codice del luogo di nascita {codice:?} non valido: \
         atteso A000-M999 (comune) o Z000-Z999 (stato estero)"
    )]
    LuogoNonValido { codice: String },

    /// The 16th character does not match the first fifteen.
    #[error("carattere di controllo errato: atteso {atteso:?}, trovato {trovato:?}")]
    CarattereControlloErrato { atteso: char, trovato: char },

    /// The 11th digit of a numeric provisional code does not match the first ten.
    #[error("cifra di controllo errata: attesa {attesa:?}, trovata {trovata:?}")]
    CifraControlloErrata { attesa: char, trovata: char },

    /// `00000000000`: it passes the check digit, but it is the placeholder legacy systems
    /// use for "unknown", never a code the tax agency issued.
    #[error("codice fiscale numerico nullo (00000000000)")]
    CodiceNumericoNullo,

    /// A name without any letter, so no code letters can be taken from it.
    #[error("il {campo} non contiene lettere: impossibile calcolare il codice fiscale")]
    NessunaLettera { campo: CampoNominativo },

    /// A letter outside the Latin alphabet, which the code cannot represent: the name must
    /// be transliterated first.
    #[error(
        "il {campo} contiene la lettera {carattere:?}, che non ha una traslitterazione latina"
    )]
    CarattereNonTraslitterabile {
        campo: CampoNominativo,
        carattere: char,
    },
}

impl ErroreCodiceFiscale {
    /// Stable code of the error (see the module documentation for the list).
    pub fn code(&self) -> &'static str {
        match self {
            ErroreCodiceFiscale::LunghezzaErrata { .. } => "EA001",
            ErroreCodiceFiscale::CarattereNonValido { .. } => "CF-CARATTERE",
            ErroreCodiceFiscale::SostituzioneOmocodiaNonValida { .. } => "CF-OMOCODIA",
            ErroreCodiceFiscale::MeseNonValido { .. } => "CF-MESE",
            ErroreCodiceFiscale::GiornoNonValido { .. } => "CF-GIORNO",
            ErroreCodiceFiscale::DataInesistente { .. } => "CF-DATA",
            ErroreCodiceFiscale::LuogoNonValido { .. } => "CF-LUOGO",
            ErroreCodiceFiscale::CarattereControlloErrato { .. } => "CF-CONTROLLO",
            ErroreCodiceFiscale::CifraControlloErrata { .. } => "CF-CONTROLLO-NUMERICO",
            ErroreCodiceFiscale::CodiceNumericoNullo => "CF-NUMERICO-NULLO",
            ErroreCodiceFiscale::NessunaLettera { .. } => "CF-SENZA-LETTERE",
            ErroreCodiceFiscale::CarattereNonTraslitterabile { .. } => "CF-NON-TRASLITTERABILE",
        }
    }

    /// The ANPR anomaly code this error falls under, when there is one.
    pub fn codice_anpr(&self) -> Option<&'static str> {
        match self {
            ErroreCodiceFiscale::LunghezzaErrata { .. } => Some("EA001"),
            ErroreCodiceFiscale::NessunaLettera { .. }
            | ErroreCodiceFiscale::CarattereNonTraslitterabile { .. } => None,
            _ => Some("EA048"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(errore: ErroreCodiceFiscale, code: &str, anpr: Option<&str>, testo: &str) {
        assert_eq!(errore.code(), code);
        assert_eq!(errore.codice_anpr(), anpr);
        assert!(
            errore.to_string().contains(testo),
            "{errore} should mention {testo:?}"
        );
    }

    #[test]
    fn codes_and_messages() {
        check(
            ErroreCodiceFiscale::LunghezzaErrata {
                trovata: 15,
                attesa: "16",
            },
            "EA001",
            Some("EA001"),
            "15 caratteri, attesi 16",
        );
        check(
            ErroreCodiceFiscale::CarattereControlloErrato {
                atteso: 'U',
                trovato: 'X',
            },
            "CF-CONTROLLO",
            Some("EA048"),
            "atteso 'U', trovato 'X'",
        );
        check(
            ErroreCodiceFiscale::NessunaLettera {
                campo: CampoNominativo::Nome,
            },
            "CF-SENZA-LETTERE",
            None,
            "il nome non contiene lettere",
        );
        check(
            ErroreCodiceFiscale::GiornoNonValido { valore: 5 },
            "CF-GIORNO",
            Some("EA048"),
            "giorno 05",
        );
    }
}
