//! ANPR outcome codes (errors and warnings) with their texts, from `errori.csv`.
//!
//! Every error the product reports carries an ANPR code, its severity and its text, so
//! the service layer looks them up here at runtime. The texts use `@` as the placeholder
//! for the offending value, as ANPR does.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use anpr_domain::ids::InvalidValue;
use chrono::NaiveDate;
use serde::Serialize;

use crate::csv::{for_each_row, Row};
use crate::error::TablesError;

/// Severity of an outcome code (`tipoErroreAnomalia`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Severity {
    /// `E`: blocking error, the operation is refused.
    #[serde(rename = "E")]
    Error,
    /// `W`: warning, the operation goes through.
    #[serde(rename = "W")]
    Warning,
}

impl Severity {
    /// The one-letter code used by ANPR.
    pub fn code(self) -> &'static str {
        match self {
            Self::Error => "E",
            Self::Warning => "W",
        }
    }
}

impl FromStr for Severity {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "E" => Ok(Self::Error),
            "W" => Ok(Self::Warning),
            _ => Err(InvalidValue::new("tipoErroreAnomalia", s, "E or W")),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One ANPR outcome code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErroreAnpr {
    /// The code, e.g. `EC011` (`codiceErroreAnomalia`).
    #[serde(rename = "codiceErroreAnomalia")]
    pub code: String,
    /// Effective severity: the web-services one when given, else the subentro one, else
    /// the anomaly table's; `None` for the two codes the sources leave without one.
    #[serde(rename = "tipoErroreAnomalia")]
    pub severity: Option<Severity>,
    /// Message text, `@` = placeholder (`testoErroreAnomalia`).
    #[serde(rename = "testoErroreAnomalia")]
    pub text: String,
    /// Severity when raised by the web services.
    pub severity_services: Option<Severity>,
    /// Note on the web-services use.
    pub note_services: Option<String>,
    /// Severity when raised while loading a subentro file.
    pub severity_subentro: Option<Severity>,
    /// Note on the subentro use.
    pub note_subentro: Option<String>,
    /// Decoding table the check refers to, e.g. `Tabella 3 Comuni`.
    pub reference_table: Option<String>,
    /// Date of the last change of the code in the source list.
    pub last_change: Option<NaiveDate>,
    /// Severity in the subentro anomaly table.
    pub anomalie_severity: Option<Severity>,
    /// Hint of the subentro anomaly table.
    pub anomalie_hint: Option<String>,
    /// Procedure of the subentro anomaly table that fixes the anomaly.
    pub anomalie_procedure: Option<String>,
    /// Section of the subentro anomaly table.
    pub anomalie_section: Option<String>,
    /// A differing wording of the same code in another source list.
    pub text_variant: Option<String>,
    /// Source files the code appears in.
    pub source: String,
}

/// Outcome codes indexed by code.
#[derive(Debug, Default)]
pub(crate) struct Errori {
    rows: Vec<ErroreAnpr>,
    by_code: HashMap<String, usize>,
}

impl Errori {
    pub(crate) fn parse(file: &str, text: &str) -> Result<Self, TablesError> {
        let mut rows = Vec::new();
        for_each_row(file, text, &["code", "severity", "text"], |row| {
            rows.push(parse_errore(row)?);
            Ok(())
        })?;
        let mut by_code = HashMap::new();
        for (position, errore) in rows.iter().enumerate() {
            if by_code.insert(errore.code.clone(), position).is_some() {
                return Err(TablesError::new(
                    file,
                    0,
                    format!("code {} listed twice", errore.code),
                ));
            }
        }
        Ok(Self { rows, by_code })
    }

    pub(crate) fn all(&self) -> &[ErroreAnpr] {
        &self.rows
    }

    pub(crate) fn by_code(&self, code: &str) -> Option<&ErroreAnpr> {
        self.by_code.get(code).and_then(|&i| self.rows.get(i))
    }
}

fn parse_errore(row: &Row<'_, '_>) -> Result<ErroreAnpr, TablesError> {
    let severity = |name: &str| -> Result<Option<Severity>, TablesError> {
        match row.get(name)? {
            "" => Ok(None),
            value => value
                .parse::<Severity>()
                .map(Some)
                .map_err(|e| row.error(format!("{name}: {e}"))),
        }
    };
    Ok(ErroreAnpr {
        code: row.get("code")?.to_owned(),
        severity: severity("severity")?,
        text: row.get("text")?.to_owned(),
        severity_services: severity("severity_services")?,
        note_services: row.optional("note_services")?,
        severity_subentro: severity("severity_subentro")?,
        note_subentro: row.optional("note_subentro")?,
        reference_table: row.optional("reference_table")?,
        last_change: row.date("last_change")?,
        anomalie_severity: severity("anomalie_severity")?,
        anomalie_hint: row.optional("anomalie_hint")?,
        anomalie_procedure: row.optional("anomalie_procedure")?,
        anomalie_section: row.optional("anomalie_section")?,
        text_variant: row.optional("text_variant")?,
        source: row.get("source")?.to_owned(),
    })
}
