//! REST handler for searching administrative proceedings (SPEC M-2.6). Opening and
//! changing them is service 1014, `POST /api/v1/operazioni/1014` (see `rest`).

use anpr_service::procedimenti::RicercaProcedimenti;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// `POST /api/v1/procedimenti/ricerca`: the municipality's proceedings matching the
/// filters, with their linked subjects and operations, as at `dataRiferimento` or now.
pub async fn ricerca(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RicercaProcedimenti>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let esito = state
        .registry
        .ricerca_procedimenti(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, esito)
}
