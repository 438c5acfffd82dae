//! Our certification authority: workstation, server and user (smart-card) certificates,
//! the CRL and PKCS#12 bundles (SPEC M-8.4).
//!
//! Keys are ECDSA P-256 generated with `ring` (through rcgen): the one crypto provider of
//! the project. Certificates last six years. The subject names what the certificate is:
//!
//! | kind | CN | OU | EKU |
//! |---|---|---|---|
//! | workstation | `ISTAT-PC-NNNN` | ISTAT code | client auth |
//! | municipality server | `ISTAT-SERVER` | ISTAT code | client auth (signs web-service messages) |
//! | user (smart card) | the CF; `serialNumber` = the CF | card number | client auth |
//! | our TLS endpoint | `anpr` + DNS/IP names | — | server auth |
//!
//! This module does no I/O: keys and certificates come and go as bytes (see
//! [`crate::archivio`] for the data-directory files).

use std::fmt;

use chrono::{DateTime, Months, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};

use crate::errore::{ErroreSicurezza, CODICE_PASSWORD_PKCS12};

/// Validity of every certificate we issue (SPEC M-8.4).
pub const VALIDITA_MESI: u32 = 72;
/// Shortest PKCS#12 password accepted (the ALP chooses it at download).
pub const LUNGHEZZA_MINIMA_PASSWORD_PKCS12: usize = 10;
/// OID of the X.520 `serialNumber` attribute, which carries the CF of card certificates.
const OID_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TipoCertificato {
    Postazione,
    Server,
    Utente,
    /// Our own TLS endpoint.
    Endpoint,
}

/// The request for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichiestaCertificato {
    pub tipo: TipoCertificato,
    /// The subject's common name (workstation id, `ISTAT-SERVER`, the CF, `anpr`).
    pub cn: String,
    /// The organisational unit: the municipality's ISTAT code, or the card number.
    pub ou: Option<String>,
    /// DNS names and IP addresses (only for [`TipoCertificato::Endpoint`]).
    pub nomi: Vec<String>,
}

/// A certificate we issued and its private key (PKCS#8 DER). The key never goes to the
/// log: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatoEmesso {
    pub seriale: u64,
    pub cn: String,
    pub tipo: TipoCertificato,
    pub der: Vec<u8>,
    pub chiave_pkcs8: Vec<u8>,
    pub valido_dal: DateTime<Utc>,
    pub valido_al: DateTime<Utc>,
}

impl fmt::Debug for CertificatoEmesso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificatoEmesso")
            .field("seriale", &self.seriale)
            .field("cn", &self.cn)
            .field("tipo", &self.tipo)
            .field("valido_al", &self.valido_al)
            .field("chiave_pkcs8", &"<redatta>")
            .finish()
    }
}

impl CertificatoEmesso {
    /// The certificate in PEM.
    pub fn pem(&self) -> String {
        pem_certificato(&self.der)
    }

    /// The private key in PEM (PKCS#8).
    pub fn chiave_pem(&self) -> String {
        pem_blocco("PRIVATE KEY", &self.chiave_pkcs8)
    }
}

/// A revoked certificate, for the CRL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoca {
    pub seriale: u64,
    pub istante: DateTime<Utc>,
    /// Blocked (suspended: certificate hold) rather than revoked for good.
    pub bloccato: bool,
}

/// The CA: its key and self-signed certificate. `Debug` never shows the key.
pub struct AutoritaCertificazione {
    chiave: KeyPair,
    params: CertificateParams,
    certificato_der: Vec<u8>,
}

impl fmt::Debug for AutoritaCertificazione {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoritaCertificazione")
            .field("certificato_der", &self.certificato_der.len())
            .field("chiave", &"<redatta>")
            .finish()
    }
}

fn interno(e: impl fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::Interno(e.to_string())
}

fn ora(t: DateTime<Utc>) -> Result<time::OffsetDateTime, ErroreSicurezza> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(interno)
}

