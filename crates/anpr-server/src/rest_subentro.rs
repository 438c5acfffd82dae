//! REST face of the subentro (SPEC M-6.2/M-6.3): `POST /api/v1/subentro` uploads the
//! municipality's files (multipart, one `file` part per file, named as the file-level
//! checks require) and runs the onboarding in the caller's environment for the
//! caller's municipality; `GET /api/v1/subentro/{idOperazioneANPR}/esiti/{nome}`
//! downloads one of its outcome files. Handlers are thin: the checks and the load are
//! `anpr_subentro::servizio::importa_come`.
//!
//! Uploads are streamed to a temporary directory chunk by chunk (never held in
//! memory); outcome files are kept under the server's subentro directory
//! (`ANPR_ESITI_DIR`, default: the system's temporary directory), one directory per
//! environment and operation — where S001 (`soap/subentro.rs`) leaves its loads' too.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anpr_domain::caller::Ambiente;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::IdOperazioneAnpr;
use anpr_service::authz::Permesso;
use anpr_subentro::FileIngresso;
use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

/// Outcome files a caller may download.
pub(crate) const ESITI: &[&str] = &[
    "esiti.csv",
    "riepilogo.csv",
    "stato_file.csv",
    "anomalie_file.csv",
    "anomalie_bloccanti.csv",
    "anomalie_non_vincolanti.csv",
    "anomalie_agenzia_entrate.csv",
];

static CARICAMENTI: AtomicU64 = AtomicU64::new(0);

fn base_esiti(state: &AppState, ambiente: Ambiente) -> PathBuf {
    state.cartella_esiti.join(ambiente.as_str())
}

fn interno(ambiente: Ambiente, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "subentro upload");
    ApiError::bad_request(Anomalia::errore(
        anpr_service::error::CODICE_ERRORE_INTERNO,
        "Errore interno",
    ))
    .in_ambiente(ambiente)
}

pub async fn carica(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    mut multipart: Multipart,
) -> ApiResult {
    let ambiente = ctx.ambiente;
    // Authorised before a single byte is stored.
    state
        .registry
        .autorizza(&ctx, Permesso::Subentro, "subentro")
        .await
        .map_err(|e| ApiError::from_service(e, ambiente))?;
    let n = CARICAMENTI.fetch_add(1, Ordering::Relaxed);
    let cartella = std::env::temp_dir().join(format!("anpr-upload-{}-{n}", std::process::id()));
    tokio::fs::create_dir_all(&cartella)
        .await
        .map_err(|e| interno(ambiente, e))?;
    let esito = async {
        let mut files = Vec::new();
        while let Some(mut parte) = multipart.next_field().await.map_err(|e| {
            ApiError::bad_request(
                Anomalia::errore(
                    CODICE_VALORE_NON_VALIDO,
                    format!("Multipart non valido: {e}"),
                )
                .campo("file"),
            )
            .in_ambiente(ambiente)
        })? {
            let Some(nome) = parte.file_name().map(str::to_owned) else {
                return Err(ApiError::bad_request(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Nome del file mancante")
                        .campo("file"),
                )
                .in_ambiente(ambiente));
            };
            // Only the characters of the naming convention reach the file system; a
            // wrong name is then reported by the file-level checks (EN001).
            let sicuro: String = nome
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                .collect();
            let sicuro = if sicuro.is_empty() || sicuro.starts_with('.') {
                format!("file{}", files.len())
            } else {
                sicuro
            };
            let percorso = cartella.join(format!("{}-{sicuro}", files.len()));
            let mut f = tokio::fs::File::create(&percorso)
                .await
                .map_err(|e| interno(ambiente, e))?;
            while let Some(pezzo) = parte.chunk().await.map_err(|e| {
                ApiError::bad_request(
                    Anomalia::errore(
                        CODICE_VALORE_NON_VALIDO,
                        format!("Caricamento interrotto: {e}"),
                    )
                    .campo("file"),
                )
                .in_ambiente(ambiente)
            })? {
                f.write_all(&pezzo)
                    .await
                    .map_err(|e| interno(ambiente, e))?;
            }
            f.flush().await.map_err(|e| interno(ambiente, e))?;
            files.push(FileIngresso { nome, percorso });
        }
        let esiti = cartella.join("esiti");
        let e = anpr_subentro::servizio::importa_come(
            &state.registry,
            &ctx,
            files,
            &esiti,
            Arc::new(|_, _| {}),
        )
        .await
        .map_err(|e| ApiError::from_service(e, ambiente))?;
        let destinazione = base_esiti(&state, ambiente).join(e.id_operazione.to_string());
        tokio::fs::create_dir_all(&destinazione)
            .await
            .map_err(|e| interno(ambiente, e))?;
        for nome in ESITI {
            let da = esiti.join(nome);
            if tokio::fs::try_exists(&da).await.unwrap_or(false) {
                // Copy, not rename: the temporary directory may be on another file system.
                tokio::fs::copy(&da, destinazione.join(nome))
                    .await
                    .map_err(|e| interno(ambiente, e))?;
            }
        }
        Ok(e)
    }
    .await;
    if let Err(e) = tokio::fs::remove_dir_all(&cartella).await {
        tracing::warn!(error = %e, "removing the upload directory");
    }
    let e = esito?;
    let riepilogo: Vec<_> = e
        .riepilogo
        .iter()
        .map(|((codice, gravita), n)| json!({"codice": codice, "gravita": gravita, "conteggio": n}))
        .collect();
    ok(
        ambiente,
        json!({
            "idOperazioneANPR": e.id_operazione.to_string(),
            "stato": e.stato.as_str(),
            "soggettiLetti": e.soggetti_letti,
            "soggettiCaricati": e.soggetti_caricati,
            "famiglieCaricate": e.famiglie_caricate,
            "riepilogo": riepilogo,
            "anomalieBloccanti": e.bloccanti,
            "esiti": ESITI.iter().map(|n| format!("/api/v1/subentro/{}/esiti/{n}", e.id_operazione)).collect::<Vec<_>>(),
        }),
    )
}

pub async fn scarica_esito(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, nome)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ambiente = ctx.ambiente;
    state
        .registry
        .autorizza(&ctx, Permesso::Subentro, "subentro-esiti")
        .await
        .map_err(|e| ApiError::from_service(e, ambiente))?;
    let non_trovato = || {
        ApiError::not_found(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Esito non trovato").campo("esiti"),
        )
        .in_ambiente(ambiente)
    };
    let id: IdOperazioneAnpr = id.parse().map_err(|_| non_trovato())?;
    if !ESITI.contains(&nome.as_str()) {
        return Err(non_trovato());
    }
    // Only the municipality that onboarded sees its outcome files.
    let store = state
        .registry
        .store(ambiente)
        .map_err(|e| ApiError::from_service(e, ambiente))?;
    let op = store
        .operation(id)
        .await
        .map_err(|e| interno(ambiente, e))?
        .ok_or_else(non_trovato)?;
    if op.codice_servizio.as_str() != anpr_subentro::importa::CODICE_SERVIZIO_SUBENTRO
        || op.comune != ctx.comune
    {
        return Err(non_trovato());
    }
    let testo = tokio::fs::read(
        base_esiti(&state, ambiente)
            .join(id.to_string())
            .join(&nome),
    )
    .await
    .map_err(|_| non_trovato())?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], testo).into_response())
}
