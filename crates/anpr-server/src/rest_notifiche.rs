//! REST for the notifications addressed to the caller's municipality (the web
//! application's "Notifiche"; the SOAP form is 3007/3003/3005):
//! `GET /api/v1/notifiche` lists them with their contents, without taking them;
//! `POST /api/v1/notifiche/presa-in-carico` takes the ones the client has stored (the
//! acknowledgement of the push model, *esito della presa in carico*). The reads, the
//! states and the audit are `anpr_service::notifiche`'s.

use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::IdOperazioneAnpr;
use anpr_service::notifiche::{
    Contenuto, Lettura, ParametriNotifiche, Selezione, StatoLavorazione, Voce,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// Most notifications one acknowledgement takes.
pub const MAX_PRESE: usize = 100;

fn notifica(v: &Voce) -> Option<Value> {
    let Contenuto::Notifica(m) = &v.contenuto else {
        return None;
    };
    Some(json!({
        "idOperazioneANPR": v.id_operazione_anpr.to_string(),
        "tipo": v.tipo,
        "stato": if v.stato == StatoLavorazione::NotificheFruite { "presa" } else { "daPrendere" },
        "creataIl": m.creato_il,
        "presaIl": m.consegnato_il,
        "contenuto": m.message.payload,
    }))
}

/// `GET /api/v1/notifiche`: one page of the municipality's notifications.
pub async fn elenco(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    query: Result<Query<ParametriNotifiche>, QueryRejection>,
) -> ApiResult {
    let Query(parametri) = query?;
    let sel = Selezione::da_parametri(&parametri)
        .map_err(|a| ApiError::bad_request_all(a).in_ambiente(ctx.ambiente))?;
    let mut voci = state
        .registry
        .richieste_notifiche(&ctx, &sel, Lettura::CONTENUTI)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    // The selection asked for one more than the page.
    let pagina = sel.limite.saturating_sub(1) as usize;
    let altre = voci.len() > pagina;
    voci.truncate(pagina);
    let prossima = if altre {
        voci.last().map(|v| v.id_operazione_anpr.to_string())
    } else {
        None
    };
    ok(
        ctx.ambiente,
        json!({
            "notifiche": voci.iter().filter_map(notifica).collect::<Vec<_>>(),
            "prossimaPagina": prossima,
        }),
    )
}

/// The body of an acknowledgement.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresaInCarico {
    /// The `idOperazioneANPR` of the notifications stored by the client.
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: Vec<String>,
}

/// `POST /api/v1/notifiche/presa-in-carico`: takes the notifications named (those
/// already taken stay so); ids naming none of the municipality's are listed apart.
pub async fn presa_in_carico(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<PresaInCarico>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body?;
    let mut errori = Vec::new();
    if req.id_operazione_anpr.is_empty() || req.id_operazione_anpr.len() > MAX_PRESE {
        errori.push(
            Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Notifiche da prendere in carico")
                .campo("idOperazioneANPR")
                .valore(req.id_operazione_anpr.len().to_string())
                .atteso(format!("da 1 a {MAX_PRESE} identificativi")),
        );
    }
    let mut ids = Vec::new();
    for (i, raw) in req.id_operazione_anpr.iter().enumerate() {
        match raw.trim().parse::<IdOperazioneAnpr>() {
            Ok(id) => ids.push(id),
            Err(_) => errori.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Identificativo non valido")
                    .campo(format!("idOperazioneANPR[{i}]"))
                    .valore(raw.clone())
                    .atteso("un idOperazioneANPR numerico"),
            ),
        }
    }
    if !errori.is_empty() {
        return Err(ApiError::bad_request_all(errori).in_ambiente(ctx.ambiente));
    }
    let esiti = state
        .registry
        .prendi_notifiche(&ctx, &ids)
        .await
        .map_err(|e| ApiError::from_service(e, ctx.ambiente))?;
    let (prese, non_trovate): (Vec<_>, Vec<_>) = esiti.into_iter().partition(|(_, t)| *t);
    let testo = |v: Vec<(IdOperazioneAnpr, bool)>| {
        v.into_iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
    };
    let (prese, non_trovate) = (testo(prese), testo(non_trovate));
    ok(
        ctx.ambiente,
        json!({"prese": prese, "nonTrovate": non_trovate}),
    )
}
