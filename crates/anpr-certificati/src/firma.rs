//! The signed verification payload carried by a certificate's QR code.
//!
//! The payload is compact so that the QR code stays small and easy to scan: version,
//! certificate id (16 random bytes: unguessable), certificate types (a bit set over the
//! 20 types), issue date, issuing municipality (ISTAT code as a number) and the first 16
//! bytes of the SHA-256 of the certificate content, followed by an Ed25519 signature over
//! all of it. 45 + 64 bytes, 146 characters in unpadded base64url.
//!
//! Ed25519 comes from `ring`, the project's one cryptography provider. The key pair is
//! kept as PKCS#8 in the data directory ([`Firmatario::da_file_o_nuovo`]).

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Datelike, NaiveDate};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// Version byte of the payload layout.
const VERSIONE: u8 = 1;
const LUNGHEZZA_DATI: usize = 1 + 16 + 4 + 4 + 4 + 16;
const LUNGHEZZA_FIRMA: usize = 64;

/// What a certificate's QR code asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadVerifica {
    /// The certificate id (random, unguessable).
    pub id: [u8; 16],
    /// Bit `n - 1` set for certificate type `n` (table "Tipo di certificato", 1–20).
    pub tipi: u32,
    pub data_emissione: NaiveDate,
    /// ISTAT code of the issuing municipality, as a number (`58091` for `058091`).
    pub comune: u32,
    /// First 16 bytes of the SHA-256 of the certificate content.
    pub hash_contenuto: [u8; 16],
}

/// Why a payload does not verify. Deliberately coarse: a forger learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorePayload {
    #[error("payload not decodable")]
    Formato,
    #[error("signature does not verify")]
    Firma,
}

/// Failure to load or create the signing key.
#[derive(Debug, thiserror::Error)]
pub enum ErroreChiave {
    #[error("cannot read or write the signing key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key {0} is not a valid Ed25519 PKCS#8 document")]
    Formato(String),
    #[error("cannot generate a signing key")]
    Generazione,
}

impl PayloadVerifica {
    fn dati(&self) -> [u8; LUNGHEZZA_DATI] {
        let mut out = [0u8; LUNGHEZZA_DATI];
        out[0] = VERSIONE;
        out[1..17].copy_from_slice(&self.id);
        out[17..21].copy_from_slice(&self.tipi.to_be_bytes());
        let giorni = u32::try_from(self.data_emissione.num_days_from_ce()).unwrap_or(0);
        out[21..25].copy_from_slice(&giorni.to_be_bytes());
        out[25..29].copy_from_slice(&self.comune.to_be_bytes());
        out[29..45].copy_from_slice(&self.hash_contenuto);
        out
    }

    fn da_dati(b: &[u8]) -> Result<Self, ErrorePayload> {
        if b.len() != LUNGHEZZA_DATI || b[0] != VERSIONE {
            return Err(ErrorePayload::Formato);
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let giorni = i32::try_from(u32_at(21)).map_err(|_| ErrorePayload::Formato)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[1..17]);
        let mut hash_contenuto = [0u8; 16];
        hash_contenuto.copy_from_slice(&b[29..45]);
        Ok(Self {
            id,
            tipi: u32_at(17),
            data_emissione: NaiveDate::from_num_days_from_ce_opt(giorni)
                .ok_or(ErrorePayload::Formato)?,
            comune: u32_at(25),
            hash_contenuto,
        })
    }

    /// The certificate id as it appears in URLs and listings (32 lowercase hex digits).
    pub fn id_testo(&self) -> String {
        hex::encode(self.id)
    }
}

/// The Ed25519 key that signs certificate payloads.
pub struct Firmatario {
    chiave: Ed25519KeyPair,
}

impl fmt::Debug for Firmatario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key never appears in logs.
        f.debug_struct("Firmatario")
            .field(
                "chiave_pubblica",
                &hex::encode(self.chiave.public_key().as_ref()),
            )
            .finish()
    }
}

