//! SOAP endpoints compatible with the published ANPR WSDLs (issue 4): one per WSDL
//! service, `POST /ws/<service>` (e.g. `/ws/AnprService1000`), `GET /ws/<service>?wsdl`
//! and `GET /ws/<service>?xsd=<file>` for the documents with our address.
//!
//! The handler is thin: the wire work (envelope, XSD checks, conversions, response
//! writing) is `anpr_soap`'s; the use cases are the REST ones (the same dispatch,
//! [`crate::rest::esegui_servizio`]), so idempotency, authorisation, validation and
//! audit are identical on both channels. The caller is built by [`chiamante`], the one
//! place where WS-Security verification plugs in.

use std::collections::BTreeSet;

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::error::Anomalia;
use anpr_domain::ids::CodiceIstatComune;
use anpr_service::ricerca::{CriteriRicerca, RichiestaRicercaSoggetti};
use anpr_service::ServiceError;
use anpr_soap::busta::{self, Busta, Fault, NS_ANPR_SOAP};
use anpr_soap::catalogo::{self, Operazione, Servizio};
use anpr_soap::richieste::{self, Testata};
use anpr_soap::{risposte, schema};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

mod altri;
mod enti;
mod gestione;
mod subentro;

use crate::caller::{ANONIMO, CODICE_IDENTITA_NON_AMMESSA};
use crate::rest::{esegui_servizio, Dispatch};
use crate::AppState;

/// ANPR's code: the sender is not competent for the municipality in the request.
pub const CODICE_MITTENTE_NON_COMPETENTE: &str = "EN167";

/// The date from which the published interface version we implement applies (the
/// snapshot of the ANPR documentation the WSDLs come from).
const INTERFACCIA_DAL: &str = "2026-01-19";

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn fault(f: &Fault) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_REQUEST);
    xml(status, busta::scrivi_fault(f))
}

/// The absolute URL of endpoint `nome` as the caller reached us (Host header), so the
/// served WSDL points back at this server.
fn endpoint(headers: &HeaderMap, nome: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{proto}://{host}/ws/{nome}")
}

/// `GET /ws/<service>?wsdl` and `?xsd=<file>`.
pub async fn documento(
    Path(nome): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(servizio) = catalogo::servizio(&nome) else {
        return fault(
            &Fault::client(
                busta::CODICE_SERVIZIO_SCONOSCIUTO,
                format!("Servizio {nome} inesistente"),
            )
            .con_status(404),
        );
    };
    let url = endpoint(&headers, &nome);
    let query = query.unwrap_or_default();
    if query.eq_ignore_ascii_case("wsdl") {
        return xml(StatusCode::OK, catalogo::wsdl(servizio, &url));
    }
    if let Some(file) = query.strip_prefix("xsd=") {
        if let Some(doc) = catalogo::xsd(file, &url) {
            return xml(StatusCode::OK, doc);
        }
    }
    fault(
        &Fault::client(
            busta::CODICE_SERVIZIO_SCONOSCIUTO,
            "Documento inesistente: usare ?wsdl oppure ?xsd=<file dello schema>",
        )
        .con_status(404),
    )
}

/// The development identity declared in the SOAP header
/// (`<anpr:identitaSviluppo xmlns:anpr="urn:anpr:soap">` with `utente`, `postazione`,
/// `profili`).
#[derive(Debug, Default)]
struct IdentitaSviluppo {
    utente: String,
    postazione: Option<String>,
    profili: String,
}

fn identita_dichiarata(b: &Busta) -> Option<IdentitaSviluppo> {
    let h = b.intestazione.as_ref()?;
    let e = h
        .figli
        .iter()
        .find(|f| f.nome == "identitaSviluppo" && f.ns.as_deref() == Some(NS_ANPR_SOAP))?;
    Some(IdentitaSviluppo {
        utente: e.testo_di("utente").unwrap_or(ANONIMO).to_owned(),
        postazione: e.testo_di("postazione").map(str::to_owned),
        profili: e.testo_di("profili").unwrap_or("").to_owned(),
    })
}

/// Whether the envelope carries a WS-Security header.
fn firmato(b: &Busta) -> bool {
    b.intestazione.as_ref().is_some_and(|h| {
        h.figli.iter().any(|f| {
            f.nome == "Security" && f.ns.as_deref() == Some(anpr_sicurezza::wssec::NS_WSSE)
        })
    })
}

