//! Searching records (SPEC M-5.2): subjects by exactly one family of criteria (tax code,
//! national id, municipal id, or generalities with partial keys), families and
//! cohabitations by their national id, by a member, or by the building they live in.
//!
//! Requests are shaped after `Richiesta3002` of `3000consultazione.xsd`
//! (`criteriRicerca`, `ricercaChiaveParziale`, `datiNascita`, `datiRichiesta`; XSD names
//! in camelCase). [`CriteriRicerca::da_richiesta`] turns one into typed criteria with
//! coded outcomes, so every edge applies the same rules.
//!
//! **Current index, records as at a date.** Criteria match the search indexes, which
//! hold the *current* state of every record (`anpr_store::SubjectIndex`). With a
//! reference date (`dataRiferimentoRichiesta`) the records found by their current data
//! are returned as they were at that date, and a record that did not exist yet then is
//! left out. So a subject whose surname changed after the date is found by the new
//! surname, not by the one it had then; and positions (`posizioni`) and addresses are
//! the current ones.
//!
//! **Audit.** Every record returned is read through the audited read of
//! [`crate::consultazione`], so each appears in the audit log by its national id before
//! it is served. The search itself adds one entry naming the kind of criterion (never
//! its values) and how many records matched, so a probe that finds nothing leaves a
//! trace too.

use anpr_domain::audit::{NuovaVoceAudit, TipoEvento};
use anpr_domain::caller::CallerContext;
use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdComunale, Sesso};
use anpr_domain::scheda::{Indirizzo, Legame, PosizioneAnagrafica, SezioneSoggetto};
use anpr_domain::text::fold_key;
use anpr_store::{EntityRef, SubjectIndex, SubjectQuery};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::authz::Permesso;
use crate::consultazione::{sezioni_soggetto, FamigliaLetta, SchedaLetta};
use crate::{Registry, ServiceError};

/// Records returned when the request does not say.
pub const LIMITE_PREDEFINITO: u32 = 50;
/// Most records one search may return; broader searches must be narrowed (EN115).
pub const LIMITE_MASSIMO: u32 = 200;
/// Rows the stores return at most per query (`SubjectQuery::limit` is capped there).
const RIGHE_MASSIME_INDICE: u32 = 1000;
/// Fewest letters or digits of a partial surname or name key (EHR62).
pub const CARATTERI_MINIMI_CHIAVE_PARZIALE: usize = 2;

/// Our code for a request mixing criteria that exclude each other (e.g. a tax code and a
/// surname): exactly one family of criteria per search.
pub const CODICE_CRITERI_INCOMPATIBILI: &str = "EV050";

/// Audit action (and use-case name) of the subject search.
const AZIONE_SOGGETTI: &str = "ricercaSoggetti";
/// Audit action of the family search.
const AZIONE_FAMIGLIE: &str = "ricercaFamiglie";

// ---------------------------------------------------------------------------------------
// Requests as received.

/// A subject search as received (`Richiesta3002` in JSON).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaRicercaSoggetti {
    pub criteri_ricerca: CriteriRicercaRichiesti,
    pub ricerca_chiave_parziale: Option<ChiaveParzialeRichiesta>,
    pub dati_nascita: Option<DatiNascitaRichiesti>,
    #[serde(default)]
    pub dati_richiesta: DatiRichiestaSoggetti,
}

/// `criteriRicerca` (`tipoCriteriRicerca`): one of tax code, national id, municipal id,
/// or generalities (surname, name, sex; birth date in `datiNascita`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CriteriRicercaRichiesti {
    pub codice_fiscale: Option<String>,
    #[serde(rename = "idANPR")]
    pub id_anpr: Option<String>,
    pub id_scheda_soggetto_comune: Option<String>,
    pub cognome: Option<String>,
    pub nome: Option<String>,
    pub sesso: Option<String>,
    /// Children of a parent: the subjects whose record names this one as father or
    /// mother (ours: `tipoCriteriRicerca` has no such criterion; SPEC M-5.2).
    pub genitore: Option<GenitoreRichiesto>,
}

/// The parent whose children are searched: by national id or tax code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenitoreRichiesto {
    #[serde(rename = "idANPR")]
    pub id_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
}

/// `ricercaChiaveParziale` (`tipoRicercaChiaveParziale`): which of surname and name are
/// matched as prefixes. `ricercaCognomeNomeParziale`: 0 none, 1 surname, 2 name, 3 both
/// (EN149 for other values).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChiaveParzialeRichiesta {
    pub ricerca_cognome_nome_parziale: u32,
}

/// `datiNascita` (`tipoDatiNascita3000`): the birth date criterion.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiNascitaRichiesti {
    pub data_evento: String,
}

