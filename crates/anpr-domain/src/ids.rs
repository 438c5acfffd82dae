//! Identifiers and small coded values shared by the whole registry.
//!
//! Each type is a parsed newtype: the only way to get one is through a constructor that
//! checks the format the published XSD (`tipoDato.xsd`) gives for it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a coded value could not be parsed. Carries what was expected, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: found {found:?}, expected {expected}")]
pub struct InvalidValue {
    /// Name of the value kind, e.g. `codiceIstat`.
    pub what: &'static str,
    /// The offending input (truncated to 64 characters).
    pub found: String,
    /// A human description of the expected format.
    pub expected: &'static str,
}

impl InvalidValue {
    pub fn new(what: &'static str, found: &str, expected: &'static str) -> Self {
        let found: String = found.chars().take(64).collect();
        Self {
            what,
            found,
            expected,
        }
    }
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                value.parse()
            }
        }
    };
}

string_newtype!(
    /// ISTAT code of a municipality: exactly six digits (`tipoCodiceIstatComune`).
    CodiceIstatComune
);

impl FromStr for CodiceIstatComune {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "codiceIstat",
                s,
                "six digits, e.g. 058091",
            ))
        }
    }
}

string_newtype!(
    /// Cadastral code (*codice catastale*, also "Belfiore code"): a letter and three digits.
    /// Italian municipalities use `A`..`M` (e.g. `H501` Roma); foreign states use `Z`
    /// (e.g. `Z404` United States). The codice fiscale embeds it as the birth place.
    CodiceCatastale
);

impl CodiceCatastale {
    /// True for the `Z` codes that identify foreign states.
    pub fn is_foreign_state(&self) -> bool {
        self.0.starts_with('Z')
    }
}

impl FromStr for CodiceCatastale {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let b = s.as_bytes();
        if b.len() == 4 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "codiceCatastale",
                s,
                "an upper-case letter and three digits, e.g. H501 or Z404",
            ))
        }
    }
}

/// Sex as recorded in the registry (`tipoSesso`: M, F; the XSD also admits N, which
/// ANPR uses only in searches, so it is not a value a record can hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sesso {
    #[serde(rename = "M")]
    Maschio,
    #[serde(rename = "F")]
    Femmina,
}

impl Sesso {
    pub fn code(self) -> &'static str {
        match self {
            Sesso::Maschio => "M",
            Sesso::Femmina => "F",
        }
    }
}

impl FromStr for Sesso {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "M" | "m" => Ok(Sesso::Maschio),
            "F" | "f" => Ok(Sesso::Femmina),
            _ => Err(InvalidValue::new("sesso", s, "M or F")),
        }
    }
}

impl fmt::Display for Sesso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

macro_rules! numeric_id {
    ($(#[$meta:meta])* $name:ident, $what:literal, $max_digits:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(u64);

        impl $name {
            /// Largest value that fits the XSD's digit limit.
            pub const MAX: u64 = 10u64.pow($max_digits) - 1;

            pub fn new(value: u64) -> Result<Self, InvalidValue> {
                if value == 0 || value > Self::MAX {
                    Err(InvalidValue::new($what, &value.to_string(), concat!("a positive number of at most ", $max_digits, " digits")))
                } else {
                    Ok(Self(value))
                }
            }

            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                if s.is_empty() || s.len() > $max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidValue::new($what, s, concat!("a positive number of at most ", $max_digits, " digits")));
                }
                let value: u64 = s.parse().map_err(|_| InvalidValue::new($what, s, "a number"))?;
                Self::new(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.to_string()
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                value.parse()
            }
        }
    };
}

numeric_id!(
    /// National identifier of a subject (`idSchedaSoggettoANPR`: numeric, at most 16 digits).
    /// Allocated by the registry, never reused: a re-registered subject keeps it.
    IdAnprSoggetto, "idSchedaSoggettoANPR", 16
);

numeric_id!(
    /// National identifier of a family or cohabitation record (`idFamigliaConvivenzaANPR`).
    IdAnprFamiglia, "idFamigliaConvivenzaANPR", 16
);

