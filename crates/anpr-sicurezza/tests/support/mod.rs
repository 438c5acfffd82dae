//! Test world: our CA, a directory with users of Rome and Milan and Rome's
//! certificates, SOAP templates, and signing with the independent `xmlsec1`.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeSet;

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
        d.censisci(
            ROMA,
            utente(OPERATORE_ROMA),
            p(&[Profilo::OperatoreAnagrafe]),
        )
        .unwrap();
        d.censisci(
            ROMA,
            utente(CONSULTATORE_ROMA),
            p(&[Profilo::OperatoreConsultazione]),
        )
        .unwrap();
        d.censisci(
            MILANO,
            utente(OPERATORE_MILANO),
            p(&[Profilo::OperatoreAnagrafe]),
        )
        .unwrap();
        d.dichiara_postazioni(ROMA, 2).unwrap();
        d.emetti_certificati_postazione(&ca, ROMA, "ALP", prima)
            .unwrap();
        d.dichiara_postazioni(MILANO, 1).unwrap();
        d.emetti_certificati_postazione(&ca, MILANO, "ALP", prima)
            .unwrap();
        Self { ca, direttorio: d }
    }

    pub fn crl(&self) -> Vec<u8> {
        let d = self.direttorio.clone();
        d.crl(&self.ca, ora_messaggio() - Duration::minutes(30))
            .unwrap()
    }

    /// The current certificate named `cn`, with its key.
    pub fn certificato(&self, cn: &str) -> anpr_sicurezza::ca::CertificatoEmesso {
        self.direttorio
            .certificato_attuale(cn)
            .unwrap()
            .emesso
            .clone()
    }

    /// Signs a [`busta_con_postazione`] template: the message signature with the
    /// certificate named `server`, the workstation's with the one named `postazione`.
    pub fn firma_xmlsec1_postazione(
        &self,
        template: &str,
        server: &str,
        postazione: &str,
    ) -> Vec<u8> {
        anpr_sicurezza::testing::firma_xmlsec1_postazione(
            template,
            &self.certificato(server),
            &self.certificato(postazione),
        )
    }

    /// Signs `template` with the certificate named `cn` using xmlsec1.
    pub fn firma_xmlsec1(&self, template: &str, cn: &str) -> Vec<u8> {
        let cert = &self.direttorio.certificato_attuale(cn).unwrap().emesso;
        anpr_sicurezza::testing::firma_xmlsec1(template, cert)
    }
}

/// A template created at [`ora_messaggio`].
pub fn busta(utente: &str, corpo: &str) -> String {
    anpr_sicurezza::testing::busta(utente, corpo, ora_messaggio())
}

/// A template naming workstation `postazione`, created at [`ora_messaggio`].
pub fn busta_con_postazione(utente: &str, corpo: &str, postazione: &str) -> String {
    anpr_sicurezza::testing::busta_con_postazione(utente, corpo, postazione, ora_messaggio())
}

/// As [`busta_con_postazione`], the workstation signature covering `rif`.
pub fn busta_con_postazione_rif(
    utente: &str,
    corpo: &str,
    postazione: &str,
    rif: &[&str],
) -> String {
    anpr_sicurezza::testing::busta_con_postazione_rif(
        utente,
        corpo,
        postazione,
        rif,
        ora_messaggio(),
    )
}

pub fn busta_con_riferimenti(utente: &str, corpo: &str, rif: &[&str]) -> String {
    anpr_sicurezza::testing::busta_con_riferimenti(utente, corpo, rif, ora_messaggio())
}

#[allow(unused_imports)] // Used by the wssec tests only.
pub use anpr_sicurezza::testing::estrai;
