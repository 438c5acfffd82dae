//! The individual record (*scheda individuale*, SPEC M-1.1, M-1.3) and the family and
//! cohabitation record (*scheda famiglia / convivenza*, M-1.2).
//!
//! A record is a set of **sections**, each with its own history: an operation replaces
//! the sections it touches from its *decorrenza* on, and leaves the others alone. This is
//! what makes "as at date D" reads exact (M-1.5): each section is read at D
//! independently. Sections follow the groups of the published XSD (`tipoGeneralita`,
//! `tipoCodiceFiscale`, `tipoResidenza`, ...) and serialise with its field names.
//!
//! Coded values that come from a decoding table (reasons, civil status, relationship...)
//! are kept as their table code ([`CodiceTabella`]); the service layer checks them
//! against `anpr-tables`, which the domain does not depend on.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codice_fiscale::CodiceFiscaleSoggetto;
use crate::ids::{
    CodiceCatastale, CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdComunale, Sesso,
};

/// A code from a decoding table, e.g. civil status `2` or registration reason `4`.
/// Which table is implied by the field that holds it.
pub type CodiceTabella = String;

/// A personal name as written: case and diacritics preserved (M-1.1). Never empty,
/// at most 80 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nome(String);

impl Nome {
    pub fn parse(s: &str) -> Result<Self, crate::ids::InvalidValue> {
        let trimmed = s.trim();
        let ok = !trimmed.is_empty()
            && trimmed.chars().count() <= 80
            && !trimmed.chars().any(char::is_control)
            && trimmed.chars().any(char::is_alphabetic);
        if ok {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(crate::ids::InvalidValue::new(
                "nome",
                s,
                "1 to 80 printable characters with at least one letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folded search key (accent- and case-insensitive).
    pub fn key(&self) -> String {
        crate::text::fold_key(&self.0)
    }
}

impl TryFrom<String> for Nome {
    type Error = crate::ids::InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Nome::parse(&value)
    }
}

impl From<Nome> for String {
    fn from(value: Nome) -> String {
        value.0
    }
}

/// How much of a registry date is known. ANPR admits birth dates without day
/// (`senzaGiorno`) or without day and month (`senzaGiornoMese`); the stored date then has
/// day (and month) set to 1 and must not be shown as if complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Precisione {
    Completa,
    SenzaGiorno,
    SenzaGiornoMese,
}

/// A registry date with its precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataAnagrafica {
    pub data: NaiveDate,
    pub precisione: Precisione,
}

impl DataAnagrafica {
    pub fn completa(data: NaiveDate) -> Self {
        Self {
            data,
            precisione: Precisione::Completa,
        }
    }
}

/// Where a birth or another event happened (`tipoLuogoEvento`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "tipo"
)]
pub enum Luogo {
    /// An Italian municipality, as it was at the date of the event.
    Comune {
        codice_istat: CodiceIstatComune,
        codice_catastale: CodiceCatastale,
        nome_comune: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigla_provincia: Option<String>,
    },
    /// A foreign state (ISTAT 3-digit state code and cadastral Z code) and locality.
    Estero {
        codice_stato: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        codice_catastale: Option<CodiceCatastale>,
        descrizione_stato: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        localita: Option<String>,
    },
    /// An exceptional place (ship, aircraft...: `luogoEccezionale`).
    Eccezionale { descrizione: String },
}

impl Luogo {
    /// The code the codice fiscale embeds for this place, if any.
    pub fn codice_catastale(&self) -> Option<&CodiceCatastale> {
        match self {
            Luogo::Comune {
                codice_catastale, ..
            } => Some(codice_catastale),
            Luogo::Estero {
                codice_catastale, ..
            } => codice_catastale.as_ref(),
            Luogo::Eccezionale { .. } => None,
        }
    }
}

