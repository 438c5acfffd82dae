//! The 16-character codice fiscale of a natural person, and its formal check.
//!
//! Layout (positions from 1): 1-3 surname letters, 4-6 name letters, 7-8 year, 9 month
//! letter, 10-11 day (+40 for women), 12-15 cadastral code of the birth place, 16 check
//! character. In an omocodic code some of the seven digits (positions 7, 8, 10, 11, 13,
//! 14, 15) are replaced by the letters LMNPQRSTUV (0 = L ... 9 = V); the check character
//! is computed over the code as written, substitutions included.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::errore::ErroreCodiceFiscale;
use super::tabelle;

/// A formally valid 16-character codice fiscale, upper-case.
///
/// Formal validity means: every position has a character of the right kind, the month
/// letter exists, the day exists in that month for at least one candidate century, the
/// place code starts with a letter cadastral codes use, and the check character matches.
/// It does not mean the tax agency issued the code, nor that the place code exists.
///
/// Omocodic forms are accepted whichever of the seven numeric positions are substituted.
/// The tax agency only issues its progressive right-to-left forms (see
/// [`omocodia_progressiva`](super::omocodia_progressiva)), but the check character already
/// protects the code as written, so refusing other combinations would add no safety and
/// would refuse codes other registries hold.
///
/// Stored as 16 ASCII bytes, so it is `Copy` and computing one allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodiceFiscale([u8; 16]);

impl CodiceFiscale {
    /// Builds a code from its first fifteen characters, appending the check character.
    /// Callers pass bytes they have checked (or computed) position by position.
    pub(super) fn da_primi_quindici(primi: [u8; 15]) -> Self {
        let mut codice = [0u8; 16];
        codice[..15].copy_from_slice(&primi);
        codice[15] = tabelle::carattere_controllo(&primi);
        Self(codice)
    }

    pub(super) fn caratteri(&self) -> &[u8; 16] {
        &self.0
    }

    /// The first fifteen characters, for rebuilding a variant of this code.
    pub(super) fn primi_quindici(&self) -> [u8; 15] {
        let mut primi = [0u8; 15];
        primi.copy_from_slice(&self.0[..15]);
        primi
    }

    pub fn as_str(&self) -> &str {
        // The bytes are ASCII letters and digits by construction, so this never fails;
        // the empty fallback only keeps the function total.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The three letters taken from the surname (positions 1-3).
    pub fn codice_cognome(&self) -> &str {
        self.as_str().get(0..3).unwrap_or_default()
    }

    /// The three letters taken from the name (positions 4-6).
    pub fn codice_nome(&self) -> &str {
        self.as_str().get(3..6).unwrap_or_default()
    }

    /// The check character (position 16).
    pub fn carattere_controllo(&self) -> char {
        char::from(self.0[15])
    }
}

/// What each position (zero-based) must hold, for error messages.
fn atteso(indice: usize) -> &'static str {
    match indice {
        0..=5 => "una lettera (cognome e nome)",
        8 => "una lettera (mese)",
        11 => "una lettera (luogo di nascita)",
        15 => "una lettera (carattere di controllo)",
        _ => "una cifra o una lettera di omocodia",
    }
}