/// `datiRichiesta`: what to return and where to look.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiRichiestaSoggetti {
    /// Read the records as at this date (valid time); now when absent.
    pub data_riferimento_richiesta: Option<String>,
    /// Only subjects of this municipality (ISTAT code); also the municipality an
    /// `idSchedaSoggettoComune` belongs to (default: the caller's).
    pub comune_residenza: Option<String>,
    /// Sections of the record to return (`SezioneSoggetto` keys); all when absent.
    pub sezioni: Option<Vec<String>>,
    /// Positions to search: `residente`, `aire`, `cancellato`; default residents and
    /// AIRE, so removed subjects are found only when asked for.
    pub posizioni: Option<Vec<String>>,
    /// Most records to return (1 to [`LIMITE_MASSIMO`], default [`LIMITE_PREDEFINITO`]);
    /// a search matching more is refused with EN115.
    pub limit: Option<u32>,
}

/// A family search as received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaRicercaFamiglie {
    pub criteri_ricerca: CriteriFamiglieRichiesti,
    #[serde(default)]
    pub dati_richiesta: DatiRichiestaFamiglie,
}

/// Family criteria: exactly one of the family's national id, a member's tax code or
/// national id, or an address (the building: street and number, internal ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CriteriFamiglieRichiesti {
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    /// Not indexed: refused with EN053 (see [`Registry::ricerca_famiglie`]).
    pub id_famiglia_convivenza_comune: Option<String>,
    pub codice_fiscale: Option<String>,
    #[serde(rename = "idANPR")]
    pub id_anpr: Option<String>,
    pub indirizzo: Option<Indirizzo>,
}

/// `datiRichiesta` of a family search.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiRichiestaFamiglie {
    pub data_riferimento_richiesta: Option<String>,
    /// Address searches: include archived families and cohabitations too.
    pub includi_archiviate: Option<bool>,
    pub limit: Option<u32>,
}

// ---------------------------------------------------------------------------------------
// Typed criteria.

/// The one family of criteria of a subject search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CriterioSoggetti {
    CodiceFiscale(CodiceFiscaleSoggetto),
    IdAnpr(IdAnprSoggetto),
    /// The municipality's own id of the record, within [`CriteriRicerca::comune`] (or
    /// the caller's municipality).
    IdComunale(IdComunale),
    Generalita(CriteriGeneralita),
    /// Children of the parent named (by national id or tax code).
    Genitore(CriterioComponente),
}

impl CriterioSoggetti {
    /// Name of the criterion in the audit log (never its value).
    fn nome(&self) -> &'static str {
        match self {
            CriterioSoggetti::CodiceFiscale(_) => "codiceFiscale",
            CriterioSoggetti::IdAnpr(_) => "idANPR",
            CriterioSoggetti::IdComunale(_) => "idSchedaSoggettoComune",
            CriterioSoggetti::Generalita(_) => "generalita",
            CriterioSoggetti::Genitore(_) => "genitore",
        }
    }
}

/// Search by generalities. Surname and name are compared as folded keys (case, accents,
/// apostrophes and hyphens ignored: [`fold_key`]); a partial one matches as a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriGeneralita {
    pub cognome: String,
    pub cognome_parziale: bool,
    pub nome: Option<String>,
    pub nome_parziale: bool,
    pub sesso: Option<Sesso>,
    pub data_nascita: Option<NaiveDate>,
}

/// A subject search, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriRicerca {
    pub criterio: CriterioSoggetti,
    /// Only subjects whose competent municipality is this one.
    pub comune: Option<CodiceIstatComune>,
    pub data_riferimento: Option<NaiveDate>,
    /// Sections to return; all when `None`.
    pub sezioni: Option<Vec<SezioneSoggetto>>,
    /// Positions searched; empty means residents and AIRE.
    pub posizioni: Vec<PosizioneAnagrafica>,
    pub limit: u32,
}

/// How a family search finds a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CriterioComponente {
    CodiceFiscale(CodiceFiscaleSoggetto),
    IdAnpr(IdAnprSoggetto),
}

/// The one criterion of a family search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CriterioFamiglie {
    IdAnpr(IdAnprFamiglia),
    /// The family or cohabitation the member belonged to at the reference date.
    Componente(CriterioComponente),
    /// Families and cohabitations at the building ([`Indirizzo::chiave_edificio`]).
    Indirizzo(Indirizzo),
}

impl CriterioFamiglie {
    fn nome(&self) -> &'static str {
        match self {
            CriterioFamiglie::IdAnpr(_) => "idFamigliaConvivenzaANPR",
            CriterioFamiglie::Componente(CriterioComponente::CodiceFiscale(_)) => {
                "componente.codiceFiscale"
            }
            CriterioFamiglie::Componente(CriterioComponente::IdAnpr(_)) => "componente.idANPR",
            CriterioFamiglie::Indirizzo(_) => "indirizzo",
        }
    }
}

/// A family search, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriRicercaFamiglie {
    pub criterio: CriterioFamiglie,
    pub data_riferimento: Option<NaiveDate>,
    /// Address searches only: archived families and cohabitations too.
    pub includi_archiviate: bool,
    pub limit: u32,
}

// ---------------------------------------------------------------------------------------
// Parsing and rules.

