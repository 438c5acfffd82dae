//! REST handlers of the security console under `/api/v1/sicurezza` (SPEC M-8): census,
//! cards, daily passwords, workstation certificates (PKCS#12 download), the workstation
//! register, municipality parameters and authorised IP addresses, and our CA
//! certificate and CRL.
//!
//! Thin: each parses the body and calls one service use case, which authorises with the
//! permission matrix, scopes to the caller's own body and audits. Personal identifiers
//! (CFs) travel in bodies; card numbers and certificate serials are not personal data and
//! may appear in paths.

use std::collections::BTreeSet;

use anpr_domain::caller::{CallerContext, Profilo};
use anpr_domain::error::Anomalia;
use anpr_service::sicurezza::AzioneCarta;
use anpr_sicurezza::direttorio::{ParametriComune, Utente};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::rest::{ok, ApiResult};
use crate::AppState;

fn servizio(
    ambiente: anpr_domain::caller::Ambiente,
) -> impl Fn(anpr_service::ServiceError) -> ApiError {
    move |e| ApiError::from_service(e, ambiente)
}

fn binario(tipo: &'static str, bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, tipo)], bytes).into_response()
}

/// `{ente, codiceFiscale, cognome, nome, email, profili}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaUtente {
    ente: String,
    codice_fiscale: String,
    cognome: String,
    nome: String,
    email: String,
    profili: BTreeSet<Profilo>,
}

/// `POST /sicurezza/utenti`: census or update a user of a body.
pub async fn censisci(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RichiestaUtente>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let utente = Utente {
        codice_fiscale: r.codice_fiscale,
        cognome: r.cognome,
        nome: r.nome,
        email: r.email,
        ruoli: Default::default(),
    };
    state
        .registry
        .censisci_utente(&ctx, &r.ente, utente, r.profili)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"esito": "OK"}))
}

/// `{ente, codiceFiscale}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnteUtente {
    ente: String,
    codice_fiscale: String,
}

/// `POST /sicurezza/utenti/cancella`: deletes a user (their card is revoked).
pub async fn cancella(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<EnteUtente>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    state
        .registry
        .cancella_utente(&ctx, &r.ente, &r.codice_fiscale)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"esito": "OK"}))
}

/// `{ente, numero}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Postazioni {
    ente: String,
    numero: u32,
}

/// `POST /sicurezza/postazioni`: declares the number of workstations.
pub async fn postazioni(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<Postazioni>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    state
        .registry
        .dichiara_postazioni(&ctx, &r.ente, r.numero)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"esito": "OK"}))
}

/// `POST /sicurezza/carte`: requests a user's card → `{numero}`.
pub async fn richiedi_carta(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<EnteUtente>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let numero = state
        .registry
        .richiedi_carta(&ctx, &r.ente, &r.codice_fiscale)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"numero": numero}))
}

fn azione_carta(s: &str) -> Result<AzioneCarta, ApiError> {
    Ok(match s {
        "produzione" => AzioneCarta::AvvioProduzione,
        "prefettura" => AzioneCarta::ArrivoInPrefettura,
        "consegna" => AzioneCarta::Consegna,
        "registrazione" => AzioneCarta::Registrazione,
        "blocco" => AzioneCarta::Blocco,
        "sblocco" => AzioneCarta::Sblocco,
        "revoca" => AzioneCarta::Revoca,
        "sostituzione" => AzioneCarta::Sostituzione,
        altro => {
            return Err(ApiError::bad_request(
                Anomalia::errore(anpr_domain::error::CODICE_VALORE_NON_VALIDO, "Azione sulla carta sconosciuta")
                    .campo("azione")
                    .valore(altro.chars().take(32).collect::<String>())
                    .atteso("produzione, prefettura, consegna, registrazione, blocco, sblocco, revoca, sostituzione"),
            ))
        }
    })
}

/// `POST /sicurezza/carte/{numero}/{azione}`: a card lifecycle event.
pub async fn evento_carta(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((numero, azione)): Path<(String, String)>,
) -> ApiResult {
    let azione = azione_carta(&azione)?;
    let esito = state
        .registry
        .evento_carta(&ctx, &numero, azione)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, esito)
}

