//! Administrative proceedings (*procedimenti amministrativi*, service 1014, SPEC M-2.6):
//! e.g. the investigation that follows a change-of-residence declaration.
//!
//! A proceeding is a record of its own, kept as versioned sections like the individual
//! and family records, so its history, "as at" reads and annulment come for free:
//!
//! - `procedimento` ([`DatiProcedimento`]): numbers, municipality, what started it
//!   (table "Innesco procedimento amministrativo"), opening date, closing data;
//! - `stato` ([`StatoCorrente`]): the state (table "Stato procedimento amministrativo")
//!   and its date, which is the operation's *decorrenza*, so states follow each other in
//!   time;
//! - one `soggetto.<idANPR>` section per linked subject ([`SoggettoCollegato`]) and one
//!   `evento.<idOperazioneANPR>` section per linked registry operation
//!   ([`EventoCollegato`]), each with the linked id as search key. A link is a write of
//!   its own (never a rewrite of a list), and "proceedings of subject S" is a lookup of
//!   section `soggetto.S` by key. Unlinking writes the section empty.
//!
//! The life cycle ([`TipoOperazione1014`]): `I` opens (state 1), `M` moves it through
//! the intermediate states (3–7), `A` / `E` associate / remove subjects and
//! operations, `C` closes it (state 2) with an outcome. A closed proceeding is archived:
//! it changes no more.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{
    CodiceIstatComune, IdAnprSoggetto, IdOperazioneAnpr, InvalidValue, NumeroPraticaAnpr,
    NumeroPraticaComune,
};
use crate::operazione::CodiceServizio;
use crate::scheda::SectionError;

/// Section holding the proceeding's data.
pub const SEZIONE_DATI: &str = "procedimento";
/// Section holding the current state and its date.
pub const SEZIONE_STATO: &str = "stato";
/// Prefix of the per-subject link sections (`soggetto.<idANPR>`).
pub const PREFISSO_SOGGETTO: &str = "soggetto.";
/// Prefix of the per-operation link sections (`evento.<idOperazioneANPR>`).
pub const PREFISSO_EVENTO: &str = "evento.";

/// State code "Apertura procedimento amministrativo": only an opening has it.
pub const STATO_APERTURA: &str = "1";
/// State code "Chiusura procedimento amministrativo": only a closing has it.
pub const STATO_CHIUSURA: &str = "2";

/// Closing outcomes admitted by ANPR (error EHR77: "valori ammessi C, R, S").
pub const ESITI_CHIUSURA: [&str; 3] = ["C", "R", "S"];

/// Innesco codes that start a registration (1001, 1002, 1A01, 1A02, 1010): the subject
/// is not in the registry yet, so an opening for them names no subject (EN128).
pub const INNESCHI_ISCRIZIONE: [&str; 5] = ["1", "2", "8", "9", "11"];

/// Longest note (`tipoNoteChiusura`, `tipoNoteEsito`: 1 to 240 characters).
pub const MAX_NOTE: usize = 240;

/// Name of the link section of a subject.
pub fn sezione_soggetto(id: IdAnprSoggetto) -> String {
    format!("{PREFISSO_SOGGETTO}{id}")
}

/// Name of the link section of an operation.
pub fn sezione_evento(id: IdOperazioneAnpr) -> String {
    format!("{PREFISSO_EVENTO}{id}")
}

/// What a 1014 request does (`tipoOperazione1014`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TipoOperazione1014 {
    /// `I`: open (insert) a proceeding.
    Inserimento,
    /// `M`: change its state or data.
    Modifica,
    /// `C`: close (archive) it with an outcome.
    Chiusura,
    /// `A`: associate subjects and/or operations.
    Associazione,
    /// `E`: remove subjects and/or operations.
    Eliminazione,
}

impl TipoOperazione1014 {
    pub const ALL: [TipoOperazione1014; 5] = [
        TipoOperazione1014::Inserimento,
        TipoOperazione1014::Modifica,
        TipoOperazione1014::Chiusura,
        TipoOperazione1014::Associazione,
        TipoOperazione1014::Eliminazione,
    ];