/// Generalities (`tipoGeneralita`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generalita {
    /// `None` with `senzaCognome` (foundlings, some foreign subjects).
    pub cognome: Option<Nome>,
    pub nome: Option<Nome>,
    pub sesso: Sesso,
    pub data_nascita: DataAnagrafica,
    pub luogo_nascita: Luogo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Validation state of a codice fiscale against the tax agency (M-3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoCodiceFiscale {
    /// Validated: subject present in AE with the same CF and data (table code 1).
    Validato,
    /// Not validated yet (table code 9).
    NonValidato,
    /// Provisional numeric code.
    Provvisorio,
    /// AE holds the CF with different personal data.
    DatiDifformi,
    /// Linked to another CF of the same person.
    Collegato,
    /// An omocode issued by AE.
    Omocodice,
    /// Not present at AE.
    AssenteInAe,
}

impl StatoCodiceFiscale {
    /// The code of table "Stato validazione del codice fiscale" (1 or 9).
    pub fn validita_cf(self) -> &'static str {
        match self {
            StatoCodiceFiscale::Validato => "1",
            _ => "9",
        }
    }
}

/// Tax code section (`tipoCodiceFiscale`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiCodiceFiscale {
    /// The ordinary code, or the numeric provisional one.
    pub cod_fiscale: CodiceFiscaleSoggetto,
    pub stato: StatoCodiceFiscale,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_attribuzione_validita: Option<NaiveDate>,
    /// Other codes of the same person linked to this one (M-3.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codici_collegati: Vec<CodiceFiscaleSoggetto>,
}

/// One citizenship (`tipoCittadinanza`): ISTAT state code (`100` = Italy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cittadinanza {
    pub codice_stato: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_validita: Option<NaiveDate>,
}

/// Reference to a parent (`tipoGenitore`): by national id when registered, otherwise by
/// generalities as stated in the deed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Genitore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_anpr: Option<IdAnprSoggetto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice_fiscale: Option<CodiceFiscaleSoggetto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognome: Option<Nome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nome: Option<Nome>,
}

/// Paternity and maternity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Genitori {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padre: Option<Genitore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub madre: Option<Genitore>,
}

/// A civil-status deed (`tipoAtto`): where and how it is registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Atto {
    pub comune_registrazione: CodiceIstatComune,
    pub anno: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufficio_municipio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parte: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serie: Option<String>,
    pub numero_atto: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_formazione_atto: Option<NaiveDate>,
    #[serde(default)]
    pub trascritto: bool,
}

/// Kinds of civil-status event (marriage, civil union, de-facto cohabitation contract and
/// their ends; SPEC M-1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TipoEventoStatoCivile {
    Matrimonio,
    Vedovanza,
    AnnullamentoMatrimonio,
    Divorzio,
    UnioneCivile,
    ScioglimentoUnione,
    ConvivenzaDiFatto,
    RisoluzioneConvivenza,
}

/// One civil-status event with its deed and the other party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventoStatoCivile {
    pub tipo: TipoEventoStatoCivile,
    pub data_evento: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luogo_evento: Option<Luogo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atto: Option<Atto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coniuge: Option<Genitore>,
    /// Sub-type code where the decoding tables have one (e.g. end of marriage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tipo_cessazione: Option<CodiceTabella>,
}

/// Civil status and the events behind it (`tipoStatoCivile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatoCivile {
    /// Code of table "Stato civile" (1 celibe/nubile, 2 coniugato/a, ...).
    pub stato_civile: CodiceTabella,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eventi: Vec<EventoStatoCivile>,
}

/// Birth and other personal deeds (birth deed; death data live in the removal section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Atti {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atto_nascita: Option<Atto>,
}

/// Street (`tipoToponimo`): kind (VIA, PIAZZA...: table 4) and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toponimo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cod_specie: Option<CodiceTabella>,
    pub specie: String,
    pub denominazione_toponimo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cod_toponimo: Option<String>,
}

/// House number and internal (`tipoNumeroCivico` + `tipoCivicoInterno`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumeroCivico {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numero: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lettera: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esponente1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scala: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piano: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interno: Option<String>,
}

/// An Italian address (`tipoIndirizzo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indirizzo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    pub comune: CodiceIstatComune,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frazione: Option<String>,
    pub toponimo: Toponimo,
    #[serde(default)]
    pub numero_civico: NumeroCivico,
}