/// `{password}` protecting a PKCS#12 download.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Password {
    password: String,
    #[serde(default)]
    ente: Option<String>,
}

/// `POST /sicurezza/carte/{numero}/materiale`: the card's certificate and key
/// (PKCS#12), handed over with the card.
pub async fn materiale_carta(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(numero): Path<String>,
    body: Result<Json<Password>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(r) = body?;
    let p12 = state
        .registry
        .materiale_carta(&ctx, &numero, &r.password)
        .await
        .map_err(servizio(ctx.ambiente))?;
    Ok(binario("application/x-pkcs12", p12))
}

/// `POST /sicurezza/password-giornaliera`: a daily password for a holder → `{password,
/// scadenza}` (shown once).
pub async fn password_giornaliera(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<EnteUtente>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let pw = state
        .registry
        .concedi_password_giornaliera(&ctx, &r.ente, &r.codice_fiscale)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"password": pw}))
}

/// `{ente}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ente {
    ente: String,
}

/// `POST /sicurezza/certificati`: issues the missing workstation and server
/// certificates → `{seriali}`.
pub async fn emetti_certificati(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<Ente>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let seriali = state
        .registry
        .emetti_certificati_postazione(&ctx, &r.ente)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"seriali": seriali}))
}

fn seriale(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Numero di serie non valido",
            )
            .campo("seriale")
            .valore(raw.chars().take(32).collect::<String>())
            .atteso("un numero"),
        )
    })
}

/// `POST /sicurezza/certificati/{seriale}/pkcs12`: downloads a workstation or server
/// certificate with its key, `{ente, password}`.
pub async fn scarica_certificato(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(s): Path<String>,
    body: Result<Json<Password>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(r) = body?;
    let ente = r.ente.unwrap_or_default();
    let p12 = state
        .registry
        .scarica_certificato(&ctx, &ente, seriale(&s)?, &r.password)
        .await
        .map_err(servizio(ctx.ambiente))?;
    Ok(binario("application/x-pkcs12", p12))
}

/// `{ente, mac, nomeComputer}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Installazione {
    ente: String,
    mac: String,
    nome_computer: String,
}

/// `POST /sicurezza/certificati/{seriale}/installazione`: where it was installed.
pub async fn installazione(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(s): Path<String>,
    body: Result<Json<Installazione>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    state
        .registry
        .registra_installazione(&ctx, &r.ente, seriale(&s)?, &r.mac, &r.nome_computer)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"esito": "OK"}))
}

/// `{ente, bloccato}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revoca {
    ente: String,
    #[serde(default)]
    bloccato: bool,
}

/// `POST /sicurezza/certificati/{seriale}/revoca`: revokes or blocks it (CRL).
pub async fn revoca(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(s): Path<String>,
    body: Result<Json<Revoca>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    state
        .registry
        .revoca_certificato(&ctx, &r.ente, seriale(&s)?, r.bloccato)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"esito": "OK"}))
}

/// `POST /sicurezza/certificati/{seriale}/rinnovo` → `{seriale}` of the new one.
pub async fn rinnovo(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(s): Path<String>,
    body: Result<Json<Ente>, JsonRejection>,
) -> ApiResult {
    let Json(r) = body?;
    let nuovo = state
        .registry
        .rinnova_certificato(&ctx, &r.ente, seriale(&s)?)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"seriale": nuovo}))
}

/// `POST /sicurezza/registro-postazioni/verifica` → `{voci}` or EV212.
pub async fn verifica_registro(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult {
    let voci = state
        .registry
        .verifica_registro_postazioni(&ctx)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"voci": voci}))
}

/// `POST /sicurezza/parametri/{ente}`: the municipality parameters.
pub async fn parametri(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(ente): Path<String>,
    body: Result<Json<ParametriComune>, JsonRejection>,
) -> ApiResult {
    let Json(p) = body?;
    state
        .registry
        .imposta_parametri(&ctx, &ente, p)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"esito": "OK"}))
}

/// Body of `POST /sicurezza/accesso/password-giornaliera`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessoPassword {
    pub ente: String,
    pub codice_fiscale: String,
    pub password: String,
}

