//! Computing the codice fiscale from personal data (D.M. 23 dicembre 1976, annex).
//!
//! The registry stores names exactly as written; only this computation folds them. Each
//! character is decomposed (NFD) and its combining marks dropped, so `À` counts as `A`
//! and `Ç` as `C`; Latin letters that do not decompose (`Æ`, `Ø`, `ß`, `Ł`, ...) are
//! spelled with their usual Latin transliteration (see [`traslitterazione`]). Everything
//! that is not a letter (apostrophes, spaces, hyphens, dots, digits) is ignored, as the
//! tax agency ignores it: `D'Angelo` and `De Luca` are read `DANGELO` and `DELUCA`. A
//! letter of another script (Greek, Cyrillic, ...) is an error rather than being skipped,
//! because skipping it would silently compute somebody else's code.
//!
//! The computation allocates nothing: letters are streamed into fixed-size buffers.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

use super::codice::CodiceFiscale;
use super::errore::{CampoNominativo, ErroreCodiceFiscale};
use super::tabelle;
use crate::ids::{CodiceCatastale, Sesso};

/// The five personal data the code is computed from (borrowed: computing a code should not
/// force the caller to copy the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatiCalcolo<'a> {
    /// Surname as recorded (for married women, the maiden name).
    pub cognome: &'a str,
    /// All given names as recorded, e.g. `"Maria Grazia"`.
    pub nome: &'a str,
    pub sesso: Sesso,
    pub data_nascita: NaiveDate,
    /// Cadastral code of the municipality or foreign state of birth.
    pub luogo_nascita: &'a CodiceCatastale,
}

/// The three letters a surname or name contributes to the code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodiceNominativo([u8; 3]);

impl CodiceNominativo {
    pub fn as_str(&self) -> &str {
        // Upper-case ASCII letters by construction; the fallback only keeps this total.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(super) fn lettere(&self) -> [u8; 3] {
        self.0
    }

    /// The letters of a codice fiscale at `inizio..inizio + 3`.
    pub(super) fn da_codice(codice: &CodiceFiscale, inizio: usize) -> Self {
        let caratteri = codice.caratteri();
        Self([
            caratteri[inizio],
            caratteri[inizio + 1],
            caratteri[inizio + 2],
        ])
    }
}

impl fmt::Display for CodiceNominativo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CodiceNominativo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodiceNominativo")
            .field(&self.as_str())
            .finish()
    }
}

/// Computes the (base, non-omocodic) codice fiscale of a person.
///
/// Fails only when a name has no letter or a letter of a non-Latin script, or when the
/// place code starts with a letter no cadastral code uses (see
/// [`ErroreCodiceFiscale::LuogoNonValido`]). Only the last two digits of the year enter
/// the code, so any year is accepted.
pub fn calcola(dati: &DatiCalcolo<'_>) -> Result<CodiceFiscale, ErroreCodiceFiscale> {
    let cognome = codice_cognome(dati.cognome)?;
    let nome = codice_nome(dati.nome)?;
    let luogo = dati.luogo_nascita.as_str().as_bytes();
    if luogo.len() != 4 || !tabelle::lettera_luogo_ammessa(luogo[0]) {
        return Err(ErroreCodiceFiscale::LuogoNonValido {
            codice: dati.luogo_nascita.as_str().to_owned(),
        });
    }
    let data = dati.data_nascita;
    // `rem_euclid(100)` is in 0..100 and `day()` in 1..=31, so both fit a byte.
    let anno = u8::try_from(data.year().rem_euclid(100)).unwrap_or(0);
    let giorno = u8::try_from(data.day()).unwrap_or(0)
        + match dati.sesso {
            Sesso::Maschio => 0,
            Sesso::Femmina => 40,
        };
    let mese = tabelle::lettera_mese(data.month()).unwrap_or(b'A');

    let [c1, c2, c3] = cognome.lettere();
    let [n1, n2, n3] = nome.lettere();
    let primi = [
        c1,
        c2,
        c3,
        n1,
        n2,
        n3,
        b'0' + anno / 10,
        b'0' + anno % 10,
        mese,
        b'0' + giorno / 10,
        b'0' + giorno % 10,
        luogo[0],
        luogo[1],
        luogo[2],
        luogo[3],
    ];
    Ok(CodiceFiscale::da_primi_quindici(primi))
}

/// The three surname letters: consonants in order, then vowels in order, then `X`.
pub fn codice_cognome(cognome: &str) -> Result<CodiceNominativo, ErroreCodiceFiscale> {
    let lettere = Lettere::raccogli(cognome, CampoNominativo::Cognome)?;
    Ok(lettere.componi(lettere.consonanti_iniziali()))
}

