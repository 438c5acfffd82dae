//! Certificates (SPEC M-4.1, service 6001): the 20 types of table 13, their eligibility
//! rules and incompatible combinations (`reference/anpr/docs/controllo-certificati`),
//! stamp duty and fees, the protocol register, annulment for material error, the list
//! of issued certificates with the sums due, and the public verification of the QR code.
//!
//! One request issues one document, which may certify several things at once
//! (*certificato contestuale*). Everything a certificate says is composed here into a
//! [`ContenutoCertificato`], stored with the issue (so the PDF can be printed again
//! identically) and hashed; the hash goes into the signed QR payload, so a verifier can
//! tell that the certificate it holds is the one issued and still valid.

use anpr_certificati::{Blocco, Documento, Firmatario, PayloadVerifica, Qr};
use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceIstatComune, IdAnprSoggetto};
use anpr_domain::scheda::{
    EventoStatoCivile, Generalita, Luogo, PosizioneAnagrafica, Residenza, SchedaSoggetto,
    SezioneSoggetto, TipoEventoStatoCivile, TipoScheda,
};
use anpr_store::{DocumentoEmesso, EntityRef, NuovoDocumento, QueryDocumenti, TipoDocumento};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// Our code: the second language asked for is not the municipality's.
pub const CODICE_LINGUA_NON_AMMESSA: &str = "EV250";
/// Our code: the certificate to annul or print does not belong to the caller's
/// municipality, or is already annulled.
pub const CODICE_CERTIFICATO_NON_ANNULLABILE: &str = "EV251";
/// Our code: the QR payload does not verify (forged, altered or unknown certificate).
pub const CODICE_VERIFICA_FALLITA: &str = "EV252";

/// Stamp duty on a certificate, in euro cents (DPR 642/1972, tariff in force).
pub const BOLLO_CENTESIMI: u32 = 1600;
/// Secretarial fee on a stamped certificate, in cents.
pub const DIRITTI_CENTESIMI: u32 = 52;
/// Secretarial fee on a stamp-exempt certificate, in cents.
pub const DIRITTI_ESENTE_CENTESIMI: u32 = 26;

/// The certificate types of table 13 ("Tipo di certificato"), by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TipoCertificato {
    Nascita = 1,
    Morte = 2,
    Matrimonio = 3,
    Cancellazione = 4,
    Cittadinanza = 5,
    StoricoCittadinanza = 6,
    EsistenzaInVita = 7,
    Residenza = 8,
    StoricoResidenza = 9,
    ResidenzaAire = 10,
    StatoCivile = 11,
    StatoFamiglia = 12,
    StatoFamigliaStatoCivile = 13,
    ResidenzaConvivenza = 14,
    StatoFamigliaAire = 15,
    StatoFamigliaParentela = 16,
    StatoLibero = 17,
    UnioneCivile = 18,
    ContrattoConvivenza = 19,
    StoricoResidenzaAllaData = 20,
}

use TipoCertificato as T;

impl TipoCertificato {
    pub const ALL: [TipoCertificato; 20] = [
        T::Nascita,
        T::Morte,
        T::Matrimonio,
        T::Cancellazione,
        T::Cittadinanza,
        T::StoricoCittadinanza,
        T::EsistenzaInVita,
        T::Residenza,
        T::StoricoResidenza,
        T::ResidenzaAire,
        T::StatoCivile,
        T::StatoFamiglia,
        T::StatoFamigliaStatoCivile,
        T::ResidenzaConvivenza,
        T::StatoFamigliaAire,
        T::StatoFamigliaParentela,
        T::StatoLibero,
        T::UnioneCivile,
        T::ContrattoConvivenza,
        T::StoricoResidenzaAllaData,
    ];

    pub fn codice(self) -> u8 {
        self as u8
    }

    pub fn da_codice(c: u8) -> Option<Self> {
        Self::ALL.get(usize::from(c).wrapping_sub(1)).copied()
    }

    /// Title in Italian and in the second languages (DE, FR, SL).
    pub fn titolo(self, lingua: Option<&str>) -> &'static str {
        let t: [&str; 4] = match self {
            T::Nascita => [
                "CERTIFICATO ANAGRAFICO DI NASCITA",
                "Geburtsbescheinigung",
                "Certificat de naissance",
                "Potrdilo o rojstvu",
            ],
            T::Morte => [
                "CERTIFICATO ANAGRAFICO DI MORTE",
                "Sterbebescheinigung",
                "Certificat de décès",
                "Potrdilo o smrti",
            ],
            T::Matrimonio => [
                "CERTIFICATO ANAGRAFICO DI MATRIMONIO",
                "Heiratsbescheinigung",
                "Certificat de mariage",
                "Potrdilo o poroki",
            ],
            T::Cancellazione => [
                "CERTIFICATO DI CANCELLAZIONE ANAGRAFICA",
                "Bescheinigung der Abmeldung",
                "Certificat de radiation",
                "Potrdilo o izbrisu",
            ],
            T::Cittadinanza => [
                "CERTIFICATO DI CITTADINANZA",
                "Staatsbürgerschaftsbescheinigung",
                "Certificat de nationalité",
                "Potrdilo o državljanstvu",
            ],
            T::StoricoCittadinanza => [
                "CERTIFICATO STORICO DI CITTADINANZA",
                "Historische Staatsbürgerschaftsbescheinigung",
                "Certificat historique de nationalité",
                "Zgodovinsko potrdilo o državljanstvu",
            ],
            T::EsistenzaInVita => [
                "CERTIFICATO DI ESISTENZA IN VITA",
                "Lebensbescheinigung",
                "Certificat de vie",
                "Potrdilo o življenju",
            ],
            T::Residenza => [
                "CERTIFICATO DI RESIDENZA",
                "Wohnsitzbescheinigung",
                "Certificat de résidence",
                "Potrdilo o stalnem prebivališču",
            ],
            T::StoricoResidenza => [
                "CERTIFICATO STORICO DI RESIDENZA",
                "Historische Wohnsitzbescheinigung",
                "Certificat historique de résidence",
                "Zgodovinsko potrdilo o prebivališču",
            ],
            T::ResidenzaAire => [
                "CERTIFICATO DI RESIDENZA AIRE",
                "AIRE-Wohnsitzbescheinigung",
                "Certificat de résidence AIRE",
                "Potrdilo o prebivališču AIRE",
            ],
            T::StatoCivile => [
                "CERTIFICATO DI STATO CIVILE",
                "Familienstandsbescheinigung",
                "Certificat d'état civil",
                "Potrdilo o osebnem stanju",
            ],
            T::StatoFamiglia => [
                "CERTIFICATO DI STATO DI FAMIGLIA",
                "Familienbogen",
                "Certificat de composition de la famille",
                "Potrdilo o družinskem stanju",
            ],
            T::StatoFamigliaStatoCivile => [
                "CERTIFICATO DI STATO DI FAMIGLIA E DI STATO CIVILE",
                "Familienbogen und Familienstand",
                "Certificat de famille et d'état civil",
                "Potrdilo o družinskem in osebnem stanju",
            ],
            T::ResidenzaConvivenza => [
                "CERTIFICATO DI RESIDENZA IN CONVIVENZA",
                "Wohnsitzbescheinigung in Lebensgemeinschaft",
                "Certificat de résidence en communauté",
                "Potrdilo o prebivališču v skupnosti",
            ],
            T::StatoFamigliaAire => [
                "CERTIFICATO DI STATO DI FAMIGLIA AIRE",
                "AIRE-Familienbogen",
                "Certificat de famille AIRE",
                "Potrdilo o družinskem stanju AIRE",
            ],
            T::StatoFamigliaParentela => [
                "CERTIFICATO DI STATO DI FAMIGLIA CON RAPPORTI DI PARENTELA",
                "Familienbogen mit Verwandtschaftsverhältnissen",
                "Certificat de famille avec liens de parenté",
                "Potrdilo o družinskem stanju s sorodstvenimi razmerji",
            ],
            T::StatoLibero => [
                "CERTIFICATO DI STATO LIBERO",
                "Ledigkeitsbescheinigung",
                "Certificat de célibat",
                "Potrdilo o samskem stanu",
            ],
            T::UnioneCivile => [
                "CERTIFICATO ANAGRAFICO DI UNIONE CIVILE",
                "Bescheinigung der eingetragenen Partnerschaft",
                "Certificat d'union civile",
                "Potrdilo o registrirani partnerski zvezi",
            ],
            T::ContrattoConvivenza => [
                "CERTIFICATO DI CONTRATTO DI CONVIVENZA",
                "Bescheinigung des Lebensgemeinschaftsvertrags",
                "Certificat de contrat de cohabitation",
                "Potrdilo o pogodbi o skupnem življenju",
            ],
            T::StoricoResidenzaAllaData => [
                "CERTIFICATO STORICO DI RESIDENZA ALLA DATA",
                "Historische Wohnsitzbescheinigung zum Stichtag",
                "Certificat historique de résidence à la date",
                "Zgodovinsko potrdilo o prebivališču na dan",
            ],
        };
        match lingua {
            Some("DE") => t[1],
            Some("FR") => t[2],
            Some("SL") => t[3],
            _ => t[0],
        }
    }

    /// Types that may only be issued on their own (EN153).
    fn solo_singolarmente(self) -> bool {
        matches!(
            self,
            T::Morte
                | T::Cancellazione
                | T::StoricoCittadinanza
                | T::StoricoResidenza
                | T::StoricoResidenzaAllaData
        )
    }

    /// Types only residents (APR) can have.
    fn solo_residenti(self) -> bool {
        matches!(
            self,
            T::EsistenzaInVita
                | T::Residenza
                | T::StatoCivile
                | T::StatoFamiglia
                | T::StatoFamigliaStatoCivile
                | T::ResidenzaConvivenza
                | T::StatoFamigliaParentela
                | T::StatoLibero
        )
    }

    fn storico(self) -> bool {
        matches!(self, T::StoricoResidenza | T::StoricoResidenzaAllaData)
    }
}

