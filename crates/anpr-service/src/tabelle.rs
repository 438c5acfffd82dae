//! Use cases on the decoding tables (SPEC M-1.6, service 7001).
//!
//! Tables are public data: any caller may read them. Municipalities are filtered by
//! state, validity date, name (case- and accent-insensitive) and codes; every other table
//! is served generically, optionally restricted to the rows valid at a date.

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune};
use anpr_tables::{Comune, StatoComune, TableInfo};
use chrono::NaiveDate;
use serde::Serialize;

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// Filter for municipalities; all given criteria must match.
#[derive(Debug, Clone, Default)]
pub struct FiltroComuni {
    pub stato: Option<StatoComune>,
    /// Only the municipalities valid on this date.
    pub data_riferimento: Option<NaiveDate>,
    /// Case- and accent-insensitive name (Italian or second language).
    pub denominazione: Option<String>,
    pub codice_istat: Option<CodiceIstatComune>,
    pub codice_catastale: Option<CodiceCatastale>,
}

/// A list of municipalities with its size.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElencoComuni {
    pub totale: usize,
    pub comuni: Vec<&'static Comune>,
}

/// The rows of one table, as JSON objects in the ANPR vocabulary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RigheTabella {
    pub nome: String,
    pub versione: String,
    pub totale: usize,
    pub righe: Vec<serde_json::Value>,
}

/// Name of the municipalities table in listings and URLs.
pub const TABELLA_COMUNI: &str = "comuni";
/// Name of the foreign states table.
pub const TABELLA_STATI_ESTERI: &str = "stati_esteri";
/// Name of the consulates table.
pub const TABELLA_CONSOLATI: &str = "consolati";

impl Registry {
    /// Every table with its description, row count and version.
    pub async fn elenco_tabelle(
        &self,
        ctx: &CallerContext,
    ) -> Result<Vec<TableInfo>, ServiceError> {
        self.autorizza(ctx, Permesso::ConsultaTabelle, "elencoTabelle")
            .await?;
        Ok(self.tables().table_names())
    }

    /// Municipalities matching the filter, in archive order.
    pub async fn comuni(
        &self,
        ctx: &CallerContext,
        filtro: &FiltroComuni,
    ) -> Result<ElencoComuni, ServiceError> {
        self.autorizza(ctx, Permesso::ConsultaTabelle, "consultaComuni")
            .await?;
        let t = self.tables();
        let by_name: Option<Vec<&'static Comune>> = filtro
            .denominazione
            .as_deref()
            .map(|n| t.comuni_by_name(n, filtro.data_riferimento));
        let candidates: Box<dyn Iterator<Item = &'static Comune>> =
            match (&by_name, &filtro.codice_istat, &filtro.codice_catastale) {
                (Some(list), _, _) => Box::new(list.iter().copied()),
                (None, Some(istat), _) => Box::new(t.comune_history_by_istat(istat).into_iter()),
                (None, None, _) => Box::new(t.comuni().iter()),
            };
        let comuni: Vec<&'static Comune> = candidates
            .filter(|c| filtro.stato.is_none_or(|s| c.stato == s))
            .filter(|c| filtro.data_riferimento.is_none_or(|d| c.is_valid_at(d)))
            .filter(|c| filtro.codice_istat.as_ref().is_none_or(|i| &c.istat == i))
            .filter(|c| {
                filtro
                    .codice_catastale
                    .as_ref()
                    .is_none_or(|k| c.catastale.as_ref() == Some(k))
            })
            .collect();
        Ok(ElencoComuni {
            totale: comuni.len(),
            comuni,
        })
    }

    /// The rows of table `nome` (as listed by [`Registry::elenco_tabelle`]), optionally
    /// only those valid at `data`.
    pub async fn righe_tabella(
        &self,
        ctx: &CallerContext,
        nome: &str,
        data: Option<NaiveDate>,
    ) -> Result<RigheTabella, ServiceError> {
        self.autorizza(ctx, Permesso::ConsultaTabelle, "consultaTabella")
            .await?;
        let t = self.tables();
        let righe: Vec<serde_json::Value> = match nome {
            TABELLA_COMUNI => t
                .comuni()
                .iter()
                .filter(|c| data.is_none_or(|d| c.is_valid_at(d)))
                .map(to_json)
                .collect(),
            TABELLA_STATI_ESTERI => t
                .stati_esteri()
                .iter()
                .filter(|s| data.is_none_or(|d| s.is_valid_at(d)))
                .map(to_json)
                .collect(),
            TABELLA_CONSOLATI => t.consolati().iter().map(to_json).collect(),
            other => match t.table(other) {
                Some(table) => table
                    .rows()
                    .iter()
                    .filter(|r| data.is_none_or(|d| r.is_valid_at(d)))
                    .map(to_json)
                    .collect(),
                None => {
                    return Err(ServiceError::Rifiutata {
                        anomalie: vec![Anomalia::errore(
                            CODICE_TABELLA_INESISTENTE,
                            "Tabella inesistente",
                        )
                        .campo("nome")
                        .valore(other)
                        .atteso("uno dei nomi restituiti da GET /api/v1/tabelle")],
                        riferimento: self.riferimento(None),
                    })
                }
            },
        };
        Ok(RigheTabella {
            nome: nome.to_owned(),
            versione: t.version().to_string(),
            totale: righe.len(),
            righe,
        })
    }
}

/// Our code for an unknown table name.
pub const CODICE_TABELLA_INESISTENTE: &str = "EV020";

fn to_json<T: Serialize>(row: &T) -> serde_json::Value {
    // Table rows are plain data; serialising them cannot fail.
    serde_json::to_value(row).unwrap_or(serde_json::Value::Null)
}
