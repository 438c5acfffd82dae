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

/// OpenAPI entries of the extraction and statistics endpoints (merged by `openapi`).
pub(crate) fn paths_openapi(ambiente: &serde_json::Value) -> serde_json::Value {
    let json_body = serde_json::json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
    let errori = serde_json::json!({
        "400": {"description": "Richiesta non valida", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}},
        "403": {"description": "Accesso negato", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}},
        "404": {"description": "Non trovato", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}},
        "422": {"description": "Rifiutata (codice ANPR)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}}
    });
    let accettata = |s: &str| {
        let mut r = errori.clone();
        r["202"] = serde_json::json!({"description": s, "content": {"application/json": {"schema": {"type": "object", "properties": {"idOperazioneANPR": {"type": "string"}, "statoRichiesta": {"type": "string"}}}}}});
        r["200"] = serde_json::json!({"description": "Richiesta già presente con lo stesso idOperazioneComune"});
        r
    };
    let ok = |s: &str, tipo: &str| {
        let mut r = errori.clone();
        r["200"] = serde_json::json!({"description": s, "content": {tipo: {}}});
        r
    };
    let id = serde_json::json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "idOperazioneANPR della richiesta"});
    serde_json::json!({
        "/api/v1/estrazioni": {
            "post": {"summary": "4001: estrazione asincrona di dati anagrafici (criteri di tipoCriteriRicerca4001, massimo 2.000 soggetti; estrazione massiva solo Sindaco)", "parameters": [ambiente], "requestBody": json_body, "responses": accettata("Richiesta accodata")},
            "get": {"summary": "4005: elenco delle richieste del comune", "parameters": [ambiente,
                {"name": "statoRichiesta", "in": "query", "schema": {"type": "string", "enum": ["0", "1", "2", "3", "99"]}},
                {"name": "servizio", "in": "query", "schema": {"type": "string"}},
                {"name": "dal", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "al", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "dopo", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                "responses": ok("Richieste", "application/json")}
        },
        "/api/v1/estrazioni/rivestimento": {"post": {"summary": "4002: rivestimento di un file di codici fiscali (o idANPR), al massimo 2.000", "parameters": [ambiente], "requestBody": json_body, "responses": accettata("Richiesta accodata")}},
        "/api/v1/estrazioni/elenchi": {"post": {"summary": "4004: elenchi di ausilio (1 CF non validati, 2 CF errati)", "parameters": [ambiente], "requestBody": json_body, "responses": accettata("Richiesta accodata")}},
        "/api/v1/estrazioni/{id}": {"get": {"summary": "4005: stato ed esito di una richiesta", "parameters": [ambiente, id], "responses": ok("Stato della richiesta", "application/json")}},
        "/api/v1/estrazioni/{id}/file": {"get": {"summary": "7002: file prodotto (CSV o XLSX); EN108/EN109 se non ancora pronto, EV303 senza file", "parameters": [ambiente, id], "responses": ok("File", "application/octet-stream")}},
        "/api/v1/statistiche/prospetti": {"post": {"summary": "4003: calcolo di un prospetto ISTAT (1 mensile; 2-5 annuali)", "parameters": [ambiente], "requestBody": json_body, "responses": accettata("Calcolo accodato")}},
        "/api/v1/statistiche/prospetti/{id}": {"get": {"summary": "Prospetto calcolato (righe della tabella Righe dettaglio prospetti statistici)", "parameters": [ambiente, id], "responses": ok("Prospetto", "application/json")}},
        "/api/v1/statistiche/prospetti/{id}/stampa": {"get": {"summary": "Stampa del prospetto: PDF/A o CSV", "parameters": [ambiente, id, {"name": "formato", "in": "query", "schema": {"type": "string", "enum": ["pdf", "csv"]}}], "responses": ok("Stampa", "application/pdf")}},
        "/api/v1/statistiche/grafico": {"get": {"summary": "Grafico SVG della serie mensile dell'anno (dai prospetti mensili calcolati)", "parameters": [ambiente, {"name": "anno", "in": "query", "required": true, "schema": {"type": "string"}}], "responses": ok("SVG", "image/svg+xml")}}
    })
}