/// The CA's parameters, rebuilt identically each time so that a CA loaded from disk signs
/// with the same issuer name and key identifier.
fn parametri_ca(nome: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, nome);
    dn.push(DnType::OrganizationName, "ANPR");
    dn.push(DnType::CountryName, "IT");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    params
}

/// Name of our CA in its certificate.
pub const NOME_CA: &str = "ANPR CA postazioni e utenti";

impl AutoritaCertificazione {
    /// A new CA with a fresh key, valid from `adesso` for twice the certificates'
    /// validity (so that every certificate it issues ends before it does).
    pub fn nuova(adesso: DateTime<Utc>) -> Result<Self, ErroreSicurezza> {
        let chiave = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(interno)?;
        let mut params = parametri_ca(NOME_CA);
        params.not_before = ora(adesso)?;
        params.not_after = ora(adesso
            .checked_add_months(Months::new(2 * VALIDITA_MESI))
            .ok_or_else(|| interno("date out of range"))?)?;
        params.serial_number = Some(SerialNumber::from(1u64));
        let cert = params.self_signed(&chiave).map_err(interno)?;
        Ok(Self {
            certificato_der: cert.der().to_vec(),
            chiave,
            params,
        })
    }

    /// The CA as saved: its certificate (DER) and key (PKCS#8 PEM).
    pub fn carica(certificato_der: Vec<u8>, chiave_pem: &str) -> Result<Self, ErroreSicurezza> {
        let chiave = KeyPair::from_pem(chiave_pem).map_err(interno)?;
        Ok(Self {
            chiave,
            params: parametri_ca(NOME_CA),
            certificato_der,
        })
    }

    /// The CA certificate (DER): the trust anchor of mutual TLS and message signatures.
    pub fn certificato_der(&self) -> &[u8] {
        &self.certificato_der
    }

    /// The CA certificate in PEM.
    pub fn certificato_pem(&self) -> String {
        pem_certificato(&self.certificato_der)
    }