/// The three name letters: as for the surname, except that a name with four or more
/// consonants gives its 1st, 3rd and 4th consonant.
pub fn codice_nome(nome: &str) -> Result<CodiceNominativo, ErroreCodiceFiscale> {
    let lettere = Lettere::raccogli(nome, CampoNominativo::Nome)?;
    if lettere.numero_consonanti >= 4 {
        let c = lettere.consonanti;
        Ok(CodiceNominativo([c[0], c[2], c[3]]))
    } else {
        Ok(lettere.componi(lettere.consonanti_iniziali()))
    }
}

/// The letters of a name that matter for the code: the first four consonants and the
/// first three vowels, plus how many consonants there are (counting stops at four).
struct Lettere {
    consonanti: [u8; 4],
    numero_consonanti: usize,
    vocali: [u8; 3],
    numero_vocali: usize,
}

impl Lettere {
    fn raccogli(testo: &str, campo: CampoNominativo) -> Result<Self, ErroreCodiceFiscale> {
        let mut lettere = Lettere {
            consonanti: [0; 4],
            numero_consonanti: 0,
            vocali: [0; 3],
            numero_vocali: 0,
        };
        let mut aggiungi = |lettera: u8| {
            if matches!(lettera, b'A' | b'E' | b'I' | b'O' | b'U') {
                if lettere.numero_vocali < 3 {
                    lettere.vocali[lettere.numero_vocali] = lettera;
                    lettere.numero_vocali += 1;
                }
            } else if lettere.numero_consonanti < 4 {
                lettere.consonanti[lettere.numero_consonanti] = lettera;
                lettere.numero_consonanti += 1;
            }
        };
        for carattere in testo.chars() {
            let mut non_latina = None;
            decompose_canonical(carattere, |parte| {
                if is_combining_mark(parte) {
                    return;
                }
                if parte.is_ascii_alphabetic() {
                    // An ASCII letter, so the conversion is exact.
                    aggiungi(parte.to_ascii_uppercase() as u8);
                } else if let Some(latine) = traslitterazione(parte) {
                    latine.bytes().for_each(&mut aggiungi);
                } else if parte.is_alphabetic() && !lettera_modificatrice(parte) {
                    non_latina.get_or_insert(parte);
                }
            });
            if let Some(carattere) = non_latina {
                return Err(ErroreCodiceFiscale::CarattereNonTraslitterabile { campo, carattere });
            }
        }
        if lettere.numero_consonanti == 0 && lettere.numero_vocali == 0 {
            return Err(ErroreCodiceFiscale::NessunaLettera { campo });
        }
        Ok(lettere)
    }

    /// The first three consonants (or fewer, if the name has fewer).
    fn consonanti_iniziali(&self) -> &[u8] {
        &self.consonanti[..self.numero_consonanti.min(3)]
    }

    /// `consonanti`, then the vowels, then `X` padding, cut to three letters.
    fn componi(&self, consonanti: &[u8]) -> CodiceNominativo {
        let mut codice = [b'X'; 3];
        let sequenza = consonanti.iter().chain(&self.vocali[..self.numero_vocali]);
        for (posto, &lettera) in codice.iter_mut().zip(sequenza) {
            *posto = lettera;
        }
        CodiceNominativo(codice)
    }
}

/// Upper-case Latin spelling of the Latin letters that have no canonical decomposition.
///
/// The ANPR name type (`alfabeticoNomiCognomi`) admits Latin-1 and Latin Extended-A, so
/// these letters do reach the registry. The decree predates them and the tax agency
/// publishes no table; the spellings below are the conventional transliterations, the
/// same the widely used `unidecode` tables give (the cross-check against an independent
/// implementation in `tests/cf_crosscheck.rs` relies on that).
pub fn traslitterazione(lettera: char) -> Option<&'static str> {
    Some(match lettera {
        'Æ' | 'æ' => "AE",
        'Œ' | 'œ' => "OE",
        'Ø' | 'ø' => "O",
        'ß' | 'ẞ' => "SS",
        'Þ' | 'þ' => "TH",
        'Ð' | 'ð' | 'Đ' | 'đ' | 'Ɖ' | 'ɖ' => "D",
        'Ħ' | 'ħ' => "H",
        'ı' => "I",
        'Ĳ' | 'ĳ' => "IJ",
        'ĸ' => "K",
        'Ŀ' | 'ŀ' | 'Ł' | 'ł' => "L",
        'ŉ' => "N",
        'Ŋ' | 'ŋ' => "NG",
        'Ŧ' | 'ŧ' => "T",
        'ſ' => "S",
        _ => return None,
    })
}