/// Parses an ISO date, pushing EV001 naming `campo` when malformed.
pub(crate) fn data(campo: &str, s: &str, e: &mut Vec<Anomalia>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data non valida")
                    .campo(campo)
                    .valore(s)
                    .atteso("una data esistente nel formato AAAA-MM-GG"),
            )
        })
        .ok()
}

fn codice_fiscale(campo: &str, raw: &str, e: &mut Vec<Anomalia>) -> Option<CodiceFiscaleSoggetto> {
    let raw = raw.trim().to_ascii_uppercase();
    raw.parse::<CodiceFiscaleSoggetto>()
        .map_err(|x| {
            e.push(
                Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                    .campo(campo)
                    .valore(&raw),
            )
        })
        .ok()
}

/// Parses a domain value, pushing EV001 naming `campo` when malformed.
pub(crate) fn parsed<T: std::str::FromStr<Err = anpr_domain::ids::InvalidValue>>(
    campo: &str,
    raw: &str,
    e: &mut Vec<Anomalia>,
) -> Option<T> {
    raw.trim()
        .parse::<T>()
        .map_err(|x| e.push(Anomalia::from_invalid(campo, &x)))
        .ok()
}

fn limite(campo: &str, limit: Option<u32>, e: &mut Vec<Anomalia>) -> u32 {
    let value = limit.unwrap_or(LIMITE_PREDEFINITO);
    controlla_limite(campo, value, e);
    value
}

fn controlla_limite(campo: &str, value: u32, e: &mut Vec<Anomalia>) {
    if !(1..=LIMITE_MASSIMO).contains(&value) {
        e.push(
            Anomalia::errore(
                CODICE_VALORE_NON_VALIDO,
                "Numero massimo di risultati non valido",
            )
            .campo(campo)
            .valore(value.to_string())
            .atteso(format!("un numero da 1 a {LIMITE_MASSIMO}")),
        );
    }
}