impl Firmatario {
    /// A fresh key kept only in memory (tests, benchmarks).
    pub fn effimero() -> Result<Self, ErroreChiave> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| ErroreChiave::Generazione)?;
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map(|chiave| Self { chiave })
            .map_err(|_| ErroreChiave::Generazione)
    }

    /// Loads the key from `path`, or creates it there (mode 0600 on Unix) when missing,
    /// so that certificates issued before a restart keep verifying.
    pub fn da_file_o_nuovo(path: &Path) -> Result<Self, ErroreChiave> {
        let io = |source| ErroreChiave::Io {
            path: path.display().to_string(),
            source,
        };
        let pkcs8 = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| ErroreChiave::Generazione)?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(io)?;
                std::io::Write::write_all(&mut f, doc.as_ref()).map_err(io)?;
                f.sync_all().map_err(io)?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(io(e)),
        };
        Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map(|chiave| Self { chiave })
            .map_err(|_| ErroreChiave::Formato(path.display().to_string()))
    }

    /// The public key (32 bytes), for publishing so that anyone can verify offline.
    pub fn chiave_pubblica(&self) -> Vec<u8> {
        self.chiave.public_key().as_ref().to_vec()
    }

    /// Signs the payload and returns its text form (unpadded base64url).
    pub fn firma(&self, payload: &PayloadVerifica) -> String {
        let dati = payload.dati();
        let firma = self.chiave.sign(&dati);
        let mut tutto = Vec::with_capacity(LUNGHEZZA_DATI + LUNGHEZZA_FIRMA);
        tutto.extend_from_slice(&dati);
        tutto.extend_from_slice(firma.as_ref());
        URL_SAFE_NO_PAD.encode(tutto)
    }

    /// Decodes a payload's text form and checks its signature.
    pub fn verifica(&self, testo: &str) -> Result<PayloadVerifica, ErrorePayload> {
        // Bound the work before decoding anything.
        if testo.len() > 200 {
            return Err(ErrorePayload::Formato);
        }
        let tutto = URL_SAFE_NO_PAD
            .decode(testo.trim())
            .map_err(|_| ErrorePayload::Formato)?;
        if tutto.len() != LUNGHEZZA_DATI + LUNGHEZZA_FIRMA {
            return Err(ErrorePayload::Formato);
        }
        let (dati, firma) = tutto.split_at(LUNGHEZZA_DATI);
        UnparsedPublicKey::new(&ED25519, self.chiave.public_key().as_ref())
            .verify(dati, firma)
            .map_err(|_| ErrorePayload::Firma)?;
        PayloadVerifica::da_dati(dati)
    }
}

/// 16 random bytes from the system's secure generator (certificate ids). A failing
/// generator is an error: a predictable id would make certificates guessable.
pub fn id_casuale() -> Result<[u8; 16], ErroreChiave> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| ErroreChiave::Generazione)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> PayloadVerifica {
        PayloadVerifica {
            id: [7u8; 16],
            tipi: 1 << 7,
            data_emissione: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            comune: 58091,
            hash_contenuto: [9u8; 16],
        }
    }

    #[test]
    fn signed_payload_round_trips_and_tampering_fails() {
        let f = Firmatario::effimero().unwrap();
        let testo = f.firma(&payload());
        assert_eq!(testo.len(), 146);
        assert_eq!(f.verifica(&testo).unwrap(), payload());
        // Flip one character of the data part: the signature no longer matches.
        let mut b: Vec<char> = testo.chars().collect();
        b[30] = if b[30] == 'A' { 'B' } else { 'A' };
        let manomesso: String = b.into_iter().collect();
        assert_eq!(f.verifica(&manomesso), Err(ErrorePayload::Firma));
        assert_eq!(f.verifica("abc"), Err(ErrorePayload::Formato));
        // Another key does not accept it.
        let altro = Firmatario::effimero().unwrap();
        assert_eq!(altro.verifica(&testo), Err(ErrorePayload::Firma));
    }

    #[test]
    fn key_file_is_created_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pk8");
        let a = Firmatario::da_file_o_nuovo(&path).unwrap();
        let b = Firmatario::da_file_o_nuovo(&path).unwrap();
        assert_eq!(a.chiave_pubblica(), b.chiave_pubblica());
        assert!(b.verifica(&a.firma(&payload())).is_ok());
    }
}