/// `POST /sicurezza/accesso/password-giornaliera`: login with the daily password the
/// security administrator granted → `{token, scade, utente, ente, profili}`; the token
/// then authenticates REST calls as `Authorization: Bearer <token>` until midnight
/// (Italian civil time). Refusals are 403 with EV206 (wrong or expired), EV213 (not
/// censused for the body), EV214 (locked out after repeated failures), EV233 (address).
pub async fn accesso_password(
    State(state): State<AppState>,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
    headers: axum::http::HeaderMap,
    body: Result<Json<AccessoPassword>, JsonRejection>,
) -> ApiResult {
    let ambiente = headers
        .get(crate::caller::HEADER_RICHIESTA_AMBIENTE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(state.config.ambiente_predefinito);
    let Json(b) = body?;
    indirizzo_di_accesso(&state, ambiente, &b.ente, &b.codice_fiscale, ip).await?;
    let s = state
        .registry
        .apri_sessione_password(
            ambiente,
            &b.ente,
            &b.codice_fiscale,
            &b.password,
            anpr_domain::caller::Canale::Rest,
        )
        .await
        .map_err(|e| crate::caller::accesso_rifiutato(e, ambiente))?;
    ok(
        ambiente,
        json!({
            "token": s.token,
            "scade": s.scade,
            "utente": s.ctx.utente,
            "ente": b.ente,
            "profili": s.ctx.profili,
        }),
    )
}

/// `POST /sicurezza/accesso/esci`: ends the session of the `Authorization` token.
pub async fn esci(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim().to_owned())
        .unwrap_or_default();
    let chiusa = state
        .registry
        .chiudi_sessione(&ctx, &token)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"chiusa": chiusa}))
}

/// `POST /sicurezza/passkey/registrazione/opzioni`: options for
/// `navigator.credentials.create` for the caller (who must hold an active card).
pub async fn opzioni_registrazione_passkey(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult {
    let o = state
        .registry
        .opzioni_registrazione_passkey(&ctx)
        .await
        .map_err(|e| crate::caller::accesso_rifiutato(e, ctx.ambiente))?;
    ok(ctx.ambiente, json!({"publicKey": o}))
}

/// A WebAuthn registration response, fields base64url.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrazionePasskey {
    pub id: String,
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    pub attestation_object: String,
}

/// `POST /sicurezza/passkey/registrazione` → `{id}`: the passkey, bound to the
/// caller's card.
pub async fn registra_passkey(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    body: Result<Json<RegistrazionePasskey>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let id = state
        .registry
        .registra_passkey(&ctx, &b.id, &b.client_data_json, &b.attestation_object)
        .await
        .map_err(|e| crate::caller::accesso_rifiutato(e, ctx.ambiente))?;
    ok(ctx.ambiente, json!({"id": id}))
}

/// Body of `POST /sicurezza/passkey/accesso/opzioni`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpzioniAccessoPasskey {
    pub ente: String,
    #[serde(default)]
    pub codice_fiscale: Option<String>,
}