/// Refuses a request naming none, or more than one, of the criteria families.
fn un_solo_criterio(
    presenti: &[(&'static str, bool)],
    nessuno: Anomalia,
) -> Result<&'static str, Vec<Anomalia>> {
    let given: Vec<&str> = presenti
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect();
    match given.as_slice() {
        [] => Err(vec![nessuno]),
        [one] => Ok(one),
        many => Err(vec![Anomalia::errore(
            CODICE_CRITERI_INCOMPATIBILI,
            "Indicare un solo criterio di ricerca",
        )
        .campo("criteriRicerca")
        .valore(many.join(", "))
        .atteso(format!(
            "uno solo tra: {}",
            presenti
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))]),
    }
}

fn lettere(key: &str) -> usize {
    key.chars().filter(|c| c.is_alphanumeric()).count()
}

impl CriteriRicerca {
    /// Validates a search as received: exactly one family of criteria (none: EN448; more:
    /// EV050), partial keys (EN149, EHR62), well-formed values (EV001 or the tax code's
    /// own codes), known sections and positions, limit in range. All outcomes at once.
    pub fn da_richiesta(req: &RichiestaRicercaSoggetti) -> Result<Self, Vec<Anomalia>> {
        let c = &req.criteri_ricerca;
        let generalita = c.cognome.is_some()
            || c.nome.is_some()
            || c.sesso.is_some()
            || req.dati_nascita.is_some();
        let scelto = un_solo_criterio(
            &[
                ("codiceFiscale", c.codice_fiscale.is_some()),
                ("idANPR", c.id_anpr.is_some()),
                ("idSchedaSoggettoComune", c.id_scheda_soggetto_comune.is_some()),
                ("generalita (cognome, nome, sesso, datiNascita)", generalita),
                ("genitore", c.genitore.is_some()),
            ],
            Anomalia::errore(
                "EN448",
                "Per la ricerca del soggetto impostare CF cognome e nome o in alternativa i 5 dati anagrafici",
            )
            .campo("criteriRicerca")
            .atteso("codiceFiscale, idANPR, idSchedaSoggettoComune o cognome (con nome, sesso, datiNascita facoltativi)"),
        )?;
        let mut e = Vec::new();
        let parziale = req
            .ricerca_chiave_parziale
            .as_ref()
            .map_or(0, |p| p.ricerca_cognome_nome_parziale);
        if parziale > 3 {
            e.push(
                Anomalia::errore(
                    "EN149",
                    "L'indicatore di ricerca per parte di cognome e/o nome puo' assumere un valore compreso tra 0 e 3",
                )
                .campo("ricercaChiaveParziale.ricercaCognomeNomeParziale")
                .valore(parziale.to_string())
                .atteso("0 nessuna, 1 cognome, 2 nome, 3 cognome e nome"),
            );
        } else if parziale > 0 && !generalita {
            e.push(
                Anomalia::errore(
                    CODICE_CRITERI_INCOMPATIBILI,
                    "La ricerca per chiave parziale vale solo per cognome e nome",
                )
                .campo("ricercaChiaveParziale.ricercaCognomeNomeParziale")
                .valore(parziale.to_string())
                .atteso(format!("0 con il criterio {scelto}")),
            );
        }
        let criterio = if let Some(raw) = &c.codice_fiscale {
            codice_fiscale("criteriRicerca.codiceFiscale", raw, &mut e)
                .map(CriterioSoggetti::CodiceFiscale)
        } else if let Some(raw) = &c.id_anpr {
            parsed("criteriRicerca.idANPR", raw, &mut e).map(CriterioSoggetti::IdAnpr)
        } else if let Some(raw) = &c.id_scheda_soggetto_comune {
            parsed("criteriRicerca.idSchedaSoggettoComune", raw, &mut e)
                .map(CriterioSoggetti::IdComunale)
        } else if let Some(g) = &c.genitore {
            match (&g.id_anpr, &g.codice_fiscale) {
                (Some(id), None) => parsed("criteriRicerca.genitore.idANPR", id, &mut e)
                    .map(|id| CriterioSoggetti::Genitore(CriterioComponente::IdAnpr(id))),
                (None, Some(cf)) => {
                    codice_fiscale("criteriRicerca.genitore.codiceFiscale", cf, &mut e)
                        .map(|cf| CriterioSoggetti::Genitore(CriterioComponente::CodiceFiscale(cf)))
                }
                _ => {
                    e.push(
                        Anomalia::errore(
                            CODICE_CRITERI_INCOMPATIBILI,
                            "Indicare il genitore con idANPR oppure con il codice fiscale",
                        )
                        .campo("criteriRicerca.genitore")
                        .atteso("uno solo tra idANPR e codiceFiscale"),
                    );
                    None
                }
            }
        } else {
            let sesso = c
                .sesso
                .as_deref()
                .map(|s| parsed::<Sesso>("criteriRicerca.sesso", s, &mut e));
            let nascita = req
                .dati_nascita
                .as_ref()
                .map(|d| data("datiNascita.dataEvento", &d.data_evento, &mut e));
            match &c.cognome {
                None => {
                    e.push(
                        Anomalia::errore(
                            "EN448",
                            "Per la ricerca del soggetto impostare CF cognome e nome o in alternativa i 5 dati anagrafici",
                        )
                        .campo("criteriRicerca.cognome")
                        .atteso("il cognome, intero o (ricercaChiaveParziale) iniziale"),
                    );
                    None
                }
                Some(cognome) => match (sesso, nascita) {
                    (Some(None), _) | (_, Some(None)) => None,
                    (sesso, nascita) => Some(CriterioSoggetti::Generalita(CriteriGeneralita {
                        cognome: cognome.clone(),
                        cognome_parziale: parziale == 1 || parziale == 3,
                        nome: c.nome.clone(),
                        nome_parziale: parziale == 2 || parziale == 3,
                        sesso: sesso.flatten(),
                        data_nascita: nascita.flatten(),
                    })),
                },
            }
        };
        let d = &req.dati_richiesta;
        let data_riferimento = d
            .data_riferimento_richiesta
            .as_deref()
            .map(|s| data("datiRichiesta.dataRiferimentoRichiesta", s, &mut e));
        let comune = d
            .comune_residenza
            .as_deref()
            .map(|s| parsed::<CodiceIstatComune>("datiRichiesta.comuneResidenza", s, &mut e));
        let sezioni = match &d.sezioni {
            None => None,
            Some(keys) => match sezioni_soggetto("datiRichiesta.sezioni", keys) {
                Ok(s) => Some(s),
                Err(a) => {
                    e.push(a);
                    None
                }
            },
        };
        let mut posizioni = Vec::new();
        for p in d.posizioni.iter().flatten() {
            match serde_json::from_value::<PosizioneAnagrafica>(serde_json::Value::String(
                p.clone(),
            )) {
                Ok(p) if !posizioni.contains(&p) => posizioni.push(p),
                Ok(_) => {}
                Err(_) => e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Posizione anagrafica non valida")
                        .campo("datiRichiesta.posizioni")
                        .valore(p)
                        .atteso("residente, aire o cancellato"),
                ),
            }
        }
        let limit = limite("datiRichiesta.limit", d.limit, &mut e);
        let (Some(criterio), true) = (criterio, e.is_empty()) else {
            return Err(e);
        };
        let criteri = CriteriRicerca {
            criterio,
            comune: comune.flatten(),
            data_riferimento: data_riferimento.flatten(),
            sezioni,
            posizioni,
            limit,
        };
        let regole = criteri.controlla();
        if regole.is_empty() {
            Ok(criteri)
        } else {
            Err(regole)
        }
    }

    /// The rules typed criteria can still break: limit in range, surname present, and
    /// partial keys of at least [`CARATTERI_MINIMI_CHIAVE_PARZIALE`] letters (EHR62).
    /// [`Registry::ricerca_soggetti`] checks them again, whoever built the criteria.
    pub fn controlla(&self) -> Vec<Anomalia> {
        let mut e = Vec::new();
        controlla_limite("datiRichiesta.limit", self.limit, &mut e);
        if let CriterioSoggetti::Generalita(g) = &self.criterio {
            for (campo, value, parziale) in [
                (
                    "criteriRicerca.cognome",
                    Some(&g.cognome),
                    g.cognome_parziale,
                ),
                ("criteriRicerca.nome", g.nome.as_ref(), g.nome_parziale),
            ] {
                let found = value.map_or(0, |v| lettere(&fold_key(v)));
                if parziale && found < CARATTERI_MINIMI_CHIAVE_PARZIALE {
                    e.push(
                        Anomalia::errore(
                            "EHR62",
                            "Nella ricerca per chiave parziale indicare almeno 2 caratteri nel campo cognome e/o nome",
                        )
                        .campo(campo)
                        .valore(value.cloned().unwrap_or_default())
                        .atteso(format!(
                            "almeno {CARATTERI_MINIMI_CHIAVE_PARZIALE} lettere"
                        )),
                    );
                } else if value.is_some() && found == 0 {
                    e.push(
                        Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Cognome o nome senza lettere")
                            .campo(campo)
                            .valore(value.cloned().unwrap_or_default())
                            .atteso("almeno una lettera"),
                    );
                }
            }
        }
        e
    }

    /// The positions searched: those asked for, or residents and AIRE.
    pub fn posizioni_cercate(&self) -> Vec<PosizioneAnagrafica> {
        if self.posizioni.is_empty() {
            vec![PosizioneAnagrafica::Residente, PosizioneAnagrafica::Aire]
        } else {
            self.posizioni.clone()
        }
    }
}

