//! Italian consulates (Tabella 40) and the consulates competent for each state or
//! territory of residence (Tabella 41).
//!
//! AIRE registrations name the consulate of the citizen's residence abroad; ANPR checks
//! that the consulate exists (EC032) and that it is competent for the state of residence
//! (EC033), which is what [`Consolati::for_stato`] answers.

use std::collections::HashMap;

use serde::Serialize;

use crate::csv::for_each_row;
use crate::error::TablesError;

/// An Italian consular office (embassy with consular duties, consulate, agency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consolato {
    /// MAE consulate code, seven digits (`codiceConsolato`).
    #[serde(rename = "codiceConsolato")]
    pub codice: String,
    /// MAE code of the state the office is in.
    pub codice_stato_mae: String,
    /// Name of the state the office is in.
    pub denominazione_stato: String,
    /// City where the office sits.
    pub sede: String,
    /// Rank, e.g. `CONSOLATO GENERALE D'ITALIA`.
    pub rango: String,
    /// Postal address.
    pub indirizzo: String,
}

/// One "state or territory of residence → competent consulate" pair (Tabella 41).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatoConsolato {
    /// ISTAT code of the state or territory of residence.
    #[serde(rename = "codiceStato")]
    pub codice_istat_stato: String,
    /// Its name.
    pub denominazione_stato: String,
    /// MAE code of the competent consulate.
    #[serde(rename = "codiceConsolato")]
    pub codice_consolato: String,
    /// Rank of the consulate.
    pub rango: String,
    /// City where the consulate sits.
    pub sede: String,
    /// MAE code of the state the consulate belongs to.
    pub codice_stato_mae: String,
    /// Name of the state the consulate belongs to.
    pub denominazione_stato_mae: String,
}

/// Consulates and the state-to-consulate relation, indexed.
#[derive(Debug, Default)]
pub(crate) struct Consolati {
    rows: Vec<Consolato>,
    by_code: HashMap<String, usize>,
    stati: Vec<StatoConsolato>,
    by_stato: HashMap<String, Vec<usize>>,
}

impl Consolati {
    pub(crate) fn parse(
        consolati_file: &str,
        consolati_text: &str,
        stati_file: &str,
        stati_text: &str,
    ) -> Result<Self, TablesError> {
        let mut rows = Vec::new();
        for_each_row(consolati_file, consolati_text, &["codice"], |row| {
            rows.push(Consolato {
                codice: row.get("codice")?.to_owned(),
                codice_stato_mae: row.get("codice_stato_mae")?.to_owned(),
                denominazione_stato: row.get("denominazione_stato")?.to_owned(),
                sede: row.get("sede")?.to_owned(),
                rango: row.get("rango")?.to_owned(),
                indirizzo: row.get("indirizzo")?.to_owned(),
            });
            Ok(())
        })?;
        let mut by_code = HashMap::new();
        for (position, consolato) in rows.iter().enumerate() {
            if by_code.insert(consolato.codice.clone(), position).is_some() {
                return Err(TablesError::new(
                    consolati_file,
                    0,
                    format!("consulate {} listed twice", consolato.codice),
                ));
            }
        }
        let mut stati = Vec::new();
        for_each_row(
            stati_file,
            stati_text,
            &["codice_istat_stato", "codice_consolato"],
            |row| {
                let codice_consolato = row.get("codice_consolato")?;
                if !by_code.contains_key(codice_consolato) {
                    return Err(row.error(format!("unknown consulate {codice_consolato}")));
                }
                stati.push(StatoConsolato {
                    codice_istat_stato: row.get("codice_istat_stato")?.to_owned(),
                    denominazione_stato: row.get("denominazione_stato")?.to_owned(),
                    codice_consolato: codice_consolato.to_owned(),
                    rango: row.get("rango")?.to_owned(),
                    sede: row.get("sede")?.to_owned(),
                    codice_stato_mae: row.get("codice_stato_mae")?.to_owned(),
                    denominazione_stato_mae: row.get("denominazione_stato_mae")?.to_owned(),
                });
                Ok(())
            },
        )?;
        let mut by_stato: HashMap<String, Vec<usize>> = HashMap::new();
        for link in &stati {
            if let Some(&position) = by_code.get(&link.codice_consolato) {
                by_stato
                    .entry(link.codice_istat_stato.clone())
                    .or_default()
                    .push(position);
            }
        }
        Ok(Self {
            rows,
            by_code,
            stati,
            by_stato,
        })
    }

    pub(crate) fn all(&self) -> &[Consolato] {
        &self.rows
    }

    pub(crate) fn stati(&self) -> &[StatoConsolato] {
        &self.stati
    }

    pub(crate) fn by_code(&self, code: &str) -> Option<&Consolato> {
        self.by_code.get(code).and_then(|&i| self.rows.get(i))
    }

    pub(crate) fn for_stato(&self, codice_istat_stato: &str) -> Vec<&Consolato> {
        self.by_stato
            .get(codice_istat_stato)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.rows.get(i))
            .collect()
    }
}