/// The person asking for the certificate, when not the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Richiedente {
    pub cognome: String,
    pub nome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice_fiscale: Option<String>,
}

/// A request to issue a certificate (shaped after `Richiesta6001`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichiestaCertificato {
    pub soggetto: IdAnprSoggetto,
    pub tipi: Vec<u8>,
    /// Second language (`DE`, `FR`, `SL`) for a bilingual certificate.
    pub lingua: Option<String>,
    /// Reference date: only for the historical residence certificates.
    pub data_riferimento: Option<NaiveDate>,
    pub richiedente: Option<Richiedente>,
    /// Code of table "Esenzione bollo"; `None` = stamp duty due.
    pub esenzione_bollo: Option<String>,
    pub descrizione_esenzione_bollo: Option<String>,
    /// Use the certificate is for (printed).
    pub uso: Option<String>,
    /// `forzaCertificazione`: issue despite the conditions that may be forced.
    pub forza_certificazione: bool,
}

/// Sums due for a certificate, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Importi {
    pub bollo: u32,
    pub diritti_segreteria: u32,
}

/// What an issued certificate says; stored with it and hashed into the QR payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContenutoCertificato {
    pub tipi: Vec<u8>,
    pub lingua: Option<String>,
    pub data_emissione: NaiveDate,
    pub data_riferimento: Option<NaiveDate>,
    pub comune: CodiceIstatComune,
    pub nome_comune: String,
    pub nome_comune_altra_lingua: Option<String>,
    /// The body: sections of (label, value) rows, each section under a title.
    pub sezioni: Vec<SezioneStampa>,
    pub richiedente: Option<Richiedente>,
    pub uso: Option<String>,
    pub esenzione_bollo: Option<String>,
    pub descrizione_esenzione: Option<String>,
    pub importi: Importi,
    /// The municipality's virtual-stamp authorisation (municipality parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autorizzazione_bollo: Option<String>,
    /// The signing registry officer's name (municipality parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmatario: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SezioneStampa {
    pub tipo: u8,
    pub righe: Vec<(String, String)>,
}

/// An issued certificate as the caller gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificatoEmesso {
    pub id_certificato: String,
    pub numero_protocollo: u64,
    pub anno: i32,
    pub tipi: Vec<u8>,
    pub data_emissione: NaiveDate,
    pub importi: Importi,
    /// The signed verification payload printed in the QR code.
    pub payload_verifica: String,
    pub url_verifica: String,
    pub annullato_il: Option<DateTime<Utc>>,
    pub motivo_annullamento: Option<String>,
}

/// The outcome of a public verification: minimal data, nothing personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsitoVerifica {
    /// `valido` or `annullato`.
    pub esito: &'static str,
    pub id_certificato: String,
    pub tipi: Vec<String>,
    pub data_emissione: NaiveDate,
    pub comune: String,
    pub numero_protocollo: u64,
    pub anno: i32,
    pub annullato_il: Option<DateTime<Utc>>,
}

/// The list of issued certificates with the sums due (M-7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElencoCertificati {
    pub certificati: Vec<CertificatoEmesso>,
    /// Sums of the certificates not annulled.
    pub totale_bollo: u64,
    pub totale_diritti_segreteria: u64,
}

/// Where the public verification endpoint is reached (printed in the QR code).
#[derive(Debug)]
pub struct ConfigurazioneCertificati {
    pub firmatario: Firmatario,
    /// Base URL of the verification endpoint; the payload is appended as `?c=`.
    pub url_verifica: String,
}

impl ConfigurazioneCertificati {
    /// An in-memory key and a local URL: tests and development.
    pub fn effimera() -> Self {
        Self {
            firmatario: Firmatario::effimero().expect("the system random generator works"),
            url_verifica: "http://localhost:8080/api/v1/certificati/verifica".into(),
        }
    }
}

fn rifiuto(
    codice: &str,
    testo: impl Into<String>,
    campo: &str,
    valore: impl Into<String>,
) -> Anomalia {
    Anomalia::errore(codice, testo).campo(campo).valore(valore)
}

