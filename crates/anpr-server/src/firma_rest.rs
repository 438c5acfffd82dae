//! Signed REST requests (`Agid-JWT-Signature`, the Italian interoperability pattern):
//! a layer that, when the header is present, reads the body (within the size limit),
//! verifies the JWS, the body digest, the certificate (our CA, CRL) and the user
//! (`anpr_sicurezza::jws`), and the workstation's own signature when the request carries
//! one ([`INTESTAZIONE_FIRMA_POSTAZIONE`]), and attaches the verified sender for the
//! caller extractor.
//! A refused signature is a coded 403 and a failed-login audit entry; the use case then
//! authorises the user's profiles with the permission matrix as for every channel.

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::error::Anomalia;
use anpr_sicurezza::jws::{
    digest_corpo, verifica_postazione, verifica_richiesta_con_digest, DigestInCorso,
    INTESTAZIONE_FIRMA, INTESTAZIONE_FIRMA_POSTAZIONE,
};
use anpr_sicurezza::wssec::{MittenteVerificato, Politica};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::caller::{
    CODICE_IDENTITA_NON_AMMESSA, CODICE_PRODUZIONE_SENZA_TLS, HEADER_RICHIESTA_AMBIENTE,
};
use crate::error::ApiError;
use crate::tls::ConnessioneTls;
use crate::AppState;

/// Largest signed subentro upload: its body is stored on disk while its digest is
/// computed, then handed on to the upload handler from there.
pub const MASSIMO_SUBENTRO_FIRMATO: u64 = 4 * 1024 * 1024 * 1024;

static DEPOSITI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Stores `body` in an unnamed temporary file (unlinked as soon as it is created) and
/// computes its digest on the way; returns the digest and the body read back from the
/// file as a stream. `Err(true)` when the body is over `massimo`, `Err(false)` when
/// it cannot be read or stored.
async fn deposita(body: Body, massimo: u64) -> Result<(String, Body), bool> {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let n = DEPOSITI.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let percorso = std::env::temp_dir().join(format!("anpr-firmato-{}-{n}", std::process::id()));
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&percorso)
        .await
        .map_err(|_| false)?;
    let _ = tokio::fs::remove_file(&percorso).await;
    let mut digest = DigestInCorso::default();
    let mut letti = 0u64;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(dati) = frame.map_err(|_| false)?.into_data() else {
            continue;
        };
        letti += dati.len() as u64;
        if letti > massimo {
            return Err(true);
        }
        digest.aggiungi(&dati);
        file.write_all(&dati).await.map_err(|_| false)?;
    }
    file.flush().await.map_err(|_| false)?;
    file.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(|_| false)?;
    let flusso = tokio_util::io::ReaderStream::new(file);
    Ok((digest.valore(), Body::from_stream(flusso)))
}

/// The sender proved by a request's JWS.
#[derive(Debug, Clone)]
pub struct IdentitaFirmata(pub MittenteVerificato);

fn rifiuto(codice: &str, testo: String, ambiente: Ambiente) -> Response {
    ApiError::forbidden(
        Anomalia::errore(codice, testo).campo(INTESTAZIONE_FIRMA),
        ambiente,
    )
    .into_response()
}