numeric_id!(
    /// Identifier the registry gives every operation (`idOperazioneANPR`, at most 30 digits
    /// in the XSD; we allocate from a 64-bit sequence, far below that limit).
    IdOperazioneAnpr, "idOperazioneANPR", 18
);

numeric_id!(
    /// The municipality's own id for an operation (`idOperazioneComune`). SPEC M-2.8 makes
    /// it numeric and increasing per municipality, which is stricter than the XSD pattern.
    IdOperazioneComune, "idOperazioneComune", 18
);

numeric_id!(
    /// National number of an administrative proceeding (`numeroPraticaAnpr`: digits, at
    /// most 20 in the XSD; allocated from a 64-bit sequence, so at most 18 here).
    NumeroPraticaAnpr, "numeroPraticaAnpr", 18
);

string_newtype!(
    /// The municipality's own number of an administrative proceeding
    /// (`tipoNumeroPraticaComune`: letters, digits, `-` and spaces, 1 to 20 characters).
    NumeroPraticaComune
);

impl FromStr for NumeroPraticaComune {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if !s.is_empty()
            && s.len() <= 20
            && s.trim() == s
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "numeroPraticaComune",
                s,
                "1 to 20 letters, digits, '-' or inner spaces",
            ))
        }
    }
}

string_newtype!(
    /// The municipality's own identifier of a record (`tipoIdSchedaSoggetto`:
    /// letters, digits and `-`, 1 to 20 characters).
    IdComunale
);

impl FromStr for IdComunale {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if !s.is_empty()
            && s.len() <= 20
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "idSchedaSoggettoComune",
                s,
                "1 to 20 letters, digits or '-'",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: FromStr<Err = InvalidValue> + fmt::Display>(input: &str, ok: bool) {
        let parsed = input.parse::<T>();
        assert_eq!(
            parsed.is_ok(),
            ok,
            "{input:?} -> {:?}",
            parsed.as_ref().map(|v| v.to_string())
        );
        if let Ok(v) = parsed {
            assert_eq!(v.to_string().to_uppercase(), input.to_uppercase());
        }
    }

    #[test]
    fn istat_codes() {
        check::<CodiceIstatComune>("058091", true);
        check::<CodiceIstatComune>("58091", false);
        check::<CodiceIstatComune>("05809A", false);
        check::<CodiceIstatComune>("", false);
    }

    #[test]
    fn cadastral_codes() {
        check::<CodiceCatastale>("H501", true);
        check::<CodiceCatastale>("Z404", true);
        check::<CodiceCatastale>("h501", false);
        check::<CodiceCatastale>("H5011", false);
        assert!("Z404"
            .parse::<CodiceCatastale>()
            .unwrap()
            .is_foreign_state());
        assert!(!"H501"
            .parse::<CodiceCatastale>()
            .unwrap()
            .is_foreign_state());
    }

    #[test]
    fn numeric_ids() {
        check::<IdAnprSoggetto>("1234567890123456", true);
        check::<IdAnprSoggetto>("12345678901234567", false);
        check::<IdAnprSoggetto>("0", false);
        check::<IdAnprSoggetto>("-5", false);
        check::<IdOperazioneComune>("42", true);
        check::<IdOperazioneComune>("4a", false);
    }

    #[test]
    fn proceeding_numbers() {
        check::<NumeroPraticaAnpr>("123456789012345678", true);
        check::<NumeroPraticaAnpr>("1234567890123456789", false);
        check::<NumeroPraticaAnpr>("0", false);
        check::<NumeroPraticaComune>("PR-2024 17", true);
        check::<NumeroPraticaComune>(" PR", false);
        check::<NumeroPraticaComune>("PR/17", false);
        check::<NumeroPraticaComune>("123456789012345678901", false);
    }

    #[test]
    fn municipal_ids() {
        check::<IdComunale>("ABC-123", true);
        check::<IdComunale>("ABC 123", false);
        check::<IdComunale>("123456789012345678901", false);
    }

    #[test]
    fn sesso_round_trip() {
        assert_eq!("m".parse::<Sesso>().unwrap(), Sesso::Maschio);
        assert_eq!("F".parse::<Sesso>().unwrap().code(), "F");
        assert!("N".parse::<Sesso>().is_err());
    }
}
