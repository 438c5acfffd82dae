//! REST handlers of asynchronous extractions (SPEC M-5.3): 4001, 4002, 4004 (submit),
//! 4005 (state, list) and 7002 (download). Request bodies carry the criteria (personal
//! identifiers never travel in URLs; the request id in the path is an
//! `idOperazioneANPR`). Rules and codes: `anpr_service::estrazioni`, docs/ESTRAZIONI.md.

use anpr_service::estrazioni::{FiltroRichieste, Richiesta4001, Richiesta4002, Richiesta4004};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// Answers a submission: 202 Accepted with the request id (200 when an earlier request
/// with the same `idOperazioneComune` is returned).
fn accettata(
    ambiente: anpr_domain::caller::Ambiente,
    r: anpr_service::estrazioni::RichiestaAccettata,
) -> ApiResult {
    let nuova = r.nuova;
    let mut resp = ok(ambiente, r)?;
    if nuova {
        *resp.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(resp)
}

/// `POST /api/v1/estrazioni`: 4001, extraction of citizens' data.
pub async fn estrazione(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<Richiesta4001>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let r = state
        .registry
        .richiedi_estrazione(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    accettata(ctx.ambiente, r)
}

/// `POST /api/v1/estrazioni/rivestimento`: 4002, bulk lookup of a file of codes.
pub async fn rivestimento(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<Richiesta4002>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let r = state
        .registry
        .richiedi_rivestimento(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    accettata(ctx.ambiente, r)
}

/// `POST /api/v1/estrazioni/elenchi`: 4004, support lists.
pub async fn elenchi(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<Richiesta4004>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let r = state
        .registry
        .richiedi_elenco(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    accettata(ctx.ambiente, r)
}

/// `GET /api/v1/estrazioni`: 4005, the municipality's requests.
pub async fn elenco(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    query: Result<Query<FiltroRichieste>, QueryRejection>,
) -> ApiResult {
    let Query(f) = query?;
    let richieste = state
        .registry
        .elenco_richieste(&ctx, &f)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, serde_json::json!({ "richieste": richieste }))
}

/// `GET /api/v1/estrazioni/{id}`: 4005, state and outcome of one request.
pub async fn stato(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let s = state
        .registry
        .stato_richiesta(&ctx, &id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, s)
}

/// `GET /api/v1/estrazioni/{id}/file`: 7002, the result file (CSV or XLSX).
pub async fn file(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let f = state
        .registry
        .scarica_file(&ctx, &id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let tipo = anpr_service::estrazioni::Formato::parse(&f.formato)
        .map_or("application/octet-stream", |x| x.media_type());
    let mut resp = ([(header::CONTENT_TYPE, tipo)], f.contenuto).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", f.nome)) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
