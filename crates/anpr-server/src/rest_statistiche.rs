//! REST handlers of the ISTAT tables (SPEC M-5.4, service 4003): compute (queued),
//! read, print (PDF/CSV) and the SVG chart of the monthly series.

use anpr_domain::error::Anomalia;
use anpr_service::statistiche::Richiesta4003;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// `POST /api/v1/statistiche/prospetti`: first step, compute a table (queued).
pub async fn calcola(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<Richiesta4003>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let r = state
        .registry
        .richiedi_prospetto(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let nuova = r.nuova;
    let mut resp = ok(ctx.ambiente, r)?;
    if nuova {
        *resp.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(resp)
}

/// `GET /api/v1/statistiche/prospetti/{id}`: the computed table (JSON).
pub async fn prospetto(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let p = state
        .registry
        .prospetto(&ctx, &id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, p)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParametriStampa {
    formato: Option<String>,
}

/// `GET /api/v1/statistiche/prospetti/{id}/stampa?formato=pdf|csv`: second step.
pub async fn stampa(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    query: Result<Query<ParametriStampa>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(q) = query?;
    let (bytes, nome, tipo) = state
        .registry
        .stampa_prospetto(&ctx, &id, q.formato.as_deref().unwrap_or("pdf"))
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let mut resp = ([(header::CONTENT_TYPE, tipo)], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{nome}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParametriGrafico {
    anno: String,
}

/// `GET /api/v1/statistiche/grafico?anno=AAAA`: SVG of the monthly series.
pub async fn grafico(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    query: Result<Query<ParametriGrafico>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(q) = query?;
    let anno = q.anno.trim().parse::<i32>().map_err(|_| {
        ApiError::bad_request(
            Anomalia::errore("EN102", "Campo anno obbligatorio")
                .campo("anno")
                .valore(q.anno.clone())
                .atteso("AAAA"),
        )
        .in_ambiente(ctx.ambiente)
    })?;
    let svg = state
        .registry
        .grafico_serie_mensile(&ctx, anno)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        svg,
    )
        .into_response())
}
