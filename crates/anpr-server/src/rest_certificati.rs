//! REST handlers for certificates (SPEC M-4.1, service 6001) under `/api/v1/certificati`.
//!
//! Issuing answers JSON with the PDF in base64 (the same shape the SOAP `certificatoPdf`
//! carries); `GET /certificati/{id}/pdf` prints an issued certificate again as
//! `application/pdf`. The certificate id in paths is the random, unguessable one, not a
//! personal identifier. `GET /certificati/verifica?c=` is public (no login): it is what
//! the QR code points to, and answers only minimal, non-personal data.

use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::IdAnprSoggetto;
use anpr_service::certificati::{Richiedente, RichiestaCertificato};
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

/// Body of `POST /api/v1/certificati`, shaped after `Richiesta6001`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaJson {
    #[serde(rename = "idANPR")]
    id_anpr: u64,
    tipi_certificato: Vec<u8>,
    lingua_certificato: Option<String>,
    data_riferimento: Option<NaiveDate>,
    richiedente: Option<Richiedente>,
    esenzione_bollo: Option<String>,
    descrizione_esenzione_bollo: Option<String>,
    uso: Option<String>,
    #[serde(default)]
    forza_certificazione: bool,
}

fn id_soggetto(v: u64) -> Result<IdAnprSoggetto, ApiError> {
    IdAnprSoggetto::new(v).map_err(|_| {
        ApiError::bad_request(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Valore non valido per idANPR")
                .campo("idANPR")
                .valore(v.to_string()),
        )
    })
}

/// A certificate id in a path: 32 lowercase hex digits.
fn id_certificato(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::bad_request(
            Anomalia::errore(
                CODICE_VALORE_NON_VALIDO,
                "Identificativo del certificato non valido",
            )
            .campo("idCertificato")
            .valore(raw.chars().take(64).collect::<String>())
            .atteso("32 cifre esadecimali"),
        ))
    }
}

/// `POST /api/v1/certificati`: issues a certificate.
pub async fn emetti(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RichiestaJson>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let req = RichiestaCertificato {
        soggetto: id_soggetto(r.id_anpr)?,
        tipi: r.tipi_certificato,
        lingua: r.lingua_certificato,
        data_riferimento: r.data_riferimento,
        richiedente: r.richiedente,
        esenzione_bollo: r.esenzione_bollo,
        descrizione_esenzione_bollo: r.descrizione_esenzione_bollo,
        uso: r.uso,
        forza_certificazione: r.forza_certificazione,
    };
    let registry = &state.registry;
    let (emesso, pdf) = registry
        .emetti_certificato(&ctx, registry.certificati(), req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let pdf = base64::engine::general_purpose::STANDARD.encode(pdf);
    ok(
        ctx.ambiente,
        json!({"certificato": emesso, "certificatoPdf": pdf}),
    )
}

/// `GET /api/v1/certificati/{id}/pdf`: the issued certificate's PDF, printed again.
pub async fn pdf(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = id_certificato(&id)?;
    let registry = &state.registry;
    let (_, pdf) = registry
        .stampa_certificato(&ctx, registry.certificati(), &id)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnnullamentoJson {
    motivo: String,
}

/// `POST /api/v1/certificati/{id}/annulla`: annulment for material error.
pub async fn annulla(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    body: Result<Json<AnnullamentoJson>, JsonRejection>,
) -> ApiResult {
    let id = id_certificato(&id)?;
    let Json(b) = body?;
    let registry = &state.registry;
    let emesso = registry
        .annulla_certificato(&ctx, registry.certificati(), &id, &b.motivo)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, json!({"certificato": emesso}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ElencoQuery {
    dal: Option<NaiveDate>,
    al: Option<NaiveDate>,
    limit: Option<u32>,
}

/// `GET /api/v1/certificati?dal=&al=`: issued certificates (Italian civil dates, both
/// included) with the sums due.
pub async fn elenco(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    q: Result<Query<ElencoQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let inizio = anpr_service::clock::inizio_giorno_italiano;
    let registry = &state.registry;
    let elenco = registry
        .elenco_certificati(
            &ctx,
            registry.certificati(),
            q.dal.map(inizio),
            q.al.and_then(|d| d.succ_opt()).map(inizio),
            q.limit.unwrap_or(500).min(1000),
        )
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, elenco)
}

#[derive(Debug, Deserialize)]
pub struct VerificaQuery {
    c: String,
}

/// `GET /api/v1/certificati/verifica?c=`: public verification of a QR payload.
pub async fn verifica(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    q: Result<Query<VerificaQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let registry = &state.registry;
    let esito = registry
        .verifica_certificato(&ctx, registry.certificati(), &q.c)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, esito)
}