    pub fn code(self) -> &'static str {
        match self {
            TipoOperazione1014::Inserimento => "I",
            TipoOperazione1014::Modifica => "M",
            TipoOperazione1014::Chiusura => "C",
            TipoOperazione1014::Associazione => "A",
            TipoOperazione1014::Eliminazione => "E",
        }
    }

    /// Whether a proceeding may be put in state `stato` by this kind of request: the
    /// opening state only by `I`, the closing state only by `C`, the others by the rest.
    pub fn ammette_stato(self, stato: &str) -> bool {
        match self {
            TipoOperazione1014::Inserimento => stato == STATO_APERTURA,
            TipoOperazione1014::Chiusura => stato == STATO_CHIUSURA,
            _ => stato != STATO_APERTURA && stato != STATO_CHIUSURA,
        }
    }

    /// The state this kind of request expects, for error messages.
    pub fn stato_atteso(self) -> &'static str {
        match self {
            TipoOperazione1014::Inserimento => "1 (apertura procedimento amministrativo)",
            TipoOperazione1014::Chiusura => "2 (chiusura procedimento amministrativo)",
            _ => "uno stato intermedio della tabella (3-7), non apertura (1) ne' chiusura (2)",
        }
    }
}

impl fmt::Display for TipoOperazione1014 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for TipoOperazione1014 {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        TipoOperazione1014::ALL
            .into_iter()
            .find(|t| t.code() == s)
            .ok_or_else(|| InvalidValue::new("tipoOperazione", s, "I, M, C, A or E"))
    }
}

/// A note of a proceeding: 1 to [`MAX_NOTE`] characters, no control characters.
pub fn nota_valida(s: &str) -> bool {
    let n = s.chars().count();
    (1..=MAX_NOTE).contains(&n) && !s.chars().any(char::is_control)
}

/// The proceeding's data (section `procedimento`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiProcedimento {
    pub numero_pratica_anpr: NumeroPraticaAnpr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numero_pratica_comune: Option<NumeroPraticaComune>,
    pub comune: CodiceIstatComune,
    /// Code of "Innesco procedimento amministrativo".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motivo_avvio: Option<String>,
    pub data_avvio: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_chiusura: Option<NaiveDate>,
    /// `C`, `R` or `S` ([`ESITI_CHIUSURA`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esito_chiusura: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_chiusura: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_esito: Option<String>,
}

/// The current state (section `stato`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatoCorrente {
    /// Code of "Stato procedimento amministrativo".
    pub stato_procedimento: String,
    pub data_stato: NaiveDate,
}

/// A subject linked to the proceeding (section `soggetto.<idANPR>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SoggettoCollegato {
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: IdAnprSoggetto,
    pub data_associazione: NaiveDate,
}

/// A registry operation linked to the proceeding (section `evento.<idOperazioneANPR>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventoCollegato {
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: IdOperazioneAnpr,
    pub codice_servizio: CodiceServizio,
    pub data_associazione: NaiveDate,
}

/// A proceeding as read at some date (or now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedaProcedimento {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dati: Option<DatiProcedimento>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stato: Option<StatoCorrente>,
    /// Linked subjects, by id.
    pub soggetti: Vec<SoggettoCollegato>,
    /// Linked operations, by id.
    pub eventi: Vec<EventoCollegato>,
}

