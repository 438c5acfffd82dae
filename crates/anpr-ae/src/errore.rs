//! Why a call to the tax agency produced no answer at all.
//!
//! An answer with the agency's messages (EAV31, EAM15, ...) is an [`EsitoAe`]; an
//! [`ErroreAe`] means the call itself failed: nothing reached the agency, it did not
//! answer in time, or what came back is not the protocol. The registry turns it into a
//! coded [`Anomalia`] with [`ErroreAe::anomalia`]; the detail (addresses, library
//! messages) is for the log under the support reference, never for the caller, so it is
//! in `Display` and not in the anomaly.
//!
//! [`EsitoAe`]: crate::EsitoAe

use anpr_domain::error::Anomalia;

use crate::codici::{CODICE_AE_NON_RAGGIUNGIBILE, CODICE_AE_PROTOCOLLO, CODICE_AE_TIMEOUT};

/// A failed call to the tax agency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErroreAe {
    /// The agency could not be reached (connection refused or reset, address unknown).
    #[error("Agenzia delle Entrate non raggiungibile: {dettaglio}")]
    NonRaggiungibile { dettaglio: String },
    /// No complete answer within the configured time.
    #[error("Agenzia delle Entrate: nessuna risposta entro {millisecondi} ms: {dettaglio}")]
    Timeout {
        millisecondi: u128,
        dettaglio: String,
    },
    /// The answer is not the documented protocol (status, size, body), or the request
    /// could not be sent as the protocol requires.
    #[error("Agenzia delle Entrate: risposta non valida: {dettaglio}")]
    Protocollo { dettaglio: String },
    /// The client is misconfigured (e.g. a base URL that is not plain `http://`).
    #[error("client Agenzia delle Entrate non configurato correttamente: {dettaglio}")]
    Configurazione { dettaglio: String },
}

impl ErroreAe {
    /// Our stable code for the failure (EV060 unreachable, EV061 timeout, EV062 protocol
    /// or configuration).
    pub fn codice(&self) -> &'static str {
        match self {
            ErroreAe::NonRaggiungibile { .. } => CODICE_AE_NON_RAGGIUNGIBILE,
            ErroreAe::Timeout { .. } => CODICE_AE_TIMEOUT,
            ErroreAe::Protocollo { .. } | ErroreAe::Configurazione { .. } => CODICE_AE_PROTOCOLLO,
        }
    }

    /// The blocking anomaly shown to the caller: the code and a text without internal
    /// detail, with what to do in `atteso`.
    pub fn anomalia(&self) -> Anomalia {
        let (testo, atteso) = match self {
            ErroreAe::NonRaggiungibile { .. } => (
                "Servizio dell'Agenzia delle Entrate non raggiungibile",
                "ripetere l'operazione più tardi",
            ),
            ErroreAe::Timeout { .. } => (
                "Il servizio dell'Agenzia delle Entrate non ha risposto nel tempo previsto",
                "ripetere l'operazione più tardi",
            ),
            ErroreAe::Protocollo { .. } => (
                "Risposta non valida dal servizio dell'Agenzia delle Entrate",
                "segnalare all'assistenza con il riferimento indicato",
            ),
            ErroreAe::Configurazione { .. } => (
                "Collegamento con l'Agenzia delle Entrate non configurato correttamente",
                "segnalare all'assistenza con il riferimento indicato",
            ),
        };
        Anomalia::errore(self.codice(), testo).atteso(atteso)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_code_and_hides_its_detail() {
        let segreto = "10.0.0.7:8443 connection refused";
        for (errore, codice) in [
            (
                ErroreAe::NonRaggiungibile {
                    dettaglio: segreto.into(),
                },
                "EV060",
            ),
            (
                ErroreAe::Timeout {
                    millisecondi: 10,
                    dettaglio: segreto.into(),
                },
                "EV061",
            ),
            (
                ErroreAe::Protocollo {
                    dettaglio: segreto.into(),
                },
                "EV062",
            ),
            (
                ErroreAe::Configurazione {
                    dettaglio: segreto.into(),
                },
                "EV062",
            ),
        ] {
            let a = errore.anomalia();
            assert_eq!(a.codice, codice);
            assert!(a.is_blocking());
            assert!(!a.to_string().contains("10.0.0.7"), "{a}");
            assert!(errore.to_string().contains("10.0.0.7"), "{errore}");
        }
    }
}
