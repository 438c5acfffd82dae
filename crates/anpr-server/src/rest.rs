//! REST handlers: parse, call one use case, map the answer. JSON field names are the
//! ANPR vocabulary (the XSDs' Italian names in camelCase). Personal identifiers travel in
//! bodies, never in URLs (they would end up in access logs).

use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto};
use anpr_service::codice_fiscale::RichiestaCalcolo;
use anpr_service::tabelle::FiltroComuni;
use anpr_tables::StatoComune;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Wraps a successful payload with the environment.
pub(crate) fn ok<T: Serialize>(ambiente: anpr_domain::caller::Ambiente, body: T) -> ApiResult {
    let mut v = serde_json::to_value(body).map_err(|e| {
        tracing::error!(error = %e, "response serialisation failed");
        ApiError::bad_request(Anomalia::errore(
            anpr_service::error::CODICE_ERRORE_INTERNO,
            "Errore interno",
        ))
    })?;
    if let Value::Object(map) = &mut v {
        map.insert("ambiente".into(), json!(ambiente));
    }
    Ok(Json(v).into_response())
}

/// Like [`ok`], but the payload (a struct, serialised as a JSON object) is written
/// straight into the body with `ambiente` first, with no intermediate
/// [`serde_json::Value`]: for the hot read paths (searches and consultation), where
/// building and then re-walking a `Value` tree of whole records cost more than the
/// serialisation itself. The object's other keys keep the payload's field order.
pub(crate) fn ok_diretto<T: Serialize>(
    ambiente: anpr_domain::caller::Ambiente,
    body: &T,
) -> ApiResult {
    #[derive(Serialize)]
    struct ConAmbiente<'a, T> {
        ambiente: anpr_domain::caller::Ambiente,
        #[serde(flatten)]
        corpo: &'a T,
    }
    let bytes = serde_json::to_vec(&ConAmbiente {
        ambiente,
        corpo: body,
    })
    .map_err(|e| {
        tracing::error!(error = %e, "response serialisation failed");
        ApiError::bad_request(Anomalia::errore(
            anpr_service::error::CODICE_ERRORE_INTERNO,
            "Errore interno",
        ))
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}

fn parse_date(campo: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Data non valida",
            )
            .campo(campo)
            .valore(s)
            .atteso("una data esistente nel formato AAAA-MM-GG"),
        )
    })
}

fn parse_opt_date(campo: &str, s: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    s.map(|s| parse_date(campo, s)).transpose()
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    let mut ok = true;
    let mut ambienti = serde_json::Map::new();
    for a in state.registry.ambienti() {
        let up = match state.registry.store(a) {
            Ok(store) => store.ping().await.is_ok(),
            Err(_) => false,
        };
        ok &= up;
        ambienti.insert(
            a.as_str().into(),
            json!(if up { "ok" } else { "non disponibile" }),
        );
    }
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "environment": state.config.ambiente_predefinito,
        "ambiente": state.config.ambiente_predefinito,
        "ambienti": ambienti,
        "backend": state.config.backend,
        "tabelle": state.registry.tables().version().to_string(),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut testo = state.metrics.render();
    testo.push_str(&metriche_store(&state.registry));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], testo).into_response()
}

/// The storage backends' own figures (`Store::metriche`) in the Prometheus text
/// format: one series per environment, labelled `ambiente`.
fn metriche_store(registry: &anpr_service::Registry) -> String {
    use std::fmt::Write as _;
    let mut per_nome: std::collections::BTreeMap<&'static str, (&'static str, bool, String)> =
        std::collections::BTreeMap::new();
    for a in registry.ambienti() {
        let Ok(store) = registry.store(a) else {
            continue;
        };
        for m in store.metriche() {
            let voce = per_nome
                .entry(m.nome)
                .or_insert_with(|| (m.aiuto, m.contatore, String::new()));
            let _ = writeln!(
                voce.2,
                "{}{{ambiente=\"{}\"}} {}",
                m.nome,
                a.as_str(),
                m.valore
            );
        }
    }
    let mut out = String::new();
    for (nome, (aiuto, contatore, righe)) in per_nome {
        let tipo = if contatore { "counter" } else { "gauge" };
        let _ = write!(out, "# HELP {nome} {aiuto}\n# TYPE {nome} {tipo}\n{righe}");
    }
    out
}

pub async fn not_found(State(state): State<AppState>, Caller(ctx): Caller) -> ApiError {
    let err = anpr_service::ServiceError::NonTrovato {
        cosa: "percorso".into(),
        riferimento: state.registry.riferimento(None),
    };
    ApiError::from_service(err, ctx.ambiente)
}

