//! Mutual TLS: the rustls server configuration that asks for client certificates,
//! verifies them against our CA and its current CRL, and lets anonymous clients in with
//! public permissions only.
//!
//! The CRL changes whenever a certificate is revoked or blocked, while rustls keeps one
//! verifier per configuration: [`VerificatoreClienti`] holds the current webpki verifier
//! behind a lock and [`VerificatoreClienti::aggiorna_crl`] swaps it, so a revocation
//! takes effect on the next handshake without restarting the server.

use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::errore::ErroreSicurezza;

fn interno(e: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::Interno(e.to_string())
}

/// The one crypto provider of the project.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn costruisci(
    ca_der: &[u8],
    crl_der: &[u8],
) -> Result<Arc<dyn ClientCertVerifier>, ErroreSicurezza> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .map_err(interno)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls([CertificateRevocationListDer::from(crl_der.to_vec())])
        .allow_unauthenticated()
        .build()
        .map_err(interno)
}

/// Client-certificate verifier whose CRL can be replaced at run time.
#[derive(Debug)]
pub struct VerificatoreClienti {
    ca_der: Vec<u8>,
    interno: RwLock<Arc<dyn ClientCertVerifier>>,
    suggerimenti: Vec<DistinguishedName>,
}

impl VerificatoreClienti {
    pub fn nuovo(ca_der: &[u8], crl_der: &[u8]) -> Result<Arc<Self>, ErroreSicurezza> {
        let v = costruisci(ca_der, crl_der)?;
        Ok(Arc::new(Self {
            ca_der: ca_der.to_vec(),
            suggerimenti: v.root_hint_subjects().to_vec(),
            interno: RwLock::new(v),
        }))
    }

    /// Uses `crl_der` from the next handshake on.
    pub fn aggiorna_crl(&self, crl_der: &[u8]) -> Result<(), ErroreSicurezza> {
        let v = costruisci(&self.ca_der, crl_der)?;
        *self.interno.write().map_err(interno)? = v;
        Ok(())
    }

    fn attuale(&self) -> Arc<dyn ClientCertVerifier> {
        // A poisoned lock still holds a complete verifier (it is replaced whole).
        self.interno
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ClientCertVerifier for VerificatoreClienti {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.suggerimenti
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.attuale()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.attuale().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.attuale().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.attuale().supported_verify_schemes()
    }
}

/// The server configuration: our endpoint certificate and key, client certificates
/// verified by `verificatore`; HTTP/1.1 only.
pub fn configurazione_server(
    verificatore: Arc<VerificatoreClienti>,
    certificato_der: &[u8],
    ca_der: &[u8],
    chiave_pkcs8: &[u8],
) -> Result<rustls::ServerConfig, ErroreSicurezza> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(interno)?
        .with_client_cert_verifier(verificatore)
        .with_single_cert(
            vec![
                CertificateDer::from(certificato_der.to_vec()),
                CertificateDer::from(ca_der.to_vec()),
            ],
            PrivateKeyDer::Pkcs8(chiave_pkcs8.to_vec().into()),
        )
        .map_err(interno)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
