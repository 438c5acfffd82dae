//! Signed REST requests after the Italian interoperability pattern (ModI, integrity of the
//! payload): the `Agid-JWT-Signature` header carries a compact JWS whose protected header
//! names the algorithm and the signing certificate (`x5c`), and whose claims carry the
//! validity (`iat`, `exp`), the user's CF (`sub`) and `signed_headers` with the body's
//! `Digest` (`SHA-256=<base64>`).
//!
//! A request is accepted only if the JWS is well formed and within size, uses ES256 or
//! RS256, its certificate chains to our CA and is not revoked, the signature verifies,
//! it is fresh, the signed digest equals both the `Digest` header (when sent) and the
//! digest of the body received, and the same sender checks as for SOAP pass (authorised
//! IP, user known, of the certificate's municipality, with a profile for the operation).
//! Codes are those of signed messages (EV220–EV235). A request may also carry the
//! workstation's own JWS ([`INTESTAZIONE_FIRMA_POSTAZIONE`]), checked by
//! [`verifica_postazione`].

use std::net::IpAddr;

use anpr_domain::caller::Profilo;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::errore::*;
use crate::wssec::{
    autorizza_mittente, b64, della_postazione, firmatario, nomina_postazione, verifica_valore,
    MittenteVerificato, Politica, RubricaUtenti, ALG_ECDSA_SHA256, ALG_RSA_SHA256,
};

/// The request header carrying the JWS.
pub const INTESTAZIONE_FIRMA: &str = "Agid-JWT-Signature";
/// Longest JWS accepted (a certificate and a few claims fit in a few KiB).
pub const DIMENSIONE_MASSIMA_JWS: usize = 64 * 1024;

/// EV221 for header `nome` (the request's or the workstation's JWS).
fn malformato(nome: &str, m: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::messaggio(CODICE_SICUREZZA_MANCANTE, format!("{nome}: {m}"))
}

/// The `Digest` header value of `corpo`: `SHA-256=<base64>`.
pub fn digest_corpo(corpo: &[u8]) -> String {
    let mut d = DigestInCorso::default();
    d.aggiungi(corpo);
    d.valore()
}

/// The body's digest computed piece by piece, for bodies too large to hold in memory.
#[derive(Debug, Clone, Default)]
pub struct DigestInCorso(Sha256);

impl DigestInCorso {
    pub fn aggiungi(&mut self, pezzo: &[u8]) {
        self.0.update(pezzo);
    }

    /// The `Digest` header value of everything added: `SHA-256=<base64>`.
    pub fn valore(self) -> String {
        format!(
            "SHA-256={}",
            base64::engine::general_purpose::STANDARD.encode(self.0.finalize())
        )
    }
}

fn parte(nome: &str, s: &str) -> Result<Value, ErroreSicurezza> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| malformato(nome, "base64url non valido"))?;
    serde_json::from_slice(&bytes).map_err(|_| malformato(nome, "JSON non valido"))
}

/// Verifies a signed REST request: `jws` from [`INTESTAZIONE_FIRMA`], `digest` from the
/// `Digest` header, `corpo` the body as received.
pub fn verifica_richiesta(
    jws: &str,
    digest: Option<&str>,
    corpo: &[u8],
    politica: &Politica<'_>,
    rubrica: &dyn RubricaUtenti,
    profili_ammessi: &[Profilo],
    ip: Option<IpAddr>,
) -> Result<MittenteVerificato, ErroreSicurezza> {
    verifica_richiesta_con_digest(
        jws,
        digest,
        &digest_corpo(corpo),
        politica,
        rubrica,
        profili_ammessi,
        ip,
    )
}

/// As [`verifica_richiesta`], with the digest of the body as received already computed
/// (`SHA-256=<base64>`, e.g. by [`DigestInCorso`] while the body was stored).
pub fn verifica_richiesta_con_digest(
    jws: &str,
    digest: Option<&str>,
    calcolato: &str,
    politica: &Politica<'_>,
    rubrica: &dyn RubricaUtenti,
    profili_ammessi: &[Profilo],
    ip: Option<IpAddr>,
) -> Result<MittenteVerificato, ErroreSicurezza> {
    let (certificato, claims) = verifica_compatta(jws, INTESTAZIONE_FIRMA, politica)?;
    let firmato = claims["signed_headers"]
        .as_array()
        .and_then(|a| a.iter().find_map(|h| h["digest"].as_str()))
        .ok_or_else(|| malformato(INTESTAZIONE_FIRMA, "signed_headers senza digest"))?;
    if firmato != calcolato || digest.is_some_and(|d| d.trim() != calcolato) {
        return Err(ErroreSicurezza::messaggio(
            CODICE_DIGEST_ERRATO,
            "Il corpo della richiesta non corrisponde al digest firmato",
        ));
    }
    let utente = claims["sub"].as_str().ok_or_else(|| {
        malformato(
            INTESTAZIONE_FIRMA,
            "sub (codice fiscale dell'utente) mancante",
        )
    })?;
    autorizza_mittente(
        firmatario(&certificato, utente.to_owned())?,
        rubrica,
        profili_ammessi,
        ip,
    )
}