impl SchedaProcedimento {
    /// Rebuilds a proceeding from stored sections. Unknown keys are an error (a newer
    /// schema wrote them), and a link section must name the id its key names.
    pub fn from_sections<'a>(
        sections: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) -> Result<Self, SectionError> {
        fn parse<T: serde::de::DeserializeOwned>(
            key: &str,
            value: &serde_json::Value,
        ) -> Result<T, SectionError> {
            serde_json::from_value(value.clone()).map_err(|e| SectionError {
                section: key.to_owned(),
                reason: e.to_string(),
            })
        }
        let mismatch = |key: &str| SectionError {
            section: key.to_owned(),
            reason: "the section names another id".into(),
        };
        let mut out = Self::default();
        for (key, value) in sections {
            if key == SEZIONE_DATI {
                out.dati = Some(parse(key, value)?);
            } else if key == SEZIONE_STATO {
                out.stato = Some(parse(key, value)?);
            } else if let Some(id) = key.strip_prefix(PREFISSO_SOGGETTO) {
                let link: SoggettoCollegato = parse(key, value)?;
                if link.id_scheda_soggetto_anpr.to_string() != id {
                    return Err(mismatch(key));
                }
                out.soggetti.push(link);
            } else if let Some(id) = key.strip_prefix(PREFISSO_EVENTO) {
                let link: EventoCollegato = parse(key, value)?;
                if link.id_operazione_anpr.to_string() != id {
                    return Err(mismatch(key));
                }
                out.eventi.push(link);
            } else {
                return Err(SectionError {
                    section: key.to_owned(),
                    reason: "unknown section".into(),
                });
            }
        }
        out.soggetti.sort_by_key(|s| s.id_scheda_soggetto_anpr);
        out.eventi.sort_by_key(|e| e.id_operazione_anpr);
        Ok(out)
    }

    /// True when the proceeding exists and is not closed.
    pub fn aperto(&self) -> bool {
        self.stato
            .as_ref()
            .is_some_and(|s| s.stato_procedimento != STATO_CHIUSURA)
    }

    pub fn collegato_a_soggetto(&self, id: IdAnprSoggetto) -> bool {
        self.soggetti
            .iter()
            .any(|s| s.id_scheda_soggetto_anpr == id)
    }

    pub fn collegato_a_evento(&self, id: IdOperazioneAnpr) -> bool {
        self.eventi.iter().any(|e| e.id_operazione_anpr == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn request_kinds_and_the_states_they_admit() {
        for (code, kind) in [
            ("I", TipoOperazione1014::Inserimento),
            ("M", TipoOperazione1014::Modifica),
            ("C", TipoOperazione1014::Chiusura),
            ("A", TipoOperazione1014::Associazione),
            ("E", TipoOperazione1014::Eliminazione),
        ] {
            assert_eq!(code.parse::<TipoOperazione1014>().unwrap(), kind);
            assert_eq!(kind.to_string(), code);
        }
        assert!("X".parse::<TipoOperazione1014>().is_err());
        assert!("i".parse::<TipoOperazione1014>().is_err());
        let check = |kind: TipoOperazione1014, stato: &str, ok: bool| {
            assert_eq!(kind.ammette_stato(stato), ok, "{kind} {stato}");
        };
        check(TipoOperazione1014::Inserimento, "1", true);
        check(TipoOperazione1014::Inserimento, "3", false);
        check(TipoOperazione1014::Chiusura, "2", true);
        check(TipoOperazione1014::Chiusura, "4", false);
        check(TipoOperazione1014::Modifica, "5", true);
        check(TipoOperazione1014::Modifica, "1", false);
        check(TipoOperazione1014::Modifica, "2", false);
        check(TipoOperazione1014::Associazione, "3", true);
        check(TipoOperazione1014::Eliminazione, "2", false);
    }

    #[test]
    fn notes_are_bounded_and_printable() {
        assert!(nota_valida("Accertamento positivo"));
        assert!(!nota_valida(""));
        assert!(!nota_valida(&"x".repeat(241)));
        assert!(nota_valida(&"è".repeat(240)));
        assert!(!nota_valida("riga\nnuova"));
    }

    #[test]
    fn a_proceeding_is_rebuilt_from_its_sections() {
        let s1 = IdAnprSoggetto::new(12).unwrap();
        let s2 = IdAnprSoggetto::new(3).unwrap();
        let op = IdOperazioneAnpr::new(77).unwrap();
        let dati = json!({"numeroPraticaAnpr": "5", "comune": "058091", "dataAvvio": "2024-01-10", "motivoAvvio": "6"});
        let stato = json!({"statoProcedimento": "3", "dataStato": "2024-02-01"});
        let l1 = json!({"idSchedaSoggettoANPR": "12", "dataAssociazione": "2024-01-10"});
        let l2 = json!({"idSchedaSoggettoANPR": "3", "dataAssociazione": "2024-01-11"});
        let ev = json!({"idOperazioneANPR": "77", "codiceServizio": "5005", "dataAssociazione": "2024-02-01"});
        let keys = [
            (SEZIONE_DATI.to_owned(), dati),
            (SEZIONE_STATO.to_owned(), stato),
            (sezione_soggetto(s1), l1),
            (sezione_soggetto(s2), l2),
            (sezione_evento(op), ev),
        ];
        let p =
            SchedaProcedimento::from_sections(keys.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
        assert_eq!(p.dati.as_ref().unwrap().data_avvio, day(2024, 1, 10));
        assert_eq!(
            p.soggetti
                .iter()
                .map(|s| s.id_scheda_soggetto_anpr)
                .collect::<Vec<_>>(),
            vec![s2, s1]
        );
        assert!(p.aperto());
        assert!(p.collegato_a_soggetto(s1));
        assert!(p.collegato_a_evento(op));
        assert!(!p.collegato_a_evento(IdOperazioneAnpr::new(78).unwrap()));

        let wrong = json!({"idSchedaSoggettoANPR": "13", "dataAssociazione": "2024-01-10"});
        let key = sezione_soggetto(s1);
        assert!(SchedaProcedimento::from_sections([(key.as_str(), &wrong)]).is_err());
        assert!(SchedaProcedimento::from_sections([("altro", &json!({}))]).is_err());
        let closed = json!({"statoProcedimento": "2", "dataStato": "2024-03-01"});
        let p = SchedaProcedimento::from_sections([(SEZIONE_STATO, &closed)]).unwrap();
        assert!(!p.aperto());
    }
}