impl Indirizzo {
    /// A folded key identifying the building (street and number, not the internal),
    /// used to find families and cohabitations at the same address.
    pub fn chiave_edificio(&self) -> String {
        crate::text::fold_key(&format!(
            "{} {} {} {} {} {}",
            self.comune,
            self.toponimo.specie,
            self.toponimo.denominazione_toponimo,
            self.numero_civico.numero.as_deref().unwrap_or(""),
            self.numero_civico.lettera.as_deref().unwrap_or(""),
            self.numero_civico.esponente1.as_deref().unwrap_or(""),
        ))
    }
}

/// A foreign address (`tipoIndirizzoEstero`, AIRE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndirizzoEstero {
    pub codice_stato: String,
    pub localita: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provincia_contea: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    pub indirizzo: String,
}

/// Residence (`tipoResidenza`): an Italian address or, for AIRE, a foreign one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Residenza {
    /// Code of table "Tipo indirizzo" (1 = residenza, ...).
    pub tipo_indirizzo: CodiceTabella,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indirizzo: Option<Indirizzo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indirizzo_estero: Option<IndirizzoEstero>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presso: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_indirizzo: Option<String>,
    pub data_decorrenza_residenza: NaiveDate,
}

/// Where a registration came from (municipality, foreign state, or unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenienza {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comune: Option<CodiceIstatComune>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice_stato: Option<String>,
}

/// Registration data (`tipoDatiIscrizione`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiIscrizione {
    /// Code of "Motivi di iscrizione in Anagrafe" (APR) or "Motivi iscrizione AIRE".
    pub motivo_iscrizione: CodiceTabella,
    pub data_iscrizione: NaiveDate,
    pub comune: CodiceIstatComune,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenienza: Option<Provenienza>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Removal data (`tipoDatiCancellazione`), including death.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiCancellazione {
    /// Code of "Motivi di cancellazione dall'Anagrafe" or "... AIRE".
    pub motivo_cancellazione: CodiceTabella,
    pub data_decorrenza_cancellazione: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinazione: Option<Provenienza>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atto_morte: Option<Atto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Identity card (`tipoCartaIdentita`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartaIdentita {
    pub numero: String,
    pub data_rilascio: NaiveDate,
    pub data_scadenza: NaiveDate,
    /// `C` paper, `E` electronic (CIE).
    pub cartacea_elettronica: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comune_rilascio: Option<CodiceIstatComune>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolato_rilascio: Option<String>,
    #[serde(default)]
    pub interdizione_espatrio: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_annullamento: Option<NaiveDate>,
}

/// Subject attributes (`tipoAttributiSoggetto`): whether the subject can be certified,
/// code of "Motivi di non certificabilità" (0 not certifiable, 1 residence and family
/// status only, 2 fully certifiable, 3 not registrable, 4 under guardianship).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributiSoggetto {
    pub soggetto_certificabile: CodiceTabella,
}

/// Residence permit (`tipoPermessoSoggiorno`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermessoSoggiorno {
    pub numero_soggiorno: String,
    /// Code of "Tipo soggiorno".
    pub tipo_soggiorno: CodiceTabella,
    pub data_rilascio: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_scadenza: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questura_rilascio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numero_passaporto: Option<String>,
}

/// Education and profession (`tipoAltriDati`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AltriDati {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titolo_studio: Option<CodiceTabella>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posizione_professionale: Option<CodiceTabella>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condizione_non_professionale: Option<CodiceTabella>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub professione: Option<String>,
}

/// Driving licence (`tipoAutoveicoli` area).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patente {
    pub numero: String,
    pub categoria: String,
    pub data_rilascio: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_scadenza: Option<NaiveDate>,
}

/// Second-language data of bilingual municipalities (`tipoAltraLingua`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AltraLingua {
    /// Code of "Lingue" (DE, FR, SL).
    pub id_lingua: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominazione_toponimo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descrizione_localita: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frazione: Option<String>,
}

/// AIRE data (M-1.3, `tipoIscrizioneAIRE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiAire {
    /// MAE code of the competent consulate (table 40).
    pub consolato: String,
    /// Code of "Iniziativa iscrizione AIRE".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iniziativa_iscrizione: Option<CodiceTabella>,
    /// Code of "Individuazione del comune di iscrizione AIRE".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub individuazione_comune_iscrizione: Option<CodiceTabella>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anno_espatrio: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_arrivo_consolato: Option<NaiveDate>,
}

