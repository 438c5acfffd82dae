//! WebAuthn passkeys bound to a smart-card record: the modern alternative to the card
//! for an operator's login (SPEC M-8.3).
//!
//! Verification of the two ceremonies (W3C WebAuthn Level 2, §7.1 and §7.2) with
//! `ring` and a CBOR decoder — no OpenSSL:
//!
//! - **registration**: `clientDataJSON` (type `webauthn.create`, our challenge, an
//!   accepted origin), the attestation object (`fmt` `none`, or `packed` self-attestation
//!   verified with the new credential's own key; attestation certificates are not
//!   accepted), the authenticator data (SHA-256 of our RP id, user present and user
//!   verified, attested credential data), the credential public key (COSE EC2 P-256,
//!   ES256 only);
//! - **authentication**: `clientDataJSON` (type `webauthn.get`), the authenticator data
//!   (RP id, flags), the ECDSA P-256 signature over `authenticatorData ‖
//!   SHA-256(clientDataJSON)` with the registered key, and the signature counter, which
//!   must grow when the authenticator keeps one (a counter that does not is the sign of
//!   a cloned authenticator).
//!
//! Pure functions: the challenge bookkeeping, the card binding and the storage are the
//! service's.

use base64::Engine;
use chrono::{DateTime, Utc};
use ciborium::value::Value as Cbor;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errore::ErroreSicurezza;

/// The client data, the challenge or the origin is not ours.
pub const CODICE_CLIENT_DATA: &str = "EV216";
/// The authenticator data or attestation is not acceptable (RP id, flags, format,
/// algorithm, key).
pub const CODICE_AUTENTICATORE: &str = "EV217";
/// The signature does not verify with the registered key.
pub const CODICE_FIRMA_PASSKEY: &str = "EV218";
/// The signature counter did not grow: possibly a cloned authenticator.
pub const CODICE_CONTATORE: &str = "EV219";

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// A registered passkey (public key credential, ES256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Passkey {
    /// Credential id, base64url without padding.
    pub id: String,
    /// The holder's CF.
    pub titolare: String,
    /// The card record it is bound to: the passkey works only while that card does.
    pub carta: String,
    /// The P-256 public key as an uncompressed SEC1 point (65 bytes).
    pub chiave_pubblica: Vec<u8>,
    /// The authenticator's signature counter last seen.
    pub contatore: u32,
    pub registrata: DateTime<Utc>,
    pub ultimo_uso: Option<DateTime<Utc>>,
}

/// Who we are for WebAuthn: the RP id (a domain) and the origins pages run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origini: Vec<String>,
}

fn errore(codice: &'static str, m: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::Messaggio {
        codice,
        messaggio: m.to_string(),
    }
}

/// base64url without padding (as WebAuthn uses), decoding also padded input.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn da_b64url(s: &str, campo: &str) -> Result<Vec<u8>, ErroreSicurezza> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| errore(CODICE_CLIENT_DATA, format!("{campo}: base64url non valido")))
}

#[derive(Debug, Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    tipo: String,
    challenge: String,
    origin: String,
}

/// Checks `clientDataJSON` and returns the challenge it names (base64url) and its
/// SHA-256.
pub fn verifica_client_data(
    client_data_json: &[u8],
    tipo_atteso: &str,
    rp: &RelyingParty,
) -> Result<(String, [u8; 32]), ErroreSicurezza> {
    if client_data_json.len() > 4096 {
        return Err(errore(CODICE_CLIENT_DATA, "clientDataJSON troppo grande"));
    }
    let cd: ClientData = serde_json::from_slice(client_data_json).map_err(|e| {
        errore(
            CODICE_CLIENT_DATA,
            format!("clientDataJSON non valido: {e}"),
        )
    })?;
    if cd.tipo != tipo_atteso {
        return Err(errore(
            CODICE_CLIENT_DATA,
            format!("clientDataJSON.type {:?}, atteso {tipo_atteso:?}", cd.tipo),
        ));
    }
    if !rp.origini.contains(&cd.origin) {
        return Err(errore(
            CODICE_CLIENT_DATA,
            format!("origine {:?} non ammessa", cd.origin),
        ));
    }
    Ok((cd.challenge, Sha256::digest(client_data_json).into()))
}

