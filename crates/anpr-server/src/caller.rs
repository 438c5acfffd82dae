//! Building the caller context of a REST request.
//!
//! The environment comes from the `X-ANPR-Ambiente` request header, or the server's
//! default. The identity is, in this order: a signed request (`Agid-JWT-Signature`,
//! [`crate::firma_rest`]), a session token (daily password or passkey), the verified
//! client certificate of a mutual-TLS connection (a person's card, or a workstation or
//! server certificate — in `produzione` the latter must sign their requests, EV236), or,
//! in development only, declared headers — `X-ANPR-Utente` (user CF), `X-ANPR-Comune`
//! (ISTAT code), `X-ANPR-Profili` (comma-separated profiles), `X-ANPR-Postazione` —
//! when the server was started with that mode enabled, and **never** for `produzione`.
//! A request with no identity is anonymous and holds only the public permissions. Then
//! the municipality's authorised addresses apply to whoever was identified (EV233).

use std::collections::BTreeSet;

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::error::Anomalia;
use anpr_domain::ids::CodiceIstatComune;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::AppState;

/// Request header choosing the environment.
pub const HEADER_RICHIESTA_AMBIENTE: &str = "x-anpr-ambiente";
pub const HEADER_UTENTE: &str = "x-anpr-utente";
pub const HEADER_COMUNE: &str = "x-anpr-comune";
pub const HEADER_PROFILI: &str = "x-anpr-profili";
pub const HEADER_POSTAZIONE: &str = "x-anpr-postazione";

/// Principal name of anonymous callers in the audit log.
pub const ANONIMO: &str = "anonimo";

/// Our code for identity headers refused (production, or mode disabled).
pub const CODICE_IDENTITA_NON_AMMESSA: &str = "EA402";

/// Our code for a `produzione` request over plain HTTP.
pub const CODICE_PRODUZIONE_SENZA_TLS: &str = "EV240";

/// Extractor: the verified caller of this request.
#[derive(Debug, Clone)]
pub struct Caller(pub CallerContext);

fn header<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, ApiError> {
    match parts.headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| {
            ApiError::bad_request(
                Anomalia::errore(
                    anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                    "Intestazione non valida",
                )
                .campo(name)
                .atteso("testo ASCII"),
            )
        }),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// The caller, then the check of its municipality's authorised IP addresses
    /// (EV233, audited) against the client address of the request (see [`crate::rete`]).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(ctx) = identifica(parts, state).await?;
        let ip = parts
            .extensions
            .get::<crate::rete::IndirizzoCliente>()
            .and_then(|i| i.0);
        state
            .registry
            .verifica_indirizzo(&ctx, ip)
            .await
            .map_err(|e| accesso_rifiutato(e, ctx.ambiente))?;
        Ok(Caller(ctx))
    }
}

/// The session token of `Authorization: Bearer <token>`, if any.
pub fn token_sessione(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(v) = header(parts, "authorization")? else {
        return Ok(None);
    };
    match v.split_once(' ') {
        Some((schema, token))
            if schema.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(ApiError::bad_request(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Intestazione Authorization non valida",
            )
            .campo("Authorization")
            .atteso("Bearer <token di sessione>"),
        )),
    }
}