/// Builds the caller of a SOAP request.
///
/// A message with a WS-Security header is verified (`anpr_sicurezza::wssec`: signature
/// over THE Body, Timestamp and UsernameToken by a certificate of our CA not revoked,
/// fresh timestamp, user censused for the signing municipality) and its caller is the
/// signed identity: user, municipality of the certificate, workstation when a
/// workstation certificate signed, the user's profiles there (the use case then checks
/// the one it needs against the matrix). A refusal is a fault with the precise code,
/// audited as a failed login. `produzione` also needs TLS (EV240).
///
/// Without a signature, a documented development mode takes user, workstation and
/// profiles from `anpr:identitaSviluppo` and the municipality from `codMittente` —
/// only when the server runs with `--identita-da-header`, and never for `produzione`
/// (EA402). A message without any identity is anonymous (public services only, e.g.
/// 7001).
async fn chiamante(
    state: &AppState,
    b: &Busta,
    documento: &[u8],
    t: &Testata,
    ambiente: Ambiente,
    tls: bool,
) -> Result<CallerContext, Fault> {
    let anonimo = CallerContext {
        ambiente,
        comune: None,
        utente: ANONIMO.to_owned(),
        profili: BTreeSet::new(),
        postazione: None,
        canale: Canale::Soap,
    };
    if firmato(b) {
        return chiamante_firmato(state, b, documento, ambiente, tls, anonimo).await;
    }
    let Some(id) = identita_dichiarata(b) else {
        return Ok(anonimo);
    };
    if ambiente == Ambiente::Produzione || !state.config.identita_da_header {
        return Err(Fault::client(
            CODICE_IDENTITA_NON_AMMESSA,
            format!("Identita' dichiarata nell'intestazione SOAP non ammessa nell'ambiente {ambiente}: serve un messaggio firmato (WS-Security)"),
        )
        .con_status(403));
    }
    let mut profili = BTreeSet::new();
    for p in id
        .profili
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        profili.insert(p.parse::<Profilo>().map_err(|e| {
            Fault::client(
                CODICE_IDENTITA_NON_AMMESSA,
                format!("Profilo non valido: {e}"),
            )
            .con_status(403)
        })?);
    }
    // In development mode the municipality is the declared sender; a verified
    // identity will carry its own, checked against codMittente by `mittente_coerente`.
    let comune = t.cod_mittente.parse::<CodiceIstatComune>().ok();
    Ok(CallerContext {
        comune,
        utente: id.utente,
        profili,
        postazione: id.postazione,
        ..anonimo
    })
}

/// The caller of a signed message (see [`chiamante`]).
async fn chiamante_firmato(
    state: &AppState,
    b: &Busta,
    documento: &[u8],
    ambiente: Ambiente,
    tls: bool,
    anonimo: CallerContext,
) -> Result<CallerContext, Fault> {
    let Some(sic) = state.registry.sicurezza_configurata().cloned() else {
        return Err(Fault::client(
            anpr_service::sicurezza::CODICE_SICUREZZA_NON_CONFIGURATA,
            "Messaggio firmato, ma il componente di sicurezza non e' configurato su questo server",
        )
        .con_status(403));
    };
    if identita_dichiarata(b).is_some() {
        return Err(Fault::client(
            CODICE_IDENTITA_NON_AMMESSA,
            "Identita' dichiarata nell'intestazione di un messaggio firmato: vale solo la firma",
        )
        .con_status(403));
    }
    let fiducia = sic.fiducia();
    let adesso = state.registry.clock().now();
    let esito = anpr_sicurezza::wssec::verifica_messaggio(
        documento,
        &anpr_sicurezza::wssec::Politica::standard(&fiducia, adesso),
        &*sic.direttorio(),
        &Profilo::ALL,
        None,
    );
    let m = match esito {
        Ok(m) => m,
        Err(e) => {
            // A failed login is audited; if even that fails, the refusal stands.
            let _ = state
                .registry
                .registra_accesso_fallito(ambiente, &format!("wssec:{}", e.codice()))
                .await;
            return Err(Fault::client(e.codice(), e.to_string()).con_status(403));
        }
    };
    if ambiente == Ambiente::Produzione && !tls {
        return Err(Fault::client(
            crate::caller::CODICE_PRODUZIONE_SENZA_TLS,
            "L'ambiente produzione e' raggiungibile solo con TLS reciproco",
        )
        .con_status(403));
    }
    Ok(CallerContext {
        comune: m.firma.comune.parse().ok(),
        utente: m.firma.utente,
        profili: m.profili,
        postazione: m.firma.postazione,
        ..anonimo
    })
}

