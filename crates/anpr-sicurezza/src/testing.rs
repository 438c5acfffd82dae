//! Test support shared by the test suites of this crate and of the server (feature
//! `testing`): SOAP request templates with a WS-Security header, signing them with the
//! independent `xmlsec1` (installed by `scripts/test`), and signing REST requests
//! (`Agid-JWT-Signature`) with ring.

use std::process::Command;

use chrono::{DateTime, Duration, Utc};

use crate::ca::CertificatoEmesso;

/// Signs `template` with `cert` and its key using xmlsec1 (OpenSSL).
pub fn firma_xmlsec1(template: &str, cert: &CertificatoEmesso) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("key.pem");
    let crt = dir.path().join("cert.pem");
    let tpl = dir.path().join("tpl.xml");
    let out = dir.path().join("out.xml");
    std::fs::write(&key, cert.chiave_pem()).expect("write key");
    std::fs::write(&crt, cert.pem()).expect("write cert");
    std::fs::write(&tpl, template).expect("write template");
    let esito = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", key.display(), crt.display()))
        .args(["--id-attr:Id", "http://schemas.xmlsoap.org/soap/envelope/:Body"])
        .args(["--id-attr:Id", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd:Timestamp"])
        .args(["--id-attr:Id", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd:UsernameToken"])
        .arg("--output")
        .arg(&out)
        .arg(&tpl)
        .output()
        .expect("xmlsec1 must be installed (scripts/test installs it)");
    assert!(
        esito.status.success(),
        "xmlsec1: {}",
        String::from_utf8_lossy(&esito.stderr)
    );
    std::fs::read(&out).expect("signed output")
}

/// A SOAP 1.1 request template with a WS-Security header to be signed over Body,
/// Timestamp and UsernameToken.
pub fn busta(utente: &str, corpo: &str, creato: DateTime<Utc>) -> String {
    busta_con_riferimenti(utente, corpo, &["BODY-1", "TS-1", "UT-1"], creato)
}

pub fn busta_con_riferimenti(
    utente: &str,
    corpo: &str,
    rif: &[&str],
    creato: DateTime<Utc>,
) -> String {
    let scade = creato + Duration::minutes(5);
    let riferimenti: String = rif
        .iter()
        .map(|id| {
            format!(
                r##"<ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference>"##
            )
        })
        .collect();
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
  <soap:Header>
    <wsse:Security soap:mustUnderstand="1">
      <wsu:Timestamp wsu:Id="TS-1">
        <wsu:Created>{c}</wsu:Created>
        <wsu:Expires>{e}</wsu:Expires>
      </wsu:Timestamp>
      <wsse:UsernameToken wsu:Id="UT-1"><wsse:Username>{utente}</wsse:Username></wsse:UsernameToken>
      <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:SignedInfo>
          <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
          <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
          {riferimenti}
        </ds:SignedInfo>
        <ds:SignatureValue></ds:SignatureValue>
        <ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo>
      </ds:Signature>
    </wsse:Security>
  </soap:Header>
  <soap:Body wsu:Id="BODY-1">{corpo}</soap:Body>
</soap:Envelope>
"##,
        c = creato.format("%Y-%m-%dT%H:%M:%SZ"),
        e = scade.format("%Y-%m-%dT%H:%M:%SZ"),
    )
}

/// The substring from `inizio` to the end of `fine`.
pub fn estrai(s: &str, inizio: &str, fine: &str) -> String {
    let a = s.find(inizio).unwrap();
    let b = s[a..].find(fine).unwrap() + a + fine.len();
    s[a..b].to_owned()
}

fn b64u(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A compact ES256 JWS by `cert`'s key for user `sub` over `corpo`, valid from `iat`
/// (Unix seconds) for `durata` seconds.
pub fn firma_jws(
    cert: &CertificatoEmesso,
    sub: &str,
    iat: i64,
    durata: i64,
    corpo: &[u8],
) -> String {
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let h = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert.der)]});
    let p = serde_json::json!({"iat": iat, "exp": iat + durata, "sub": sub, "aud": "anpr", "signed_headers": [{"digest": crate::jws::digest_corpo(corpo)}, {"content-type": "application/json"}]});
    let input = format!(
        "{}.{}",
        b64u(h.to_string().as_bytes()),
        b64u(p.to_string().as_bytes())
    );
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &cert.chiave_pkcs8, &rng)
        .expect("ECDSA P-256 key");
    let sig = key.sign(&rng, input.as_bytes()).expect("signature");
    format!("{input}.{}", b64u(sig.as_ref()))
}
