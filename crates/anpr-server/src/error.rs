//! Mapping of errors to HTTP responses, in one place.
//!
//! Every error body has the same shape: `esito: "KO"`, the environment, the coded
//! outcomes (`anomalie`: code, severity, text, field, found, expected) and the support
//! reference. Caller mistakes are 4xx; our failures are 500 with only the reference.

use anpr_domain::caller::Ambiente;
use anpr_domain::error::Anomalia;
use anpr_service::{RiferimentoSupporto, ServiceError};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    ambiente: Option<Ambiente>,
    anomalie: Vec<Anomalia>,
    riferimento: Option<RiferimentoSupporto>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    esito: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ambiente: Option<Ambiente>,
    anomalie: &'a [Anomalia],
    #[serde(skip_serializing_if = "Option::is_none")]
    riferimento: Option<&'a RiferimentoSupporto>,
}

impl ApiError {
    pub fn bad_request(a: Anomalia) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            ambiente: None,
            anomalie: vec![a],
            riferimento: None,
        }
    }

    /// A malformed request with every coded outcome found in it.
    pub fn bad_request_all(anomalie: Vec<Anomalia>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            ambiente: None,
            anomalie,
            riferimento: None,
        }
    }

    /// Sets the environment the answer names (requests whose caller is known).
    pub fn in_ambiente(mut self, ambiente: Ambiente) -> Self {
        self.ambiente = Some(ambiente);
        self
    }

    pub fn forbidden(a: Anomalia, ambiente: Ambiente) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            ambiente: Some(ambiente),
            anomalie: vec![a],
            riferimento: None,
        }
    }

    pub fn not_found(a: Anomalia) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ambiente: None,
            anomalie: vec![a],
            riferimento: None,
        }
    }

    /// Maps a service error for a request in `ambiente`.
    pub fn from_service(err: ServiceError, ambiente: Ambiente) -> Self {
        let status = match &err {
            ServiceError::Rifiutata { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::AccessoNegato { .. } => StatusCode::FORBIDDEN,
            ServiceError::NonTrovato { .. } => StatusCode::NOT_FOUND,
            ServiceError::Interno { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            status,
            ambiente: Some(ambiente),
            anomalie: err.anomalie(),
            riferimento: Some(err.riferimento().clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            esito: "KO",
            ambiente: self.ambiente,
            anomalie: &self.anomalie,
            riferimento: self.riferimento.as_ref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(env) = self.ambiente {
            if let Ok(v) = axum::http::HeaderValue::from_str(env.as_str()) {
                response.headers_mut().insert(crate::HEADER_AMBIENTE, v);
            }
        }
        response
    }
}

/// Malformed JSON bodies: a coded 400 naming what was wrong, never axum's plain text.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let a = Anomalia::errore(
            anpr_domain::error::CODICE_VALORE_NON_VALIDO,
            "Corpo della richiesta non valido",
        )
        .valore(rejection.body_text())
        .atteso("un documento JSON conforme allo schema OpenAPI (Content-Type: application/json)");
        Self {
            status: if status == StatusCode::PAYLOAD_TOO_LARGE {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            ..Self::bad_request(a)
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Parametri della richiesta non validi",
            )
            .valore(rejection.body_text())
            .atteso("parametri conformi allo schema OpenAPI"),
        )
    }
}
