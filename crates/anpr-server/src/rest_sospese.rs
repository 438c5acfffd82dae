//! REST handlers for suspended operations (SPEC M-2.5) under `/api/v1/operazioni-sospese`.
//!
//! Saving, listing, resuming and deleting are thin calls to the service, which applies
//! the owner/super-user rule. Personal identifiers (the subject's id or codice fiscale,
//! the operator's CF) filter a listing only in the body of `POST .../ricerca`, never in
//! the URL; the `GET` listing takes the non-personal filters.

use anpr_domain::error::Anomalia;
use anpr_service::sospese::{FiltroSospese, RichiestaSospesa};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// The id of a suspended operation in a path.
fn id_da_percorso(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
        ApiError::bad_request(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Valore non valido per idOperazioneSospesa",
            )
            .campo("idOperazioneSospesa")
            .valore(raw.chars().take(64).collect::<String>())
            .atteso("un numero positivo"),
        )
    })
}

/// `POST /api/v1/operazioni-sospese`: saves a new suspended operation, or a new content
/// for one (`idOperazioneSospesa` in the body).
pub async fn salva(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RichiestaSospesa>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let saved = state
        .registry
        .salva_sospesa(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, saved)
}

/// Non-personal filters of the `GET` listing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ElencoQuery {
    codice_servizio: Option<String>,
    limite: Option<u32>,
}

async fn elenco_con(
    state: &AppState,
    ctx: anpr_domain::caller::CallerContext,
    filtro: FiltroSospese,
) -> ApiResult {
    let elenco = state
        .registry
        .elenco_sospese(&ctx, &filtro)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(
        ctx.ambiente,
        json!({"totale": elenco.len(), "operazioniSospese": elenco}),
    )
}

/// `GET /api/v1/operazioni-sospese`: the caller's suspended operations (a super-user's:
/// the whole municipality's), without their saved requests.
pub async fn elenco(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    query: Result<Query<ElencoQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query?;
    let filtro = FiltroSospese {
        codice_servizio: q.codice_servizio,
        limite: q.limite,
        ..Default::default()
    };
    elenco_con(&state, ctx, filtro).await
}

/// `POST /api/v1/operazioni-sospese/ricerca`: the listing with every filter (subject,
/// codice fiscale, operator) in the body.
pub async fn ricerca(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<FiltroSospese>, JsonRejection>,
) -> ApiResult {
    let Json(filtro) = body?;
    elenco_con(&state, ctx, filtro).await
}

/// `GET /api/v1/operazioni-sospese/{id}`: one suspended operation with its saved
/// request, to resume it.
pub async fn riprendi(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let id = id_da_percorso(&id)?;
    let s = state
        .registry
        .riprendi_sospesa(&ctx, id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, s)
}

/// `DELETE /api/v1/operazioni-sospese/{id}`: abandons a suspended operation.
pub async fn elimina(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let id = id_da_percorso(&id)?;
    state
        .registry
        .elimina_sospesa(&ctx, id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(
        ctx.ambiente,
        json!({"esito": "OK", "idOperazioneSospesa": id.to_string()}),
    )
}