pub async fn elenco_tabelle(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult {
    let tabelle = state
        .registry
        .elenco_tabelle(&ctx)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(
        ctx.ambiente,
        json!({ "totale": tabelle.len(), "versione": state.registry.tables().version().to_string(), "tabelle": tabelle }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComuniQuery {
    stato: Option<String>,
    data_riferimento: Option<String>,
    denominazione: Option<String>,
    codice_istat: Option<String>,
    codice_catastale: Option<String>,
}

pub async fn comuni(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    query: Result<Query<ComuniQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query?;
    let stato = q
        .stato
        .as_deref()
        .map(|s| {
            s.parse::<StatoComune>().map_err(|_| {
                ApiError::bad_request(
                    Anomalia::errore(
                        anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                        "Stato del comune non valido",
                    )
                    .campo("stato")
                    .valore(s)
                    .atteso("A (attivo), C (cessato) o D (da istituire)"),
                )
            })
        })
        .transpose()?;
    let filtro = FiltroComuni {
        stato,
        data_riferimento: parse_opt_date("dataRiferimento", q.data_riferimento.as_deref())?,
        denominazione: q.denominazione,
        codice_istat: q
            .codice_istat
            .map(|c| {
                c.parse::<CodiceIstatComune>()
                    .map_err(|e| ApiError::bad_request(Anomalia::from_invalid("codiceIstat", &e)))
            })
            .transpose()?,
        codice_catastale: q
            .codice_catastale
            .map(|c| {
                c.to_ascii_uppercase()
                    .parse::<CodiceCatastale>()
                    .map_err(|e| {
                        ApiError::bad_request(Anomalia::from_invalid("codiceCatastale", &e))
                    })
            })
            .transpose()?,
    };
    let elenco = state
        .registry
        .comuni(&ctx, &filtro)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, elenco)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TabellaQuery {
    data_riferimento: Option<String>,
}

pub async fn righe_tabella(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(nome): Path<String>,
    query: Result<Query<TabellaQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query?;
    let data = parse_opt_date("dataRiferimento", q.data_riferimento.as_deref())?;
    let righe = state
        .registry
        .righe_tabella(&ctx, &nome, data)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, righe)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalcoloBody {
    cognome: String,
    nome: String,
    sesso: String,
    data_nascita: String,
    luogo_nascita: String,
}

pub async fn calcola_cf(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<CalcoloBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let req = RichiestaCalcolo {
        cognome: b.cognome,
        nome: b.nome,
        sesso: b.sesso,
        data_nascita: b.data_nascita,
        luogo_nascita: b.luogo_nascita,
    };
    let r = state
        .registry
        .calcola_codice_fiscale(&ctx, &req)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, r)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodiceBody {
    codice_fiscale: String,
}

pub async fn verifica_cf(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<CodiceBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let r = state
        .registry
        .verifica_codice_fiscale(&ctx, &b.codice_fiscale)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, r)
}

pub async fn decodifica_cf(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<CodiceBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let r = state
        .registry
        .decodifica_codice_fiscale(&ctx, &b.codice_fiscale)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, r)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsultaSoggettoBody {
    #[serde(rename = "idANPR")]
    id_anpr: String,
    data_riferimento: Option<String>,
    /// Sections wanted (data minimisation); all when absent.
    sezioni: Option<Vec<String>>,
}

pub async fn consulta_soggetto(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<ConsultaSoggettoBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let id = b
        .id_anpr
        .parse::<IdAnprSoggetto>()
        .map_err(|e| ApiError::bad_request(Anomalia::from_invalid("idANPR", &e)))?;
    let data = parse_opt_date("dataRiferimento", b.data_riferimento.as_deref())?;
    let sezioni = b
        .sezioni
        .map(|keys| anpr_service::consultazione::sezioni_soggetto("sezioni", &keys))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let r = state
        .registry
        .leggi_scheda(&ctx, id, data, sezioni.as_deref())
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, r)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsultaFamigliaBody {
    #[serde(rename = "idANPR")]
    id_anpr: String,
    data_riferimento: Option<String>,
}

pub async fn consulta_famiglia(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<ConsultaFamigliaBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let id = b
        .id_anpr
        .parse::<IdAnprFamiglia>()
        .map_err(|e| ApiError::bad_request(Anomalia::from_invalid("idANPR", &e)))?;
    let data = parse_opt_date("dataRiferimento", b.data_riferimento.as_deref())?;
    let r = state
        .registry
        .leggi_famiglia(&ctx, id, data)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, r)
}

pub async fn verifica_audit(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult {
    let r = state
        .registry
        .verifica_audit(&ctx)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    ok(ctx.ambiente, r)
}

/// The services `POST /api/v1/operazioni/{codice}` runs.
pub const SERVIZI: &[&str] = &[
    "1001", "1002", "1010", "1013", "1014", "2001", "2003", "2009", "2011", "5001", "5005", "5008",
    "5010", "5012", "5013", "5014", "5021", "A001", "A002", "A006",
];

/// Our code for a service code this release does not implement yet.
pub const CODICE_SERVIZIO_NON_DISPONIBILE: &str = "EV040";

/// Parses the body of an operation into the service's request type, with a coded error.
fn corpo<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, Dispatch> {
    serde_json::from_value(body.clone()).map_err(|e| {
        Dispatch::Corpo(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Corpo della richiesta non conforme",
            )
            .valore(e.to_string())
            .atteso("un documento conforme allo schema dell'operazione (OpenAPI)"),
        )
    })
}

/// Why [`esegui_servizio`] gave no answer document.
#[derive(Debug)]
pub(crate) enum Dispatch {
    /// Not a service of this release ([`SERVIZI`]).
    NonDisponibile,
    /// The body does not parse into the service's request.
    Corpo(Anomalia),
    /// The use case failed (denied, internal...).
    Servizio(anpr_service::ServiceError),
}

/// Runs registry operation `codice` on `body` (the JSON document of
/// `docs/OPERAZIONI.md`): the dispatch the REST and SOAP edges share.
pub(crate) async fn esegui_servizio(
    r: &anpr_service::Registry,
    ctx: &anpr_domain::caller::CallerContext,
    codice: &str,
    body: &Value,
) -> Result<anpr_service::operazioni::RispostaOperazione, Dispatch> {
    let result = match codice {
        "1001" => r.iscrizione_nascita(ctx, &corpo(body)?, body).await,
        "1002" => r.iscrizione_altri_motivi(ctx, &corpo(body)?, body).await,
        "1010" => r.iscrizione_convivenza(ctx, &corpo(body)?, body).await,
        "A001" => r.iscrizione_aire(ctx, "A001", &corpo(body)?, body).await,
        "A002" => r.iscrizione_aire(ctx, "A002", &corpo(body)?, body).await,
        "5001" => r.mutazione_famiglia(ctx, &corpo(body)?, body).await,
        "5005" => r.mutazione_residenza(ctx, &corpo(body)?, body).await,
        "5008" => r.mutazione_scheda(ctx, &corpo(body)?, body).await,
        "5010" => r.mutazione_certificabilita(ctx, &corpo(body)?, body).await,
        "5013" => r.revoca_dato(ctx, &corpo(body)?, body).await,
        "5014" => r.rettifica_dati(ctx, &corpo(body)?, body).await,
        "5021" => r.gestione_poligamia(ctx, &corpo(body)?, body).await,
        "A006" => r.mutazione_aire(ctx, &corpo(body)?, body).await,
        "2001" => r.cancellazione_decesso(ctx, &corpo(body)?, body).await,
        "2003" => r.cancellazione_altri_motivi(ctx, &corpo(body)?, body).await,
        "2009" => r.archiviazione_convivenza(ctx, &corpo(body)?, body).await,
        "1014" => {
            r.procedimento_amministrativo(ctx, &corpo(body)?, body)
                .await
        }
        c @ ("1013" | "5012" | "2011") => {
            let c: &'static str = match c {
                "1013" => "1013",
                "5012" => "5012",
                _ => "2011",
            };
            r.annulla_operazione(ctx, c, &corpo(body)?, body).await
        }
        _ => return Err(Dispatch::NonDisponibile),
    };
    result.map_err(Dispatch::Servizio)
}

/// `POST /api/v1/operazioni/{codice}`: runs a registry operation. The answer is the
/// stored response document, identical on every replay of the same `idOperazioneComune`.
pub async fn operazione(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(codice): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let Json(body) = body?;
    let r = &state.registry;
    let result = match esegui_servizio(r, &ctx, &codice, &body).await {
        Ok(risposta) => Ok(risposta),
        Err(Dispatch::Servizio(e)) => Err(e),
        Err(Dispatch::Corpo(a)) => return Err(ApiError::bad_request(a)),
        Err(Dispatch::NonDisponibile) => {
            return Err(ApiError::from_service(
                anpr_service::ServiceError::Rifiutata {
                    anomalie: vec![Anomalia::errore(
                        CODICE_SERVIZIO_NON_DISPONIBILE,
                        "Servizio non disponibile in questa versione",
                    )
                    .campo("codice")
                    .valore(codice.as_str())
                    .atteso(format!("uno dei servizi {}", SERVIZI.join(", ")))],
                    riferimento: r.riferimento(None),
                },
                ctx.ambiente,
            ))
        }
    };
    let risposta = result.map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let status = if risposta.eseguita {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        risposta.documento,
    )
        .into_response())
}