impl CriteriRicercaFamiglie {
    /// Validates a family search as received: exactly one criterion (none: EV002; more:
    /// EV050); the municipal family id is not indexed (EN053).
    pub fn da_richiesta(req: &RichiestaRicercaFamiglie) -> Result<Self, Vec<Anomalia>> {
        let c = &req.criteri_ricerca;
        un_solo_criterio(
            &[
                ("idFamigliaConvivenzaANPR", c.id_famiglia_convivenza_anpr.is_some()),
                ("idFamigliaConvivenzaComune", c.id_famiglia_convivenza_comune.is_some()),
                ("codiceFiscale", c.codice_fiscale.is_some()),
                ("idANPR", c.id_anpr.is_some()),
                ("indirizzo", c.indirizzo.is_some()),
            ],
            Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Criterio di ricerca della famiglia mancante")
                .campo("criteriRicerca")
                .atteso("idFamigliaConvivenzaANPR, codiceFiscale o idANPR di un componente, oppure indirizzo"),
        )?;
        let mut e = Vec::new();
        let criterio = if let Some(raw) = &c.id_famiglia_convivenza_anpr {
            parsed("criteriRicerca.idFamigliaConvivenzaANPR", raw, &mut e)
                .map(CriterioFamiglie::IdAnpr)
        } else if let Some(raw) = &c.id_famiglia_convivenza_comune {
            // The family index keeps the municipal id but the store has no lookup by it
            // (and municipal ids are unique only within a municipality's software).
            e.push(
                Anomalia::errore("EN053", "Servizio non attivo con i parametri di ricerca impostati")
                    .campo("criteriRicerca.idFamigliaConvivenzaComune")
                    .valore(raw)
                    .atteso("idFamigliaConvivenzaANPR, codiceFiscale o idANPR di un componente, oppure indirizzo"),
            );
            None
        } else if let Some(raw) = &c.codice_fiscale {
            codice_fiscale("criteriRicerca.codiceFiscale", raw, &mut e)
                .map(|cf| CriterioFamiglie::Componente(CriterioComponente::CodiceFiscale(cf)))
        } else if let Some(raw) = &c.id_anpr {
            parsed("criteriRicerca.idANPR", raw, &mut e)
                .map(|id| CriterioFamiglie::Componente(CriterioComponente::IdAnpr(id)))
        } else {
            c.indirizzo.clone().map(CriterioFamiglie::Indirizzo)
        };
        let d = &req.dati_richiesta;
        let data_riferimento = d
            .data_riferimento_richiesta
            .as_deref()
            .map(|s| data("datiRichiesta.dataRiferimentoRichiesta", s, &mut e));
        let limit = limite("datiRichiesta.limit", d.limit, &mut e);
        match (criterio, e.is_empty()) {
            (Some(criterio), true) => Ok(CriteriRicercaFamiglie {
                criterio,
                data_riferimento: data_riferimento.flatten(),
                includi_archiviate: d.includi_archiviate.unwrap_or(false),
                limit,
            }),
            _ => Err(e),
        }
    }
}

/// Exact (non-partial) name keys the index rows must equal: the store matches name keys
/// only as prefixes, so exact matching is finished here.
#[derive(Debug, Default)]
struct FiltroEsatto {
    cognome: Option<String>,
    nome: Option<String>,
}