fn ambiente_richiesto(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> anpr_domain::caller::Ambiente {
    headers
        .get(crate::caller::HEADER_RICHIESTA_AMBIENTE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(state.config.ambiente_predefinito)
}

/// The municipality's authorised addresses apply to its logins too (EV233, audited):
/// `ente` is the body the login is for.
async fn indirizzo_di_accesso(
    state: &AppState,
    ambiente: anpr_domain::caller::Ambiente,
    ente: &str,
    utente: &str,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
) -> Result<(), ApiError> {
    let candidato = CallerContext {
        ambiente,
        comune: ente.parse().ok(),
        utente: utente.to_owned(),
        profili: BTreeSet::new(),
        postazione: None,
        canale: anpr_domain::caller::Canale::Rest,
    };
    state
        .registry
        .verifica_indirizzo(&candidato, ip.and_then(|i| i.0 .0))
        .await
        .map_err(|e| crate::caller::accesso_rifiutato(e, ambiente))
}

/// `POST /sicurezza/passkey/accesso/opzioni`: options for `navigator.credentials.get`
/// (from an address the body authorised, EV233).
pub async fn opzioni_accesso_passkey(
    State(state): State<AppState>,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
    headers: axum::http::HeaderMap,
    body: Result<Json<OpzioniAccessoPasskey>, JsonRejection>,
) -> ApiResult {
    let ambiente = ambiente_richiesto(&state, &headers);
    let Json(b) = body?;
    let chi = b
        .codice_fiscale
        .as_deref()
        .unwrap_or(crate::caller::ANONIMO);
    indirizzo_di_accesso(&state, ambiente, &b.ente, chi, ip).await?;
    let o = state
        .registry
        .opzioni_accesso_passkey(&b.ente, b.codice_fiscale.as_deref())
        .await
        .map_err(|e| crate::caller::accesso_rifiutato(e, ambiente))?;
    ok(ambiente, json!({"publicKey": o}))
}

/// A WebAuthn authentication response, fields base64url. Other fields browsers send
/// (`userHandle`, `authenticatorAttachment`) are ignored: the credential id names the
/// passkey and its holder.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessoPasskey {
    pub ente: String,
    pub id: String,
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    pub authenticator_data: String,
    pub signature: String,
}

/// `POST /sicurezza/passkey/accesso`: login with a passkey → a session token as for the
/// daily password. Refusals are 403: EV216–EV219 (ceremony), EV205 (bound card not
/// active, replaced), EV213, EV233.
pub async fn accesso_passkey(
    State(state): State<AppState>,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
    headers: axum::http::HeaderMap,
    body: Result<Json<AccessoPasskey>, JsonRejection>,
) -> ApiResult {
    let ambiente = ambiente_richiesto(&state, &headers);
    let Json(b) = body?;
    indirizzo_di_accesso(&state, ambiente, &b.ente, crate::caller::ANONIMO, ip).await?;
    let s = state
        .registry
        .apri_sessione_passkey(
            ambiente,
            &b.ente,
            &b.id,
            &b.client_data_json,
            &b.authenticator_data,
            &b.signature,
            anpr_domain::caller::Canale::Rest,
        )
        .await
        .map_err(|e| crate::caller::accesso_rifiutato(e, ambiente))?;
    ok(
        ambiente,
        json!({"token": s.token, "scade": s.scade, "utente": s.ctx.utente, "ente": b.ente, "profili": s.ctx.profili}),
    )
}

/// Body of `PUT /sicurezza/ip-autorizzati/{ente}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndirizziAutorizzati {
    pub indirizzi: Vec<std::net::IpAddr>,
}

/// `PUT /sicurezza/ip-autorizzati/{ente}`: the municipality's authorised IP addresses
/// (its security administrator); `[]` lifts the restriction.
pub async fn imposta_ip_autorizzati(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(ente): Path<String>,
    body: Result<Json<IndirizziAutorizzati>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    state
        .registry
        .imposta_indirizzi_autorizzati(&ctx, &ente, b.indirizzi)
        .await
        .map_err(servizio(ctx.ambiente))?;
    leggi_ip(&state, &ctx, &ente).await
}

/// `GET /sicurezza/ip-autorizzati/{ente}` → `{indirizzi}`.
pub async fn leggi_ip_autorizzati(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(ente): Path<String>,
) -> ApiResult {
    leggi_ip(&state, &ctx, &ente).await
}

async fn leggi_ip(state: &AppState, ctx: &CallerContext, ente: &str) -> ApiResult {
    let v = state
        .registry
        .indirizzi_autorizzati(ctx, ente)
        .await
        .map_err(servizio(ctx.ambiente))?;
    ok(ctx.ambiente, json!({"ente": ente, "indirizzi": v}))
}

fn sicurezza(
    state: &AppState,
) -> Result<&std::sync::Arc<anpr_service::sicurezza::Sicurezza>, ApiError> {
    // Not configured is the server's state, not a missing resource: a coded refusal.
    state.registry.sicurezza_configurata().ok_or_else(|| {
        ApiError::from_service(
            anpr_service::ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(
                    anpr_service::sicurezza::CODICE_SICUREZZA_NON_CONFIGURATA,
                    "Componente di sicurezza non configurato",
                )],
                riferimento: state.registry.riferimento(None),
            },
            state.config.ambiente_predefinito,
        )
    })
}