/// `codMittente` must be the caller's municipality (EN167) when the caller has one.
fn mittente_coerente(ctx: &CallerContext, t: &Testata) -> Option<Anomalia> {
    let comune = ctx.comune.as_ref()?;
    (comune.as_str() != t.cod_mittente)
        .then(|| non_competente("testataRichiesta/codMittente", &t.cod_mittente, comune))
}

/// EN167 on `campo`: the request names municipality `ricevuto`, the caller acts for
/// `comune`.
fn non_competente(
    campo: impl Into<String>,
    ricevuto: &str,
    comune: &CodiceIstatComune,
) -> Anomalia {
    Anomalia::errore(
        CODICE_MITTENTE_NON_COMPETENTE,
        "Operazione non effettuabile: il mittente non e' competente sul comune indicato nella richiesta",
    )
    .campo(campo)
    .valore(ricevuto)
    .atteso(comune.to_string())
}

/// Digits of a support reference, as the `idOperazioneANPR` of answers that register
/// no operation (consultations, downloads): the XSD wants digits there.
fn id_da_riferimento(id: &str) -> String {
    let d: String = id.chars().filter(char::is_ascii_digit).take(30).collect();
    if d.is_empty() {
        "0".into()
    } else {
        d
    }
}

/// The `idOperazioneANPR` of an answer that registers no operation: the digits of a
/// fresh support reference.
fn id_risposta(registry: &anpr_service::Registry) -> String {
    id_da_riferimento(&registry.riferimento(None).id)
}

/// A refusal answer (`rispostaKO`) with a fresh support reference.
fn rifiuto(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    anomalie: &[Anomalia],
) -> Response {
    let r = state.registry.riferimento(None);
    let id = id_da_riferimento(&r.id);
    let data = r.data.format("%Y-%m-%d %H:%M:%S").to_string();
    xml(
        StatusCode::OK,
        risposte::ko(servizio, op, t, &id, anomalie, (&data, &r.id)),
    )
}

/// A service error as `rispostaKO` (internal causes stay in the log, under the
/// reference).
fn errore_servizio(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    e: &ServiceError,
) -> Response {
    let r = e.riferimento();
    let id = id_da_riferimento(&r.id);
    let data = r.data.format("%Y-%m-%d %H:%M:%S").to_string();
    xml(
        StatusCode::OK,
        risposte::ko(servizio, op, t, &id, &e.anomalie(), (&data, &r.id)),
    )
}

/// The SOAPAction of the request is acceptable: every published operation declares
/// `soapAction=""`, so only an absent or empty one (quoted or not) matches the WSDL.
fn soap_action_valida(headers: &HeaderMap) -> Result<(), Fault> {
    match headers.get("soapaction").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(v)) if v.trim().trim_matches('"').is_empty() => Ok(()),
        Some(v) => Err(Fault::client(
            busta::CODICE_SOAP_ACTION,
            format!(
                "SOAPAction {:?} non prevista dal WSDL (le operazioni ANPR dichiarano soapAction=\"\")",
                v.unwrap_or("?")
            ),
        )),
    }
}

/// `POST /ws/<service>`: one SOAP request.
pub async fn richiesta(
    State(state): State<AppState>,
    Path(nome): Path<String>,
    headers: HeaderMap,
    tls: Option<axum::Extension<crate::tls::ConnessioneTls>>,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    richiesta_con_limite(state, nome, headers, tls, ip, body, crate::MAX_BODY_BYTES).await
}

/// Name of the S001 endpoint, routed on its own for its message limit.
pub const ENDPOINT_S001: &str = "AnprServiceS001";

/// `POST /ws/AnprServiceS001`: the subentro upload, whose messages carry a whole
/// compressed file ([`crate::MAX_BODY_BYTES_S001`]).
pub async fn richiesta_s001(
    State(state): State<AppState>,
    headers: HeaderMap,
    tls: Option<axum::Extension<crate::tls::ConnessioneTls>>,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    richiesta_con_limite(
        state,
        ENDPOINT_S001.to_owned(),
        headers,
        tls,
        ip,
        body,
        crate::MAX_BODY_BYTES_S001,
    )
    .await
}