impl FiltroEsatto {
    fn attivo(&self) -> bool {
        self.cognome.is_some() || self.nome.is_some()
    }

    fn accetta(&self, row: &SubjectIndex) -> bool {
        self.cognome
            .as_ref()
            .is_none_or(|k| row.cognome_key.as_ref() == Some(k))
            && self
                .nome
                .as_ref()
                .is_none_or(|k| row.nome_key.as_ref() == Some(k))
    }
}

impl Registry {
    fn troppi_risultati(&self, limit: u32) -> ServiceError {
        self.rifiuto(vec![Anomalia::errore(
            "EN115",
            "La richiesta ha individuato un numero di occorrenze troppo elevato: restringere i parametri della ricerca",
        )
        .campo("criteriRicerca")
        .valore(format!("piu' di {limit} risultati"))
        .atteso(format!(
            "criteri che individuino al massimo {limit} schede (datiRichiesta.limit, massimo {LIMITE_MASSIMO})"
        ))])
    }

    /// Appends the audit entry of the search itself: which kind of criterion, how many
    /// records matched (or that there were too many). Never the criterion's values.
    async fn registra_ricerca(
        &self,
        ctx: &CallerContext,
        azione: &str,
        criterio: &str,
        esito: String,
    ) -> Result<(), ServiceError> {
        let store = self.store(ctx.ambiente)?;
        store
            .append_audit(self.voce_ricerca(ctx, azione, criterio, esito))
            .await
            .map(|_| ())
            .map_err(|e| self.interno(e))
    }

    /// Searches individual records (M-5.2) by exactly one family of criteria and returns
    /// them, ordered by national id, as at `criteri.data_riferimento`, with the sections
    /// asked for. More matches than `criteri.limit` is a refusal (EN115), not a
    /// truncated answer. Nothing found is an empty list.
    pub async fn ricerca_soggetti(
        &self,
        ctx: &CallerContext,
        criteri: &CriteriRicerca,
    ) -> Result<Vec<SchedaLetta>, ServiceError> {
        self.autorizza(ctx, Permesso::Ricerca, AZIONE_SOGGETTI)
            .await?;
        let regole = criteri.controlla();
        if !regole.is_empty() {
            return Err(self.rifiuto(regole));
        }
        let store = self.store(ctx.ambiente)?;
        let mut base = SubjectQuery {
            comune: criteri.comune.clone(),
            ..SubjectQuery::default()
        };
        let mut esatto = FiltroEsatto::default();
        match &criteri.criterio {
            CriterioSoggetti::CodiceFiscale(cf) => {
                base.codice_fiscale = Some(cf.as_str().to_owned());
            }
            CriterioSoggetti::IdAnpr(id) => base.id = Some(*id),
            CriterioSoggetti::IdComunale(id) => {
                let comune = criteri
                    .comune
                    .clone()
                    .or_else(|| ctx.comune.clone())
                    .ok_or_else(|| {
                        self.rifiuto(vec![Anomalia::errore(
                            CODICE_CAMPO_OBBLIGATORIO,
                            "Comune dell'identificativo comunale non indicato",
                        )
                        .campo("datiRichiesta.comuneResidenza")
                        .atteso(
                            "il codice ISTAT del comune a cui appartiene idSchedaSoggettoComune",
                        )])
                    })?;
                base.comune = Some(comune);
                base.id_comunale = Some(id.to_string());
            }
            CriterioSoggetti::Generalita(g) => {
                let cognome = fold_key(&g.cognome);
                let nome = g.nome.as_deref().map(fold_key);
                base.cognome_prefix = Some(cognome.clone());
                base.nome_prefix.clone_from(&nome);
                base.sesso = g.sesso.map(|s| s.code().to_owned());
                base.data_nascita = g.data_nascita;
                esatto = FiltroEsatto {
                    cognome: (!g.cognome_parziale).then_some(cognome),
                    nome: nome.filter(|_| !g.nome_parziale),
                };
            }
            CriterioSoggetti::Genitore(CriterioComponente::IdAnpr(id)) => {
                base.genitore = Some(*id);
            }
            CriterioSoggetti::Genitore(CriterioComponente::CodiceFiscale(cf)) => {
                // The parent in any position (a dead parent still has children); by
                // national id from here on. An unknown code finds no children.
                let genitori = store
                    .find_subjects(&SubjectQuery {
                        codice_fiscale: Some(cf.as_str().to_owned()),
                        limit: 2,
                        ..SubjectQuery::default()
                    })
                    .await
                    .map_err(|e| self.interno(e))?;
                match genitori.as_slice() {
                    [g] => base.genitore = Some(g.id),
                    [] => {
                        self.registra_ricerca(ctx, AZIONE_SOGGETTI, "genitore", "0 trovati".into())
                            .await?;
                        return Ok(Vec::new());
                    }
                    _ => {
                        self.registra_ricerca(
                            ctx,
                            AZIONE_SOGGETTI,
                            "genitore",
                            "genitore ambiguo".into(),
                        )
                        .await?;
                        return Err(self.rifiuto(vec![Anomalia::errore(
                            "EN115",
                            "Il codice fiscale del genitore individua piu' schede: indicare idANPR",
                        )
                        .campo("criteriRicerca.genitore.codiceFiscale")
                        .atteso("criteriRicerca.genitore.idANPR")]));
                    }
                }
            }
        }
        // Exact names are filtered after a prefix query, so fetch all the index gives;
        // if that is the whole cap, exact matches beyond it may exist: too many.
        let fetch = if esatto.attivo() {
            RIGHE_MASSIME_INDICE
        } else {
            criteri.limit + 1
        };
        // Every position searched in one index query (rows come ordered by id).
        let query = SubjectQuery {
            posizioni: criteri
                .posizioni_cercate()
                .iter()
                .map(|p| p.code().to_owned())
                .collect(),
            limit: fetch,
            ..base
        };
        let criterio = criteri.criterio.nome();
        // The search's own entry, then one per record read, appended in one batch (one
        // durable write) before anything is returned: if it fails, nothing is served.
        let mut voci = Vec::with_capacity(2);
        let mut schede = Vec::new();
        if esatto.attivo() {
            let rows = store
                .find_subjects(&query)
                .await
                .map_err(|e| self.interno(e))?;
            let incompleto = rows.len() >= fetch as usize;
            let mut found: Vec<SubjectIndex> =
                rows.into_iter().filter(|r| esatto.accetta(r)).collect();
            found.sort_by_key(|r| r.id);
            found.dedup_by_key(|r| r.id);
            voci.push(
                self.esito_ricerca(ctx, criterio, found.len(), incompleto, criteri.limit)
                    .await?,
            );
            for row in found {
                let entity = EntityRef::Soggetto(row.id);
                let (record, voce) = self
                    .leggi_record_da_registrare(
                        ctx,
                        entity,
                        criteri.data_riferimento,
                        AZIONE_SOGGETTI,
                    )
                    .await?;
                voci.push(voce);
                if let Some(record) = record {
                    schede.push(self.scheda_letta(
                        row.id,
                        criteri.data_riferimento,
                        &record,
                        criteri.sezioni.as_deref(),
                    )?);
                }
            }
        } else {
            // No filter after the index query (identifiers, parents): the index rows
            // and their records come from one snapshot, as stored text deserialised
            // straight into the answer's types — the consultation's hot path.
            let mut found = store
                .find_subject_records(&query, criteri.data_riferimento)
                .await
                .map_err(|e| self.interno(e))?;
            found.sort_by_key(|(r, _)| r.id);
            found.dedup_by_key(|(r, _)| r.id);
            voci.push(
                self.esito_ricerca(ctx, criterio, found.len(), false, criteri.limit)
                    .await?,
            );
            for (row, record) in &found {
                let entity = EntityRef::Soggetto(row.id);
                voci.push(self.voce_lettura(ctx, entity, record.is_some(), AZIONE_SOGGETTI));
                if let Some(record) = record {
                    schede.push(self.scheda_letta_testo(
                        row.id,
                        criteri.data_riferimento,
                        record,
                        criteri.sezioni.as_deref(),
                    )?);
                }
            }
        }
        store
            .append_audit_batch(voci)
            .await
            .map_err(|e| self.interno(e))?;
        Ok(schede)
    }

