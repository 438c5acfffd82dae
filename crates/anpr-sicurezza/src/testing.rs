//! Test support shared by the test suites of this crate and of the server (feature
//! `testing`): SOAP request templates with a WS-Security header, signing them with the
//! independent `xmlsec1` (installed by `scripts/test`), and signing REST requests
//! (`Agid-JWT-Signature`) with ring.

use std::process::Command;

use chrono::{DateTime, Duration, Utc};

use crate::ca::CertificatoEmesso;

/// Signs `template` with `cert` and its key using xmlsec1 (OpenSSL): the first
/// `ds:Signature` of the document.
pub fn firma_xmlsec1(template: &str, cert: &CertificatoEmesso) -> Vec<u8> {
    firma_xmlsec1_nodo(template.as_bytes(), cert, None)
}

/// Signs the `ds:Signature` whose `Id` is `nodo` (the first when `None`) of `documento`
/// with `cert` and its key using xmlsec1.
pub fn firma_xmlsec1_nodo(
    documento: &[u8],
    cert: &CertificatoEmesso,
    nodo: Option<&str>,
) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("key.pem");
    let crt = dir.path().join("cert.pem");
    let tpl = dir.path().join("tpl.xml");
    let out = dir.path().join("out.xml");
    std::fs::write(&key, cert.chiave_pem()).expect("write key");
    std::fs::write(&crt, cert.pem()).expect("write cert");
    std::fs::write(&tpl, documento).expect("write template");
    let mut comando = Command::new("xmlsec1");
    comando
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", key.display(), crt.display()))
        .args(["--id-attr:Id", "http://schemas.xmlsoap.org/soap/envelope/:Body"])
        .args(["--id-attr:Id", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd:Timestamp"])
        .args(["--id-attr:Id", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd:UsernameToken"])
        .args(["--id-attr:Id", "urn:anpr:soap:Postazione"])
        .args(["--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:Signature"]);
    if let Some(n) = nodo {
        comando.args(["--node-id", n]);
    }
    let esito = comando
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

/// Signs a template of [`busta_con_postazione`]: the message signature (`SIG-1`) with
/// `server`, then the workstation's (`SIG-PC`) with `postazione`, both with xmlsec1.
pub fn firma_xmlsec1_postazione(
    template: &str,
    server: &CertificatoEmesso,
    postazione: &CertificatoEmesso,
) -> Vec<u8> {
    let prima = firma_xmlsec1_nodo(template.as_bytes(), server, Some("SIG-1"));
    firma_xmlsec1_nodo(&prima, postazione, Some("SIG-PC"))
}

/// A SOAP request template naming workstation `postazione` (`anpr:Postazione`,
/// `wsu:Id="PC-1"`) with two signatures to fill: `SIG-1` over Body, Timestamp and
/// UsernameToken (the municipality's server certificate), `SIG-PC` over the
/// Postazione element and `SIG-1` (the workstation certificate).
pub fn busta_con_postazione(
    utente: &str,
    corpo: &str,
    postazione: &str,
    creato: DateTime<Utc>,
) -> String {
    busta_con_postazione_rif(utente, corpo, postazione, &["PC-1", "SIG-1"], creato)
}

/// As [`busta_con_postazione`], with the workstation signature's references `rif`.
pub fn busta_con_postazione_rif(
    utente: &str,
    corpo: &str,
    postazione: &str,
    rif: &[&str],
    creato: DateTime<Utc>,
) -> String {
    let base = busta_con_riferimenti(utente, corpo, &["BODY-1", "TS-1", "UT-1"], creato);
    let firma_pc = format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="SIG-PC">
        <ds:SignedInfo>
          <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
          <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
          {}
        </ds:SignedInfo>
        <ds:SignatureValue></ds:SignatureValue>
        <ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo>
      </ds:Signature>
    </wsse:Security>"##,
        riferimenti(rif)
    );
    base.replacen(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
        &format!("<anpr:Postazione xmlns:anpr=\"urn:anpr:soap\" wsu:Id=\"PC-1\">{postazione}</anpr:Postazione>\n      <ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"SIG-1\">"),
        1,
    )
    .replacen("</wsse:Security>", &firma_pc, 1)
}

fn riferimenti(rif: &[&str]) -> String {
    rif.iter()
        .map(|id| {
            format!(
                r##"<ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference>"##
            )
        })
        .collect()
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
    let riferimenti = riferimenti(rif);
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
    firma_compatta(
        cert,
        &serde_json::json!({"iat": iat, "exp": iat + durata, "sub": sub, "aud": "anpr", "signed_headers": [{"digest": crate::jws::digest_corpo(corpo)}, {"content-type": "application/json"}]}),
    )
}

/// The workstation's own JWS (`Anpr-Postazione-Signature`) by `cert`'s key, naming
/// workstation `postazione` and endorsing request JWS `richiesta`, valid from `iat`
/// for `durata` seconds.
pub fn firma_jws_postazione(
    cert: &CertificatoEmesso,
    postazione: &str,
    richiesta: &str,
    iat: i64,
    durata: i64,
) -> String {
    firma_compatta(
        cert,
        &serde_json::json!({"iat": iat, "exp": iat + durata, "postazione": postazione, crate::jws::CLAIM_RICHIESTA: crate::jws::impronta_richiesta(richiesta)}),
    )
}

/// A compact ES256 JWS of `claims` by `cert`'s key, the certificate in `x5c`.
pub fn firma_compatta(cert: &CertificatoEmesso, claims: &serde_json::Value) -> String {
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let h = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert.der)]});
    let input = format!(
        "{}.{}",
        b64u(h.to_string().as_bytes()),
        b64u(claims.to_string().as_bytes())
    );
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &cert.chiave_pkcs8, &rng)
        .expect("ECDSA P-256 key");
    let sig = key.sign(&rng, input.as_bytes()).expect("signature");
    format!("{input}.{}", b64u(sig.as_ref()))
}