/// Where the subject stands in the registry. Exactly one state at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PosizioneAnagrafica {
    /// In the resident registry (APR) of the competent municipality.
    Residente,
    /// In the registry of Italians abroad (AIRE) of the competent municipality.
    Aire,
    /// Removed (death, emigration, untraceability, ...); the record is kept.
    Cancellato,
}

impl PosizioneAnagrafica {
    pub fn code(self) -> &'static str {
        match self {
            PosizioneAnagrafica::Residente => "R",
            PosizioneAnagrafica::Aire => "A",
            PosizioneAnagrafica::Cancellato => "C",
        }
    }
}

/// Which municipality holds the record and in which registry (competence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Competenza {
    pub comune: CodiceIstatComune,
    pub posizione: PosizioneAnagrafica,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_scheda_soggetto_comune: Option<IdComunale>,
}

/// Membership of a family or cohabitation (`tipoLegameSoggetto`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Legame {
    pub id_famiglia_convivenza_anpr: IdAnprFamiglia,
    /// `1` family (relationship from "Relazione di parentela"), `2` cohabitation
    /// (bond from "Legame convivenza").
    pub tipo_legame: TipoScheda,
    /// Code of "Relazione di parentela / Famiglia" or "Legame / Convivenza".
    pub codice_legame: CodiceTabella,
    pub data_decorrenza: NaiveDate,
}

/// Family or cohabitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TipoScheda {
    Famiglia,
    Convivenza,
}

/// Code of "Relazione di parentela" for the head of a family (*intestatario scheda*).
pub const RELAZIONE_INTESTATARIO: &str = "1";

macro_rules! sezioni {
    ($(#[$meta:meta])* $record:ident, $kind:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty => $variant:ident, $key:literal;)* }) => {
        /// The sections of the record; which ones an operation touches is explicit.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub enum $kind { $($variant),* }

        impl $kind {
            pub const ALL: &'static [$kind] = &[$($kind::$variant),*];

            /// Stable storage key of the section.
            pub fn key(self) -> &'static str {
                match self { $($kind::$variant => $key),* }
            }

            pub fn from_key(key: &str) -> Option<Self> {
                match key { $($key => Some($kind::$variant),)* _ => None }
            }
        }

        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $record {
            $($(#[$fmeta])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
        }

        impl $record {
            /// Serialises one section to its stored JSON form (`None` when absent).
            pub fn section_json(&self, kind: $kind) -> Option<serde_json::Value> {
                match kind {
                    $($kind::$variant => self.$field.as_ref().map(|v| serde_json::to_value(v).expect("sections serialise infallibly")),)*
                }
            }

            /// All present sections as (kind, JSON).
            pub fn sections(&self) -> Vec<($kind, serde_json::Value)> {
                $kind::ALL.iter().filter_map(|k| self.section_json(*k).map(|v| (*k, v))).collect()
            }

            /// Rebuilds a record from stored sections. Unknown keys are an error: they
            /// would mean a newer schema wrote the data.
            pub fn from_sections<'a>(
                sections: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
            ) -> Result<Self, SectionError> {
                let mut out = Self::default();
                for (key, value) in sections {
                    match $kind::from_key(key) {
                        $(Some($kind::$variant) => {
                            // Deserialised from the borrowed value: no copy of the section's tree
                            // (this runs for every section of every record read).
                            out.$field = Some(<$ty as Deserialize>::deserialize(value).map_err(|e| SectionError { section: key.to_owned(), reason: e.to_string() })?);
                        })*
                        None => return Err(SectionError { section: key.to_owned(), reason: "unknown section".into() }),
                    }
                }
                Ok(out)
            }

            /// As [`Self::from_sections`], from each section's stored JSON text,
            /// deserialised straight into its type (no intermediate JSON tree).
            pub fn from_sections_testo<'a>(
                sections: impl IntoIterator<Item = (&'a str, &'a str)>,
            ) -> Result<Self, SectionError> {
                let mut out = Self::default();
                for (key, testo) in sections {
                    match $kind::from_key(key) {
                        $(Some($kind::$variant) => {
                            out.$field = Some(serde_json::from_str::<$ty>(testo).map_err(|e| SectionError { section: key.to_owned(), reason: e.to_string() })?);
                        })*
                        None => return Err(SectionError { section: key.to_owned(), reason: "unknown section".into() }),
                    }
                }
                Ok(out)
            }
        }
    };
}

