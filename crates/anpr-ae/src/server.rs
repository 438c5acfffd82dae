//! The simulator's HTTP face: the protocol of [`crate::protocollo`], served by axum.
//!
//! Handlers parse the body into the adapter's types (coded `400` when they cannot), call
//! the simulator and serialise its answer. The simulator works in memory under a short
//! lock, so handlers call it directly.

use std::sync::Arc;

use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::protocollo::{
    ErroreWire, EsitoWire, PosizioneWire, RichiestaAllineamentoWire, RichiestaCollegamentoWire,
    RichiestaConsultaWire, RichiestaValidaWire, RispostaConsultaWire, MAX_BYTE_RICHIESTA,
    PERCORSO_COLLEGA, PERCORSO_CONFERMA_AE, PERCORSO_CONFERMA_ANPR, PERCORSO_CONSULTA,
    PERCORSO_VALIDA,
};
use crate::simulatore::Simulatore;

type Stato = State<Arc<Simulatore>>;

/// The router serving `sim` with the protocol the [`ClientHttp`](crate::ClientHttp) speaks.
pub fn router(sim: Arc<Simulatore>) -> Router {
    Router::new()
        .route(PERCORSO_VALIDA, solo_post(post(valida)))
        .route(PERCORSO_CONSULTA, solo_post(post(consulta)))
        .route(PERCORSO_CONFERMA_AE, solo_post(post(conferma_ae)))
        .route(PERCORSO_CONFERMA_ANPR, solo_post(post(conferma_anpr)))
        .route(PERCORSO_COLLEGA, solo_post(post(collega)))
        .fallback(percorso_sconosciuto)
        .with_state(sim)
}

fn solo_post(metodo: MethodRouter<Arc<Simulatore>>) -> MethodRouter<Arc<Simulatore>> {
    metodo.fallback(metodo_non_ammesso)
}

fn errore(status: StatusCode, anomalia: Anomalia) -> Response {
    (
        status,
        Json(ErroreWire {
            anomalie: vec![anomalia],
        }),
    )
        .into_response()
}

async fn percorso_sconosciuto() -> Response {
    errore(
        StatusCode::NOT_FOUND,
        Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Servizio sconosciuto")
            .campo("percorso")
            .atteso("/ae/v1/valida, consulta, conferma-ae, conferma-anpr o collega"),
    )
}

async fn metodo_non_ammesso() -> Response {
    errore(
        StatusCode::METHOD_NOT_ALLOWED,
        Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Metodo non ammesso")
            .campo("metodo")
            .atteso("POST"),
    )
}

/// Reads and parses the body, or answers with the coded refusal.
async fn leggi<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, Response> {
    let troppo_grande = || {
        errore(
            StatusCode::PAYLOAD_TOO_LARGE,
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Richiesta troppo grande")
                .campo("corpo")
                .atteso(format!("al più {MAX_BYTE_RICHIESTA} byte")),
        )
    };
    let dichiarata = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if dichiarata.is_some_and(|n| n > MAX_BYTE_RICHIESTA) {
        return Err(troppo_grande());
    }
    // A body that cannot be read within the limit is either too large or abandoned by
    // the client, which then reads no answer: one refusal covers both.
    let bytes = to_bytes(body, MAX_BYTE_RICHIESTA)
        .await
        .map_err(|_| troppo_grande())?;
    serde_json::from_slice(&bytes).map_err(|e| {
        errore(
            StatusCode::BAD_REQUEST,
            Anomalia::errore(
                CODICE_VALORE_NON_VALIDO,
                format!("Corpo della richiesta non conforme al protocollo: {e}"),
            )
            .campo("corpo")
            .atteso("un oggetto JSON come da protocollo /ae/v1"),
        )
    })
}

async fn valida(State(sim): Stato, headers: HeaderMap, body: Body) -> Response {
    let wire: RichiestaValidaWire = match leggi(&headers, body).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match wire.in_dominio() {
        Ok(req) => Json(EsitoWire::from(&sim.esegui_valida(&req))).into_response(),
        Err(a) => errore(StatusCode::BAD_REQUEST, a),
    }
}

async fn consulta(State(sim): Stato, headers: HeaderMap, body: Body) -> Response {
    let wire: RichiestaConsultaWire = match leggi(&headers, body).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let posizione = sim.posizione(&wire.codice_fiscale);
    Json(RispostaConsultaWire {
        posizione: posizione.as_ref().map(PosizioneWire::from),
    })
    .into_response()
}

async fn conferma_ae(State(sim): Stato, headers: HeaderMap, body: Body) -> Response {
    let wire: RichiestaAllineamentoWire = match leggi(&headers, body).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match wire.in_dominio() {
        Ok(req) => Json(EsitoWire::from(&sim.esegui_conferma_dati_ae(&req))).into_response(),
        Err(a) => errore(StatusCode::BAD_REQUEST, a),
    }
}

async fn conferma_anpr(State(sim): Stato, headers: HeaderMap, body: Body) -> Response {
    let wire: RichiestaAllineamentoWire = match leggi(&headers, body).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match wire.in_dominio() {
        Ok(req) => Json(EsitoWire::from(&sim.esegui_conferma_dati_anpr(&req))).into_response(),
        Err(a) => errore(StatusCode::BAD_REQUEST, a),
    }
}

async fn collega(State(sim): Stato, headers: HeaderMap, body: Body) -> Response {
    let wire: RichiestaCollegamentoWire = match leggi(&headers, body).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match wire.in_dominio() {
        Ok(req) => Json(EsitoWire::from(&sim.esegui_collega(&req))).into_response(),
        Err(a) => errore(StatusCode::BAD_REQUEST, a),
    }
}