/// `GET /sicurezza/ca.pem`: our CA certificate (public).
pub async fn ca(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(binario(
        "application/x-pem-file",
        sicurezza(&state)?.ca().certificato_pem().into_bytes(),
    ))
}

/// `GET /sicurezza/crl`: the current CRL, DER (public).
pub async fn crl(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(binario("application/pkix-crl", sicurezza(&state)?.crl()))
}

/// The console's paths for the OpenAPI document.
pub fn paths_openapi(ambiente_header: &serde_json::Value) -> serde_json::Value {
    let errori = json!({"400": {"description": "richiesta non valida"}, "403": {"description": "non abilitato (EA401) o fuori ambito"}, "422": {"description": "rifiutata con codice EV2xx"}});
    let op = |summary: &str, body: Option<serde_json::Value>| {
        let mut o = json!({"summary": summary, "parameters": [ambiente_header.clone()], "responses": errori.clone()});
        o["responses"]["200"] = json!({"description": "OK"});
        if let Some(b) = body {
            o["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": b}}});
        }
        o
    };
    let obj = |campi: &[&str]| json!({"type": "object", "required": campi, "properties": campi.iter().map(|c| ((*c).to_owned(), json!({}))).collect::<serde_json::Map<_, _>>()});
    let path_param = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    let mut p = json!({
        "/api/v1/sicurezza/utenti": {"post": op("Censisce un utente dell'ente (comune o prefettura) con i suoi profili", Some(obj(&["ente", "codiceFiscale", "cognome", "nome", "email", "profili"])))},
        "/api/v1/sicurezza/utenti/cancella": {"post": op("Cancella un utente: la sua carta è revocata", Some(obj(&["ente", "codiceFiscale"])))},
        "/api/v1/sicurezza/postazioni": {"post": op("Dichiara il numero di postazioni dell'ente", Some(obj(&["ente", "numero"])))},
        "/api/v1/sicurezza/carte": {"post": op("Richiede la carta di un utente censito", Some(obj(&["ente", "codiceFiscale"])))},
        "/api/v1/sicurezza/password-giornaliera": {"post": op("Concede una password valida fino alla mezzanotte", Some(obj(&["ente", "codiceFiscale"])))},
        "/api/v1/sicurezza/certificati": {"post": op("Emette i certificati di postazione e server mancanti", Some(obj(&["ente"])))},
        "/api/v1/sicurezza/registro-postazioni/verifica": {"post": op("Verifica la catena del registro delle postazioni", None)},
        "/api/v1/sicurezza/ca.pem": {"get": {"summary": "Certificato della CA di ANPR", "responses": {"200": {"description": "PEM"}}}},
        "/api/v1/sicurezza/crl": {"get": {"summary": "Lista di revoca corrente (DER)", "responses": {"200": {"description": "CRL"}}}}
    });
    let con_param = |mut o: serde_json::Value, nomi: &[&str]| {
        for n in nomi {
            if let Some(a) = o["parameters"].as_array_mut() {
                a.push(path_param(n));
            }
        }
        o
    };
    p["/api/v1/sicurezza/carte/{numero}/{azione}"] = json!({"post": con_param(op("Evento della carta: produzione, prefettura, consegna, registrazione, blocco, sblocco, revoca, sostituzione", None), &["numero", "azione"])});
    p["/api/v1/sicurezza/carte/{numero}/materiale"] = json!({"post": con_param(op("Certificato e chiave della carta (PKCS#12)", Some(obj(&["password"]))), &["numero"])});
    p["/api/v1/sicurezza/certificati/{seriale}/pkcs12"] = json!({"post": con_param(op("Scarica certificato e chiave (PKCS#12)", Some(obj(&["ente", "password"]))), &["seriale"])});
    p["/api/v1/sicurezza/certificati/{seriale}/installazione"] = json!({"post": con_param(op("Registra dove è installato (MAC, nome computer)", Some(obj(&["ente", "mac", "nomeComputer"]))), &["seriale"])});
    p["/api/v1/sicurezza/certificati/{seriale}/revoca"] =
        json!({"post": con_param(op("Revoca o blocca (CRL)", Some(obj(&["ente"]))), &["seriale"])});
    p["/api/v1/sicurezza/certificati/{seriale}/rinnovo"] = json!({"post": con_param(op("Rinnova prima della scadenza", Some(obj(&["ente"]))), &["seriale"])});
    p["/api/v1/sicurezza/parametri/{ente}"] = json!({"post": con_param(op("Parametri del comune (sindaco, logo, bollo virtuale, diritti; gli IP autorizzati hanno il loro endpoint)", Some(json!({"type": "object"}))), &["ente"])});
    p["/api/v1/sicurezza/accesso/password-giornaliera"] = json!({"post": {
        "summary": "Accesso con la password giornaliera concessa dall'amministratore della sicurezza: restituisce un token di sessione valido fino alla mezzanotte (ora italiana), da usare come Authorization: Bearer",
        "parameters": [ambiente_header.clone()],
        "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["ente", "codiceFiscale", "password"])}}},
        "responses": {"200": {"description": "token, scade, utente, ente, profili"}, "400": {"description": "richiesta non valida"}, "403": {"description": "EV206 password errata o scaduta, EV213 utente non censito per l'ente, EV214 troppi tentativi, EV233 indirizzo non autorizzato"}}
    }});
    let webauthn = |campi: &[&str]| json!({"type": "object", "required": campi, "properties": campi.iter().map(|c| ((*c).to_owned(), json!({"type": "string", "description": "base64url"}))).collect::<serde_json::Map<_, _>>()});
    p["/api/v1/sicurezza/passkey/registrazione/opzioni"] = json!({"post": op("Opzioni WebAuthn (navigator.credentials.create) per registrare una passkey legata alla carta attiva del chiamante", None)});
    p["/api/v1/sicurezza/passkey/registrazione"] = json!({"post": op("Registra la passkey (attestazione none o packed auto-attestata, ES256); EV216-EV217, EV205", Some(webauthn(&["id", "clientDataJSON", "attestationObject"])))});
    p["/api/v1/sicurezza/passkey/accesso/opzioni"] = json!({"post": {
        "summary": "Opzioni WebAuthn (navigator.credentials.get) per l'accesso con passkey",
        "parameters": [ambiente_header.clone()],
        "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["ente"])}}},
        "responses": {"200": {"description": "publicKey"}, "400": {"description": "richiesta non valida"}}
    }});
    p["/api/v1/sicurezza/passkey/accesso"] = json!({"post": {
        "summary": "Accesso con passkey: token di sessione come per la password giornaliera (Authorization: Bearer)",
        "parameters": [ambiente_header.clone()],
        "requestBody": {"required": true, "content": {"application/json": {"schema": webauthn(&["ente", "id", "clientDataJSON", "authenticatorData", "signature"])}}},
        "responses": {"200": {"description": "token, scade, utente, ente, profili"}, "400": {"description": "richiesta non valida"}, "403": {"description": "EV216 client data/sfida, EV217 autenticatore, EV218 firma, EV219 contatore (clone), EV205 carta non attiva o sostituita, EV213, EV233"}}
    }});
    p["/api/v1/sicurezza/accesso/esci"] =
        json!({"post": op("Chiude la sessione del token (Authorization: Bearer)", None)});
    let ip = json!({"type": "object", "required": ["indirizzi"], "properties": {"indirizzi": {"type": "array", "items": {"type": "string", "description": "indirizzo IPv4 o IPv6"}}}});
    p["/api/v1/sicurezza/ip-autorizzati/{ente}"] = json!({
        "get": con_param(op("Indirizzi IP autorizzati del comune (amministratore della sicurezza)", None), &["ente"]),
        "put": con_param(op("Imposta gli indirizzi IP autorizzati del comune ([] toglie il vincolo); i chiamanti del comune da altri indirizzi sono rifiutati (EV233)", Some(ip)), &["ente"])
    });
    p
}