/// A stored section that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("section {section}: {reason}")]
pub struct SectionError {
    pub section: String,
    pub reason: String,
}

sezioni!(
    /// The individual record (*scheda individuale*): every section of SPEC M-1.1/M-1.3.
    /// Sections are optional because a record is built up by operations and read at
    /// dates when some did not exist yet; the registration use cases require the
    /// mandatory ones (generalities, competence, registration data).
    SchedaSoggetto, SezioneSoggetto {
        competenza: Competenza => Competenza, "competenza";
        generalita: Generalita => Generalita, "generalita";
        codice_fiscale: DatiCodiceFiscale => CodiceFiscale, "codiceFiscale";
        cittadinanze: Vec<Cittadinanza> => Cittadinanze, "cittadinanze";
        genitori: Genitori => Genitori, "genitori";
        stato_civile: StatoCivile => StatoCivile, "statoCivile";
        atti: Atti => Atti, "atti";
        residenza: Residenza => Residenza, "residenza";
        legame: Legame => Legame, "legame";
        iscrizione: DatiIscrizione => Iscrizione, "iscrizione";
        cancellazione: DatiCancellazione => Cancellazione, "cancellazione";
        carta_identita: CartaIdentita => CartaIdentita, "cartaIdentita";
        permesso_soggiorno: PermessoSoggiorno => PermessoSoggiorno, "permessoSoggiorno";
        altri_dati: AltriDati => AltriDati, "altriDati";
        patente: Patente => Patente, "patente";
        altra_lingua: AltraLingua => AltraLingua, "altraLingua";
        aire: DatiAire => Aire, "aire";
        /// Certifiability (`tipoAttributiSoggetto`, set by service 5010).
        attributi: AttributiSoggetto => Attributi, "attributiSoggetto";
        /// Subentro anomalies kept as a memory of the data at onboarding (M-1.5).
        anomalie_subentro: Vec<crate::error::Anomalia> => AnomalieSubentro, "anomalieSubentro";
    }
);

/// Family/cohabitation header data (`tipoFamigliaConvivenza`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiFamiglia {
    pub tipo_scheda: TipoScheda,
    pub comune: CodiceIstatComune,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_famiglia_convivenza_comune: Option<IdComunale>,
    #[serde(default)]
    pub famiglia_aire: bool,
    pub data_origine_famiglia_convivenza: NaiveDate,
    /// Code of "Motivo costituzione della famiglia".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motivo_costituzione: Option<CodiceTabella>,
    /// Cohabitations only: name and kind ("Specie della convivenza").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominazione_convivenza: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specie_convivenza: Option<CodiceTabella>,
}

/// The head of the family or the person responsible for the cohabitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intestatario {
    pub id_anpr: IdAnprSoggetto,
    pub data_decorrenza: NaiveDate,
}

/// Whether the family or cohabitation is current or archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoFamiglia {
    Attiva,
    Archiviata,
}

sezioni!(
    /// The family or cohabitation record. Members are not a section here: each subject
    /// carries its own [`Legame`], so membership has one source of truth and its history
    /// is the subject's.
    SchedaFamiglia, SezioneFamiglia {
        dati: DatiFamiglia => Dati, "dati";
        intestatario: Intestatario => Intestatario, "intestatario";
        residenza: Residenza => Residenza, "residenza";
        stato: StatoFamiglia => Stato, "stato";
    }
);

