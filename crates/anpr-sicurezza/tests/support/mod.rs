//! Test world: our CA, a directory with users of Rome and Milan and Rome's
//! certificates, SOAP templates, and signing with the independent `xmlsec1`.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeSet;
use std::process::Command;

use anpr_domain::caller::Profilo;
use anpr_sicurezza::ca::AutoritaCertificazione;
use anpr_sicurezza::direttorio::{Direttorio, Utente};
use chrono::{DateTime, Duration, Utc};

pub const ROMA: &str = "058091";
pub const MILANO: &str = "015146";
pub const OPERATORE_ROMA: &str = "RSSMRA80A01H501U";
pub const OPERATORE_MILANO: &str = "VRDLGU75B12F205X";
pub const CONSULTATORE_ROMA: &str = "BNCLRA70A41H501X";

/// The instant messages are created.
pub fn ora_messaggio() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

pub struct Mondo {
    pub ca: AutoritaCertificazione,
    pub direttorio: Direttorio,
}

pub fn utente(cf: &str) -> Utente {
    Utente {
        codice_fiscale: cf.into(),
        cognome: "Test".into(),
        nome: "Utente".into(),
        email: format!("{}@comune.example.it", cf.to_lowercase()),
        ruoli: Default::default(),
    }
}

impl Mondo {
    pub fn nuovo() -> Self {
        let prima = ora_messaggio() - Duration::hours(1);
        let ca = AutoritaCertificazione::nuova(prima - Duration::days(1)).unwrap();
        let mut d = Direttorio::default();
        let p = |ps: &[Profilo]| ps.iter().copied().collect::<BTreeSet<_>>();
        d.censisci(ROMA, utente(OPERATORE_ROMA), p(&[Profilo::OperatoreAnagrafe])).unwrap();
        d.censisci(ROMA, utente(CONSULTATORE_ROMA), p(&[Profilo::OperatoreConsultazione])).unwrap();
        d.censisci(MILANO, utente(OPERATORE_MILANO), p(&[Profilo::OperatoreAnagrafe])).unwrap();
        d.dichiara_postazioni(ROMA, 2).unwrap();
        d.emetti_certificati_postazione(&ca, ROMA, "ALP", prima).unwrap();
        Self { ca, direttorio: d }
    }

    pub fn crl(&self) -> Vec<u8> {
        let mut d = self.direttorio.clone();
        d.crl(&self.ca, ora_messaggio() - Duration::minutes(30)).unwrap()
    }

    /// Signs `template` with the certificate named `cn` using xmlsec1.
    pub fn firma_xmlsec1(&self, template: &str, cn: &str) -> Vec<u8> {
        let cert = &self.direttorio.certificato_attuale(cn).unwrap().emesso;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let crt = dir.path().join("cert.pem");
        let tpl = dir.path().join("tpl.xml");
        let out = dir.path().join("out.xml");
        std::fs::write(&key, cert.chiave_pem()).unwrap();
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&tpl, template).unwrap();
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
        assert!(esito.status.success(), "xmlsec1: {}", String::from_utf8_lossy(&esito.stderr));
        std::fs::read(&out).unwrap()
    }
}

/// A SOAP 1.1 request template with a WS-Security header to be signed over Body,
/// Timestamp and UsernameToken.
pub fn busta(utente: &str, corpo: &str) -> String {
    busta_con_riferimenti(utente, corpo, &["BODY-1", "TS-1", "UT-1"])
}

pub fn busta_con_riferimenti(utente: &str, corpo: &str, rif: &[&str]) -> String {
    let creato = ora_messaggio();
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
