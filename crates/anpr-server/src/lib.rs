//! The registry's HTTP edge: REST under `/api/v1` (JSON in the ANPR vocabulary, OpenAPI
//! 3.1 at `/api/v1/openapi.json`), `/healthz` and `/metrics`.
//!
//! Handlers are thin: they build the [`CallerContext`] (see [`caller`]), parse the
//! request into the service's input, call one use case and map its result. Errors are
//! mapped once, in [`error`]. Every response names the environment it came from in the
//! `X-ANPR-Ambiente` header (and in JSON bodies where they have an envelope).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anpr_domain::caller::Ambiente;
use anpr_service::Registry;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub mod caller;
pub mod error;
pub mod firma_rest;
mod openapi;
mod openapi_certificati;
mod openapi_operazioni;
pub mod posta;
mod rest;
mod rest_certificati;
mod rest_documenti;
mod rest_estrazioni;
mod rest_notifiche;
mod rest_procedimenti;
mod rest_ricerca;
mod rest_sicurezza;
mod rest_sospese;
mod rest_statistiche;
mod rest_subentro;
pub mod rete;
mod soap;
pub mod tls;

/// Largest request body accepted (JSON requests are small; bulk files have their own
/// streaming endpoints).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The subentro upload (streamed multipart, no size limit but the signed one's).
pub const PERCORSO_SUBENTRO: &str = "/api/v1/subentro";

/// Largest message of the SOAP subentro upload (`/ws/AnprServiceS001`): one compressed
/// file in base64 (at most `anpr_subentro::consegna::DIMENSIONE_MASSIMA_COMPRESSA`,
/// 40 MiB, before encoding). The other SOAP endpoints keep [`MAX_BODY_BYTES`].
pub const MAX_BODY_BYTES_S001: usize = 64 * 1024 * 1024;

/// Response header naming the environment.
pub const HEADER_AMBIENTE: &str = "x-anpr-ambiente";

/// Settings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Environment used when a request does not choose one.
    pub ambiente_predefinito: Ambiente,
    /// Backend name shown by `/healthz` (`sqlite` or `postgres`).
    pub backend: &'static str,
    /// Accept identity headers (`X-ANPR-Utente`, ...) without a verified certificate.
    /// Never honoured for `produzione`, whatever this says.
    pub identita_da_header: bool,
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub config: Arc<ServerConfig>,
    metrics: PrometheusHandle,
    /// Where subentro outcome files and S001 staged parts live, one subdirectory per
    /// environment.
    pub cartella_esiti: Arc<PathBuf>,
}

/// The subentro directory of [`router`]: `ANPR_ESITI_DIR`, else `anpr-esiti` in the
/// system's temporary directory.
pub fn cartella_esiti_predefinita() -> PathBuf {
    std::env::var_os("ANPR_ESITI_DIR")
        .map_or_else(|| std::env::temp_dir().join("anpr-esiti"), PathBuf::from)
}

/// The process-wide Prometheus recorder (a recorder can be installed only once).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding, tests): then our
            // handle simply renders nothing, which is better than failing to start.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Builds the router with all routes and layers.
pub fn router(registry: Arc<Registry>, config: ServerConfig) -> Router {
    router_con_esiti(registry, config, cartella_esiti_predefinita())
}