/// The caller of a request with a session token (daily-password login). Declared
/// identity headers never mix in; on a TLS connection the client certificate may only
/// be a workstation or server certificate of the session's municipality (it names the
/// workstation); `produzione` still needs TLS.
async fn da_sessione(
    token: &str,
    tls: Option<&crate::tls::ConnessioneTls>,
    dichiarata: bool,
    ambiente: Ambiente,
    state: &AppState,
) -> Result<CallerContext, ApiError> {
    let conflitto = |testo: &str| {
        ApiError::forbidden(
            Anomalia::errore(CODICE_IDENTITA_NON_AMMESSA, testo).campo("Authorization"),
            ambiente,
        )
    };
    if dichiarata {
        return Err(conflitto(
            "Identità dichiarata tramite intestazioni su una richiesta con sessione",
        ));
    }
    let mut ctx = state
        .registry
        .chiamante_da_sessione(ambiente, token, Canale::Rest)
        .await
        .map_err(|e| accesso_rifiutato(e, ambiente))?;
    if let Some(der) = tls.and_then(|t| t.certificato.as_deref()) {
        let id = anpr_sicurezza::ca::identita(der).ok();
        let ou = id.as_ref().and_then(|i| i.ou.clone());
        if ou.as_deref() != ctx.comune.as_ref().map(|c| c.as_str()) {
            return Err(conflitto(
                "Certificato TLS di un altro comune o di una carta su una richiesta con sessione",
            ));
        }
        ctx.postazione = id.map(|i| i.cn);
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
    Ok(ctx)
}

/// The caller completed with the workstation of the connection's verified client
/// certificate (mutual TLS), for callers identified by something else (a signed SOAP
/// message): see `Registry::postazione_da_certificato`. A refusal is the anomaly to
/// send back (EA402 another municipality or person, EV209 revoked since the
/// handshake).
///
/// The workstation named by the message's signature and the connection's must agree;
/// a connection made with the municipality's **server** certificate carries the
/// messages of every workstation, so there the signed workstation stands.
///
/// Then the workstation policy of signed SOAP messages (see `docs/SICUREZZA.md`): in
/// `produzione` a caller of a municipality must come from a proved workstation —
/// named by the workstation's signature in the message, or the workstation
/// certificate of the mutual-TLS connection — else EV234, audited. Elsewhere the
/// workstation is recorded when known.
pub async fn con_postazione_tls(
    state: &AppState,
    mut ctx: CallerContext,
    certificato: Option<&[u8]>,
) -> Result<CallerContext, Anomalia> {
    if let Some(der) = certificato {
        match state.registry.postazione_da_certificato(&ctx, der).await {
            Ok(Some(connessione)) => match ctx.postazione.as_deref() {
                None => ctx.postazione = Some(connessione),
                Some(p) if p == connessione => {}
                Some(p) if e_postazione(p) && connessione.ends_with("-SERVER") => {}
                Some(p) => {
                    return Err(Anomalia::errore(
                        CODICE_IDENTITA_NON_AMMESSA,
                        format!(
                            "Postazione {p} del messaggio diversa da quella della connessione ({connessione})"
                        ),
                    ))
                }
            },
            Ok(None) => {}
            Err(e) => {
                return Err(e.anomalie().into_iter().next().unwrap_or_else(|| {
                    Anomalia::errore(CODICE_IDENTITA_NON_AMMESSA, "Certificato non ammesso")
                }))
            }
        }
    }
    let provata = ctx.postazione.as_deref().is_some_and(e_postazione);
    if ctx.ambiente == Ambiente::Produzione && ctx.comune.is_some() && !provata {
        let codice = anpr_sicurezza::errore::CODICE_FIRMA_POSTAZIONE_MANCANTE;
        // The refusal stands even if recording it fails.
        let _ = state
            .registry
            .registra_accesso_rifiutato(&ctx, &format!("postazione:{codice}"))
            .await;
        return Err(Anomalia::errore(
            codice,
            "In produzione il messaggio deve provare la postazione: la firma del certificato di postazione (anpr:Postazione nel SOAP, Anpr-Postazione-Signature nel REST) o il TLS reciproco con il certificato della postazione",
        )
        .campo(if ctx.canale == Canale::Rest {
            anpr_sicurezza::jws::INTESTAZIONE_FIRMA_POSTAZIONE
        } else {
            "Security/Postazione"
        })
        .valore(ctx.postazione.clone().unwrap_or_default())
        .atteso("una postazione ISTAT-PC-NNNN del comune"));
    }
    Ok(ctx)
}

/// Whether `id` names a workstation (`ISTAT-PC-NNNN`), not the server.
fn e_postazione(id: &str) -> bool {
    id.contains("-PC-")
}

/// A refused login (address, token) is a 403 with its code; internal failures stay
/// opaque.
pub fn accesso_rifiutato(e: anpr_service::ServiceError, ambiente: Ambiente) -> ApiError {
    match e {
        anpr_service::ServiceError::Rifiutata { .. } => {
            let a = e.anomalie().into_iter().next().unwrap_or_else(|| {
                Anomalia::errore(CODICE_IDENTITA_NON_AMMESSA, "Accesso non ammesso")
            });
            ApiError::forbidden(a, ambiente)
        }
        e => ApiError::from_service(e, ambiente),
    }
}

/// Who the caller is: signed request, client certificate, session token, declared
/// headers (development), or anonymous.
async fn identifica(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
    {
        let ambiente = match header(parts, HEADER_RICHIESTA_AMBIENTE)? {
            None => state.config.ambiente_predefinito,
            Some(v) => v.parse::<Ambiente>().map_err(|e| {
                ApiError::bad_request(Anomalia::from_invalid(HEADER_RICHIESTA_AMBIENTE, &e))
            })?,
        };
        let tls = parts
            .extensions
            .get::<crate::tls::ConnessioneTls>()
            .cloned();
        let utente = header(parts, HEADER_UTENTE)?;
        let comune = header(parts, HEADER_COMUNE)?;
        let profili = header(parts, HEADER_PROFILI)?;
        let postazione = header(parts, HEADER_POSTAZIONE)?;
        let declared =
            utente.is_some() || comune.is_some() || profili.is_some() || postazione.is_some();
        let firmata = parts
            .extensions
            .get::<crate::firma_rest::IdentitaFirmata>()
            .cloned();
        if let Some(f) = firmata {
            return crate::firma_rest::chiamante(f, tls.as_ref(), declared, ambiente, state)
                .await
                .map(Caller);
        }
        if let Some(token) = token_sessione(parts)? {
            return da_sessione(&token, tls.as_ref(), declared, ambiente, state)
                .await
                .map(Caller);
        }
        // A verified client certificate is the identity; declared headers never mix in.
        if let Some(der) = tls.as_ref().and_then(|t| t.certificato.clone()) {
            if declared {
                return Err(ApiError::forbidden(
                    Anomalia::errore(
                        CODICE_IDENTITA_NON_AMMESSA,
                        "Identità dichiarata tramite intestazioni su una connessione con certificato",
                    )
                    .campo(HEADER_UTENTE),
                    ambiente,
                ));
            }
            let ctx = state
                .registry
                .chiamante_da_certificato(ambiente, &der, Canale::Rest)
                .await
                .map_err(|e| {
                    let a = e.anomalie().into_iter().next().unwrap_or_else(|| {
                        Anomalia::errore(CODICE_IDENTITA_NON_AMMESSA, "Certificato non ammesso")
                    });
                    ApiError::forbidden(a, ambiente)
                })?;
            return firma_richiesta_in_produzione(ctx, state).await.map(Caller);
        }
        if declared && (ambiente == Ambiente::Produzione || !state.config.identita_da_header) {
            return Err(ApiError::forbidden(
                Anomalia::errore(
                    CODICE_IDENTITA_NON_AMMESSA,
                    format!("Identità dichiarata tramite intestazioni non ammessa nell'ambiente {ambiente}"),
                )
                .campo(HEADER_UTENTE)
                .atteso("un certificato di postazione verificato (TLS reciproco) o un messaggio firmato"),
                ambiente,
            ));
        }
        if ambiente == Ambiente::Produzione && tls.is_none() {
            return Err(ApiError::forbidden(
                Anomalia::errore(
                    CODICE_PRODUZIONE_SENZA_TLS,
                    "L'ambiente produzione è raggiungibile solo con TLS reciproco (anpr serve --tls)",
                )
                .campo(HEADER_RICHIESTA_AMBIENTE)
                .valore("produzione")
                .atteso("una connessione TLS"),
                ambiente,
            ));
        }
        let comune = comune
            .map(|c| {
                c.parse::<CodiceIstatComune>()
                    .map_err(|e| ApiError::bad_request(Anomalia::from_invalid(HEADER_COMUNE, &e)))
            })
            .transpose()?;
        let mut set = BTreeSet::new();
        for p in profili
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            set.insert(
                p.parse::<Profilo>().map_err(|e| {
                    ApiError::bad_request(Anomalia::from_invalid(HEADER_PROFILI, &e))
                })?,
            );
        }
        Ok(Caller(CallerContext {
            ambiente,
            comune,
            utente: utente.unwrap_or(ANONIMO).to_owned(),
            profili: set,
            postazione: postazione.map(str::to_owned),
            canale: Canale::Rest,
        }))
    }
}

