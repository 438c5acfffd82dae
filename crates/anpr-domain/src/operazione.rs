//! Operations (*operazioni*): the only way the registry changes.
//!
//! Every change is an operation with a service code (the ANPR catalogue: 1001 birth
//! registration, 5005 residence change, ...), the caller, the municipality's own id
//! (`idOperazioneComune`), an effective date (*decorrenza*), the request and response
//! documents and a state. The log of operations is append-only; annulment is itself an
//! operation that marks the annulled one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::InvalidValue;

/// A service code of the ANPR catalogue (`1001`, `5005`, `A001`, `S001`...): four
/// characters, digits or an upper-case family letter followed by digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodiceServizio(String);

impl CodiceServizio {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CodiceServizio {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let b = s.as_bytes();
        let ok = b.len() == 4
            && (b[0].is_ascii_digit() || b[0].is_ascii_uppercase())
            && b[1..].iter().all(u8::is_ascii_digit);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "codiceServizio",
                s,
                "a service code such as 1001 or A001",
            ))
        }
    }
}

impl TryFrom<String> for CodiceServizio {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        value.parse()
    }
}

impl From<CodiceServizio> for String {
    fn from(value: CodiceServizio) -> String {
        value.0
    }
}

impl fmt::Display for CodiceServizio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// State of a stored operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoOperazione {
    /// Applied and in force.
    Eseguita,
    /// Refused: stored so that a replay of its `idOperazioneComune` returns the same
    /// refusal, but it changed no record.
    Rifiutata,
    /// Applied, then annulled by a later operation.
    Annullata,
}

impl StatoOperazione {
    pub fn as_str(self) -> &'static str {
        match self {
            StatoOperazione::Eseguita => "eseguita",
            StatoOperazione::Rifiutata => "rifiutata",
            StatoOperazione::Annullata => "annullata",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "eseguita" => Some(StatoOperazione::Eseguita),
            "rifiutata" => Some(StatoOperazione::Rifiutata),
            "annullata" => Some(StatoOperazione::Annullata),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes() {
        for ok in ["1001", "5005", "A001", "S001", "E004"] {
            assert_eq!(ok.parse::<CodiceServizio>().unwrap().as_str(), ok);
        }
        for bad in ["100", "10011", "a001", "AA01", ""] {
            assert!(bad.parse::<CodiceServizio>().is_err(), "{bad}");
        }
    }

    #[test]
    fn states_round_trip() {
        for s in [
            StatoOperazione::Eseguita,
            StatoOperazione::Rifiutata,
            StatoOperazione::Annullata,
        ] {
            assert_eq!(StatoOperazione::parse(s.as_str()), Some(s));
        }
        assert_eq!(StatoOperazione::parse("x"), None);
    }
}