/// The workstation's own signature on a signed REST request, the REST form of SOAP's
/// `anpr:Postazione` endorsing signature: a compact JWS by the workstation certificate
/// (`x5c`) whose claims are `postazione` (the workstation id, `ISTAT-PC-NNNN`), `iat`,
/// `exp` and [`CLAIM_RICHIESTA`], the [`impronta_richiesta`] of the request's
/// [`INTESTAZIONE_FIRMA`] — so it endorses that request only and cannot be moved onto
/// another one.
pub const INTESTAZIONE_FIRMA_POSTAZIONE: &str = "Anpr-Postazione-Signature";
/// The claim of the workstation JWS binding it to the request's JWS.
pub const CLAIM_RICHIESTA: &str = "jws_sha256";

/// The binding of a workstation JWS to request JWS `jws`: base64url (no padding) of the
/// SHA-256 of its compact form.
pub fn impronta_richiesta(jws: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(jws.trim().as_bytes()))
}

/// Verifies the workstation JWS `jws_postazione` endorsing request JWS `jws_richiesta`,
/// already verified as `mittente`, and records the proved workstation in it. Same
/// checks as for SOAP: format, algorithm, chain to our CA, not revoked, signature,
/// freshness, binding to the request (EV222 otherwise), then a workstation certificate
/// of the signing municipality naming itself (EV235). Every failure says it is the
/// workstation's signature.
pub fn verifica_postazione(
    jws_postazione: &str,
    jws_richiesta: &str,
    mittente: &mut MittenteVerificato,
    politica: &Politica<'_>,
) -> Result<(), ErroreSicurezza> {
    let esito = (|| {
        let (certificato, claims) =
            verifica_compatta(jws_postazione, INTESTAZIONE_FIRMA_POSTAZIONE, politica)?;
        if claims[CLAIM_RICHIESTA].as_str() != Some(impronta_richiesta(jws_richiesta).as_str()) {
            return Err(ErroreSicurezza::messaggio(
                CODICE_RIFERIMENTO_NON_AMMESSO,
                format!(
                    "{INTESTAZIONE_FIRMA_POSTAZIONE}: {CLAIM_RICHIESTA} non è l'impronta di {INTESTAZIONE_FIRMA} di questa richiesta"
                ),
            ));
        }
        let nominata = claims["postazione"]
            .as_str()
            .ok_or_else(|| malformato(INTESTAZIONE_FIRMA_POSTAZIONE, "postazione mancante"))?;
        nomina_postazione(&mut mittente.firma, &certificato, nominata.to_owned())
    })();
    esito.map_err(della_postazione)
}

/// The checks every compact JWS of ours passes, for header `nome`: size, three parts,
/// ES256 or RS256, `x5c` chaining to our CA and not revoked, signature, `iat`/`exp`
/// within the policy. Returns the signing certificate and the claims.
fn verifica_compatta(
    jws: &str,
    nome: &str,
    politica: &Politica<'_>,
) -> Result<(Vec<u8>, Value), ErroreSicurezza> {
    if jws.len() > DIMENSIONE_MASSIMA_JWS {
        return Err(ErroreSicurezza::messaggio(
            CODICE_XML_NON_AMMESSO,
            format!("{nome} oltre {DIMENSIONE_MASSIMA_JWS} byte"),
        ));
    }
    let parti: Vec<&str> = jws.trim().split('.').collect();
    let [h, p, s] = parti.as_slice() else {
        return Err(malformato(nome, "attese tre parti separate da punti"));
    };
    let intestazione = parte(nome, h)?;
    let alg = match intestazione["alg"].as_str() {
        Some("ES256") => ALG_ECDSA_SHA256,
        Some("RS256") => ALG_RSA_SHA256,
        altro => {
            return Err(ErroreSicurezza::messaggio(
                CODICE_ALGORITMO,
                format!("Algoritmo {altro:?} non ammesso; attesi ES256, RS256"),
            ))
        }
    };
    let certificato = b64(intestazione["x5c"][0]
        .as_str()
        .ok_or_else(|| malformato(nome, "x5c mancante"))?)?;
    politica.fiducia.verifica(&certificato, politica.adesso)?;
    let firma = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| malformato(nome, "firma non in base64url"))?;
    verifica_valore(alg, &certificato, format!("{h}.{p}").as_bytes(), &firma)?;

    let claims = parte(nome, p)?;
    let istante = |nome: &str| {
        claims[nome]
            .as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .ok_or_else(|| {
                ErroreSicurezza::messaggio(
                    CODICE_TIMESTAMP,
                    format!("{nome} mancante o non valido"),
                )
            })
    };
    let (iat, exp) = (istante("iat")?, istante("exp")?);
    if iat > politica.adesso + politica.tolleranza
        || exp <= politica.adesso - politica.tolleranza
        || exp <= iat
        || exp - iat > politica.durata_massima
    {
        return Err(ErroreSicurezza::messaggio(
            CODICE_TIMESTAMP,
            format!("Richiesta valida da {iat} a {exp}: fuori dal periodo ammesso"),
        ));
    }
    Ok((certificato, claims))
}