/// Machine-to-machine REST calls — the caller identified by a workstation or server
/// certificate alone, not by a person's card, session or passkey — must carry
/// `Agid-JWT-Signature` in `produzione` (seed 001 §5.3.3.2, DPCM 194/2014: the
/// municipality's messages carry the user and are signed with its server certificate).
/// Without it: EV236, audited. A signed request never gets here (the
/// signature identifies it, see [`crate::firma_rest`]).
async fn firma_richiesta_in_produzione(
    ctx: CallerContext,
    state: &AppState,
) -> Result<CallerContext, ApiError> {
    if ctx.ambiente != Ambiente::Produzione || ctx.postazione.is_none() {
        return Ok(ctx);
    }
    let codice = anpr_sicurezza::errore::CODICE_FIRMA_REST_OBBLIGATORIA;
    // The refusal stands even if recording it fails.
    let _ = state
        .registry
        .registra_accesso_rifiutato(&ctx, &format!("firmaRest:{codice}"))
        .await;
    Err(ApiError::forbidden(
        Anomalia::errore(
            codice,
            format!(
                "In produzione le chiamate del software comunale ({}) devono essere firmate",
                ctx.utente
            ),
        )
        .campo(anpr_sicurezza::jws::INTESTAZIONE_FIRMA)
        .atteso("una richiesta firmata (Agid-JWT-Signature) con il certificato del comune"),
        ctx.ambiente,
    ))
}