/// `GET /ws/AnprServiceS001?wsdl` and `?xsd=<file>`.
pub async fn documento_s001(RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    documento(Path(ENDPOINT_S001.to_owned()), RawQuery(query), headers).await
}

async fn richiesta_con_limite(
    state: AppState,
    nome: String,
    headers: HeaderMap,
    tls: Option<axum::Extension<crate::tls::ConnessioneTls>>,
    ip: Option<axum::Extension<crate::rete::IndirizzoCliente>>,
    body: Result<Bytes, BytesRejection>,
    limite: usize,
) -> Response {
    let Some(servizio) = catalogo::servizio(&nome) else {
        return fault(
            &Fault::client(
                busta::CODICE_SERVIZIO_SCONOSCIUTO,
                format!("Servizio {nome} inesistente"),
            )
            .con_status(404),
        );
    };
    let body = match body {
        Ok(b) => b,
        Err(BytesRejection::FailedToBufferBody(_)) => return fault(&Fault::troppo_grande(limite)),
        Err(e) => return fault(&Fault::client(busta::CODICE_XML_NON_VALIDO, e.body_text())),
    };
    if let Err(f) = soap_action_valida(&headers) {
        return fault(&f);
    }
    let b = match busta::leggi(&body) {
        Ok(b) => b,
        Err(f) => return fault(&f),
    };
    let Some(op) = servizio
        .operazione(&b.corpo.nome)
        .filter(|_| b.corpo.ns.as_deref() == Some(servizio.namespace.as_str()))
    else {
        return fault(&Fault::client(
            busta::CODICE_OPERAZIONE_SCONOSCIUTA,
            format!(
                "{{{}}}{} non e' un'operazione di {} (namespace atteso {})",
                b.corpo.ns.as_deref().unwrap_or(""),
                b.corpo.nome,
                servizio.nome,
                servizio.namespace
            ),
        ));
    };
    let t = richieste::testata(&b.corpo);
    if !richieste::supportato(&op.codice) {
        return non_disponibile(&state, servizio, op, &t);
    }
    if schema::conosciuto(&servizio.famiglia, &op.richiesta) {
        let non_conformi = schema::controlla(&servizio.famiglia, &b.corpo);
        if !non_conformi.is_empty() {
            return fault(
                &Fault::client(
                    schema::CODICE_NON_CONFORME_XSD,
                    format!("Richiesta {} non conforme allo schema XSD", op.richiesta),
                )
                .con_anomalie(non_conformi),
            );
        }
    }
    let ambiente = match richieste::ambiente(&t) {
        Ok(a) => a,
        Err(a) => return rifiuto(&state, servizio, op, &t, &[a]),
    };
    let connessione = tls.as_ref().and_then(|t| t.0.certificato.clone());
    let tls = tls.is_some();
    let ctx = match chiamante(&state, &b, &body, &t, ambiente, tls).await {
        Ok(c) => c,
        Err(f) => return fault(&f),
    };
    // The municipality's authorised IP addresses (security, see crate::rete).
    if let Err(e) = state
        .registry
        .verifica_indirizzo(&ctx, ip.and_then(|i| i.0 .0))
        .await
    {
        let a = e.anomalie().into_iter().next();
        let codice = a.as_ref().map_or("EV233", |a| a.codice.as_str()).to_owned();
        return fault(
            &Fault::client(&codice, a.map_or_else(String::new, |a| a.testo)).con_status(403),
        );
    }
    // The workstation of a mutual-TLS connection (security, see crate::caller).
    let ctx = match crate::caller::con_postazione_tls(
        &state,
        ctx,
        connessione.as_deref().map(Vec::as_slice),
    )
    .await
    {
        Ok(c) => c,
        Err(a) => return fault(&Fault::client(&a.codice, a.testo).con_status(403)),
    };
    // The public bodies' (E001-E004) and the consulates' (CONSOLATI) services: a body
    // or a consulate acts with national read scope and no municipality, whatever
    // identity it signed or declared with; its `codMittente` is its own code, not an
    // ISTAT code, so EN167 does not apply.
    let ctx = if servizio.famiglia.starts_with('E') || servizio.famiglia == "CONSOLATI" {
        CallerContext {
            comune: None,
            ..ctx
        }
    } else {
        ctx
    };
    let mut regole = richieste::controlla_testata(&t, &op.codice);
    regole.extend(mittente_coerente(&ctx, &t));
    if !regole.is_empty() {
        return rifiuto(&state, servizio, op, &t, &regole);
    }
    if op.codice == "S001" {
        // The message is no longer needed: only the file it carries.
        drop(body);
        return subentro::s001(&state, servizio, op, &t, &ctx, b).await;
    }
    esegui(&state, servizio, op, &t, &ctx, &b).await
}