/// The layer: verifies requests carrying [`INTESTAZIONE_FIRMA`], passes the others on.
pub async fn verifica(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ambiente = req
        .headers()
        .get(HEADER_RICHIESTA_AMBIENTE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(state.config.ambiente_predefinito);
    let postazione = req
        .headers()
        .get(INTESTAZIONE_FIRMA_POSTAZIONE)
        .map(|v| v.to_str().map(str::to_owned));
    let Some(jws) = req.headers().get(INTESTAZIONE_FIRMA) else {
        if postazione.is_some() {
            // The workstation endorses a signed request; alone it proves nothing.
            return rifiuto(
                anpr_sicurezza::errore::CODICE_SICUREZZA_MANCANTE,
                format!("{INTESTAZIONE_FIRMA_POSTAZIONE} senza {INTESTAZIONE_FIRMA}"),
                ambiente,
            );
        }
        return next.run(req).await;
    };
    let (Ok(jws), Ok(postazione)) = (jws.to_str().map(str::to_owned), postazione.transpose())
    else {
        return rifiuto(
            anpr_sicurezza::errore::CODICE_SICUREZZA_MANCANTE,
            "Intestazione non ASCII".into(),
            ambiente,
        );
    };
    let digest = req
        .headers()
        .get("digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(sic) = state.registry.sicurezza_configurata().cloned() else {
        return rifiuto(
            anpr_service::sicurezza::CODICE_SICUREZZA_NON_CONFIGURATA,
            "Componente di sicurezza non configurato".into(),
            ambiente,
        );
    };
    let (mut parts, body) = req.into_parts();
    // The subentro upload takes files of any size: stored on disk, not in memory.
    let caricamento =
        parts.method == axum::http::Method::POST && parts.uri.path() == crate::PERCORSO_SUBENTRO;
    let (limite, letto) = if caricamento {
        (
            MASSIMO_SUBENTRO_FIRMATO,
            deposita(body, MASSIMO_SUBENTRO_FIRMATO).await,
        )
    } else {
        let limite = crate::MAX_BODY_BYTES as u64;
        let letto = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
            .await
            .map(|b| (digest_corpo(&b), Body::from(b)))
            .map_err(|_| true);
        (limite, letto)
    };
    let (calcolato, corpo) = match letto {
        Ok(l) => l,
        Err(_) => {
            return ApiError::bad_request(
                Anomalia::errore(
                    anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                    "Corpo della richiesta illeggibile o troppo grande",
                )
                .atteso(format!("al massimo {limite} byte")),
            )
            .in_ambiente(ambiente)
            .into_response()
        }
    };
    let fiducia = sic.fiducia();
    let politica = Politica::standard(&fiducia, state.registry.clock().now());
    // Any profile: which one the operation needs is the use case's decision (matrix).
    let esito = verifica_richiesta_con_digest(
        &jws,
        digest.as_deref(),
        &calcolato,
        &politica,
        &*sic.direttorio(),
        &Profilo::ALL,
        None,
    );
    let esito = esito.and_then(|mut m| {
        if let Some(p) = &postazione {
            verifica_postazione(p, &jws, &mut m, &politica)?;
        }
        Ok(m)
    });
    match esito {
        Ok(m) => {
            parts.extensions.insert(IdentitaFirmata(m));
            next.run(Request::from_parts(parts, corpo)).await
        }
        Err(e) => {
            let _ = state
                .registry
                .registra_accesso_fallito(ambiente, &format!("jws:{}", e.codice()))
                .await;
            rifiuto(e.codice(), e.to_string(), ambiente)
        }
    }
}

/// The caller of a signed request. Its workstation is the one its signature proves (a
/// workstation certificate signed it, or the workstation's own JWS endorses it), else
/// the one of the mutual-TLS connection, which must be of the same municipality; in
/// `produzione` it needs TLS and a proved workstation, as a signed SOAP message does
/// ([`crate::caller::con_postazione_tls`]). Identity headers never mix in.
pub async fn chiamante(
    f: IdentitaFirmata,
    tls: Option<&ConnessioneTls>,
    dichiarata: bool,
    ambiente: Ambiente,
    state: &AppState,
) -> Result<CallerContext, ApiError> {
    let m = f.0;
    if dichiarata {
        return Err(ApiError::forbidden(
            Anomalia::errore(
                CODICE_IDENTITA_NON_AMMESSA,
                "Identità dichiarata tramite intestazioni su una richiesta firmata",
            )
            .campo(INTESTAZIONE_FIRMA),
            ambiente,
        ));
    }
    if ambiente == Ambiente::Produzione && tls.is_none() {
        return Err(ApiError::forbidden(
            Anomalia::errore(
                CODICE_PRODUZIONE_SENZA_TLS,
                "L'ambiente produzione è raggiungibile solo con TLS reciproco",
            )
            .campo(HEADER_RICHIESTA_AMBIENTE),
            ambiente,
        ));
    }
    let ctx = CallerContext {
        ambiente,
        comune: m.firma.comune.parse().ok(),
        utente: m.firma.utente,
        profili: m.profili,
        postazione: m.firma.postazione,
        canale: Canale::Rest,
    };
    crate::caller::con_postazione_tls(
        state,
        ctx,
        tls.and_then(|t| t.certificato.as_deref())
            .map(Vec::as_slice),
    )
    .await
    .map_err(|a| ApiError::forbidden(a, ambiente))
}
