//! Coded outcomes: the ANPR error/warning vocabulary.
//!
//! Every refusal the registry gives names an ANPR code (from the published error list,
//! or one of our own stable codes where ANPR has only the generic "999"), a severity,
//! the field path, what was found and what was expected. The support reference (date +
//! `idOperazioneANPR`, like ANPR's EN527) is added by the service layer, which knows them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::InvalidValue;

/// Severity of an outcome: `E` blocks the operation, `W` is reported and it proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gravita {
    #[serde(rename = "E")]
    Errore,
    #[serde(rename = "W")]
    Avvertimento,
}

impl Gravita {
    pub fn code(self) -> &'static str {
        match self {
            Gravita::Errore => "E",
            Gravita::Avvertimento => "W",
        }
    }
}

/// One coded outcome (`tipoErroriAnomalia` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomalia {
    /// ANPR code, e.g. `EN122`, or one of ours (documented in the README).
    pub codice: String,
    pub gravita: Gravita,
    /// Human text in Italian, as ANPR gives it.
    pub testo: String,
    /// Path of the offending field in the request, e.g. `generalita.dataNascita`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campo: Option<String>,
    /// The offending value, when there is one (never a whole document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valore: Option<String>,
    /// What would have been accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atteso: Option<String>,
}

impl Anomalia {
    pub fn errore(codice: impl Into<String>, testo: impl Into<String>) -> Self {
        Self {
            codice: codice.into(),
            gravita: Gravita::Errore,
            testo: testo.into(),
            campo: None,
            valore: None,
            atteso: None,
        }
    }

    pub fn avvertimento(codice: impl Into<String>, testo: impl Into<String>) -> Self {
        Self {
            gravita: Gravita::Avvertimento,
            ..Self::errore(codice, testo)
        }
    }

    pub fn campo(mut self, campo: impl Into<String>) -> Self {
        self.campo = Some(campo.into());
        self
    }

    pub fn valore(mut self, valore: impl Into<String>) -> Self {
        let v: String = valore.into();
        self.valore = Some(v.chars().take(128).collect());
        self
    }

    pub fn atteso(mut self, atteso: impl Into<String>) -> Self {
        self.atteso = Some(atteso.into());
        self
    }

    pub fn is_blocking(&self) -> bool {
        self.gravita == Gravita::Errore
    }

    /// ANPR's EN478 on field `campo`: a period whose end (`finale`) comes before its
    /// start (`iniziale`).
    pub fn periodo_invertito(
        campo: impl Into<String>,
        iniziale: impl fmt::Display,
        finale: impl fmt::Display,
    ) -> Self {
        Self::errore(
            CODICE_PERIODO_INVERTITO,
            "La data riferimento finale non puo' essere minore della data riferimento iniziale",
        )
        .campo(campo)
        .valore(finale.to_string())
        .atteso(format!(
            "una data non anteriore a quella iniziale ({iniziale})"
        ))
    }

    /// A malformed value in field `campo`. Uses our code `EV001` ("valore non valido"):
    /// ANPR answers schema violations with a SOAP fault and has no dedicated code.
    pub fn from_invalid(campo: impl Into<String>, err: &InvalidValue) -> Self {
        Self::errore(
            CODICE_VALORE_NON_VALIDO,
            format!("Valore non valido per {}", err.what),
        )
        .campo(campo)
        .valore(err.found.clone())
        .atteso(err.expected)
    }
}

/// ANPR's code: the final date of a period is before the initial one.
pub const CODICE_PERIODO_INVERTITO: &str = "EN478";
/// Our code for a syntactically invalid field value.
pub const CODICE_VALORE_NON_VALIDO: &str = "EV001";
/// Our code for a mandatory field that is missing.
pub const CODICE_CAMPO_OBBLIGATORIO: &str = "EV002";
/// Our code for a date after today where only past dates make sense.
pub const CODICE_DATA_FUTURA: &str = "EV003";

impl fmt::Display for Anomalia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {}",
            self.codice,
            self.gravita.code(),
            self.testo
        )?;
        if let Some(campo) = &self.campo {
            write!(f, " (campo {campo}")?;
            if let Some(v) = &self.valore {
                write!(f, ", trovato {v:?}")?;
            }
            if let Some(a) = &self.atteso {
                write!(f, ", atteso {a}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A list of outcomes, split by whether any blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Esito {
    pub anomalie: Vec<Anomalia>,
}

impl Esito {
    pub fn push(&mut self, a: Anomalia) {
        self.anomalie.push(a);
    }

    pub fn has_errors(&self) -> bool {
        self.anomalie.iter().any(Anomalia::is_blocking)
    }

    pub fn is_empty(&self) -> bool {
        self.anomalie.is_empty()
    }

    /// `Ok(warnings)` when nothing blocks, otherwise `Err(all outcomes)`.
    pub fn into_result(self) -> Result<Vec<Anomalia>, Vec<Anomalia>> {
        if self.has_errors() {
            Err(self.anomalie)
        } else {
            Ok(self.anomalie)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_field_found_and_expected() {
        let err = InvalidValue::new("codiceIstat", "12", "six digits");
        let a = Anomalia::from_invalid("luogoNascita.codiceIstat", &err);
        assert_eq!(
            a.to_string(),
            "EV001 [E] Valore non valido per codiceIstat (campo luogoNascita.codiceIstat, trovato \"12\", atteso six digits)"
        );
        assert!(a.is_blocking());
    }

    #[test]
    fn esito_separates_warnings_from_errors() {
        let mut e = Esito::default();
        e.push(Anomalia::avvertimento("EW001", "w"));
        assert_eq!(e.clone().into_result().map(|w| w.len()), Ok(1));
        e.push(Anomalia::errore("EN001", "e"));
        assert_eq!(e.into_result().map_err(|all| all.len()), Err(2));
    }
}