/// Runs the operation of a checked request.
async fn esegui(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    match op.codice.as_str() {
        "3002" | "3006" => consultazione(state, servizio, op, t, ctx, b).await,
        "3003" | "3007" => gestione::richieste(state, servizio, op, t, ctx, b).await,
        "3004" => altri::procedimenti(state, servizio, op, t, ctx, b).await,
        "3005" => gestione::elaborato(state, servizio, op, t, ctx, b).await,
        "6001" => altri::certificato(state, servizio, op, t, ctx, b).await,
        "4001" | "4002" | "4003" | "4004" => {
            altri::estrazione(state, servizio, op, t, ctx, b).await
        }
        "4005" => altri::verifica(state, servizio, op, t, ctx, b).await,
        "7002" => altri::scarica(state, servizio, op, t, ctx, b).await,
        "3001" => {
            let mut trovati: [Vec<anpr_service::consultazione::SchedaLetta>; 2] =
                [Vec::new(), Vec::new()];
            for (chi, v) in richieste::converti_genitori(&b.corpo) {
                let criteri = serde_json::from_value::<RichiestaRicercaSoggetti>(v)
                    .map_err(|e| {
                        vec![Anomalia::errore(
                            anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                            "Richiesta non conforme",
                        )
                        .campo(chi)
                        .valore(e.to_string())]
                    })
                    .and_then(|r| CriteriRicerca::da_richiesta(&r));
                let criteri = match criteri {
                    Ok(c) => c,
                    Err(a) => return rifiuto(state, servizio, op, t, &a),
                };
                match registry.ricerca_soggetti(ctx, &criteri).await {
                    Ok(s) => trovati[usize::from(chi == "maternita")] = s,
                    Err(e) => return errore_servizio(servizio, op, t, &e),
                }
            }
            let id = id_risposta(registry);
            fn elenco(
                v: &[anpr_service::consultazione::SchedaLetta],
            ) -> Vec<(String, &anpr_domain::scheda::SchedaSoggetto)> {
                v.iter()
                    .map(|s| (s.id_anpr.to_string(), &s.scheda))
                    .collect()
            }
            let body = risposte::genitori(
                servizio,
                op,
                t,
                registry.tables(),
                &elenco(&trovati[0]),
                &elenco(&trovati[1]),
                &id,
            );
            xml(StatusCode::OK, body)
        }
        "7001" => {
            let richiesto = b.corpo.testo_a("datiRichiesta/idTabella").unwrap_or("");
            match tabella_richiesta(state, servizio, op, t, ctx, richiesto).await {
                Ok((numero, file)) => {
                    let id = id_risposta(registry);
                    xml(
                        StatusCode::OK,
                        risposte::tabella(servizio, op, t, numero, &file, &id),
                    )
                }
                Err(risposta) => risposta,
            }
        }
        "E001" | "E002" => enti::esegui(state, servizio, op, t, ctx, b).await,
        "C001" | "C010" => enti::consolati(state, servizio, op, t, ctx, b).await,
        "7003" => {
            let id = id_risposta(registry);
            xml(
                StatusCode::OK,
                risposte::versioni(
                    servizio,
                    op,
                    t,
                    env!("CARGO_PKG_VERSION"),
                    INTERFACCIA_DAL,
                    &id,
                ),
            )
        }
        codice => {
            let body = match richieste::converti(registry.tables(), codice, &b.corpo, t) {
                None => return non_disponibile(state, servizio, op, t),
                Some(Err(a)) => return rifiuto(state, servizio, op, t, &a),
                Some(Ok(v)) => v,
            };
            match esegui_servizio(registry, ctx, codice, &body.corpo).await {
                Ok(risposta) => xml(
                    StatusCode::OK,
                    risposte::operazione(servizio, op, t, &risposta.documento, &body.avvertimenti),
                ),
                Err(Dispatch::Servizio(e)) => errore_servizio(servizio, op, t, &e),
                Err(Dispatch::Corpo(a)) => rifiuto(state, servizio, op, t, &[a]),
                Err(Dispatch::NonDisponibile) => non_disponibile(state, servizio, op, t),
            }
        }
    }
}