/// The parsed authenticator data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatiAutenticatore {
    pub flags: u8,
    pub contatore: u32,
    /// Credential id and COSE public key, when attested (registration).
    pub credenziale: Option<(Vec<u8>, Vec<u8>)>,
}

/// Parses authenticator data and checks the RP id hash and that the user was present
/// and verified.
pub fn dati_autenticatore(
    dati: &[u8],
    rp: &RelyingParty,
) -> Result<DatiAutenticatore, ErroreSicurezza> {
    let e = |m: &str| errore(CODICE_AUTENTICATORE, m);
    if dati.len() < 37 {
        return Err(e("authenticatorData troppo corto"));
    }
    let rp_hash: [u8; 32] = Sha256::digest(rp.id.as_bytes()).into();
    if dati[..32] != rp_hash {
        return Err(e("authenticatorData per un altro rpId"));
    }
    let flags = dati[32];
    if flags & UP == 0 || flags & UV == 0 {
        return Err(e(
            "l'autenticatore non attesta presenza e verifica dell'utente (UP, UV)",
        ));
    }
    let contatore = u32::from_be_bytes([dati[33], dati[34], dati[35], dati[36]]);
    let credenziale = if flags & AT != 0 {
        let resto = &dati[37..];
        if resto.len() < 18 {
            return Err(e("dati della credenziale troncati"));
        }
        let n = usize::from(u16::from_be_bytes([resto[16], resto[17]]));
        let dopo = &resto[18..];
        if dopo.len() < n || n == 0 || n > 1023 {
            return Err(e("identificativo della credenziale non valido"));
        }
        let (id, chiave) = dopo.split_at(n);
        Some((id.to_vec(), chiave.to_vec()))
    } else {
        None
    };
    Ok(DatiAutenticatore {
        flags,
        contatore,
        credenziale,
    })
}

fn cbor(bytes: &[u8], cosa: &str) -> Result<Cbor, ErroreSicurezza> {
    ciborium::de::from_reader(bytes).map_err(|e| {
        errore(
            CODICE_AUTENTICATORE,
            format!("{cosa}: CBOR non valido: {e}"),
        )
    })
}

fn campo<'a>(m: &'a [(Cbor, Cbor)], chiave: &Cbor) -> Option<&'a Cbor> {
    m.iter().find(|(k, _)| k == chiave).map(|(_, v)| v)
}

/// A COSE EC2 P-256 ES256 key as an uncompressed SEC1 point. The key is read from the
/// start of `cose`; what follows (extensions) is ignored.
pub fn chiave_cose(cose: &[u8]) -> Result<Vec<u8>, ErroreSicurezza> {
    let e = |m: &str| errore(CODICE_AUTENTICATORE, format!("chiave COSE: {m}"));
    let v = cbor(cose, "chiave COSE")?;
    let m = v.as_map().ok_or_else(|| e("non è una mappa"))?;
    let intero = |k: i64| {
        campo(m, &Cbor::Integer(k.into()))
            .and_then(|v| v.as_integer())
            .map(i128::from)
    };
    if intero(1) != Some(2) || intero(3) != Some(-7) || intero(-1) != Some(1) {
        return Err(e("ammessa solo EC2, P-256, ES256 (alg -7)"));
    }
    let coord = |k: i64| {
        campo(m, &Cbor::Integer(k.into()))
            .and_then(|v| v.as_bytes())
            .filter(|b| b.len() == 32)
            .cloned()
            .ok_or_else(|| e("coordinate mancanti"))
    };
    let mut punto = vec![0x04];
    punto.extend(coord(-2)?);
    punto.extend(coord(-3)?);
    Ok(punto)
}

fn verifica_firma(
    chiave: &[u8],
    dati_autenticatore: &[u8],
    hash_client: &[u8; 32],
    firma: &[u8],
    codice: &'static str,
) -> Result<(), ErroreSicurezza> {
    let mut firmato = dati_autenticatore.to_vec();
    firmato.extend_from_slice(hash_client);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, chiave)
        .verify(&firmato, firma)
        .map_err(|_| errore(codice, "firma non valida"))
}

