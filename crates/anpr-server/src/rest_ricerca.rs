//! REST handlers for searches and monitoring (SPEC M-5.2, M-5.5):
//! `POST /api/v1/soggetti/ricerca`, `POST /api/v1/famiglie/ricerca` and
//! `GET /api/v1/operazioni`.
//!
//! Searches take their criteria in the body (personal identifiers never travel in
//! URLs); monitoring filters are query parameters, and its only record filter is the
//! registry's own national id. Malformed criteria or filters are a coded 400 listing
//! every outcome; rules met while searching (too many results, EN115) are a 422.

use anpr_service::monitoraggio::{FiltroOperazioni, ParametriMonitoraggio};
use anpr_service::ricerca::{
    CriteriRicerca, CriteriRicercaFamiglie, RichiestaRicercaFamiglie, RichiestaRicercaSoggetti,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ok_diretto, ApiResult};
use crate::AppState;

/// `POST /api/v1/soggetti/ricerca`: individual records matching one family of criteria,
/// as at `datiRichiesta.dataRiferimentoRichiesta`, with the sections asked for.
pub async fn ricerca_soggetti(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RichiestaRicercaSoggetti>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let criteri = CriteriRicerca::da_richiesta(&req)
        .map_err(|a| ApiError::bad_request_all(a).in_ambiente(ctx.ambiente))?;
    let soggetti = state
        .registry
        .ricerca_soggetti(&ctx, &criteri)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    // The hot consultation path (search by tax code): serialised straight to the body.
    ok_diretto(
        ctx.ambiente,
        &RispostaRicerca {
            totale: soggetti.len(),
            data_riferimento: criteri.data_riferimento,
            soggetti: &soggetti,
        },
    )
}

/// The answer to a subject search.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RispostaRicerca<'a, T> {
    totale: usize,
    data_riferimento: Option<NaiveDate>,
    soggetti: &'a [T],
}

/// `POST /api/v1/famiglie/ricerca`: family and cohabitation records with their members,
/// by national id, by a member, or at an address.
pub async fn ricerca_famiglie(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RichiestaRicercaFamiglie>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let criteri = CriteriRicercaFamiglie::da_richiesta(&req)
        .map_err(|a| ApiError::bad_request_all(a).in_ambiente(ctx.ambiente))?;
    let famiglie = state
        .registry
        .ricerca_famiglie(&ctx, &criteri)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(
        ctx.ambiente,
        json!({
            "totale": famiglie.len(),
            "dataRiferimento": criteri.data_riferimento,
            "famiglie": famiglie,
        }),
    )
}

/// `GET /api/v1/operazioni`: one page of the operations visible to the caller.
pub async fn elenco_operazioni(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    query: Result<Query<ParametriMonitoraggio>, QueryRejection>,
) -> ApiResult {
    let Query(parametri) = query?;
    let filtro = FiltroOperazioni::da_parametri(&parametri)
        .map_err(|a| ApiError::bad_request_all(a).in_ambiente(ctx.ambiente))?;
    let elenco = state
        .registry
        .elenco_operazioni(&ctx, &filtro)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, elenco)
}