/// The decoding table numbered `richiesto` (ANPR's `Tabella N`) as the XML file
/// 7001 and E001 carry; a number naming no table is refused (`rispostaKO`).
async fn tabella_richiesta(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    richiesto: &str,
) -> Result<(u32, String), Response> {
    let registry = &state.registry;
    let numero = richiesto.parse::<u32>().ok();
    let elenco = registry
        .elenco_tabelle(ctx)
        .await
        .map_err(|e| errore_servizio(servizio, op, t, &e))?;
    let Some((nome, numero)) = elenco
        .iter()
        .find(|i| i.anpr_number.is_some() && i.anpr_number == numero)
        .map(|i| (i.name.clone(), i.anpr_number.unwrap_or_default()))
    else {
        let a = Anomalia::errore(
            anpr_service::tabelle::CODICE_TABELLA_INESISTENTE,
            "Tabella inesistente",
        )
        .campo("datiRichiesta/idTabella")
        .valore(richiesto)
        .atteso("il numero di una tabella ANPR (Tabella N)");
        return Err(rifiuto(state, servizio, op, t, &[a]));
    };
    let righe = registry
        .righe_tabella(ctx, &nome, None)
        .await
        .map_err(|e| errore_servizio(servizio, op, t, &e))?;
    Ok((
        numero,
        risposte::file_tabella(&righe.nome, numero, &righe.versione, &righe.righe),
    ))
}