/// A verified registration: the new credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrazione {
    /// The challenge the client signed (base64url), to be matched with ours.
    pub sfida: String,
    pub id: Vec<u8>,
    pub chiave_pubblica: Vec<u8>,
    pub contatore: u32,
}

/// Verifies a registration response (`clientDataJSON`, `attestationObject`).
pub fn verifica_registrazione(
    client_data_json: &[u8],
    attestation_object: &[u8],
    rp: &RelyingParty,
) -> Result<Registrazione, ErroreSicurezza> {
    let (sfida, hash_client) = verifica_client_data(client_data_json, "webauthn.create", rp)?;
    if attestation_object.len() > 16 * 1024 {
        return Err(errore(
            CODICE_AUTENTICATORE,
            "attestationObject troppo grande",
        ));
    }
    let v = cbor(attestation_object, "attestationObject")?;
    let m = v
        .as_map()
        .ok_or_else(|| errore(CODICE_AUTENTICATORE, "attestationObject non è una mappa"))?;
    let testo = |k: &str| campo(m, &Cbor::Text(k.into()));
    let fmt = testo("fmt").and_then(|v| v.as_text()).unwrap_or("");
    let auth_data = testo("authData")
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| errore(CODICE_AUTENTICATORE, "authData mancante"))?;
    let att_stmt = testo("attStmt")
        .and_then(|v| v.as_map())
        .ok_or_else(|| errore(CODICE_AUTENTICATORE, "attStmt mancante"))?;
    let dati = dati_autenticatore(auth_data, rp)?;
    let (id, cose) = dati
        .credenziale
        .clone()
        .ok_or_else(|| errore(CODICE_AUTENTICATORE, "nessuna credenziale attestata (AT)"))?;
    let chiave = chiave_cose(&cose)?;
    match fmt {
        "none" => {
            if !att_stmt.is_empty() {
                return Err(errore(
                    CODICE_AUTENTICATORE,
                    "attStmt non vuoto per fmt none",
                ));
            }
        }
        "packed" => {
            let st = |k: &str| campo(att_stmt, &Cbor::Text(k.into()));
            if st("x5c").is_some() {
                return Err(errore(
                    CODICE_AUTENTICATORE,
                    "attestazione packed con certificato non ammessa: solo auto-attestazione",
                ));
            }
            if st("alg").and_then(|v| v.as_integer()).map(i128::from) != Some(-7) {
                return Err(errore(
                    CODICE_AUTENTICATORE,
                    "attestazione packed: alg diverso da ES256",
                ));
            }
            let firma = st("sig")
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| errore(CODICE_AUTENTICATORE, "attestazione packed senza sig"))?;
            verifica_firma(
                &chiave,
                auth_data,
                &hash_client,
                firma,
                CODICE_AUTENTICATORE,
            )?;
        }
        altro => {
            return Err(errore(
                CODICE_AUTENTICATORE,
                format!("formato di attestazione {altro:?} non ammesso (none, packed)"),
            ))
        }
    }
    Ok(Registrazione {
        sfida,
        id,
        chiave_pubblica: chiave,
        contatore: dati.contatore,
    })
}

/// A verified assertion: the challenge it answers and the new counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserzione {
    pub sfida: String,
    pub contatore: u32,
}

