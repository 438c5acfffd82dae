//! The numeric provisional codice fiscale, and the codice fiscale a subject record holds.
//!
//! The tax agency gives an 11-digit numeric code (*codice fiscale numerico provvisorio*)
//! to a person whose data are not yet complete enough for the 16-character code, e.g.
//! some foreigners; it has the same format as a *partita IVA*: ten digits and a Luhn-like
//! check digit. ANPR keeps such codes on records until they are replaced, so a record's
//! code is a [`CodiceFiscaleSoggetto`]: either form, told apart by length.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::codice::{verifica, CodiceFiscale};
use super::errore::ErroreCodiceFiscale;

/// A formally valid 11-digit numeric provisional codice fiscale.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodiceFiscaleProvvisorio([u8; 11]);

impl CodiceFiscaleProvvisorio {
    pub fn as_str(&self) -> &str {
        // ASCII digits by construction; the fallback only keeps this total.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The check digit of the first ten digits (the *partita IVA* algorithm): digits in odd
/// positions (from 1) are added as they are; digits in even positions are doubled, minus
/// 9 when the double exceeds 9; the check digit brings the total to a multiple of ten.
fn cifra_controllo(prime_dieci: &[u8]) -> u8 {
    let somma: u32 = prime_dieci
        .iter()
        .take(10)
        .enumerate()
        .map(|(indice, &carattere)| {
            let cifra = u32::from(carattere - b'0');
            if indice % 2 == 0 {
                cifra
            } else if cifra * 2 > 9 {
                cifra * 2 - 9
            } else {
                cifra * 2
            }
        })
        .sum();
    // The value is a single digit, so the cast cannot truncate.
    b'0' + ((10 - somma % 10) % 10) as u8
}

/// Checks an 11-digit numeric provisional codice fiscale.
pub fn verifica_provvisorio(input: &str) -> Result<CodiceFiscaleProvvisorio, ErroreCodiceFiscale> {
    let lunghezza = input.chars().count();
    if lunghezza != 11 {
        return Err(ErroreCodiceFiscale::LunghezzaErrata {
            trovata: lunghezza,
            attesa: "11",
        });
    }
    let mut codice = [0u8; 11];
    for (indice, carattere) in input.chars().enumerate() {
        match u8::try_from(carattere) {
            Ok(byte) if byte.is_ascii_digit() => codice[indice] = byte,
            _ => {
                return Err(ErroreCodiceFiscale::CarattereNonValido {
                    posizione: indice + 1,
                    carattere,
                    atteso: "una cifra (codice fiscale numerico)",
                })
            }
        }
    }
    if codice.iter().all(|&cifra| cifra == b'0') {
        return Err(ErroreCodiceFiscale::CodiceNumericoNullo);
    }
    let attesa = cifra_controllo(&codice[..10]);
    if attesa != codice[10] {
        return Err(ErroreCodiceFiscale::CifraControlloErrata {
            attesa: char::from(attesa),
            trovata: char::from(codice[10]),
        });
    }
    Ok(CodiceFiscaleProvvisorio(codice))
}

impl FromStr for CodiceFiscaleProvvisorio {
    type Err = ErroreCodiceFiscale;
    fn from_str(s: &str) -> Result<Self, ErroreCodiceFiscale> {
        verifica_provvisorio(s)
    }
}

impl TryFrom<String> for CodiceFiscaleProvvisorio {
    type Error = ErroreCodiceFiscale;
    fn try_from(value: String) -> Result<Self, ErroreCodiceFiscale> {
        verifica_provvisorio(&value)
    }
}

impl From<CodiceFiscaleProvvisorio> for String {
    fn from(value: CodiceFiscaleProvvisorio) -> String {
        value.as_str().to_owned()
    }
}

impl fmt::Display for CodiceFiscaleProvvisorio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CodiceFiscaleProvvisorio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodiceFiscaleProvvisorio")
            .field(&self.as_str())
            .finish()
    }
}

/// The codice fiscale a subject's record holds: the ordinary 16-character code or the
/// numeric provisional one. Serialises as the bare string; parsing picks the form by
/// length (16 or 11), and any other length is EA001.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CodiceFiscaleSoggetto {
    Ordinario(CodiceFiscale),
    Provvisorio(CodiceFiscaleProvvisorio),
}