/// A software passkey (ES256 key made with ring) answering WebAuthn ceremonies as a
/// platform authenticator would, for the tests.
#[derive(Debug)]
pub struct PasskeySoftware {
    pub id: Vec<u8>,
    pub rp_id: String,
    coppia: ring::signature::EcdsaKeyPair,
    pub contatore: u32,
    /// Whether it reports user verification (UV).
    pub uv: bool,
}

impl PasskeySoftware {
    pub fn nuova(rp_id: &str) -> Self {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
        let coppia =
            ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
        let mut id = vec![0u8; 16];
        rng.fill(&mut id).expect("random id");
        Self {
            id,
            rp_id: rp_id.to_owned(),
            coppia,
            contatore: 0,
            uv: true,
        }
    }

    /// The public key as an uncompressed SEC1 point.
    pub fn chiave_pubblica(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.coppia.public_key().as_ref().to_vec()
    }

    fn cose(&self) -> Vec<u8> {
        use ciborium::value::Value as V;
        let p = self.chiave_pubblica();
        let mappa = V::Map(vec![
            (V::Integer(1.into()), V::Integer(2.into())),
            (V::Integer(3.into()), V::Integer((-7).into())),
            (V::Integer((-1).into()), V::Integer(1.into())),
            (V::Integer((-2).into()), V::Bytes(p[1..33].to_vec())),
            (V::Integer((-3).into()), V::Bytes(p[33..65].to_vec())),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&mappa, &mut out).expect("CBOR");
        out
    }

    fn dati(&self, attestati: bool) -> Vec<u8> {
        use sha2::Digest;
        let mut d = sha2::Sha256::digest(self.rp_id.as_bytes()).to_vec();
        let mut flags = 0x01u8;
        if self.uv {
            flags |= 0x04;
        }
        if attestati {
            flags |= 0x40;
        }
        d.push(flags);
        d.extend_from_slice(&self.contatore.to_be_bytes());
        if attestati {
            d.extend_from_slice(&[0u8; 16]); // AAGUID: none
            d.extend_from_slice(&u16::try_from(self.id.len()).expect("id").to_be_bytes());
            d.extend_from_slice(&self.id);
            d.extend_from_slice(&self.cose());
        }
        d
    }

    fn client_data(tipo: &str, sfida: &str, origine: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": tipo, "challenge": sfida, "origin": origine, "crossOrigin": false
        }))
        .expect("JSON")
    }

    fn firma(&self, dati: &[u8], client_data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let mut firmato = dati.to_vec();
        firmato.extend_from_slice(&sha2::Sha256::digest(client_data));
        self.coppia
            .sign(&ring::rand::SystemRandom::new(), &firmato)
            .expect("signature")
            .as_ref()
            .to_vec()
    }

    /// A registration response: `clientDataJSON` and `attestationObject` (`fmt`
    /// `none`, or `packed` self-attestation).
    pub fn registrazione(&mut self, sfida: &str, origine: &str, fmt: &str) -> (Vec<u8>, Vec<u8>) {
        use ciborium::value::Value as V;
        let cd = Self::client_data("webauthn.create", sfida, origine);
        let dati = self.dati(true);
        let att_stmt = if fmt == "none" {
            V::Map(vec![])
        } else {
            V::Map(vec![
                (V::Text("alg".into()), V::Integer((-7).into())),
                (V::Text("sig".into()), V::Bytes(self.firma(&dati, &cd))),
            ])
        };
        let att = V::Map(vec![
            (V::Text("fmt".into()), V::Text(fmt.into())),
            (V::Text("attStmt".into()), att_stmt),
            (V::Text("authData".into()), V::Bytes(dati)),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&att, &mut out).expect("CBOR");
        (cd, out)
    }

    /// An authentication response: `clientDataJSON`, `authenticatorData`, signature;
    /// the counter grows by one.
    pub fn asserzione(&mut self, sfida: &str, origine: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        self.contatore += 1;
        let cd = Self::client_data("webauthn.get", sfida, origine);
        let dati = self.dati(false);
        let sig = self.firma(&dati, &cd);
        (cd, dati, sig)
    }
}