/// Verifies an authentication response against the registered `passkey`.
pub fn verifica_asserzione(
    passkey: &Passkey,
    client_data_json: &[u8],
    authenticator_data: &[u8],
    firma: &[u8],
    rp: &RelyingParty,
) -> Result<Asserzione, ErroreSicurezza> {
    let (sfida, hash_client) = verifica_client_data(client_data_json, "webauthn.get", rp)?;
    let dati = dati_autenticatore(authenticator_data, rp)?;
    verifica_firma(
        &passkey.chiave_pubblica,
        authenticator_data,
        &hash_client,
        firma,
        CODICE_FIRMA_PASSKEY,
    )?;
    if (dati.contatore != 0 || passkey.contatore != 0) && dati.contatore <= passkey.contatore {
        return Err(errore(
            CODICE_CONTATORE,
            format!(
                "contatore dell'autenticatore {} non maggiore dell'ultimo visto {}: possibile clone",
                dati.contatore, passkey.contatore
            ),
        ));
    }
    Ok(Asserzione {
        sfida,
        contatore: dati.contatore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PasskeySoftware;

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "localhost".into(),
            origini: vec!["https://localhost".into()],
        }
    }

    fn check_codice<T: std::fmt::Debug>(r: Result<T, ErroreSicurezza>, codice: &str) {
        assert_eq!(r.unwrap_err().codice(), codice);
    }

    #[test]
    fn registration_and_assertions_with_a_software_passkey() {
        let mut pk = PasskeySoftware::nuova("localhost");
        for fmt in ["none", "packed"] {
            let (cd, att) = pk.registrazione("c2ZpZGE", "https://localhost", fmt);
            let r = verifica_registrazione(&cd, &att, &rp()).unwrap();
            assert_eq!(r.sfida, "c2ZpZGE");
            assert_eq!(r.id, pk.id);
            assert_eq!(r.chiave_pubblica, pk.chiave_pubblica());
        }
        let registrata = Passkey {
            id: b64url(&pk.id),
            titolare: "X".into(),
            carta: "0580910001".into(),
            chiave_pubblica: pk.chiave_pubblica(),
            contatore: 0,
            registrata: Utc::now(),
            ultimo_uso: None,
        };
        let (cd, ad, sig) = pk.asserzione("YWJj", "https://localhost");
        let a = verifica_asserzione(&registrata, &cd, &ad, &sig, &rp()).unwrap();
        assert_eq!((a.sfida.as_str(), a.contatore), ("YWJj", 1));

        // Forgeries, each with its code.
        let (cd, ad, sig) = pk.asserzione("YWJj", "https://evil.example");
        check_codice(
            verifica_asserzione(&registrata, &cd, &ad, &sig, &rp()),
            CODICE_CLIENT_DATA,
        );
        let (cd, ad, mut sig) = pk.asserzione("YWJj", "https://localhost");
        let n = sig.len() - 1;
        sig[n] ^= 1;
        check_codice(
            verifica_asserzione(&registrata, &cd, &ad, &sig, &rp()),
            CODICE_FIRMA_PASSKEY,
        );
        let (cd, ad, sig) = pk.asserzione("YWJj", "https://localhost");
        let altro_rp = RelyingParty {
            id: "anpr.example".into(),
            origini: vec!["https://localhost".into()],
        };
        check_codice(
            verifica_asserzione(&registrata, &cd, &ad, &sig, &altro_rp),
            CODICE_AUTENTICATORE,
        );
        // A registration answered to a get, and vice versa.
        check_codice(
            verifica_asserzione(
                &registrata,
                &pk.registrazione("x", "https://localhost", "none").0,
                &ad,
                &sig,
                &rp(),
            ),
            CODICE_CLIENT_DATA,
        );
        // Counter: a replayed (or cloned) authenticator state.
        let visto = Passkey {
            contatore: 10,
            ..registrata.clone()
        };
        let (cd, ad, sig) = pk.asserzione("YWJj", "https://localhost");
        check_codice(
            verifica_asserzione(&visto, &cd, &ad, &sig, &rp()),
            CODICE_CONTATORE,
        );
        // Without user verification.
        pk.uv = false;
        let (cd, ad, sig) = pk.asserzione("YWJj", "https://localhost");
        check_codice(
            verifica_asserzione(&registrata, &cd, &ad, &sig, &rp()),
            CODICE_AUTENTICATORE,
        );
        pk.uv = true;
        // Another key's signature.
        let altra = PasskeySoftware::nuova("localhost");
        let estranea = Passkey {
            chiave_pubblica: altra.chiave_pubblica(),
            ..registrata.clone()
        };
        let (cd, ad, sig) = pk.asserzione("YWJj", "https://localhost");
        check_codice(
            verifica_asserzione(&estranea, &cd, &ad, &sig, &rp()),
            CODICE_FIRMA_PASSKEY,
        );
        // Unknown attestation formats and attestation certificates are refused.
        let (cd, att) = pk.registrazione("eA", "https://localhost", "fido-u2f");
        check_codice(
            verifica_registrazione(&cd, &att, &rp()),
            CODICE_AUTENTICATORE,
        );
        check_codice(
            verifica_registrazione(&cd, b"\xff\x00", &rp()),
            CODICE_AUTENTICATORE,
        );
    }
}