/// Checks the combination of requested types: known codes, no duplicates, nothing that
/// may only be issued alone, no incompatible pair (each with its ANPR code).
pub fn controlla_combinazione(codici: &[u8]) -> Result<Vec<TipoCertificato>, Anomalia> {
    if codici.is_empty() {
        return Err(Anomalia::errore(
            CODICE_CAMPO_OBBLIGATORIO,
            "Indicare almeno un tipo di certificato",
        )
        .campo("tipiCertificato"));
    }
    let mut tipi = Vec::with_capacity(codici.len());
    for c in codici {
        let t = TipoCertificato::da_codice(*c).ok_or_else(|| {
            rifiuto(
                "EC070",
                format!("Codice tipo certificato {c} inesistente sulla tabella di riferimento"),
                "tipiCertificato",
                c.to_string(),
            )
            .atteso("1-20")
        })?;
        if tipi.contains(&t) {
            return Err(rifiuto(
                CODICE_VALORE_NON_VALIDO,
                "Tipo di certificato ripetuto",
                "tipiCertificato",
                c.to_string(),
            ));
        }
        tipi.push(t);
    }
    if tipi.len() > 1 {
        if let Some(t) = tipi.iter().find(|t| t.solo_singolarmente()) {
            return Err(rifiuto("EN153", "I certificati di anagrafica morte, cancellazione anagrafica, storico di cittadinanza, storico di residenza, storico di residenza alla data possono essere richiesti solo singolarmente", "tipiCertificato", t.codice().to_string()));
        }
    }
    let ha = |t: TipoCertificato| tipi.contains(&t);
    let coppia = |a: TipoCertificato, b: &[TipoCertificato]| ha(a) && b.iter().any(|x| ha(*x));
    if coppia(T::Matrimonio, &[T::StatoLibero, T::UnioneCivile]) {
        return Err(rifiuto("EN152", "Il certificato di anagrafica matrimonio non puo' essere richiesto con quello di stato libero o di unione civile", "tipiCertificato", "3"));
    }
    if coppia(T::StatoLibero, &[T::StatoCivile]) {
        return Err(rifiuto("EN158", "I certificati di anagrafica matrimonio o stato civile non possono essere richiesti con il certificato di stato libero", "tipiCertificato", "17"));
    }
    if coppia(
        T::StatoCivile,
        &[
            T::StatoFamigliaStatoCivile,
            T::StatoFamiglia,
            T::StatoFamigliaParentela,
            T::ResidenzaConvivenza,
        ],
    ) {
        return Err(rifiuto("EN159", "Il certificato di stato civile non puo' essere richiesto con quello di stato libero o con quello di stato di famiglia e stato civile", "tipiCertificato", "11"));
    }
    let famiglia = [
        T::StatoFamiglia,
        T::StatoFamigliaStatoCivile,
        T::ResidenzaConvivenza,
        T::StatoFamigliaParentela,
    ];
    if famiglia.iter().filter(|t| ha(**t)).count() > 1 {
        let (codice, testo) = if ha(T::StatoFamigliaStatoCivile) {
            ("EN155", "I certificati di stato di famiglia, stato di famiglia per convivenza e stato di famiglia con rapporti di parentela non possono essere richiesti con il certificato di stato di famiglia e stato civile")
        } else if ha(T::ResidenzaConvivenza) {
            ("EN156", "I certificati di stato di famiglia, stato di famiglia e stato civile e stato di famiglia con rapporti di parentela non possono essere richiesti con il certificato di stato di famiglia per convivenza")
        } else {
            ("EN157", "I certificati di stato di famiglia per convivenza, stato di famiglia e stato civile e stato di famiglia non possono essere richiesti con il certificato di stato di famiglia con rapporti di parentela")
        };
        return Err(rifiuto(
            codice,
            testo,
            "tipiCertificato",
            codici
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    if (ha(T::ResidenzaAire) || ha(T::StatoFamigliaAire)) && tipi.iter().any(|t| t.solo_residenti())
    {
        return Err(rifiuto(
            "EN287",
            "Non e' possibile richiedere contestualmente certificati APR e AIRE",
            "tipiCertificato",
            codici
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    Ok(tipi)
}

/// Codes of "Stato civile" that certify as free (celibe/nubile, vedovo/a, divorziato/a,
/// free after the death of the civil partner or the end of the union).
const STATI_LIBERI: [&str; 5] = ["1", "3", "4", "7", "8"];
const UNITO_CIVILMENTE: &str = "6";
const CITTADINANZA_ITALIANA: &str = "100";

/// A subject as the rules see it.
struct Soggetto {
    scheda: SchedaSoggetto,
    posizione: Option<PosizioneAnagrafica>,
    deceduto: bool,
}

impl Soggetto {
    fn new(scheda: SchedaSoggetto) -> Self {
        let posizione = scheda.competenza.as_ref().map(|c| c.posizione);
        let deceduto = scheda
            .cancellazione
            .as_ref()
            .is_some_and(|c| matches!(c.motivo_cancellazione.as_str(), "1" | "2"));
        Self {
            scheda,
            posizione,
            deceduto,
        }
    }

    fn cancellato(&self) -> bool {
        self.posizione == Some(PosizioneAnagrafica::Cancellato)
    }

    fn stato_civile(&self) -> Option<&str> {
        self.scheda
            .stato_civile
            .as_ref()
            .map(|s| s.stato_civile.as_str())
    }

    fn evento(&self, tipo: TipoEventoStatoCivile) -> Option<&EventoStatoCivile> {
        self.scheda
            .stato_civile
            .as_ref()
            .and_then(|s| s.eventi.iter().rev().find(|e| e.tipo == tipo))
    }
}

fn campo_tipo(t: TipoCertificato) -> String {
    format!("tipiCertificato[{}]", t.codice())
}

/// The rules of one type against the subject (today's record); the family, when the
/// type needs it, is checked by the caller.
fn controlla_soggetto(t: TipoCertificato, s: &Soggetto, forza: bool) -> Result<(), Anomalia> {
    let c = t.codice().to_string();
    let campo = campo_tipo(t);
    let e = |codice: &str, testo: &str| Err(rifiuto(codice, testo, &campo, c.clone()));
    // Removed subjects: only death, removal and the historical certificates.
    let ammette_cancellati = matches!(
        t,
        T::Morte
            | T::Cancellazione
            | T::StoricoCittadinanza
            | T::StoricoResidenza
            | T::StoricoResidenzaAllaData
    );
    if s.cancellato() && !ammette_cancellati {
        return if s.deceduto {
            e(
                "EN228",
                "Il certificato non puo' essere emesso in quanto il soggetto e' deceduto",
            )
        } else {
            e("EN229", "Il certificato non puo' essere emesso in quanto il soggetto e' stato cancellato da ANPR")
        };
    }
    let aire = s.posizione == Some(PosizioneAnagrafica::Aire);
    if aire
        && (t.solo_residenti() || matches!(t, T::Morte | T::Cancellazione | T::StoricoCittadinanza))
    {
        return e(
            "EN044",
            "Il certificato non puo' essere emesso in quanto il soggetto e' iscritto all'AIRE",
        );
    }
    if matches!(t, T::ResidenzaAire | T::StatoFamigliaAire) && !aire {
        return e(
            "EN164",
            "Il certificato non puo' essere emesso in quanto il soggetto non e' iscritto all'AIRE",
        );
    }
    match t {
        T::Nascita => {
            let nato_in_italia = s.scheda.generalita.as_ref().is_some_and(|g| matches!(g.luogo_nascita, Luogo::Comune { .. }));
            if aire && !nato_in_italia {
                return e("EN410", "Il certificato di nascita non può essere emesso in quanto il soggetto non risulta nato in Italia");
            }
        }
        T::Morte if !s.deceduto => {
            return e("EN061", "Il Certificato di decesso non puo' essere emesso perche' il soggetto non risulta deceduto");
        }
        T::Cancellazione => {
            if s.deceduto {
                return e("EN228", "Il certificato non puo' essere emesso in quanto il soggetto e' deceduto");
            }
            if !s.cancellato() || s.scheda.cancellazione.is_none() {
                return e("EN163", "Il certificato non puo' essere emesso perche' il soggetto non risulta cancellato");
            }
        }
        T::Cittadinanza | T::StoricoCittadinanza => {
            let cittadinanze = s.scheda.cittadinanze.as_deref().unwrap_or_default();
            if cittadinanze.is_empty() {
                return e("EN407", "Non risultano cittadinanze per il soggetto intestatario del certificato");
            }
            let insufficienti = cittadinanze
                .iter()
                .any(|c| matches!(c.codice_stato.as_str(), "997" | "998"))
                || cittadinanze.len() > 1;
            if t == T::Cittadinanza && insufficienti {
                return e("EN404", "Non e' possibile emettere il certificato di cittadinanza perche' i dati non sono sufficienti");
            }
            let italiano = cittadinanze.iter().any(|c| c.codice_stato == CITTADINANZA_ITALIANA);
            if !(italiano || forza && t == T::Cittadinanza) {
                return e("EN110", "Impossibile emettere il certificato perche' il soggetto non ha cittadinanza italiana");
            }
        }
        T::EsistenzaInVita if s.deceduto => {
            return e("EN054", "Impossibile emettere il certificato di esistenza in vita in quanto il soggetto e' deceduto");
        }
        T::Matrimonio => {
            let Some(sc) = s.stato_civile() else {
                return e("EN138", "Impossibile emettere il Certificato perche' non risulta lo stato civile per questo soggetto");
            };
            if sc == "1" || sc == UNITO_CIVILMENTE || sc == "7" || sc == "8" {
                return e("EN160", "Il certificato non puo' essere emesso perche' il soggetto risulta di stato libero o unito civilmente");
            }
            let Some(m) = s.evento(TipoEventoStatoCivile::Matrimonio) else {
                return e("EN162", "Il certificato non puo' essere emesso perche'  i dati del matrimonio risultano mancanti o incompleti");
            };
            if m.coniuge.is_none() {
                return e("EN161", "Il certificato non puo' essere emesso perche' i dati del coniuge sono assenti");
            }
        }
        T::StatoCivile | T::StatoFamigliaStatoCivile if s.stato_civile().is_none() => {
            return e("EN138", "Impossibile emettere il Certificato perche' non risulta lo stato civile per questo soggetto");
        }
        T::StatoLibero => match s.stato_civile() {
            None => return e("EN138", "Impossibile emettere il Certificato perche' non risulta lo stato civile per questo soggetto"),
            Some(sc) if !STATI_LIBERI.contains(&sc) => {
                return e("EN060", "Impossibile emettere il Certificato di stato libero del soggetto");
            }
            Some(_) => {}
        },
        T::UnioneCivile => {
            match s.stato_civile() {
                None => return e("EN138", "Impossibile emettere il Certificato perche' non risulta lo stato civile per questo soggetto"),
                Some(UNITO_CIVILMENTE) => {}
                Some(_) => return e("EN160", "Il certificato non puo' essere emesso perche' il soggetto non risulta unito civilmente"),
            }
            match s.evento(TipoEventoStatoCivile::UnioneCivile) {
                None => return e("EN353", "Il certificato non puo' essere emesso perche' i dati dell'unione civile risultano assenti o incompleti"),
                Some(u) if u.coniuge.is_none() => return e("EN161", "Il certificato non puo' essere emesso perche' i dati della parte unita civilmente sono assenti"),
                Some(_) => {}
            }
        }
        T::ResidenzaConvivenza if s.scheda.legame.as_ref().is_none_or(|l| l.tipo_legame != TipoScheda::Convivenza) => {
            return e("EN056", "Impossibile emettere il Certificato di stato di Famiglia per convivenza in quanto il soggetto non appartiene ad una convivenza");
        }
        T::ContrattoConvivenza => match s.evento(TipoEventoStatoCivile::ConvivenzaDiFatto) {
            Some(c) if c.coniuge.is_some() => {}
            _ => return e("EN354", "Il certificato non puo' essere emesso perche' i dati del contratto di convivenza risultano assenti o incompleti"),
        },
        _ => {}
    }
    Ok(())
}

pub(crate) fn nome_completo(g: Option<&Generalita>) -> String {
    match g {
        Some(g) => {
            let cognome = g.cognome.as_ref().map(|n| n.as_str()).unwrap_or("");
            let nome = g.nome.as_ref().map(|n| n.as_str()).unwrap_or("");
            format!("{cognome} {nome}").trim().to_uppercase()
        }
        None => String::new(),
    }
}

pub(crate) fn data_it(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

pub(crate) fn luogo(l: &Luogo) -> String {
    match l {
        Luogo::Comune {
            nome_comune,
            sigla_provincia,
            ..
        } => match sigla_provincia {
            Some(p) => format!("{nome_comune} ({p})"),
            None => nome_comune.clone(),
        },
        Luogo::Estero {
            descrizione_stato,
            localita,
            ..
        } => match localita {
            Some(l) => format!("{l} ({descrizione_stato})"),
            None => descrizione_stato.clone(),
        },
        Luogo::Eccezionale { descrizione } => descrizione.clone(),
    }
}

pub(crate) fn euro(centesimi: u64) -> String {
    format!("€ {},{:02}", centesimi / 100, centesimi % 100)
}

impl Registry {
    pub(crate) fn nome_comune(
        &self,
        c: &CodiceIstatComune,
        at: NaiveDate,
    ) -> (String, Option<String>) {
        match self.tables().comune_by_istat(c, at) {
            Some(r) => (r.nome.clone(), r.nome_altra_lingua.clone()),
            None => (c.to_string(), None),
        }
    }

    pub(crate) fn indirizzo(&self, r: &Residenza, at: NaiveDate) -> String {
        if let Some(i) = &r.indirizzo {
            let mut civico = i.numero_civico.numero.clone().unwrap_or_default();
            if let Some(l) = &i.numero_civico.lettera {
                civico.push_str(l);
            }
            let (comune, _) = self.nome_comune(&i.comune, at);
            let mut s = format!(
                "{} {} {}",
                i.toponimo.specie, i.toponimo.denominazione_toponimo, civico
            );
            if let Some(int) = &i.numero_civico.interno {
                s.push_str(&format!(" int. {int}"));
            }
            format!("{} - {}", s.trim().to_uppercase(), comune)
        } else if let Some(e) = &r.indirizzo_estero {
            format!("{}, {} ({})", e.indirizzo, e.localita, e.codice_stato)
        } else {
            "senza fissa dimora".into()
        }
    }

    /// Reads a subject's record (audited as part of the certificate).
    async fn soggetto_certificato(
        &self,
        ctx: &CallerContext,
        id: IdAnprSoggetto,
        at: Option<NaiveDate>,
    ) -> Result<Option<SchedaSoggetto>, ServiceError> {
        let record = self
            .leggi_record_registrando(ctx, EntityRef::Soggetto(id), at, "certificato")
            .await?;
        record
            .map(|r| SchedaSoggetto::from_sections(r.iter()).map_err(|e| self.interno(e)))
            .transpose()
    }

    /// Issues a certificate (one document, possibly certifying several things).
    pub async fn emetti_certificato(
        &self,
        ctx: &CallerContext,
        cfg: &ConfigurazioneCertificati,
        req: RichiestaCertificato,
    ) -> Result<(CertificatoEmesso, Vec<u8>), ServiceError> {
        self.autorizza(ctx, Permesso::Certificazione, "emissioneCertificato")
            .await?;
        let rif = || self.riferimento(None);
        let rifiutata = |a: Anomalia| ServiceError::Rifiutata {
            anomalie: vec![a],
            riferimento: rif(),
        };
        let Some(comune) = ctx.comune.clone() else {
            return Err(rifiutata(
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Il certificato e' emesso da un comune",
                )
                .campo("comune"),
            ));
        };
        let tipi = controlla_combinazione(&req.tipi).map_err(rifiutata)?;
        let par = self.parametri_documenti(ctx.ambiente, &comune).await?;
        let oggi = self.clock().today();
        let storico = tipi.iter().any(|t| t.storico());
        if req.data_riferimento.is_some() && !storico {
            return Err(rifiutata(rifiuto("EN449", "La data decorrenza puo' essere indicata solamente per richieste di certificati anagrafici storici", "dataRiferimento", req.data_riferimento.map(data_it).unwrap_or_default())));
        }
        if tipi.contains(&T::StoricoResidenzaAllaData) && req.data_riferimento.is_none() {
            return Err(rifiutata(Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Indicare la data di riferimento del certificato storico di residenza alla data").campo("dataRiferimento")));
        }
        if let Some(d) = req.data_riferimento {
            if d > oggi {
                return Err(rifiutata(rifiuto(
                    anpr_domain::error::CODICE_DATA_FUTURA,
                    "La data di riferimento non puo' essere futura",
                    "dataRiferimento",
                    d.to_string(),
                )));
            }
        }
        let (nome_comune, altra) = self.nome_comune(&comune, oggi);
        if let Some(l) = &req.lingua {
            // The municipality's parameter, when set, names its second language; else
            // a second-language name in the decoding tables makes it bilingual.
            let ammessa = matches!(l.as_str(), "DE" | "FR" | "SL")
                && match &par.valori.seconda_lingua {
                    Some(seconda) => seconda == l,
                    None => altra.is_some(),
                };
            if !ammessa {
                return Err(rifiutata(rifiuto(CODICE_LINGUA_NON_AMMESSA, "Lingua non prevista per il comune: il certificato bilingue e' ammesso solo nei comuni con una seconda lingua ufficiale", "linguaCertificato", l.clone()).atteso("IT, o DE/FR/SL dove il comune ha la seconda lingua")));
            }
        }
        // Stamp duty and fees (table "Esenzione bollo").
        let (importi, descrizione_esenzione) = match &req.esenzione_bollo {
            None => (
                Importi {
                    bollo: par.valori.importo_bollo,
                    diritti_segreteria: par.valori.diritti_segreteria,
                },
                None,
            ),
            Some(codice) => {
                let riga = self
                    .tables()
                    .code("esenzione_bollo", codice, Some(oggi))
                    .ok_or_else(|| {
                        rifiutata(
                            rifiuto(
                                CODICE_VALORE_NON_VALIDO,
                                "Motivo di esenzione dal bollo inesistente",
                                "esenzioneBollo",
                                codice.clone(),
                            )
                            .atteso("codice della tabella Esenzione bollo"),
                        )
                    })?;
                let descrizione = if codice == "99" {
                    let d = req.descrizione_esenzione_bollo.clone().filter(|d| !d.trim().is_empty()).ok_or_else(|| {
                        rifiutata(Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Per il motivo 99 - Altro motivo di esenzione indicare la descrizione").campo("descrizioneEsenzioneBollo"))
                    })?;
                    if d.chars().count() > 256 {
                        return Err(rifiutata(
                            rifiuto(
                                CODICE_VALORE_NON_VALIDO,
                                "Descrizione dell'esenzione oltre 256 caratteri",
                                "descrizioneEsenzioneBollo",
                                d.chars().take(20).collect::<String>(),
                            )
                            .atteso("al massimo 256 caratteri"),
                        ));
                    }
                    d
                } else {
                    riga.description.clone()
                };
                let esente_diritti = riga.attribute("esenzione_diritti_segreteria") == Some("S");
                let diritti = if esente_diritti {
                    0
                } else {
                    par.valori.diritti_segreteria_esente
                };
                (
                    Importi {
                        bollo: 0,
                        diritti_segreteria: diritti,
                    },
                    Some(descrizione),
                )
            }
        };

        let soggetto = self
            .soggetto_certificato(ctx, req.soggetto, None)
            .await?
            .ok_or_else(|| ServiceError::NonTrovato {
                cosa: format!("soggetto {}", req.soggetto),
                riferimento: rif(),
            })?;
        let s = Soggetto::new(soggetto);
        // Certifiability (table "Motivi di non certificabilità") and open proceedings
        // come before the rules of each type.
        for t in &tipi {
            crate::certificabilita::controlla_certificabilita(
                s.scheda.attributi.as_ref(),
                *t,
                |c| {
                    self.tables()
                        .code("motivi_non_certificabilita", c, None)
                        .map(|r| r.description.clone())
                        .unwrap_or_else(|| format!("non certificabile ({c})"))
                },
            )
            .map_err(rifiutata)?;
        }
        if let Some(a) = self
            .procedimento_aperto_per(self.store(ctx.ambiente)?.as_ref(), req.soggetto)
            .await?
        {
            return Err(rifiutata(a));
        }
        for t in &tipi {
            controlla_soggetto(*t, &s, req.forza_certificazione).map_err(rifiutata)?;
        }
        if tipi.contains(&T::ContrattoConvivenza) {
            self.controlla_richiedente_convivenza(&s, req.richiedente.as_ref())
                .map_err(rifiutata)?;
        }

        let mut sezioni = Vec::with_capacity(tipi.len());
        for t in &tipi {
            let righe = self
                .righe(ctx, *t, &s, req.soggetto, req.data_riferimento, oggi)
                .await?;
            sezioni.push(SezioneStampa {
                tipo: t.codice(),
                righe,
            });
        }
        let contenuto = ContenutoCertificato {
            tipi: tipi.iter().map(|t| t.codice()).collect(),
            lingua: req.lingua.clone(),
            data_emissione: oggi,
            data_riferimento: req.data_riferimento,
            comune: comune.clone(),
            nome_comune,
            nome_comune_altra_lingua: if req.lingua.is_some() { altra } else { None },
            sezioni,
            richiedente: req.richiedente.clone(),
            uso: req.uso.clone(),
            esenzione_bollo: req.esenzione_bollo.clone(),
            descrizione_esenzione,
            importi,
            autorizzazione_bollo: par.valori.autorizzazione_bollo_virtuale.clone(),
            firmatario: par.valori.ufficiale_anagrafe.clone(),
        };
        let id = anpr_certificati::id_casuale().map_err(|e| self.interno(e))?;
        let id_testo = hex::encode(id);
        let contenuto_json = serde_json::to_value(&contenuto).map_err(|e| self.interno(e))?;
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Operazione,
            "emissioneCertificato",
            Some(format!("certificato:{id_testo}")),
            format!("soggetto:{}", req.soggetto),
        );
        let store = self.store(ctx.ambiente)?;
        let doc = store
            .emetti_documento(NuovoDocumento {
                id: id_testo,
                tipo: TipoDocumento::Certificato,
                comune,
                anno: oggi.year(),
                soggetto: Some(req.soggetto),
                emesso_il: self.clock().now(),
                utente: ctx.utente.clone(),
                contenuto: contenuto_json,
                audit: voce,
            })
            .await
            .map_err(|e| self.interno(e))?;
        let emesso = self.certificato_emesso(cfg, &doc, &contenuto)?;
        let pdf = self.pdf_certificato(ctx.ambiente, &doc, &contenuto, &emesso, par.logo)?;
        Ok((emesso, pdf))
    }

    fn controlla_richiedente_convivenza(
        &self,
        s: &Soggetto,
        r: Option<&Richiedente>,
    ) -> Result<(), Anomalia> {
        let Some(r) = r else { return Ok(()) };
        let Some(cf) = &r.codice_fiscale else {
            return Err(Anomalia::errore("EN355", "Il certificato non puo' essere emesso perche', per il certificato di Contratto di Convivenza, e' necessario inserire il codice fiscale del richiedente se diverso da intestatario").campo("richiedente.codiceFiscale"));
        };
        let proprio = s
            .scheda
            .codice_fiscale
            .as_ref()
            .map(|c| c.cod_fiscale.as_str().to_owned());
        let convivente = s
            .evento(TipoEventoStatoCivile::ConvivenzaDiFatto)
            .and_then(|e| e.coniuge.as_ref())
            .and_then(|c| c.codice_fiscale.as_ref())
            .map(|c| c.as_str().to_owned());
        if proprio.as_deref() == Some(cf.as_str()) || convivente.as_deref() == Some(cf.as_str()) {
            Ok(())
        } else {
            Err(rifiuto("EN356", "Il certificato non puo' essere emesso perche' il codice fiscale del richiedente non coincide con nessuno dei due soggetti del contratto di convivenza", "richiedente.codiceFiscale", cf.clone()))
        }
    }

    /// The rows one type prints (and the family checks that need other records).
    async fn righe(
        &self,
        ctx: &CallerContext,
        t: TipoCertificato,
        s: &Soggetto,
        id: IdAnprSoggetto,
        data_riferimento: Option<NaiveDate>,
        oggi: NaiveDate,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let rifiutata = |codice: &str, testo: &str| ServiceError::Rifiutata {
            anomalie: vec![rifiuto(
                codice,
                testo,
                &campo_tipo(t),
                t.codice().to_string(),
            )],
            riferimento: self.riferimento(None),
        };
        let g = s.scheda.generalita.as_ref();
        let mut righe = vec![("Cognome e nome".to_owned(), nome_completo(g))];
        if let Some(g) = g {
            righe.push(("Nato/a a".into(), luogo(&g.luogo_nascita)));
            righe.push(("Il".into(), data_it(g.data_nascita.data)));
        }
        if let Some(cf) = &s.scheda.codice_fiscale {
            righe.push(("Codice fiscale".into(), cf.cod_fiscale.as_str().to_owned()));
        }
        let residenza = |r: &Residenza| self.indirizzo(r, oggi);
        match t {
            T::Nascita => {
                if let Some(a) = s.scheda.atti.as_ref().and_then(|a| a.atto_nascita.as_ref()) {
                    righe.push((
                        "Atto di nascita".into(),
                        format!("n. {} anno {}", a.numero_atto, a.anno),
                    ));
                }
            }
            T::Morte => {
                if let Some(c) = &s.scheda.cancellazione {
                    righe.push((
                        "Deceduto/a il".into(),
                        data_it(c.data_decorrenza_cancellazione),
                    ));
                    if let Some(a) = &c.atto_morte {
                        righe.push((
                            "Atto di morte".into(),
                            format!("n. {} anno {}", a.numero_atto, a.anno),
                        ));
                    }
                }
            }
            T::Cancellazione => {
                if let Some(c) = &s.scheda.cancellazione {
                    let motivo = self
                        .tables()
                        .code("motivi_cancellazione_apr", &c.motivo_cancellazione, None)
                        .map(|r| r.description.clone())
                        .unwrap_or_else(|| c.motivo_cancellazione.clone());
                    righe.push((
                        "Cancellato/a il".into(),
                        data_it(c.data_decorrenza_cancellazione),
                    ));
                    righe.push(("Motivo".into(), motivo));
                }
            }
            T::Cittadinanza | T::StoricoCittadinanza => {
                for c in s.scheda.cittadinanze.as_deref().unwrap_or_default() {
                    let stato = if c.codice_stato == CITTADINANZA_ITALIANA {
                        "ITALIANA".to_owned()
                    } else {
                        self.tables()
                            .stato_estero_by_istat(&c.codice_stato, None)
                            .map(|s| s.nome.clone())
                            .unwrap_or_else(|| c.codice_stato.clone())
                    };
                    let dal = c
                        .data_validita
                        .map(|d| format!(" dal {}", data_it(d)))
                        .unwrap_or_default();
                    righe.push(("Cittadinanza".into(), format!("{stato}{dal}")));
                }
            }
            T::EsistenzaInVita => righe.push((
                "Esistenza in vita".into(),
                format!("è in vita alla data del {}", data_it(oggi)),
            )),
            T::Residenza | T::ResidenzaAire | T::ResidenzaConvivenza => {
                if let Some(r) = &s.scheda.residenza {
                    righe.push(("Residenza".into(), residenza(r)));
                    righe.push(("Dal".into(), data_it(r.data_decorrenza_residenza)));
                }
                if let (T::ResidenzaConvivenza, Some(l)) = (t, &s.scheda.legame) {
                    let conv = self
                        .famiglia_letta_certificato(ctx, l.id_famiglia_convivenza_anpr)
                        .await?;
                    if let Some(nome) = conv
                        .scheda
                        .dati
                        .as_ref()
                        .and_then(|d| d.denominazione_convivenza.clone())
                    {
                        righe.push(("Convivenza anagrafica".into(), nome));
                    }
                }
                if t == T::ResidenzaAire {
                    if let Some(a) = &s.scheda.aire {
                        righe.push((
                            "Consolato".into(),
                            self.tables()
                                .consolato(&a.consolato)
                                .map(|c| c.sede.clone())
                                .unwrap_or_else(|| a.consolato.clone()),
                        ));
                    }
                }
            }
            T::StatoCivile | T::StatoLibero => {
                let sc = s.stato_civile().unwrap_or("9");
                let descr = self
                    .tables()
                    .code("stato_civile", sc, None)
                    .map(|r| r.description.clone())
                    .unwrap_or_else(|| sc.to_owned());
                righe.push(("Stato civile".into(), descr.to_uppercase()));
            }
            T::Matrimonio | T::UnioneCivile | T::ContrattoConvivenza => {
                let tipo = match t {
                    T::Matrimonio => TipoEventoStatoCivile::Matrimonio,
                    T::UnioneCivile => TipoEventoStatoCivile::UnioneCivile,
                    _ => TipoEventoStatoCivile::ConvivenzaDiFatto,
                };
                if let Some(ev) = s.evento(tipo) {
                    righe.push(("Data".into(), data_it(ev.data_evento)));
                    if let Some(l) = &ev.luogo_evento {
                        righe.push(("Luogo".into(), luogo(l)));
                    }
                    if let Some(c) = &ev.coniuge {
                        let nome = format!(
                            "{} {}",
                            c.cognome.as_ref().map(|n| n.as_str()).unwrap_or(""),
                            c.nome.as_ref().map(|n| n.as_str()).unwrap_or("")
                        )
                        .trim()
                        .to_uppercase();
                        let etichetta = match t {
                            T::Matrimonio => "Coniuge",
                            T::UnioneCivile => "Parte unita civilmente",
                            _ => "Convivente",
                        };
                        righe.push((etichetta.into(), nome));
                    }
                    if let Some(a) = &ev.atto {
                        righe.push((
                            "Atto".into(),
                            format!("n. {} anno {}", a.numero_atto, a.anno),
                        ));
                    }
                }
            }
            T::StatoFamiglia
            | T::StatoFamigliaStatoCivile
            | T::StatoFamigliaAire
            | T::StatoFamigliaParentela => {
                let Some(legame) = &s.scheda.legame else {
                    return Err(rifutata_famiglia(&rifiutata, t));
                };
                if legame.tipo_legame == TipoScheda::Convivenza {
                    let (c, m) = match t {
                        T::StatoFamigliaParentela => ("EN058", "Impossibile emettere il Certificato di stato di famiglia con rapporti di parentela in quanto il soggetto non appartiene ad una famiglia anagrafica"),
                        T::StatoFamigliaAire => ("EN057", "Impossibile emettere il Certificato di stato di Famiglia AIRE in quanto il soggetto non appartiene ad una famiglia AIRE"),
                        _ => ("EN055", "Impossibile emettere il Certificato di stato di Famiglia in quanto il soggetto appartiene ad una convivenza e non ad una famiglia anagrafica"),
                    };
                    return Err(rifiutata(c, m));
                }
                let fam = self
                    .famiglia_letta_certificato(ctx, legame.id_famiglia_convivenza_anpr)
                    .await?;
                if t == T::StatoFamigliaAire
                    && !fam.scheda.dati.as_ref().is_some_and(|d| d.famiglia_aire)
                {
                    return Err(rifiutata("EN057", "Impossibile emettere il Certificato di stato di Famiglia AIRE in quanto il soggetto non appartiene ad una famiglia AIRE"));
                }
                if fam.scheda.intestatario.is_none() && t != T::StatoFamigliaAire {
                    return Err(rifiutata("EN062", "Il Certificato di stato di famiglia non puo' essere emesso perche' non risulta presente un intestatario della famiglia anagrafica"));
                }
                if matches!(t, T::StatoFamigliaParentela | T::StatoFamigliaStatoCivile)
                    && fam.componenti.len() < 2
                {
                    return Err(rifiutata("EN059", "Impossibile emettere il Certificato di stato di famiglia con rapporti di parentela in quanto la famiglia e' costituita dal solo intestatario"));
                }
                if let Some(r) = &s.scheda.residenza {
                    righe.push(("Residenza".into(), residenza(r)));
                }
                righe.push(("Famiglia".into(), "è così composta:".into()));
                for m in &fam.componenti {
                    let scheda = if m.id_anpr == id {
                        Some(s.scheda.clone())
                    } else {
                        self.soggetto_certificato(ctx, m.id_anpr, None).await?
                    };
                    let Some(scheda) = scheda else { continue };
                    let mut valore = nome_completo(scheda.generalita.as_ref());
                    if let Some(g) = &scheda.generalita {
                        valore.push_str(&format!(", nato/a il {}", data_it(g.data_nascita.data)));
                    }
                    if t == T::StatoFamigliaParentela {
                        let rel = self
                            .tables()
                            .code("relazione_parentela", &m.codice_legame, None)
                            .map(|r| r.description.clone())
                            .unwrap_or_else(|| m.codice_legame.clone());
                        valore.push_str(&format!(" — {}", rel.to_lowercase()));
                    }
                    if t == T::StatoFamigliaStatoCivile {
                        if let Some(sc) = &scheda.stato_civile {
                            let d = self
                                .tables()
                                .code("stato_civile", sc.stato_civile.as_str(), None)
                                .map(|r| r.description.clone())
                                .unwrap_or_default();
                            valore.push_str(&format!(" — {}", d.to_lowercase()));
                        }
                    }
                    righe.push(("Componente".into(), valore));
                }
            }
            T::StoricoResidenza | T::StoricoResidenzaAllaData => {
                righe.extend(self.righe_storico(ctx, t, s, id, data_riferimento).await?);
            }
        }
        Ok(righe)
    }

    async fn famiglia_letta_certificato(
        &self,
        ctx: &CallerContext,
        id: anpr_domain::ids::IdAnprFamiglia,
    ) -> Result<crate::consultazione::FamigliaLetta, ServiceError> {
        let record = self
            .leggi_record_registrando(ctx, EntityRef::Famiglia(id), None, "certificato")
            .await?
            .ok_or_else(|| self.interno(format!("family {id} of a member not found")))?;
        self.famiglia_letta(ctx, id, None, &record).await
    }

    /// Historical residence: every residence of the subject from the history the
    /// operations wrote, or the one in force at the reference date.
    async fn righe_storico(
        &self,
        ctx: &CallerContext,
        t: TipoCertificato,
        s: &Soggetto,
        id: IdAnprSoggetto,
        data: Option<NaiveDate>,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let campo = "dataRiferimento";
        let rifiutata = |codice: &str, testo: &str, valore: String| ServiceError::Rifiutata {
            anomalie: vec![rifiuto(codice, testo, campo, valore)],
            riferimento: self.riferimento(None),
        };
        let prima_iscrizione = s.scheda.iscrizione.as_ref().map(|i| i.data_iscrizione);
        let oggi = self.clock().today();
        if let (Some(d), Some(p)) = (data, prima_iscrizione) {
            if d < p {
                return Err(rifiutata("EN419", "Il certificato non puo' essere emesso in quanto la data di riferimento risulta precedente a quella di prima iscrizione del soggetto", data_it(d)));
            }
        }
        if let (Some(d), Some(c)) = (data, &s.scheda.cancellazione) {
            if d >= c.data_decorrenza_cancellazione {
                return Err(rifiutata("EN435", "Il certificato non puo' essere emesso perche' alla data richiesta il soggetto risulta cancellato da ANPR", data_it(d)));
            }
        }
        let mut righe = Vec::new();
        if t == T::StoricoResidenzaAllaData {
            let d = data.unwrap_or(oggi);
            let Some(scheda) = self.soggetto_certificato(ctx, id, Some(d)).await? else {
                return Err(rifiutata(
                    "EN042",
                    "Soggetto da certificare non presente in ANPR alla data",
                    data_it(d),
                ));
            };
            let Some(r) = scheda.residenza else {
                return Err(rifiutata("EN434", "Il certificato non puo' essere emesso perche' non risultano residenze certificabili", data_it(d)));
            };
            if scheda
                .competenza
                .as_ref()
                .is_some_and(|c| c.posizione == PosizioneAnagrafica::Cancellato)
            {
                return Err(rifiutata("EN435", "Il certificato non puo' essere emesso perche' alla data richiesta il soggetto risulta cancellato da ANPR", data_it(d)));
            }
            let comune = scheda
                .competenza
                .as_ref()
                .map(|c| self.nome_comune(&c.comune, d).0)
                .unwrap_or_default();
            righe.push((
                format!("Alla data del {}", data_it(d)),
                format!("residente nel comune di {comune}"),
            ));
            righe.push(("Indirizzo".into(), self.indirizzo(&r, d)));
            righe.push(("Residenza dal".into(), data_it(r.data_decorrenza_residenza)));
            return Ok(righe);
        }
        let store = self.store(ctx.ambiente)?;
        let storia = store
            .history(EntityRef::Soggetto(id), SezioneSoggetto::Residenza.key())
            .await
            .map_err(|e| self.interno(e))?;
        let mut n = 0;
        for v in &storia {
            let Some(valore) = &v.value else { continue };
            let r: Residenza =
                serde_json::from_value(valore.clone()).map_err(|e| self.interno(e))?;
            if let Some(d) = data {
                // From the reference date on only.
                if v.valido_al.is_some_and(|fine| fine <= d) {
                    continue;
                }
            }
            let fine = v
                .valido_al
                .map(|f| format!(" al {}", data_it(f)))
                .unwrap_or_else(|| " ad oggi".into());
            righe.push((
                format!("Dal {}{}", data_it(v.valido_dal), fine),
                self.indirizzo(&r, v.valido_dal),
            ));
            n += 1;
        }
        if n == 0 {
            return Err(rifiutata("EN434", "Il certificato non puo' essere emesso perche' non risultano residenze certificabili", data.map(data_it).unwrap_or_default()));
        }
        Ok(righe)
    }

    fn certificato_emesso(
        &self,
        cfg: &ConfigurazioneCertificati,
        doc: &DocumentoEmesso,
        contenuto: &ContenutoCertificato,
    ) -> Result<CertificatoEmesso, ServiceError> {
        let payload = payload(doc, contenuto).map_err(|e| self.interno(e))?;
        let firmato = cfg.firmatario.firma(&payload);
        Ok(CertificatoEmesso {
            id_certificato: doc.id.clone(),
            numero_protocollo: doc.protocollo,
            anno: doc.anno,
            tipi: contenuto.tipi.clone(),
            data_emissione: contenuto.data_emissione,
            importi: contenuto.importi,
            url_verifica: format!("{}?c={firmato}", cfg.url_verifica),
            payload_verifica: firmato,
            annullato_il: doc.annullato_il,
            motivo_annullamento: doc.motivo_annullamento.clone(),
        })
    }

    /// Composes the printed document.
    fn pdf_certificato(
        &self,
        ambiente: Ambiente,
        doc: &DocumentoEmesso,
        c: &ContenutoCertificato,
        emesso: &CertificatoEmesso,
        logo: Option<std::sync::Arc<anpr_certificati::Immagine>>,
    ) -> Result<Vec<u8>, ServiceError> {
        let lingua = c.lingua.as_deref();
        let mut intestazione = vec![format!("COMUNE DI {}", c.nome_comune.to_uppercase())];
        if let Some(a) = &c.nome_comune_altra_lingua {
            intestazione[0].push_str(&format!(" / {}", a.to_uppercase()));
        }
        intestazione.push("Ufficio Anagrafe - Servizi Demografici".into());
        intestazione.push(format!(
            "Protocollo n. {}/{} del {}",
            doc.protocollo,
            doc.anno,
            data_it(c.data_emissione)
        ));
        let mut corpo = Vec::new();
        for (i, sezione) in c.sezioni.iter().enumerate() {
            let Some(t) = TipoCertificato::da_codice(sezione.tipo) else {
                continue;
            };
            if i > 0 {
                corpo.push(Blocco::Separatore);
            }
            corpo.push(Blocco::Titolo(t.titolo(None).into()));
            if lingua.is_some() {
                corpo.push(Blocco::Sottotitolo(t.titolo(lingua).into()));
            }
            if i == 0 {
                corpo.push(Blocco::Paragrafo("L'UFFICIALE DI ANAGRAFE, visti gli atti d'ufficio e le risultanze dell'Anagrafe Nazionale della Popolazione Residente, CERTIFICA che:".into()));
            }
            for (etichetta, valore) in &sezione.righe {
                corpo.push(Blocco::Campo {
                    etichetta: etichetta.clone(),
                    valore: valore.clone(),
                });
            }
        }
        corpo.push(Blocco::Spazio);
        if let Some(r) = &c.richiedente {
            corpo.push(Blocco::Campo {
                etichetta: "Richiedente".into(),
                valore: format!("{} {}", r.cognome, r.nome).to_uppercase(),
            });
        }
        if let Some(u) = &c.uso {
            corpo.push(Blocco::Campo {
                etichetta: "Uso".into(),
                valore: u.clone(),
            });
        }
        corpo.push(Blocco::Paragrafo(format!(
            "Si rilascia in data {} a richiesta dell'interessato.",
            data_it(c.data_emissione)
        )));
        corpo.push(Blocco::Paragrafo("L'UFFICIALE DI ANAGRAFE".into()));
        if let Some(f) = &c.firmatario {
            corpo.push(Blocco::Paragrafo(f.clone()));
        }
        let mut piede = vec!["Il presente certificato non può essere prodotto agli organi della pubblica amministrazione o ai privati gestori di pubblici servizi (art. 40 D.P.R. 445/2000).".to_owned()];
        piede.push(match &c.descrizione_esenzione {
            Some(d) => format!(
                "Esente da imposta di bollo: {d}. Diritti di segreteria {}.",
                euro(u64::from(c.importi.diritti_segreteria))
            ),
            None => format!(
                "Imposta di bollo {} assolta in modo virtuale{}. Diritti di segreteria {}.",
                euro(u64::from(c.importi.bollo)),
                c.autorizzazione_bollo
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default(),
                euro(u64::from(c.importi.diritti_segreteria))
            ),
        });
        if doc.annullato_il.is_some() {
            piede.push("CERTIFICATO ANNULLATO".into());
        }
        let filigrana = (ambiente != Ambiente::Produzione)
            .then(|| format!("BOZZA / ANTEPRIMA - ambiente di {}", ambiente.as_str()));
        let id = hex_id(&doc.id);
        let documento = Documento {
            titolo_metadati: c
                .sezioni
                .first()
                .and_then(|s| TipoCertificato::da_codice(s.tipo))
                .map(|t| t.titolo(None).to_owned())
                .unwrap_or_default(),
            logo,
            intestazione,
            corpo,
            filigrana,
            qr: Some(Qr {
                contenuto: emesso.url_verifica.clone(),
                didascalia: vec![format!(
                    "Verifica dell'autenticità: inquadrare il codice QR. Certificato {}",
                    doc.id
                )],
            }),
            piede,
            creato: doc.emesso_il,
            id_file: id,
        };
        anpr_certificati::genera_pdf(&documento).map_err(|e| self.interno(e))
    }

    /// The PDF of an issued certificate, printed again identically (same content, same
    /// QR payload), for its municipality.
    pub async fn stampa_certificato(
        &self,
        ctx: &CallerContext,
        cfg: &ConfigurazioneCertificati,
        id: &str,
    ) -> Result<(CertificatoEmesso, Vec<u8>), ServiceError> {
        self.autorizza(ctx, Permesso::Certificazione, "stampaCertificato")
            .await?;
        let (doc, contenuto) = self.certificato_del_comune(ctx, id).await?;
        let logo = self
            .parametri_documenti(ctx.ambiente, &doc.comune)
            .await?
            .logo;
        let emesso = self.certificato_emesso(cfg, &doc, &contenuto)?;
        let pdf = self.pdf_certificato(ctx.ambiente, &doc, &contenuto, &emesso, logo)?;
        Ok((emesso, pdf))
    }

    async fn certificato_del_comune(
        &self,
        ctx: &CallerContext,
        id: &str,
    ) -> Result<(DocumentoEmesso, ContenutoCertificato), ServiceError> {
        let store = self.store(ctx.ambiente)?;
        let non_trovato = || ServiceError::NonTrovato {
            cosa: "certificato".into(),
            riferimento: self.riferimento(None),
        };
        let doc = store
            .documento(id)
            .await
            .map_err(|e| self.interno(e))?
            .ok_or_else(non_trovato)?;
        // Another municipality's certificates do not exist for the caller.
        if doc.tipo != TipoDocumento::Certificato || ctx.comune.as_ref() != Some(&doc.comune) {
            return Err(non_trovato());
        }
        let contenuto: ContenutoCertificato =
            serde_json::from_value(doc.contenuto.clone()).map_err(|e| self.interno(e))?;
        Ok((doc, contenuto))
    }

    /// Annuls a certificate for material error.
    pub async fn annulla_certificato(
        &self,
        ctx: &CallerContext,
        cfg: &ConfigurazioneCertificati,
        id: &str,
        motivo: &str,
    ) -> Result<CertificatoEmesso, ServiceError> {
        self.autorizza(ctx, Permesso::Certificazione, "annullamentoCertificato")
            .await?;
        let motivo = motivo.trim();
        if motivo.is_empty() || motivo.chars().count() > 256 {
            return Err(ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Indicare il motivo dell'annullamento (errore materiale), al massimo 256 caratteri").campo("motivo")],
                riferimento: self.riferimento(None),
            });
        }
        let (doc, contenuto) = self.certificato_del_comune(ctx, id).await?;
        if doc.annullato_il.is_some() {
            return Err(ServiceError::Rifiutata {
                anomalie: vec![rifiuto(
                    CODICE_CERTIFICATO_NON_ANNULLABILE,
                    "Il certificato risulta gia' annullato",
                    "idCertificato",
                    id,
                )],
                riferimento: self.riferimento(None),
            });
        }
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Annullamento,
            "annullamentoCertificato",
            Some(format!("certificato:{id}")),
            "annullato".into(),
        );
        let store = self.store(ctx.ambiente)?;
        let doc = store
            .annulla_documento(&doc.id, self.clock().now(), motivo.to_owned(), voce)
            .await
            .map_err(|e| self.interno(e))?
            .ok_or_else(|| self.interno("annulled certificate vanished"))?;
        self.certificato_emesso(cfg, &doc, &contenuto)
    }

    /// The municipality's issued certificates in an issue period, with the sums due.
    pub async fn elenco_certificati(
        &self,
        ctx: &CallerContext,
        cfg: &ConfigurazioneCertificati,
        dal: Option<DateTime<Utc>>,
        al: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<ElencoCertificati, ServiceError> {
        self.autorizza(ctx, Permesso::Certificazione, "elencoCertificati")
            .await?;
        let Some(comune) = ctx.comune.clone() else {
            return Err(self
                .nega(ctx, Permesso::Certificazione, "elencoCertificati")
                .await);
        };
        let store = self.store(ctx.ambiente)?;
        let docs = store
            .documenti(&QueryDocumenti {
                comune: Some(comune),
                tipo: Some(TipoDocumento::Certificato),
                soggetto: None,
                dal,
                al,
                limit,
            })
            .await
            .map_err(|e| self.interno(e))?;
        let mut out = ElencoCertificati {
            certificati: Vec::with_capacity(docs.len()),
            totale_bollo: 0,
            totale_diritti_segreteria: 0,
        };
        for d in &docs {
            let c: ContenutoCertificato =
                serde_json::from_value(d.contenuto.clone()).map_err(|e| self.interno(e))?;
            if d.annullato_il.is_none() {
                out.totale_bollo += u64::from(c.importi.bollo);
                out.totale_diritti_segreteria += u64::from(c.importi.diritti_segreteria);
            }
            out.certificati.push(self.certificato_emesso(cfg, d, &c)?);
        }
        Ok(out)
    }

    /// Public verification of a QR payload: no login; minimal data; audited whatever the
    /// outcome. A payload that does not verify, names no certificate, or whose content
    /// hash differs from the stored certificate's is refused with one coarse code.
    pub async fn verifica_certificato(
        &self,
        ctx: &CallerContext,
        cfg: &ConfigurazioneCertificati,
        payload: &str,
    ) -> Result<EsitoVerifica, ServiceError> {
        self.autorizza(ctx, Permesso::VerificaCertificato, "verificaCertificato")
            .await?;
        let store = self.store(ctx.ambiente)?;
        let esito = self.verifica_interna(store.as_ref(), cfg, payload).await?;
        let (oggetto, testo) = match &esito {
            Some(e) => (
                Some(format!("certificato:{}", e.id_certificato)),
                e.esito.to_owned(),
            ),
            None => (None, "non valido".to_owned()),
        };
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            "verificaCertificato",
            oggetto,
            testo,
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        esito.ok_or_else(|| ServiceError::Rifiutata {
            anomalie: vec![Anomalia::errore(CODICE_VERIFICA_FALLITA, "Certificato non autentico: il codice di verifica non corrisponde ad alcun certificato emesso").campo("c")],
            riferimento: self.riferimento(None),
        })
    }

    async fn verifica_interna(
        &self,
        store: &dyn anpr_store::Store,
        cfg: &ConfigurazioneCertificati,
        payload: &str,
    ) -> Result<Option<EsitoVerifica>, ServiceError> {
        let Ok(p) = cfg.firmatario.verifica(payload) else {
            return Ok(None);
        };
        let Some(doc) = store
            .documento(&p.id_testo())
            .await
            .map_err(|e| self.interno(e))?
        else {
            return Ok(None);
        };
        let Ok(contenuto) = serde_json::from_value::<ContenutoCertificato>(doc.contenuto.clone())
        else {
            return Ok(None);
        };
        let atteso = payload_da(&doc, &contenuto);
        if atteso.as_ref().ok() != Some(&p) {
            return Ok(None);
        }
        Ok(Some(EsitoVerifica {
            esito: if doc.annullato_il.is_some() {
                "annullato"
            } else {
                "valido"
            },
            id_certificato: doc.id.clone(),
            tipi: contenuto
                .tipi
                .iter()
                .filter_map(|c| TipoCertificato::da_codice(*c))
                .map(|t| t.titolo(None).to_owned())
                .collect(),
            data_emissione: contenuto.data_emissione,
            comune: contenuto.nome_comune.clone(),
            numero_protocollo: doc.protocollo,
            anno: doc.anno,
            annullato_il: doc.annullato_il,
        }))
    }
}

fn rifutata_famiglia(
    rifiutata: &impl Fn(&str, &str) -> ServiceError,
    _t: TipoCertificato,
) -> ServiceError {
    rifiutata("EN137", "Impossibile emettere il Certificato perche' non risulta ne' una famiglia ne' una convivenza associata a questo soggetto")
}

pub(crate) fn hex_id(id: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Ok(b) = hex::decode(id) {
        if b.len() == 16 {
            out.copy_from_slice(&b);
        }
    }
    out
}

/// SHA-256 of the stored content, first 16 bytes.
fn hash_contenuto(c: &ContenutoCertificato) -> Result<[u8; 16], serde_json::Error> {
    let bytes = serde_json::to_vec(c)?;
    let digest = Sha256::digest(&bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    Ok(out)
}

fn payload_da(doc: &DocumentoEmesso, c: &ContenutoCertificato) -> Result<PayloadVerifica, String> {
    payload(doc, c)
}

fn payload(doc: &DocumentoEmesso, c: &ContenutoCertificato) -> Result<PayloadVerifica, String> {
    let mut id = [0u8; 16];
    let b = hex::decode(&doc.id).map_err(|e| e.to_string())?;
    if b.len() != 16 {
        return Err(format!("certificate id {} is not 16 bytes", doc.id));
    }
    id.copy_from_slice(&b);
    Ok(PayloadVerifica {
        id,
        tipi: c.tipi.iter().fold(0u32, |acc, t| {
            acc | 1u32
                .checked_shl(u32::from(*t).saturating_sub(1))
                .unwrap_or(0)
        }),
        data_emissione: c.data_emissione,
        comune: c
            .comune
            .as_str()
            .parse()
            .map_err(|_| format!("municipality {}", c.comune))?,
        hash_contenuto: hash_contenuto(c).map_err(|e| e.to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codice(r: Result<Vec<TipoCertificato>, Anomalia>) -> String {
        r.err().map(|a| a.codice.clone()).unwrap_or_default()
    }

    #[test]
    fn combinations() {
        let check = |tipi: &[u8], atteso: &str| {
            assert_eq!(codice(controlla_combinazione(tipi)), atteso, "{tipi:?}")
        };
        check(&[8, 12], "");
        check(&[8, 5, 7, 11], "");
        check(&[2, 7], "EN153");
        check(&[8, 9], "EN153");
        check(&[20, 8], "EN153");
        check(&[3, 17], "EN152");
        check(&[17, 11], "EN158");
        check(&[11, 13], "EN159");
        check(&[12, 16], "EN157");
        check(&[12, 14], "EN156");
        check(&[12, 13], "EN155");
        check(&[10, 8], "EN287");
        check(&[15, 12], "EN287");
        check(&[8, 8], "EV001");
        check(&[21], "EC070");
        check(&[], "EV002");
    }

    #[test]
    fn codes_round_trip() {
        for t in TipoCertificato::ALL {
            assert_eq!(TipoCertificato::da_codice(t.codice()), Some(t));
        }
        assert_eq!(TipoCertificato::da_codice(0), None);
    }
}
