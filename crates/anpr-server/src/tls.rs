//! Mutual TLS: serving the router over TLS with client certificates verified against
//! our CA and its current CRL (see `anpr_sicurezza::mtls`).
//!
//! Each accepted connection's verified client certificate (if any) is attached to every
//! request of that connection as [`ConnessioneTls`]; the caller extractor turns it into
//! the caller context on **each** request, so a card blocked or replaced while a
//! connection is open stops working at the next request. A connection opened with a
//! smart-card certificate is audited as a login (or a failed login).

use std::net::SocketAddr;
use std::sync::Arc;

use anpr_domain::caller::{Ambiente, Canale};
use anpr_service::Registry;
use anpr_sicurezza::ca::{CertificatoEmesso, RichiestaCertificato, TipoCertificato};
use anpr_sicurezza::mtls::configurazione_server;
use axum::http::Request;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Attached to every request that arrived over TLS: the verified client certificate
/// (DER), when the client presented one.
#[derive(Debug, Clone)]
pub struct ConnessioneTls {
    pub certificato: Option<Arc<Vec<u8>>>,
}

/// Issues the certificate of our own TLS endpoint from our CA, for `nomi` (DNS names
/// and IP addresses). It lives as long as the process: clients trust the CA.
pub fn certificato_endpoint(
    registry: &Registry,
    nomi: Vec<String>,
) -> Result<CertificatoEmesso, String> {
    let sic = registry
        .sicurezza_configurata()
        .ok_or("componente di sicurezza non configurato")?;
    let adesso = registry.clock().now();
    // Endpoint serials live above the directory's small sequential ones.
    let seriale = (1u64 << 62) | (adesso.timestamp_micros().unsigned_abs() & ((1 << 62) - 1));
    sic.ca()
        .emetti(
            &RichiestaCertificato {
                tipo: TipoCertificato::Endpoint,
                cn: "anpr".into(),
                ou: None,
                nomi,
            },
            seriale,
            adesso,
        )
        .map_err(|e| e.to_string())
}

/// Serves `app` over mutual TLS on `listener` until `shutdown` completes.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    registry: Arc<Registry>,
    endpoint: CertificatoEmesso,
    ambiente_predefinito: Ambiente,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let sic = registry
        .sicurezza_configurata()
        .ok_or("componente di sicurezza non configurato")?
        .clone();
    let verificatore = sic.verificatore_tls().map_err(|e| e.to_string())?;
    let config = configurazione_server(
        verificatore,
        &endpoint.der,
        sic.ca().certificato_der(),
        &endpoint.chiave_pkcs8,
    )
    .map_err(|e| e.to_string())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::pin!(shutdown);
    loop {
        let (tcp, remoto) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            connessione(tcp, remoto, acceptor, app, registry, ambiente_predefinito).await;
        });
    }
}

async fn connessione(
    tcp: tokio::net::TcpStream,
    remoto: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    registry: Arc<Registry>,
    ambiente: Ambiente,
) {
    let tls = match acceptor.accept(tcp).await {
        Ok(t) => t,
        Err(e) => {
            // A refused certificate (unknown CA, revoked) ends here: log it.
            tracing::warn!(%remoto, error = %e, "TLS handshake refused");
            return;
        }
    };
    let certificato = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| Arc::new(c.as_ref().to_vec()));
    if let Some(der) = &certificato {
        // A card certificate opening a connection is a login; a failed one is audited
        // by the check itself.
        if let Ok(ctx) = registry
            .chiamante_da_certificato(ambiente, der, Canale::Rest)
            .await
        {
            if !ctx.profili.is_empty() {
                let _ = registry.registra_accesso(&ctx).await;
            }
        }
    }
    let estensione = ConnessioneTls { certificato };
    let servizio = app.map_request(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(estensione.clone());
        req.extensions_mut()
            .insert(crate::rete::IndirizzoRemoto(remoto));
        req
    });
    let servizio = TowerToHyperService::new(servizio);
    if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .http1_only()
        .serve_connection(TokioIo::new(tls), servizio)
        .await
    {
        tracing::debug!(%remoto, error = %e, "connection ended");
    }
}