/// [`router`] with the subentro directory given (tests give each server its own).
pub fn router_con_esiti(
    registry: Arc<Registry>,
    config: ServerConfig,
    cartella_esiti: PathBuf,
) -> Router {
    let state = AppState {
        registry,
        config: Arc::new(config),
        metrics: metrics_handle(),
        cartella_esiti: Arc::new(cartella_esiti),
    };
    Router::new()
        .route("/healthz", get(rest::healthz))
        .route("/metrics", get(rest::metrics))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/tabelle", get(rest::elenco_tabelle))
        .route("/api/v1/tabelle/comuni", get(rest::comuni))
        .route("/api/v1/tabelle/{nome}", get(rest::righe_tabella))
        .route("/api/v1/codice-fiscale/calcola", post(rest::calcola_cf))
        .route("/api/v1/codice-fiscale/verifica", post(rest::verifica_cf))
        .route(
            "/api/v1/codice-fiscale/decodifica",
            post(rest::decodifica_cf),
        )
        .route("/api/v1/soggetti/consulta", post(rest::consulta_soggetto))
        .route(
            "/api/v1/soggetti/ricerca",
            post(rest_ricerca::ricerca_soggetti),
        )
        .route("/api/v1/famiglie/consulta", post(rest::consulta_famiglia))
        .route(
            "/api/v1/famiglie/ricerca",
            post(rest_ricerca::ricerca_famiglie),
        )
        .route("/api/v1/operazioni", get(rest_ricerca::elenco_operazioni))
        .route("/api/v1/notifiche", get(rest_notifiche::elenco))
        .route(
            "/api/v1/notifiche/presa-in-carico",
            post(rest_notifiche::presa_in_carico),
        )
        .route("/api/v1/audit/verifica", post(rest::verifica_audit))
        .route("/api/v1/operazioni/{codice}", post(rest::operazione))
        .route(
            "/api/v1/operazioni-sospese",
            post(rest_sospese::salva).get(rest_sospese::elenco),
        )
        .route(
            "/api/v1/operazioni-sospese/ricerca",
            post(rest_sospese::ricerca),
        )
        .route(
            "/api/v1/operazioni-sospese/{id}",
            get(rest_sospese::riprendi).delete(rest_sospese::elimina),
        )
        .route(
            "/api/v1/procedimenti/ricerca",
            post(rest_procedimenti::ricerca),
        )
        .route(
            "/api/v1/certificati",
            post(rest_certificati::emetti).get(rest_certificati::elenco),
        )
        .route(
            "/api/v1/certificati/verifica",
            get(rest_certificati::verifica),
        )
        .route("/api/v1/certificati/{id}/pdf", get(rest_certificati::pdf))
        .route(
            "/api/v1/certificati/{id}/annulla",
            post(rest_certificati::annulla),
        )
        .route(
            "/api/v1/carte-identita",
            post(rest_documenti::emetti_carta).get(rest_documenti::elenco_carte),
        )
        .route(
            "/api/v1/carte-identita/{id}/pdf",
            get(rest_documenti::pdf_carta),
        )
        .route(
            "/api/v1/carte-identita/{id}/annulla",
            post(rest_documenti::annulla_carta),
        )
        .route(
            "/api/v1/comuni/{istat}/parametri",
            get(rest_documenti::leggi_parametri).put(rest_documenti::salva_parametri),
        )
        .merge(rotte_estrazioni())
        .merge(rotte_sicurezza())
        .route("/ws/{servizio}", get(soap::documento).post(soap::richiesta))
        .route(
            "/ws/AnprServiceS001",
            // The subentro upload carries a whole compressed file: its own limit.
            get(soap::documento_s001)
                .post(soap::richiesta_s001)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES_S001)),
        )
        .route(
            PERCORSO_SUBENTRO,
            // A municipality's files are large: this route streams them to disk, so
            // the JSON body limit does not apply (EN002 bounds each file).
            post(rest_subentro::carica).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/subentro/{id}/esiti/{nome}",
            get(rest_subentro::scarica_esito),
        )
        .fallback(rest::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            firma_rest::verifica,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rete::individua,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Asynchronous extractions (4001-4005, 7002) and ISTAT tables (4003), see
/// [`rest_estrazioni`] and [`rest_statistiche`].
fn rotte_estrazioni() -> Router<AppState> {
    use rest_estrazioni as e;
    use rest_statistiche as s;
    Router::new()
        .route("/api/v1/estrazioni", post(e::estrazione).get(e::elenco))
        .route("/api/v1/estrazioni/rivestimento", post(e::rivestimento))
        .route("/api/v1/estrazioni/elenchi", post(e::elenchi))
        .route("/api/v1/estrazioni/{id}", get(e::stato))
        .route("/api/v1/estrazioni/{id}/file", get(e::file))
        .route("/api/v1/statistiche/prospetti", post(s::calcola))
        .route("/api/v1/statistiche/prospetti/{id}", get(s::prospetto))
        .route("/api/v1/statistiche/prospetti/{id}/stampa", get(s::stampa))
        .route("/api/v1/statistiche/grafico", get(s::grafico))
}

/// The security console (`/api/v1/sicurezza`), see [`rest_sicurezza`].
fn rotte_sicurezza() -> Router<AppState> {
    use rest_sicurezza as s;
    Router::new()
        .route("/api/v1/sicurezza/utenti", post(s::censisci))
        .route("/api/v1/sicurezza/utenti/cancella", post(s::cancella))
        .route("/api/v1/sicurezza/postazioni", post(s::postazioni))
        .route("/api/v1/sicurezza/carte", post(s::richiedi_carta))
        .route(
            "/api/v1/sicurezza/carte/{numero}/materiale",
            post(s::materiale_carta),
        )
        .route(
            "/api/v1/sicurezza/carte/{numero}/{azione}",
            post(s::evento_carta),
        )
        .route(
            "/api/v1/sicurezza/password-giornaliera",
            post(s::password_giornaliera),
        )
        .route("/api/v1/sicurezza/certificati", post(s::emetti_certificati))
        .route(
            "/api/v1/sicurezza/certificati/{seriale}/pkcs12",
            post(s::scarica_certificato),
        )
        .route(
            "/api/v1/sicurezza/certificati/{seriale}/installazione",
            post(s::installazione),
        )
        .route(
            "/api/v1/sicurezza/certificati/{seriale}/revoca",
            post(s::revoca),
        )
        .route(
            "/api/v1/sicurezza/certificati/{seriale}/rinnovo",
            post(s::rinnovo),
        )
        .route(
            "/api/v1/sicurezza/registro-postazioni/verifica",
            post(s::verifica_registro),
        )
        .route("/api/v1/sicurezza/parametri/{ente}", post(s::parametri))
        .route(
            "/api/v1/sicurezza/accesso/password-giornaliera",
            post(s::accesso_password),
        )
        .route("/api/v1/sicurezza/accesso/esci", post(s::esci))
        .route(
            "/api/v1/sicurezza/passkey/registrazione/opzioni",
            post(s::opzioni_registrazione_passkey),
        )
        .route(
            "/api/v1/sicurezza/passkey/registrazione",
            post(s::registra_passkey),
        )
        .route(
            "/api/v1/sicurezza/passkey/accesso/opzioni",
            post(s::opzioni_accesso_passkey),
        )
        .route(
            "/api/v1/sicurezza/passkey/accesso",
            post(s::accesso_passkey),
        )
        .route(
            "/api/v1/sicurezza/ip-autorizzati/{ente}",
            get(s::leggi_ip_autorizzati).put(s::imposta_ip_autorizzati),
        )
        .route("/api/v1/sicurezza/ca.pem", get(s::ca))
        .route("/api/v1/sicurezza/crl", get(s::crl))
}

/// Records metrics and a log line for every request, and stamps the environment header.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let requested_env = req
        .headers()
        .get(caller::HEADER_RICHIESTA_AMBIENTE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    metrics::counter!("anpr_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("anpr_http_request_duration_seconds", "method" => method.to_string(), "route" => route.clone()).record(elapsed.as_secs_f64());
    tracing::info!(%method, route, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
    if !response.headers().contains_key(HEADER_AMBIENTE) {
        let env = requested_env
            .and_then(|e| e.parse::<Ambiente>().ok())
            .unwrap_or(state.config.ambiente_predefinito);
        if let Ok(v) = HeaderValue::from_str(env.as_str()) {
            response.headers_mut().insert(HEADER_AMBIENTE, v);
        }
    }
    response
}