/// Checks a 16-character codice fiscale and returns it in canonical (upper-case) form.
///
/// Lower-case letters are accepted, as the XSD type `tipoDominioCodiceFiscale` admits
/// them; blanks are not trimmed (the edges trim what they receive). Checks run left to
/// right, structure first (length, then each position), then the date, then the check
/// character, and the first failure is reported: a wrong check character therefore means
/// the code is well-formed but mistyped somewhere.
pub fn verifica(input: &str) -> Result<CodiceFiscale, ErroreCodiceFiscale> {
    let lunghezza = input.chars().count();
    if lunghezza != 16 {
        return Err(ErroreCodiceFiscale::LunghezzaErrata {
            trovata: lunghezza,
            attesa: "16",
        });
    }
    let mut codice = [0u8; 16];
    for (indice, carattere) in input.chars().enumerate() {
        let posizione = indice + 1;
        let maiuscolo = carattere.to_ascii_uppercase();
        let byte = match u8::try_from(maiuscolo) {
            Ok(byte) if byte.is_ascii_alphanumeric() => byte,
            _ => {
                return Err(ErroreCodiceFiscale::CarattereNonValido {
                    posizione,
                    carattere,
                    atteso: atteso(indice),
                })
            }
        };
        if tabelle::POSIZIONI_OMOCODIA.contains(&indice) {
            if byte.is_ascii_alphabetic() && tabelle::cifra(byte).is_none() {
                return Err(ErroreCodiceFiscale::SostituzioneOmocodiaNonValida {
                    posizione,
                    carattere,
                });
            }
        } else if !byte.is_ascii_alphabetic() {
            return Err(ErroreCodiceFiscale::CarattereNonValido {
                posizione,
                carattere,
                atteso: atteso(indice),
            });
        }
        codice[indice] = byte;
    }

    let mese = tabelle::mese(codice[8]).ok_or(ErroreCodiceFiscale::MeseNonValido {
        carattere: char::from(codice[8]),
    })?;
    if !tabelle::lettera_luogo_ammessa(codice[11]) {
        let luogo = CodiceFiscale(codice);
        return Err(ErroreCodiceFiscale::LuogoNonValido {
            codice: luogo_base(&luogo),
        });
    }
    let anno_due_cifre = due_cifre(codice[6], codice[7]);
    let valore_giorno = due_cifre(codice[9], codice[10]);
    let giorno = match valore_giorno {
        1..=31 => valore_giorno,
        41..=71 => valore_giorno - 40,
        _ => {
            return Err(ErroreCodiceFiscale::GiornoNonValido {
                valore: valore_giorno,
            })
        }
    };
    if giorno > tabelle::giorni_del_mese(mese, anno_due_cifre) {
        return Err(ErroreCodiceFiscale::DataInesistente {
            giorno,
            mese,
            anno_due_cifre,
        });
    }

    let atteso = tabelle::carattere_controllo(&codice[..15]);
    if atteso != codice[15] {
        return Err(ErroreCodiceFiscale::CarattereControlloErrato {
            atteso: char::from(atteso),
            trovato: char::from(codice[15]),
        });
    }
    Ok(CodiceFiscale(codice))
}

/// The number written by two numeric positions, omocodic letters read as their digits.
pub(super) fn due_cifre(decine: u8, unita: u8) -> u8 {
    tabelle::cifra(decine).unwrap_or(0) * 10 + tabelle::cifra(unita).unwrap_or(0)
}

/// The birth place code with omocodic letters turned back into digits.
pub(super) fn luogo_base(codice: &CodiceFiscale) -> String {
    let caratteri = codice.caratteri();
    let mut luogo = String::with_capacity(4);
    luogo.push(char::from(caratteri[11]));
    for &carattere in &caratteri[12..15] {
        luogo.push(char::from(b'0' + tabelle::cifra(carattere).unwrap_or(0)));
    }
    luogo
}

impl FromStr for CodiceFiscale {
    type Err = ErroreCodiceFiscale;
    fn from_str(s: &str) -> Result<Self, ErroreCodiceFiscale> {
        verifica(s)
    }
}

impl TryFrom<String> for CodiceFiscale {
    type Error = ErroreCodiceFiscale;
    fn try_from(value: String) -> Result<Self, ErroreCodiceFiscale> {
        verifica(&value)
    }
}

impl From<CodiceFiscale> for String {
    fn from(value: CodiceFiscale) -> String {
        value.as_str().to_owned()
    }
}