/// A subject consultation (3002, 3006): the search, then — when the whole family or
/// the family data are asked for — each subject's family or cohabitation and its
/// members, all as at `dataRiferimentoRichiesta` and restricted to the data groups
/// asked for (every read is audited by the use cases).
async fn consultazione(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let conv = match richieste::converti_ricerca(&b.corpo, t) {
        Ok(c) => c,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    consulta(state, servizio, op, t, ctx, &conv, Risposta::Comune).await
}

/// Which answer a consultation's reads are written into.
enum Risposta<'a> {
    /// `RispostaNNNN_OK` (3002, 3006).
    Comune,
    /// `RispostaE002_OK`, with the conversion's warnings.
    Ente(&'a [Anomalia]),
    /// `RispostaC001`.
    Consolato,
}

/// The reads of a converted consultation (the search, then the families and members
/// asked for) and its answer.
async fn consulta(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    conv: &richieste::Consultazione,
    risposta_di: Risposta<'_>,
) -> Response {
    use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto};
    use anpr_domain::scheda::SezioneSoggetto;
    use anpr_service::consultazione::{FamigliaLetta, SchedaLetta};
    use anpr_soap::scheda::Letto;

    let registry = &state.registry;
    let criteri = serde_json::from_value::<RichiestaRicercaSoggetti>(conv.corpo.clone())
        .map_err(|e| {
            vec![Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Richiesta non conforme",
            )
            .valore(e.to_string())]
        })
        .and_then(|r| CriteriRicerca::da_richiesta(&r));
    let criteri = match criteri {
        Ok(c) => c,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    let trovati = match registry.ricerca_soggetti(ctx, &criteri).await {
        Ok(s) => s,
        Err(e) => return errore_servizio(servizio, op, t, &e),
    };
    let data = criteri.data_riferimento;
    let sezioni: Option<Vec<SezioneSoggetto>> = criteri.sezioni.clone();
    let n_trovati = trovati.len();
    let mut schede: Vec<SchedaLetta> = trovati;
    let mut famiglie: Vec<FamigliaLetta> = Vec::new();
    if conv.famiglia || conv.gruppi.serve_famiglia() {
        let ids: Vec<IdAnprFamiglia> = schede
            .iter()
            .filter_map(|s| {
                s.scheda
                    .legame
                    .as_ref()
                    .map(|l| l.id_famiglia_convivenza_anpr)
            })
            .collect();
        for fid in ids {
            if famiglie.iter().any(|f| f.id_anpr == fid) {
                continue;
            }
            match registry.leggi_famiglia(ctx, fid, data).await {
                Ok(f) => famiglie.push(f),
                Err(e) => return errore_servizio(servizio, op, t, &e),
            }
        }
        // The other members (scheda di famiglia), then the heads (tutoreIntestatario).
        let mut da_leggere: Vec<IdAnprSoggetto> = Vec::new();
        for f in &famiglie {
            if conv.famiglia {
                let mut componenti: Vec<_> = f.componenti.iter().collect();
                componenti.sort_by_key(|c| (c.codice_legame != "1", c.id_anpr));
                da_leggere.extend(componenti.iter().map(|c| c.id_anpr));
            }
            if conv.gruppi.vuole(&[12]) {
                da_leggere.extend(f.scheda.intestatario.as_ref().map(|i| i.id_anpr));
            }
        }
        for id in da_leggere {
            if schede.iter().any(|s| s.id_anpr == id) {
                continue;
            }
            match registry
                .leggi_scheda(ctx, id, data, sezioni.as_deref())
                .await
            {
                Ok(s) => schede.push(s),
                Err(e) => return errore_servizio(servizio, op, t, &e),
            }
        }
        if conv.famiglia {
            // Family by family, head first, as the members were listed.
            let ordine = |id: IdAnprSoggetto| {
                famiglie
                    .iter()
                    .enumerate()
                    .find_map(|(i, f)| {
                        let mut c: Vec<_> = f.componenti.iter().collect();
                        c.sort_by_key(|c| (c.codice_legame != "1", c.id_anpr));
                        c.iter().position(|c| c.id_anpr == id).map(|p| (i, p))
                    })
                    .unwrap_or((usize::MAX, 0))
            };
            schede.sort_by_key(|s| ordine(s.id_anpr));
        }
    }
    // Heads read only for tutoreIntestatario are not answered as records.
    let risposta: Vec<&SchedaLetta> = if conv.famiglia {
        schede.iter().collect()
    } else {
        schede.iter().take(n_trovati).collect()
    };
    let ids: Vec<String> = risposta.iter().map(|s| s.id_anpr.to_string()).collect();
    let fids: Vec<String> = famiglie.iter().map(|f| f.id_anpr.to_string()).collect();
    let teste: Vec<(usize, String)> = famiglie
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            f.scheda
                .intestatario
                .as_ref()
                .map(|h| (i, h.id_anpr.to_string()))
        })
        .collect();
    let letti: Vec<Letto<'_>> = risposta
        .iter()
        .zip(&ids)
        .map(|(s, id)| {
            let fi = s.scheda.legame.as_ref().and_then(|l| {
                famiglie
                    .iter()
                    .position(|f| f.id_anpr == l.id_famiglia_convivenza_anpr)
            });
            let intestatario = fi.and_then(|i| {
                let (_, hid) = teste.iter().find(|(j, _)| *j == i)?;
                let h = schede.iter().find(|x| x.id_anpr.to_string() == *hid)?;
                Some((hid.as_str(), &h.scheda))
            });
            Letto {
                id: id.as_str(),
                scheda: &s.scheda,
                famiglia: fi.map(|i| (fids[i].as_str(), &famiglie[i].scheda)),
                intestatario,
            }
        })
        .collect();
    let id = id_risposta(registry);
    let body = match risposta_di {
        Risposta::Consolato => {
            anpr_soap::consolati::risposta_c001(servizio, op, t, registry.tables(), &letti, &id)
        }
        Risposta::Comune => risposte::consultazione(
            servizio,
            op,
            t,
            registry.tables(),
            &letti,
            &conv.gruppi,
            &id,
        ),
        Risposta::Ente(avvertimenti) => anpr_soap::enti::risposta_e002(
            servizio,
            op,
            t,
            registry.tables(),
            &letti,
            &conv.gruppi,
            avvertimenti,
            &id,
        ),
    };
    xml(StatusCode::OK, body)
}

/// The documented answer for an operation of the WSDL without a use case in this
/// release (EV100): never a stub that pretends to succeed.
fn non_disponibile(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
) -> Response {
    let a = Anomalia::errore(
        richieste::CODICE_NON_DISPONIBILE,
        format!(
            "Servizio {} ({}) non disponibile in questa versione",
            op.codice, op.nome
        ),
    )
    .campo(op.richiesta.clone());
    rifiuto(state, servizio, op, t, &[a])
}
