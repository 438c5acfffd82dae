//! REST handlers for identity cards (SPEC M-4.2) under `/api/v1/carte-identita` and for
//! the municipality's document parameters (M-4.1, M-8.6) under
//! `/api/v1/comuni/{istat}/parametri`.
//!
//! Issuing a paper card answers JSON with the print (card and the two copies of the
//! cartellino) as a base64 PDF; `GET /carte-identita/{id}/pdf` prints it again. Card ids
//! in paths are random and unguessable, not personal identifiers.

use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_service::carte_identita::RichiestaCartaIdentita;
use anpr_service::parametri::RichiestaParametri;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// A document id in a path: 32 lowercase hex digits.
fn id_documento(raw: &str, campo: &str) -> Result<String, ApiError> {
    if raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::bad_request(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Identificativo non valido")
                .campo(campo)
                .valore(raw.chars().take(64).collect::<String>())
                .atteso("32 cifre esadecimali"),
        ))
    }
}

fn comune(raw: &str) -> Result<CodiceIstatComune, ApiError> {
    raw.parse::<CodiceIstatComune>()
        .map_err(|e| ApiError::bad_request(Anomalia::from_invalid("istat", &e).valore(raw)))
}

/// `POST /api/v1/carte-identita`: issues an identity card.
pub async fn emetti_carta(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RichiestaCartaIdentita>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let (carta, pdf) = state
        .registry
        .emetti_carta_identita(&ctx, r)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let mut corpo = json!({ "cartaIdentita": carta });
    if let Some(pdf) = pdf {
        corpo["cartaIdentitaPdf"] = base64::engine::general_purpose::STANDARD.encode(pdf).into();
    }
    ok(ctx.ambiente, corpo)
}

/// `GET /api/v1/carte-identita/{id}/pdf`: a paper card printed again.
pub async fn pdf_carta(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = id_documento(&id, "idCarta")?;
    let (_, pdf) = state
        .registry
        .stampa_carta_identita(&ctx, &id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnnullamentoJson {
    motivo: String,
}

/// `POST /api/v1/carte-identita/{id}/annulla`: annulment for material error.
pub async fn annulla_carta(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    body: Result<Json<AnnullamentoJson>, JsonRejection>,
) -> ApiResult {
    let id = id_documento(&id, "idCarta")?;
    let Json(b) = body?;
    let carta = state
        .registry
        .annulla_carta_identita(&ctx, &id, &b.motivo)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, json!({ "cartaIdentita": carta }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ElencoQuery {
    dal: Option<NaiveDate>,
    al: Option<NaiveDate>,
    limit: Option<u32>,
}

/// `GET /api/v1/carte-identita?dal=&al=&limit=`: the municipality's issued cards
/// (Italian civil dates, both included) with the fees due.
pub async fn elenco_carte(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    q: Result<Query<ElencoQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let inizio = anpr_service::clock::inizio_giorno_italiano;
    let elenco = state
        .registry
        .elenco_carte_identita(
            &ctx,
            q.dal.map(inizio),
            q.al.and_then(|d| d.succ_opt()).map(inizio),
            q.limit.unwrap_or(500).min(1000),
        )
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, elenco)
}

/// `GET /api/v1/comuni/{istat}/parametri`: the municipality's document parameters.
pub async fn leggi_parametri(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(istat): Path<String>,
) -> ApiResult {
    let comune = comune(&istat)?;
    let p = state
        .registry
        .leggi_parametri_comune(&ctx, &comune)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, p)
}

/// `PUT /api/v1/comuni/{istat}/parametri`: replaces them (what is left out takes its
/// default).
pub async fn salva_parametri(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(istat): Path<String>,
    body: Result<Json<RichiestaParametri>, JsonRejection>,
) -> ApiResult {
    let comune = comune(&istat)?;
    let Json(r) = body?;
    let p = state
        .registry
        .salva_parametri_comune(&ctx, &comune, r)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, p)
}