    /// A subject search that found `trovati` records (`incompleto`: the index gave its
    /// cap before filtering, so there may be more): over `limit`, audited and refused
    /// (EN115); otherwise the search's own audit entry, to append with its reads.
    async fn esito_ricerca(
        &self,
        ctx: &CallerContext,
        criterio: &str,
        trovati: usize,
        incompleto: bool,
        limit: u32,
    ) -> Result<NuovaVoceAudit, ServiceError> {
        if incompleto || trovati > limit as usize {
            return Err(self.troppi(ctx, AZIONE_SOGGETTI, criterio, limit).await);
        }
        Ok(self.voce_ricerca(ctx, AZIONE_SOGGETTI, criterio, format!("{trovati} trovati")))
    }

    /// The audit entry of a search itself: which kind of criterion, and its outcome.
    fn voce_ricerca(
        &self,
        ctx: &CallerContext,
        azione: &str,
        criterio: &str,
        esito: String,
    ) -> NuovaVoceAudit {
        self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            azione,
            Some(format!("criterio:{criterio}")),
            esito,
        )
    }

    /// A search with more results than its limit: audited, then EN115.
    async fn troppi(
        &self,
        ctx: &CallerContext,
        azione: &str,
        criterio: &str,
        limit: u32,
    ) -> ServiceError {
        if let Err(e) = self
            .registra_ricerca(ctx, azione, criterio, "troppi risultati".into())
            .await
        {
            return e;
        }
        self.troppi_risultati(limit)
    }

    /// Searches family and cohabitation records (M-5.2) and returns them with their
    /// members, ordered by national id, as at `criteri.data_riferimento`:
    ///
    /// - by national id: that record;
    /// - by a member (tax code or national id): the family or cohabitation named by the
    ///   member's `legame` in force at the date (the member's record is read, audited);
    /// - by address: the active families and cohabitations (archived too with
    ///   `includi_archiviate`) whose building key ([`Indirizzo::chiave_edificio`]: street
    ///   and number, not the internal) is the address's. They are reached through the
    ///   current subject index of the residents at that building, so a family none of
    ///   whose members (current or removed) is indexed there is not found.
    ///
    /// The municipality's own family id is not indexed for lookup, so that criterion is
    /// refused (EN053) by [`CriteriRicercaFamiglie::da_richiesta`].
    pub async fn ricerca_famiglie(
        &self,
        ctx: &CallerContext,
        criteri: &CriteriRicercaFamiglie,
    ) -> Result<Vec<FamigliaLetta>, ServiceError> {
        self.autorizza(ctx, Permesso::Ricerca, AZIONE_FAMIGLIE)
            .await?;
        let mut regole = Vec::new();
        controlla_limite("datiRichiesta.limit", criteri.limit, &mut regole);
        if !regole.is_empty() {
            return Err(self.rifiuto(regole));
        }
        let store = self.store(ctx.ambiente)?;
        let data = criteri.data_riferimento;
        let criterio = criteri.criterio.nome();
        let mut ids: Vec<IdAnprFamiglia> = Vec::new();
        match &criteri.criterio {
            CriterioFamiglie::IdAnpr(id) => ids.push(*id),
            CriterioFamiglie::Componente(componente) => {
                let soggetti = match componente {
                    CriterioComponente::IdAnpr(id) => vec![*id],
                    CriterioComponente::CodiceFiscale(cf) => store
                        .find_subjects(&SubjectQuery {
                            codice_fiscale: Some(cf.as_str().to_owned()),
                            limit: RIGHE_MASSIME_INDICE,
                            ..SubjectQuery::default()
                        })
                        .await
                        .map_err(|e| self.interno(e))?
                        .into_iter()
                        .map(|r| r.id)
                        .collect(),
                };
                for soggetto in soggetti {
                    let record = self
                        .leggi_record_registrando(
                            ctx,
                            EntityRef::Soggetto(soggetto),
                            data,
                            AZIONE_FAMIGLIE,
                        )
                        .await?;
                    if let Some(value) = record
                        .as_ref()
                        .and_then(|r| r.get(SezioneSoggetto::Legame.key()))
                    {
                        let legame: Legame =
                            serde_json::from_value(value.clone()).map_err(|e| self.interno(e))?;
                        ids.push(legame.id_famiglia_convivenza_anpr);
                    }
                }
            }
            CriterioFamiglie::Indirizzo(indirizzo) => {
                let chiave = indirizzo.chiave_edificio();
                let residenti = store
                    .find_subjects(&SubjectQuery {
                        chiave_indirizzo: Some(chiave.clone()),
                        limit: RIGHE_MASSIME_INDICE,
                        ..SubjectQuery::default()
                    })
                    .await
                    .map_err(|e| self.interno(e))?;
                if residenti.len() >= RIGHE_MASSIME_INDICE as usize {
                    return Err(self
                        .troppi(ctx, AZIONE_FAMIGLIE, criterio, criteri.limit)
                        .await);
                }
                let mut candidate: Vec<IdAnprFamiglia> =
                    residenti.iter().filter_map(|r| r.id_famiglia).collect();
                candidate.sort();
                candidate.dedup();
                for id in candidate {
                    let Some(famiglia) =
                        store.family_index(id).await.map_err(|e| self.interno(e))?
                    else {
                        continue;
                    };
                    let qui = famiglia.chiave_indirizzo.as_deref() == Some(chiave.as_str());
                    if qui && (famiglia.stato == "A" || criteri.includi_archiviate) {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort();
        ids.dedup();
        if ids.len() > criteri.limit as usize {
            return Err(self
                .troppi(ctx, AZIONE_FAMIGLIE, criterio, criteri.limit)
                .await);
        }
        // As for subjects: the search's entry and one per record read, in one batch
        // appended before anything is returned.
        let mut voci = Vec::with_capacity(ids.len() + 1);
        voci.push(self.voce_ricerca(
            ctx,
            AZIONE_FAMIGLIE,
            criterio,
            format!("{} trovate", ids.len()),
        ));
        let mut famiglie = Vec::with_capacity(ids.len());
        for id in ids {
            let (record, voce) = self
                .leggi_record_da_registrare(ctx, EntityRef::Famiglia(id), data, AZIONE_FAMIGLIE)
                .await?;
            voci.push(voce);
            if let Some(record) = record {
                famiglie.push(self.famiglia_letta(ctx, id, data, &record).await?);
            }
        }
        store
            .append_audit_batch(voci)
            .await
            .map_err(|e| self.interno(e))?;
        Ok(famiglie)
    }
}
