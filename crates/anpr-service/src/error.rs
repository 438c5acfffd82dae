//! Service errors, mapped once per protocol by the edges.
//!
//! A refusal caused by the caller carries the ANPR outcomes ([`Anomalia`]: code,
//! severity, field, found, expected). Every error carries a support reference (date and
//! id, like ANPR's support entries) that an operator can quote to the help desk; for
//! internal failures the cause is logged under that reference and never shown.

use std::fmt;

use anpr_domain::error::Anomalia;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::authz::Permesso;

/// Date and id quoted to the help desk: the `idOperazioneANPR` when an operation was
/// allocated, otherwise a request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RiferimentoSupporto {
    pub data: DateTime<Utc>,
    pub id: String,
}

impl fmt::Display for RiferimentoSupporto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.data.format("%Y-%m-%dT%H:%M:%SZ"), self.id)
    }
}

/// What went wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request was refused: blocking outcomes (and any warnings) attached.
    #[error("request refused: {}", .anomalie.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Rifiutata {
        anomalie: Vec<Anomalia>,
        riferimento: RiferimentoSupporto,
    },
    /// The caller lacks the permission.
    #[error("access denied: {permesso:?}")]
    AccessoNegato {
        permesso: Permesso,
        riferimento: RiferimentoSupporto,
    },
    /// The requested thing does not exist (or is not visible to the caller).
    #[error("not found: {cosa}")]
    NonTrovato {
        cosa: String,
        riferimento: RiferimentoSupporto,
    },
    /// Our failure; the cause is logged under the reference.
    #[error("internal error (ref {riferimento})")]
    Interno { riferimento: RiferimentoSupporto },
}

impl ServiceError {
    pub fn riferimento(&self) -> &RiferimentoSupporto {
        match self {
            ServiceError::Rifiutata { riferimento, .. }
            | ServiceError::AccessoNegato { riferimento, .. }
            | ServiceError::NonTrovato { riferimento, .. }
            | ServiceError::Interno { riferimento } => riferimento,
        }
    }

    /// The outcomes to show the caller (a single coded one for non-refusals).
    pub fn anomalie(&self) -> Vec<Anomalia> {
        match self {
            ServiceError::Rifiutata { anomalie, .. } => anomalie.clone(),
            ServiceError::AccessoNegato { permesso, .. } => vec![Anomalia::errore(
                CODICE_ACCESSO_NEGATO,
                format!("Utente non abilitato alla funzione richiesta ({permesso:?})"),
            )],
            ServiceError::NonTrovato { cosa, .. } => {
                vec![Anomalia::errore(
                    CODICE_NON_TROVATO,
                    format!("Nessun dato trovato: {cosa}"),
                )]
            }
            ServiceError::Interno { riferimento } => vec![Anomalia::errore(
                CODICE_ERRORE_INTERNO,
                format!("Errore interno del sistema; riferimento per l'assistenza: {riferimento}"),
            )],
        }
    }
}

/// Our code for a denied permission.
pub const CODICE_ACCESSO_NEGATO: &str = "EA401";
/// Our code for "nothing found".
pub const CODICE_NON_TROVATO: &str = "EV404";
/// Our code for an internal failure (never the caller's fault).
pub const CODICE_ERRORE_INTERNO: &str = "EI500";