impl AsRef<str> for CodiceFiscale {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodiceFiscale")
            .field(&self.as_str())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(canonical)` or `Err(code)` expected for each input.
    fn check(input: &str, atteso: Result<&str, &str>) {
        let ottenuto = verifica(input);
        match (&ottenuto, atteso) {
            (Ok(codice), Ok(forma)) => assert_eq!(codice.as_str(), forma, "{input:?}"),
            (Err(errore), Err(code)) => assert_eq!(errore.code(), code, "{input:?}: {errore}"),
            _ => panic!("{input:?}: expected {atteso:?}, got {ottenuto:?}"),
        }
    }

    #[test]
    fn accepts_valid_codes() {
        check("RSSMRA80A01H501U", Ok("RSSMRA80A01H501U"));
        check("rssmra80a01h501u", Ok("RSSMRA80A01H501U"));
        check("MLLSNT82P65Z404U", Ok("MLLSNT82P65Z404U"));
        // Omocodic forms, progressive and not.
        check("VRNGNY07D68C35MN", Ok("VRNGNY07D68C35MN"));
        check("VRNGNYLTDSUCPRMT", Ok("VRNGNYLTDSUCPRMT"));
        check("VRNGNY0TD68C351H", Ok("VRNGNY0TD68C351H"));
    }

    #[test]
    fn rejects_with_a_precise_reason() {
        check("", Err("EA001"));
        check("RSSMRA80A01H501", Err("EA001"));
        check("RSSMRA80A01H501UU", Err("EA001"));
        check("12345678901", Err("EA001"));
        check("RSSMRA80A01H501 ", Err("CF-CARATTERE"));
        check(" RSSMRA80A01H501", Err("CF-CARATTERE"));
        check("RSSMRÀ80A01H501U", Err("CF-CARATTERE"));
        check("RSSMR180A01H501U", Err("CF-CARATTERE"));
        check("RSSMRA80101H501U", Err("CF-CARATTERE"));
        check("RSSMRA80A011501U", Err("CF-CARATTERE"));
        check("RSSMRA80A01H5011", Err("CF-CARATTERE"));
        check("RSSMRA8AA01H501U", Err("CF-OMOCODIA"));
        check("RSSMRA80A01H50KU", Err("CF-OMOCODIA"));
        check("RSSMRA80F01H501U", Err("CF-MESE"));
        check("RSSMRA80A00H501U", Err("CF-GIORNO"));
        check("RSSMRA80A32H501U", Err("CF-GIORNO"));
        check("RSSMRA80A40H501U", Err("CF-GIORNO"));
        check("RSSMRA80A72H501U", Err("CF-GIORNO"));
        check("RSSMRA80D31H501U", Err("CF-DATA"));
        check("RSSMRA81B29H501U", Err("CF-DATA"));
        check("RSSMRA81B69H501U", Err("CF-DATA"));
        check("RSSMRA80A01N501U", Err("CF-LUOGO"));
        check("RSSMRA80A01H501X", Err("CF-CONTROLLO"));
    }

    #[test]
    fn errors_carry_details() {
        assert_eq!(
            verifica("RSSMRA80A01H501X"),
            Err(ErroreCodiceFiscale::CarattereControlloErrato {
                atteso: 'U',
                trovato: 'X'
            })
        );
        assert_eq!(
            verifica("RSSMRA80A01H5#1U"),
            Err(ErroreCodiceFiscale::CarattereNonValido {
                posizione: 14,
                carattere: '#',
                atteso: "una cifra o una lettera di omocodia"
            })
        );
        assert_eq!(
            verifica("RSSMRÀ"),
            Err(ErroreCodiceFiscale::LunghezzaErrata {
                trovata: 6,
                attesa: "16"
            })
        );
        assert_eq!(
            verifica("RSSMRA80A01Y5P1U"),
            Err(ErroreCodiceFiscale::LuogoNonValido {
                codice: "Y531".to_owned()
            })
        );
        // 29 February exists in years ending in 00 (2000 was a leap year).
        assert!(verifica("RSSMRA00B29H501U").is_err_and(|e| e.code() == "CF-CONTROLLO"));
    }

    #[test]
    fn serde_round_trip_and_accessors() {
        let codice = verifica("RSSMRA80A01H501U").unwrap();
        let json = serde_json::to_string(&codice).unwrap();
        assert_eq!(json, "\"RSSMRA80A01H501U\"");
        assert_eq!(
            serde_json::from_str::<CodiceFiscale>(&json).unwrap(),
            codice
        );
        assert!(serde_json::from_str::<CodiceFiscale>("\"RSSMRA80A01H501X\"").is_err());
        assert_eq!(codice.codice_cognome(), "RSS");
        assert_eq!(codice.codice_nome(), "MRA");
        assert_eq!(codice.carattere_controllo(), 'U');
        assert_eq!(format!("{codice}"), "RSSMRA80A01H501U");
        assert_eq!(format!("{codice:?}"), "CodiceFiscale(\"RSSMRA80A01H501U\")");
    }
}