    /// The CA key in PEM: to be written only to a 0600 file.
    pub fn chiave_pem(&self) -> String {
        self.chiave.serialize_pem()
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.chiave)
    }

    /// Issues one certificate with serial `seriale`, valid six years from `adesso`.
    pub fn emetti(
        &self,
        richiesta: &RichiestaCertificato,
        seriale: u64,
        adesso: DateTime<Utc>,
    ) -> Result<CertificatoEmesso, ErroreSicurezza> {
        let chiave = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(interno)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, richiesta.cn.as_str());
        dn.push(DnType::OrganizationName, "ANPR");
        if let Some(ou) = &richiesta.ou {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        if richiesta.tipo == TipoCertificato::Utente {
            dn.push(
                DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()),
                richiesta.cn.as_str(),
            );
        }
        params.distinguished_name = dn;
        let valido_al = adesso
            .checked_add_months(Months::new(VALIDITA_MESI))
            .ok_or_else(|| interno("date out of range"))?;
        params.not_before = ora(adesso)?;
        params.not_after = ora(valido_al)?;
        params.serial_number = Some(SerialNumber::from(seriale));
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match richiesta.tipo {
            TipoCertificato::Endpoint => vec![ExtendedKeyUsagePurpose::ServerAuth],
            _ => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        for nome in &richiesta.nomi {
            params.subject_alt_names.push(match nome.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(nome.as_str().try_into().map_err(interno)?),
            });
        }
        let cert = params.signed_by(&chiave, &self.issuer()).map_err(interno)?;
        Ok(CertificatoEmesso {
            seriale,
            cn: richiesta.cn.clone(),
            tipo: richiesta.tipo,
            der: cert.der().to_vec(),
            chiave_pkcs8: chiave.serialize_der(),
            valido_dal: adesso,
            valido_al,
        })
    }

    /// The CRL listing `revoche` (blocked ones as *certificate hold*), number `numero`,
    /// valid for a day from `adesso`.
    pub fn crl(
        &self,
        revoche: &[Revoca],
        numero: u64,
        adesso: DateTime<Utc>,
    ) -> Result<Vec<u8>, ErroreSicurezza> {
        let params = CertificateRevocationListParams {
            this_update: ora(adesso)?,
            next_update: ora(adesso + chrono::Duration::days(1))?,
            crl_number: SerialNumber::from(numero),
            issuing_distribution_point: None,
            revoked_certs: revoche
                .iter()
                .map(|r| {
                    Ok(RevokedCertParams {
                        serial_number: SerialNumber::from(r.seriale),
                        revocation_time: ora(r.istante)?,
                        reason_code: Some(if r.bloccato {
                            RevocationReason::CertificateHold
                        } else {
                            RevocationReason::CessationOfOperation
                        }),
                        invalidity_date: None,
                    })
                })
                .collect::<Result<_, ErroreSicurezza>>()?,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params
            .signed_by(&self.issuer())
            .map_err(interno)?
            .der()
            .to_vec())
    }

    /// A PKCS#12 bundle of `cert` (key + certificate + our CA) protected by `password`,
    /// as the ALP downloads it for a workstation.
    pub fn pkcs12(
        &self,
        cert: &CertificatoEmesso,
        password: &str,
    ) -> Result<Vec<u8>, ErroreSicurezza> {
        if password.chars().count() < LUNGHEZZA_MINIMA_PASSWORD_PKCS12 {
            return Err(ErroreSicurezza::certificato(
                CODICE_PASSWORD_PKCS12,
                format!(
                    "La password del file PKCS#12 deve avere almeno {LUNGHEZZA_MINIMA_PASSWORD_PKCS12} caratteri"
                ),
            ));
        }
        let catena = [
            p12_keystore::Certificate::from_der(&cert.der).map_err(interno)?,
            p12_keystore::Certificate::from_der(&self.certificato_der).map_err(interno)?,
        ];
        let voce = p12_keystore::PrivateKeyChain::new(
            &cert.chiave_pkcs8,
            cert.seriale.to_be_bytes(),
            catena,
        );
        let mut ks = p12_keystore::KeyStore::new();
        ks.add_entry(&cert.cn, p12_keystore::KeyStoreEntry::PrivateKeyChain(voce));
        ks.writer(password).write().map_err(interno)
    }
}

/// A DER certificate in PEM.
pub fn pem_certificato(der: &[u8]) -> String {
    pem_blocco("CERTIFICATE", der)
}

/// A DER block in PEM with `etichetta` (`CERTIFICATE`, `PRIVATE KEY`).
pub fn pem_blocco(etichetta: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {etichetta}-----\n");
    for riga in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(riga).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {etichetta}-----\n"));
    s
}

/// What a certificate of ours says about its holder, read back from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitaCertificato {
    pub cn: String,
    pub ou: Option<String>,
    pub seriale: u64,
}

/// Reads CN, OU and serial of a certificate (already verified by the caller).
pub fn identita(der: &[u8]) -> Result<IdentitaCertificato, ErroreSicurezza> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
        ErroreSicurezza::certificato(crate::errore::CODICE_CERTIFICATO_NON_VALIDO, e)
    })?;
    let subject = cert.subject();
    let primo = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let cn = primo(&mut subject.iter_common_name()).ok_or_else(|| {
        ErroreSicurezza::certificato(
            crate::errore::CODICE_CERTIFICATO_NON_VALIDO,
            "certificato senza CN",
        )
    })?;
    let ou = primo(&mut subject.iter_organizational_unit());
    let bytes = cert.raw_serial();
    let seriale = bytes
        .iter()
        .skip_while(|b| **b == 0)
        .try_fold(0u64, |acc, b| {
            acc.checked_mul(256).map(|a| a + u64::from(*b))
        })
        .ok_or_else(|| {
            ErroreSicurezza::certificato(
                crate::errore::CODICE_CERTIFICATO_NON_VALIDO,
                "numero di serie fuori intervallo",
            )
        })?;
    Ok(IdentitaCertificato { cn, ou, seriale })
}