impl CodiceFiscaleSoggetto {
    pub fn as_str(&self) -> &str {
        match self {
            CodiceFiscaleSoggetto::Ordinario(codice) => codice.as_str(),
            CodiceFiscaleSoggetto::Provvisorio(codice) => codice.as_str(),
        }
    }

    /// The ordinary code, if this is one (the only form that can be decoded).
    pub fn ordinario(&self) -> Option<&CodiceFiscale> {
        match self {
            CodiceFiscaleSoggetto::Ordinario(codice) => Some(codice),
            CodiceFiscaleSoggetto::Provvisorio(_) => None,
        }
    }
}

impl FromStr for CodiceFiscaleSoggetto {
    type Err = ErroreCodiceFiscale;
    fn from_str(s: &str) -> Result<Self, ErroreCodiceFiscale> {
        match s.chars().count() {
            16 => verifica(s).map(CodiceFiscaleSoggetto::Ordinario),
            11 => verifica_provvisorio(s).map(CodiceFiscaleSoggetto::Provvisorio),
            trovata => Err(ErroreCodiceFiscale::LunghezzaErrata {
                trovata,
                attesa: "16 o 11",
            }),
        }
    }
}

impl TryFrom<String> for CodiceFiscaleSoggetto {
    type Error = ErroreCodiceFiscale;
    fn try_from(value: String) -> Result<Self, ErroreCodiceFiscale> {
        value.parse()
    }
}

impl From<CodiceFiscaleSoggetto> for String {
    fn from(value: CodiceFiscaleSoggetto) -> String {
        value.as_str().to_owned()
    }
}

impl From<CodiceFiscale> for CodiceFiscaleSoggetto {
    fn from(value: CodiceFiscale) -> Self {
        CodiceFiscaleSoggetto::Ordinario(value)
    }
}

impl From<CodiceFiscaleProvvisorio> for CodiceFiscaleSoggetto {
    fn from(value: CodiceFiscaleProvvisorio) -> Self {
        CodiceFiscaleSoggetto::Provvisorio(value)
    }
}

impl fmt::Display for CodiceFiscaleSoggetto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, atteso: Result<&str, &str>) {
        let ottenuto = input.parse::<CodiceFiscaleSoggetto>();
        match (&ottenuto, atteso) {
            (Ok(codice), Ok(forma)) => assert_eq!(codice.as_str(), forma, "{input:?}"),
            (Err(errore), Err(code)) => assert_eq!(errore.code(), code, "{input:?}: {errore}"),
            _ => panic!("{input:?}: expected {atteso:?}, got {ottenuto:?}"),
        }
    }

    #[test]
    fn numeric_codes() {
        // Odd positions 0+2+4+6+8 = 20; even positions doubled 2+6+1+5+9 = 23; 43 -> 7.
        check("01234567897", Ok("01234567897"));
        check("01234567890", Err("CF-CONTROLLO-NUMERICO"));
        // The tax agency's own number, same format.
        check("06363391001", Ok("06363391001"));
        // Every even-position digit doubled past 9: 9 -> 18 -> 9.
        check("09090909090", Err("CF-CONTROLLO-NUMERICO"));
        check("09090909095", Ok("09090909095"));
        check("00000000000", Err("CF-NUMERICO-NULLO"));
        check("0123456789A", Err("CF-CARATTERE"));
        check("rssmra80a01h501u", Ok("RSSMRA80A01H501U"));
        check("0123456789", Err("EA001"));
        check("", Err("EA001"));
        assert_eq!(
            verifica_provvisorio("01234567891"),
            Err(ErroreCodiceFiscale::CifraControlloErrata {
                attesa: '7',
                trovata: '1'
            })
        );
    }

    #[test]
    fn serde_and_forms() {
        let provvisorio: CodiceFiscaleSoggetto = serde_json::from_str("\"01234567897\"").unwrap();
        assert!(provvisorio.ordinario().is_none());
        assert!(matches!(provvisorio, CodiceFiscaleSoggetto::Provvisorio(_)));
        assert_eq!(
            serde_json::to_string(&provvisorio).unwrap(),
            "\"01234567897\""
        );
        let ordinario: CodiceFiscaleSoggetto =
            serde_json::from_str("\"RSSMRA80A01H501U\"").unwrap();
        assert_eq!(
            ordinario.ordinario().map(|c| c.as_str()),
            Some("RSSMRA80A01H501U")
        );
        assert!(serde_json::from_str::<CodiceFiscaleSoggetto>("\"01234567891\"").is_err());
    }
}
