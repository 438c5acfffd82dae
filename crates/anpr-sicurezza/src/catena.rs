//! Certificate chain and revocation checks against our CA and its CRL.
//!
//! Used for message signatures ([`crate::wssec`]) and, through rustls, for mutual TLS
//! ([`crate::mtls`]). Only our CA is trusted; only ECDSA P-256 and RSA (≥ 2048 bits)
//! signatures are accepted.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rustls::pki_types::{CertificateDer, UnixTime};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, KeyUsage,
    RevocationOptionsBuilder,
};

use crate::errore::{ErroreSicurezza, CODICE_CATENA_NON_VALIDA, CODICE_CERTIFICATO_FIRMA_REVOCATO};

/// The signature algorithms we accept in certificates and CRLs.
pub static ALGORITMI: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
];

/// Certificates whose chain check passed against one CA and CRL that a [`Fiducia`]
/// remembers; past this many the memory is emptied and refilled.
const MASSIMO_VERIFICATI: usize = 4096;

/// What we trust: our CA certificate and its current CRL (DER).
///
/// A `Fiducia` is immutable: a new CRL means a new `Fiducia`. It remembers the
/// certificates that passed the chain check (with their validity period), so a
/// certificate seen again is accepted without re-verifying the CA's and the CRL's
/// signatures while the same CRL is in force and the certificate is within its dates.
/// Failures are never remembered: they are checked again every time.
#[derive(Debug)]
pub struct Fiducia {
    pub ca_der: Vec<u8>,
    pub crl_der: Vec<u8>,
    /// Certificate DER → its validity period (not before, not after; Unix seconds).
    verificati: Mutex<HashMap<Vec<u8>, (i64, i64)>>,
}

impl Clone for Fiducia {
    fn clone(&self) -> Self {
        Self::nuova(self.ca_der.clone(), self.crl_der.clone())
    }
}

impl Fiducia {
    /// Trust in the CA certificate `ca_der` with its CRL `crl_der` (both DER).
    pub fn nuova(ca_der: Vec<u8>, crl_der: Vec<u8>) -> Self {
        Self {
            ca_der,
            crl_der,
            verificati: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies that `cert_der` was issued by our CA for client authentication, is
    /// valid at `adesso` and is not on the CRL. Revocation has its own code
    /// ([`CODICE_CERTIFICATO_FIRMA_REVOCATO`]); anything else is a chain failure.
    pub fn verifica(&self, cert_der: &[u8], adesso: DateTime<Utc>) -> Result<(), ErroreSicurezza> {
        let t = adesso.timestamp();
        let noto = self
            .verificati
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(cert_der)
            .is_some_and(|&(da, a)| da <= t && t <= a);
        if noto {
            return Ok(());
        }
        self.verifica_catena(cert_der, adesso)?;
        if let Ok((_, c)) = x509_parser::parse_x509_certificate(cert_der) {
            let validita = (
                c.validity().not_before.timestamp(),
                c.validity().not_after.timestamp(),
            );
            let mut v = self
                .verificati
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if v.len() >= MASSIMO_VERIFICATI {
                v.clear();
            }
            v.insert(cert_der.to_vec(), validita);
        }
        Ok(())
    }

    /// How many certificates this trust remembers as checked.
    pub fn certificati_ricordati(&self) -> usize {
        self.verificati
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    fn verifica_catena(
        &self,
        cert_der: &[u8],
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        let catena = |e: webpki::Error| {
            if e == webpki::Error::CertRevoked {
                ErroreSicurezza::messaggio(
                    CODICE_CERTIFICATO_FIRMA_REVOCATO,
                    "Certificato revocato o bloccato",
                )
            } else {
                ErroreSicurezza::messaggio(
                    CODICE_CATENA_NON_VALIDA,
                    format!("Certificato non emesso dalla CA di ANPR o non valido: {e:?}"),
                )
            }
        };
        let ca = CertificateDer::from(self.ca_der.as_slice());
        let ancora = webpki::anchor_from_trusted_cert(&ca).map_err(catena)?;
        let der = CertificateDer::from(cert_der);
        let ee = EndEntityCert::try_from(&der).map_err(catena)?;
        let crl: CertRevocationList<'_> = BorrowedCertRevocationList::from_der(&self.crl_der)
            .map_err(catena)?
            .into();
        let crls = [&crl];
        let revoca = RevocationOptionsBuilder::new(&crls)
            .map_err(|_| catena(webpki::Error::BadDer))?
            .build();
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(adesso.timestamp()).unwrap_or(0),
        ));
        ee.verify_for_usage(
            ALGORITMI,
            &[ancora],
            &[],
            t,
            KeyUsage::client_auth(),
            Some(revoca),
            None,
        )
        .map(|_| ())
        .map_err(catena)
    }
}