/// Current members of a family as read at some date: subject id → relationship code.
pub type Componenti = BTreeMap<IdAnprSoggetto, CodiceTabella>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SchedaSoggetto {
        let comune: CodiceIstatComune = "058091".parse().unwrap();
        SchedaSoggetto {
            competenza: Some(Competenza {
                comune: comune.clone(),
                posizione: PosizioneAnagrafica::Residente,
                id_scheda_soggetto_comune: Some("A-1".parse().unwrap()),
            }),
            generalita: Some(Generalita {
                cognome: Some(Nome::parse("D'Agostino").unwrap()),
                nome: Some(Nome::parse("Nicolò").unwrap()),
                sesso: Sesso::Maschio,
                data_nascita: DataAnagrafica::completa(
                    NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
                ),
                luogo_nascita: Luogo::Comune {
                    codice_istat: comune,
                    codice_catastale: "H501".parse().unwrap(),
                    nome_comune: "Roma".into(),
                    sigla_provincia: Some("RM".into()),
                },
                note: None,
            }),
            cittadinanze: Some(vec![Cittadinanza {
                codice_stato: "100".into(),
                data_validita: None,
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn sections_round_trip_and_preserve_diacritics() {
        let s = sample();
        let sections = s.sections();
        assert_eq!(
            sections.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![
                SezioneSoggetto::Competenza,
                SezioneSoggetto::Generalita,
                SezioneSoggetto::Cittadinanze
            ]
        );
        let back =
            SchedaSoggetto::from_sections(sections.iter().map(|(k, v)| (k.key(), v))).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.generalita.unwrap().nome.unwrap().as_str(), "Nicolò");
        // From the stored text, straight into the types: the same record.
        let testi: Vec<(&str, String)> = sections
            .iter()
            .map(|(k, v)| (k.key(), v.to_string()))
            .collect();
        let dal_testo =
            SchedaSoggetto::from_sections_testo(testi.iter().map(|(k, t)| (*k, t.as_str())))
                .unwrap();
        assert_eq!(dal_testo, s);
    }

    #[test]
    fn sections_use_the_xsd_field_names() {
        let s = sample();
        let g = s.section_json(SezioneSoggetto::Generalita).unwrap();
        assert_eq!(g["dataNascita"]["precisione"], "completa");
        assert_eq!(g["luogoNascita"]["tipo"], "comune");
        assert_eq!(g["luogoNascita"]["codiceIstat"], "058091");
        assert_eq!(g["luogoNascita"]["codiceCatastale"], "H501");
        let c = s.section_json(SezioneSoggetto::Competenza).unwrap();
        assert_eq!(c["idSchedaSoggettoComune"], "A-1");
    }

    #[test]
    fn unknown_or_malformed_sections_are_refused() {
        let v = serde_json::json!({"x": 1});
        let err = SchedaSoggetto::from_sections([("nonEsiste", &v)]).unwrap_err();
        assert_eq!(err.section, "nonEsiste");
        let err = SchedaSoggetto::from_sections([("generalita", &v)]).unwrap_err();
        assert_eq!(err.section, "generalita");
        let err = SchedaSoggetto::from_sections_testo([("nonEsiste", "{}")]).unwrap_err();
        assert_eq!(err.section, "nonEsiste");
        let err = SchedaSoggetto::from_sections_testo([("generalita", r#"{"x":1}"#)]).unwrap_err();
        assert_eq!(err.section, "generalita");
        let err = SchedaSoggetto::from_sections_testo([("competenza", "{troncato")]).unwrap_err();
        assert_eq!(err.section, "competenza");
    }

    #[test]
    fn names_are_validated() {
        assert!(Nome::parse("  ").is_err());
        assert!(Nome::parse("123").is_err());
        assert!(Nome::parse("a\u{7}b").is_err());
        assert_eq!(
            Nome::parse(" Maria Grazia ").unwrap().as_str(),
            "Maria Grazia"
        );
        assert_eq!(Nome::parse("Müller").unwrap().key(), "MULLER");
    }

    #[test]
    fn section_keys_are_unique_and_round_trip() {
        for k in SezioneSoggetto::ALL {
            assert_eq!(SezioneSoggetto::from_key(k.key()), Some(*k));
        }
        for k in SezioneFamiglia::ALL {
            assert_eq!(SezioneFamiglia::from_key(k.key()), Some(*k));
        }
    }
}