/// Spacing modifier letters (U+02B0..U+02FF) are letters to Unicode but punctuation to
/// people: `ʼ` (U+02BC) is how many keyboards type the apostrophe of `D'Angelo`.
fn lettera_modificatrice(carattere: char) -> bool {
    ('\u{02B0}'..='\u{02FF}').contains(&carattere)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cognome(cognome: &str, atteso: &str) {
        assert_eq!(
            codice_cognome(cognome).map(|c| c.to_string()),
            Ok(atteso.to_owned()),
            "surname {cognome:?}"
        );
    }

    fn check_nome(nome: &str, atteso: &str) {
        assert_eq!(
            codice_nome(nome).map(|c| c.to_string()),
            Ok(atteso.to_owned()),
            "name {nome:?}"
        );
    }

    #[test]
    fn surname_letters() {
        // Examples from public explanations of the algorithm.
        check_cognome("Rossi", "RSS");
        check_cognome("Riva", "RVI");
        check_cognome("Re", "REX");
        check_cognome("Giordano", "GRD");
        check_cognome("Rosi", "RSO");
        check_cognome("Fo", "FOX");
        check_cognome("Reno", "RNE");
        check_cognome("Di Reno", "DRN");
        check_cognome("Goia", "GOI");
        check_cognome("D'Aieie", "DAI");
        check_cognome("Aieie", "AIE");
        check_cognome("Olè", "LOE");
        check_cognome("Içi", "CII");
        // Separators and case do not matter; diacritics fold.
        check_cognome("D'Angelo", "DNG");
        check_cognome("d’angelo", "DNG");
        check_cognome("DʼAngelo", "DNG");
        check_cognome("De Luca", "DLC");
        check_cognome("Dell'Acqua-Bianchi", "DLL");
        check_cognome("Niccolò", "NCC");
        check_cognome("Ò", "OXX");
        check_cognome("Ng", "NGX");
        check_cognome("Yu", "YUX");
        check_cognome("Øberg", "BRG");
        check_cognome("Æsir", "SRA");
        check_cognome("Weiß", "WSS");
        check_cognome("Łukasz", "LKS");
    }

    #[test]
    fn name_letters() {
        check_nome("Mario", "MRA");
        check_nome("Vincenzo", "VCN");
        check_nome("Marta", "MRT");
        check_nome("Sara", "SRA");
        check_nome("Al", "LAX");
        check_nome("Alessandro", "LSN");
        check_nome("Ludovico", "LVC");
        check_nome("Marco", "MRC");
        check_nome("Anna", "NNA");
        check_nome("Eva", "VEA");
        check_nome("Dominique", "DNQ");
        check_nome("Alexander", "LND");
        check_nome("Pier Ale", "PRL");
        check_nome("Mark", "MRK");
        check_nome("Tom", "TMO");
        check_nome("Ania", "NAI");
        check_nome("Ai", "AIX");
        check_nome("Maria Grazia", "MGR");
        check_nome("Génny", "GNY");
        check_nome("Mìa'", "MIA");
    }

    #[test]
    fn every_character_of_the_anpr_name_type_can_be_coded() {
        // `alfabeticoNomiCognomi` (tipoDato.xsd) admits a-z, A-Z, "- '.,", code points
        // 138, 140, 142, 154, 156, 158-159, 192-382 and 393. Each must either count as a
        // Latin letter or be ignored as punctuation, never make the computation fail.
        let ammessi = ('a'..='z')
            .chain('A'..='Z')
            .chain("- '.,".chars())
            .chain(
                [138u32, 140, 142, 154, 156, 158, 159, 393]
                    .into_iter()
                    .filter_map(char::from_u32),
            )
            .chain((192u32..=382).filter_map(char::from_u32));
        for carattere in ammessi {
            let nome = format!("{carattere}a");
            assert!(
                codice_nome(&nome).is_ok(),
                "{carattere:?} (U+{:04X})",
                u32::from(carattere)
            );
            if carattere.is_alphabetic() {
                // A letter must contribute at least one letter of its own.
                let solo = carattere.to_string();
                assert!(codice_nome(&solo).is_ok(), "{carattere:?} alone");
            }
        }
    }

    #[test]
    fn names_without_letters_are_refused() {
        let check = |nome: &str, errore: ErroreCodiceFiscale| {
            assert_eq!(codice_nome(nome), Err(errore), "{nome:?}")
        };
        check(
            "",
            ErroreCodiceFiscale::NessunaLettera {
                campo: CampoNominativo::Nome,
            },
        );
        check(
            " '-. ",
            ErroreCodiceFiscale::NessunaLettera {
                campo: CampoNominativo::Nome,
            },
        );
        check(
            "123",
            ErroreCodiceFiscale::NessunaLettera {
                campo: CampoNominativo::Nome,
            },
        );
        check(
            "Иван",
            ErroreCodiceFiscale::CarattereNonTraslitterabile {
                campo: CampoNominativo::Nome,
                carattere: 'И',
            },
        );
        assert_eq!(
            codice_cognome("Ωmega"),
            Err(ErroreCodiceFiscale::CarattereNonTraslitterabile {
                campo: CampoNominativo::Cognome,
                carattere: 'Ω'
            })
        );
    }
}
