//! The criteria of an extraction (4001, `tipoCriteriRicerca4001`) as received, their
//! validation with coded outcomes, and the validated form the worker runs.
//!
//! Codes the published XSD leaves open are ours and documented in `docs/ESTRAZIONI.md`:
//! `tipoScheda` 1 subject, 2 family, 3 cohabitation; `tipoAtto` 1 birth, 2 marriage, 3
//! death; `eventoAnagrafico` 1 registrations, 2 changes, 3 removals, 4 rectifications, 5
//! annulments; `tipoResidenza` 1 residents, 2 AIRE, 3 both; `statoCodiceFiscale` 1
//! validated, 2 provisional, 3 data differing at the tax agency, 4 linked, 5 omocode, 6
//! not at the tax agency, 9 not validated; `tipoCittadinanza` table 38.

use std::collections::BTreeSet;

use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_domain::operazione::CodiceServizio;
use anpr_domain::scheda::SezioneSoggetto;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The most subjects an ordinary extraction may return (seed 000: "limite di 2.000
/// soggetti"). A larger result is refused with EN115, never truncated.
pub const LIMITE_SOGGETTI: usize = 2_000;

/// `comuneRichiesta`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComuneRichiesta {
    pub codice_istat: String,
    #[serde(default)]
    pub nome_comune: Option<String>,
    #[serde(default)]
    pub sigla_provincia_istat: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiferimentoRichiesta {
    pub data_iniziale: Option<NaiveDate>,
    pub data_finale: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registrazioni {
    pub evento_anagrafico: Option<String>,
    pub codice_servizio: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentificativiComunali {
    pub tipo_scheda: Option<String>,
    pub identificativo_comune_da: Option<String>,
    pub identificativo_comune_a: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentificativiAnpr {
    #[serde(rename = "idSchedaSoggettoANPRDa")]
    pub id_scheda_soggetto_anpr_da: Option<String>,
    #[serde(rename = "idSchedaSoggettoANPRA")]
    pub id_scheda_soggetto_anpr_a: Option<String>,
    pub tipo_scheda: Option<String>,
    #[serde(rename = "identificativoANPRDa")]
    pub identificativo_anpr_da: Option<String>,
    #[serde(rename = "identificativoANPRA")]
    pub identificativo_anpr_a: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EstremiAttoParziali {
    pub tipo_atto: Option<String>,
    pub anno: Option<String>,
    pub parte: Option<String>,
    pub serie: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToponimoParziale {
    pub cod_specie: Option<String>,
    pub specie: Option<String>,
    pub cod_toponimo: Option<String>,
    pub denominazione_toponimo: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NumeroCivicoParziale {
    pub codice_civico: Option<String>,
    pub numero: Option<String>,
    #[serde(rename = "progSNC")]
    pub prog_snc: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndirizzoParziale {
    pub toponimo: Option<ToponimoParziale>,
    pub numero_civico: Option<NumeroCivicoParziale>,
}

/// `tipoUlterioriSelezioni`. Flags (`tipoSN1`) are `S`/`N` (also `1`/`0`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UlterioriSelezioni {
    pub ricerca_chiave_parziale: Option<serde_json::Value>,
    pub ricerca_cittadini_senza_nome: Option<String>,
    pub ricerca_cittadini_senza_cognome: Option<String>,
    pub ricerca_cittadini_senza_giorno_nascita: Option<String>,
    pub ricerca_cittadini_senza_giorno_mese_nascita: Option<String>,
    pub stato_codice_fiscale: Option<String>,
    pub tipo_residenza: Option<String>,
    pub sesso: Option<String>,
    pub stato_civile: Option<String>,
    pub senza_fissa_dimora: Option<String>,
    pub tipo_cittadinanza: Option<String>,
    pub codice_stato: Option<String>,
    pub codice_consolato: Option<String>,
    pub ricerca_data_iscrizione_aire: Option<String>,
    pub ricerca_data_arrivo_consolato: Option<String>,
    pub ricerca_anno_espatrio: Option<String>,
    pub stato_istruttoria: Option<String>,
    pub id_professione: Option<String>,
    pub id_condizione_non_professionale: Option<String>,
    pub titolo_di_studio: Option<String>,
    pub possesso_patente: Option<String>,
    pub possesso_veicoli: Option<String>,
    pub fascia_eta_da: Option<String>,
    pub fascia_eta_a: Option<String>,
    pub data_riferimento: Option<NaiveDate>,
    pub eta_minima_alla_data_riferimento: Option<String>,
    pub elettore_alla_data_riferimento: Option<String>,
    pub lista_leva: Option<String>,
}

/// `tipoCriteriRicerca4001`, as received.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CriteriRicerca4001 {
    pub comune_richiesta: Option<ComuneRichiesta>,
    #[serde(default)]
    pub dati_anagrafici_richiesti: Vec<String>,
    pub riferimento_richiesta: Option<RiferimentoRichiesta>,
    pub registrazioni: Option<Registrazioni>,
    pub identificativi_comunali: Option<IdentificativiComunali>,
    #[serde(rename = "identificativiANPR")]
    pub identificativi_anpr: Option<IdentificativiAnpr>,
    pub estremi_atto_parziali: Option<EstremiAttoParziali>,
    pub indirizzo_parziale: Option<IndirizzoParziale>,
    pub ulteriori_selezioni: Option<UlterioriSelezioni>,
}

/// Which records an id range is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TipoSchedaRange {
    Soggetto,
    Famiglia,
    Convivenza,
}

impl TipoSchedaRange {
    fn parse(campo: &str, v: Option<&str>, e: &mut Vec<Anomalia>, default: Self) -> Self {
        match v.map(str::trim) {
            None | Some("") => default,
            Some("1") => TipoSchedaRange::Soggetto,
            Some("2") => TipoSchedaRange::Famiglia,
            Some("3") => TipoSchedaRange::Convivenza,
            Some(other) => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Tipo scheda non valido")
                        .campo(campo)
                        .valore(other)
                        .atteso("1 (soggetto), 2 (famiglia) o 3 (convivenza)"),
                );
                default
            }
        }
    }

    /// Kind letter of the family projection (`F`, `C`).
    pub fn tipo_famiglia(self) -> Option<&'static str> {
        match self {
            TipoSchedaRange::Soggetto => None,
            TipoSchedaRange::Famiglia => Some("F"),
            TipoSchedaRange::Convivenza => Some("C"),
        }
    }
}

/// Kind of deed of `estremiAttoParziali`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TipoAtto {
    Nascita,
    Matrimonio,
    Morte,
}

/// A family-level range: kind, national ids, municipal ids.
pub type RangeFamiglie = (
    TipoSchedaRange,
    Option<(u64, u64)>,
    Option<(String, String)>,
);

/// The validated criteria the worker runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriteriEstrazione {
    pub comune: Option<CodiceIstatComune>,
    /// Sections to return (every section for a full record).
    pub sezioni: Vec<SezioneSoggetto>,
    /// Codes of `tab_Dati_richiesti` asked for, as received.
    pub dati_richiesti: Vec<u8>,
    /// Codes asked for that name data this registry does not hold (empty columns).
    pub dati_non_gestiti: Vec<u8>,
    pub periodo: Option<(NaiveDate, NaiveDate)>,
    /// Services whose operations in the period select the subjects (empty: any).
    pub servizi: Vec<String>,
    pub id_anpr: Option<(u64, u64)>,
    pub famiglie: Option<RangeFamiglie>,
    pub id_comunale: Option<(String, String)>,
    pub atto: Option<(TipoAtto, i32, Option<String>, Option<String>)>,
    /// Folded building-key prefix (`comune specie denominazione [numero]`).
    pub prefisso_indirizzo: Option<String>,
    /// Folded street name to match anywhere in the key (when no kind is given).
    pub denominazione_toponimo: Option<String>,
    pub numero_civico: Option<String>,
    pub posizioni: Vec<String>,
    pub senza_nome: bool,
    pub senza_cognome: bool,
    pub senza_giorno_nascita: bool,
    pub senza_giorno_mese_nascita: bool,
    pub stato_cf: Option<String>,
    pub sesso: Option<String>,
    pub stato_civile: Option<String>,
    pub senza_fissa_dimora: Option<bool>,
    pub tipo_cittadinanza: Option<String>,
    pub codice_stato: Option<String>,
    pub codice_consolato: Option<String>,
    pub posizione_professionale: Option<String>,
    pub condizione_non_professionale: Option<String>,
    pub titolo_studio: Option<String>,
    pub patente: Option<bool>,
    /// Birth dates admitted (from the age band and the minimum age at a date).
    pub nascita_dal: Option<NaiveDate>,
    pub nascita_al: Option<NaiveDate>,
}

impl CriteriEstrazione {
    /// True when the selection needs the records' sections (what the projection does
    /// not hold).
    pub fn serve_seconda_fase(&self) -> bool {
        !self.sezioni_filtro().is_empty()
    }

    /// Sections read to apply the criteria the projection cannot.
    pub fn sezioni_filtro(&self) -> Vec<SezioneSoggetto> {
        let mut s = BTreeSet::new();
        if self.senza_giorno_nascita || self.senza_giorno_mese_nascita {
            s.insert(SezioneSoggetto::Generalita);
        }
        if self.stato_cf.is_some() {
            s.insert(SezioneSoggetto::CodiceFiscale);
        }
        if self.stato_civile.is_some() {
            s.insert(SezioneSoggetto::StatoCivile);
        }
        if self.senza_fissa_dimora.is_some() {
            s.insert(SezioneSoggetto::Residenza);
            s.insert(SezioneSoggetto::Iscrizione);
        }
        if self.tipo_cittadinanza.is_some() || self.codice_stato.is_some() {
            s.insert(SezioneSoggetto::Cittadinanze);
        }
        if self.codice_consolato.is_some() {
            s.insert(SezioneSoggetto::Aire);
        }
        if self.posizione_professionale.is_some()
            || self.condizione_non_professionale.is_some()
            || self.titolo_studio.is_some()
        {
            s.insert(SezioneSoggetto::AltriDati);
        }
        if self.patente.is_some() {
            s.insert(SezioneSoggetto::Patente);
        }
        if let Some((tipo, ..)) = self.atto {
            s.insert(match tipo {
                TipoAtto::Nascita => SezioneSoggetto::Atti,
                TipoAtto::Matrimonio => SezioneSoggetto::StatoCivile,
                TipoAtto::Morte => SezioneSoggetto::Cancellazione,
            });
        }
        if self.numero_civico.is_some() || self.denominazione_toponimo.is_some() {
            s.insert(SezioneSoggetto::Residenza);
        }
        s.into_iter().collect()
    }
}

/// Data groups of `tab_Dati_richiesti` (Tabella 16) and the sections they return. An
/// empty list: data this registry does not hold (electoral and military lists, census,
/// guardian, digital domicile).
pub fn sezioni_del_dato(codice: u8) -> Option<&'static [SezioneSoggetto]> {
    use SezioneSoggetto::*;
    Some(match codice {
        1 => SezioneSoggetto::ALL,
        2 => &[Generalita, CodiceFiscale],
        3 | 13 | 14 | 15 => &[StatoCivile],
        4 => &[Competenza],
        5 => &[Atti],
        6 | 7 => &[Cittadinanze],
        8 | 9 => &[Genitori],
        10 => &[Residenza],
        11 => &[AltraLingua],
        16 => &[CartaIdentita],
        17 => &[PermessoSoggiorno],
        21 | 22 => &[Legame],
        23 => &[AltriDati],
        24 => &[Patente],
        26 | 29 => &[Iscrizione],
        27 | 28 | 30 => &[Cancellazione],
        12 | 18 | 19 | 20 | 25 => &[],
        _ => return None,
    })
}

/// Validates `datiAnagraficiRichiesti` (EC025 unknown, EC026 repeated, EC020 the full
/// record with others): the sections, the codes and those without data here.
pub fn dati_richiesti(
    campo: &str,
    codici: &[String],
    e: &mut Vec<Anomalia>,
) -> (Vec<SezioneSoggetto>, Vec<u8>, Vec<u8>) {
    if codici.is_empty() {
        e.push(
            Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Indicare i dati anagrafici richiesti",
            )
            .campo(campo)
            .atteso("uno o più codici della tabella Dati richiesti (1-30)"),
        );
        return (Vec::new(), Vec::new(), Vec::new());
    }
    let mut visti = BTreeSet::new();
    let mut sezioni = BTreeSet::new();
    let mut dati = Vec::new();
    let mut non_gestiti = Vec::new();
    for (i, c) in codici.iter().enumerate() {
        let codice = c
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|n| sezioni_del_dato(*n).is_some());
        let Some(codice) = codice else {
            e.push(
                Anomalia::errore("EC025", "Codice datiAnagraficiRichiesti non valido")
                    .campo(format!("{campo}[{i}]"))
                    .valore(c)
                    .atteso("un codice della tabella Dati richiesti (1-30)"),
            );
            continue;
        };
        if !visti.insert(codice) {
            e.push(
                Anomalia::errore(
                    "EC026",
                    "I codici specificati tra i datiAnagraficiRichiesti sono ripetuti una o piu' volte",
                )
                .campo(format!("{campo}[{i}]"))
                .valore(c)
                .atteso("codici distinti"),
            );
            continue;
        }
        let s = sezioni_del_dato(codice).unwrap_or(&[]);
        if s.is_empty() {
            non_gestiti.push(codice);
        }
        sezioni.extend(s.iter().copied());
        dati.push(codice);
    }
    if visti.contains(&1) && visti.len() > 1 {
        e.push(
            Anomalia::errore(
                "EC020",
                "Il codice richiesta = 1 (scheda individuale completa) non puo' essere selezionato contemporaneamente ad altri codici richiesta",
            )
            .campo(campo)
            .valore(codici.join(","))
            .atteso("1 da solo, oppure altri codici senza 1"),
        );
    }
    (sezioni.into_iter().collect(), dati, non_gestiti)
}

fn flag(campo: &str, v: Option<&str>, e: &mut Vec<Anomalia>) -> Option<bool> {
    match v.map(str::trim) {
        None | Some("") => None,
        Some("S" | "s" | "1") => Some(true),
        Some("N" | "n" | "0") => Some(false),
        Some(other) => {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Valore non ammesso")
                    .campo(campo)
                    .valore(other)
                    .atteso("S o N"),
            );
            None
        }
    }
}

fn numero(campo: &str, v: &str, e: &mut Vec<Anomalia>) -> Option<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Valore numerico non valido")
                    .campo(campo)
                    .valore(v)
                    .atteso("un numero intero non negativo"),
            );
            None
        }
    }
}

/// Both ends of a range or neither (EHR20), start not after end (EHR78).
fn intervallo<T: PartialOrd + Clone>(
    campo: &str,
    da: Option<T>,
    a: Option<T>,
    mostra: impl Fn(&T) -> String,
    e: &mut Vec<Anomalia>,
) -> Option<(T, T)> {
    match (da, a) {
        (None, None) => None,
        (Some(da), Some(a)) => {
            if da > a {
                e.push(
                    Anomalia::errore(
                        "EHR78",
                        "Nella richiesta per range di date o di identificativi il parametro di richiesta iniziale deve essere minore di quello finale",
                    )
                    .campo(campo)
                    .valore(format!("{} - {}", mostra(&da), mostra(&a)))
                    .atteso("inizio non successivo alla fine"),
                );
                None
            } else {
                Some((da, a))
            }
        }
        _ => {
            e.push(
                Anomalia::errore(
                    "EHR20",
                    "Occorre impostare sia il parametro iniziale che finale del range di ricerca",
                )
                .campo(campo)
                .atteso("inizio e fine del range"),
            );
            None
        }
    }
}

/// Codes of a decoding table.
fn codice_tabella(
    tables: &anpr_tables::Tables,
    tabella: &str,
    campo: &str,
    v: Option<&str>,
    e: &mut Vec<Anomalia>,
) -> Option<String> {
    let v = v.map(str::trim).filter(|s| !s.is_empty())?;
    if tables.code(tabella, v, None).is_none() {
        e.push(
            Anomalia::errore(
                CODICE_VALORE_NON_VALIDO,
                "Codice inesistente sulla tabella di riferimento",
            )
            .campo(campo)
            .valore(v)
            .atteso(format!("un codice della tabella {tabella}")),
        );
        return None;
    }
    Some(v.to_owned())
}

/// Services of an `eventoAnagrafico` code.
pub fn servizi_evento(codice: &str) -> Option<&'static [&'static str]> {
    Some(match codice {
        "1" => &["1001", "1002", "1010", "A001", "A002"],
        "2" => &["5001", "5005", "5008", "5013", "5014", "5021", "A006"],
        "3" => &["2001", "2003", "2009"],
        "4" => &["5014"],
        "5" => &["1013", "2011", "5012"],
        _ => return None,
    })
}

/// Validates the criteria of a request of `comune` made on `oggi`. `massiva` (a mass
/// extraction by the mayor) needs no limiting criterion.
pub fn valida(
    tables: &anpr_tables::Tables,
    c: &CriteriRicerca4001,
    comune: &CodiceIstatComune,
    oggi: NaiveDate,
    massiva: bool,
) -> Result<CriteriEstrazione, Vec<Anomalia>> {
    let mut e = Vec::new();
    let p = "criteriRicerca";
    let (sezioni, dati_richiesti, dati_non_gestiti) = dati_richiesti(
        &format!("{p}.datiAnagraficiRichiesti"),
        &c.dati_anagrafici_richiesti,
        &mut e,
    );
    let mut out = CriteriEstrazione {
        comune: Some(comune.clone()),
        sezioni,
        dati_richiesti,
        dati_non_gestiti,
        posizioni: vec!["R".into(), "A".into()],
        ..Default::default()
    };
    let mut limitante = false;

    // Period and the operations in it.
    if let Some(r) = &c.riferimento_richiesta {
        let campo = format!("{p}.riferimentoRichiesta");
        if let Some(d) = r.data_iniziale.filter(|d| *d > oggi) {
            e.push(
                Anomalia::errore(
                    "EHR15",
                    "Data iniziale della richiesta maggiore della data di sistema",
                )
                .campo(format!("{campo}.dataIniziale"))
                .valore(d.to_string())
                .atteso(format!("una data non successiva a {oggi}")),
            );
        }
        if let Some(d) = r.data_finale.filter(|d| *d > oggi) {
            e.push(
                Anomalia::errore(
                    "EHR16",
                    "Data finale della richiesta maggiore della data di sistema",
                )
                .campo(format!("{campo}.dataFinale"))
                .valore(d.to_string())
                .atteso(format!("una data non successiva a {oggi}")),
            );
        }
        out.periodo = intervallo(
            &campo,
            r.data_iniziale,
            r.data_finale,
            ToString::to_string,
            &mut e,
        );
        limitante |= out.periodo.is_some();
    }
    if let Some(r) = &c.registrazioni {
        let campo = format!("{p}.registrazioni");
        match (r.evento_anagrafico.as_deref(), r.codice_servizio.as_deref()) {
            (Some(ev), None) => match servizi_evento(ev.trim()) {
                Some(s) => out.servizi = s.iter().map(|s| (*s).to_owned()).collect(),
                None => e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Evento anagrafico non valido")
                        .campo(format!("{campo}.eventoAnagrafico"))
                        .valore(ev)
                        .atteso("1 iscrizioni, 2 mutazioni, 3 cancellazioni, 4 rettifiche, 5 annullamenti"),
                ),
            },
            (None, Some(cs)) => match cs.trim().parse::<CodiceServizio>() {
                Ok(s) => out.servizi = vec![s.to_string()],
                Err(_) => e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Codice servizio non valido")
                        .campo(format!("{campo}.codiceServizio"))
                        .valore(cs)
                        .atteso("un codice di servizio ANPR (es. 1001, 5005)"),
                ),
            },
            _ => e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Indicare uno solo tra eventoAnagrafico e codiceServizio")
                    .campo(campo.clone())
                    .atteso("eventoAnagrafico oppure codiceServizio"),
            ),
        }
        if c.riferimento_richiesta.is_none() {
            e.push(
                Anomalia::errore(
                    "EHR28",
                    "Occorre impostare obbligatoriamente, in alternativa tra loro, un range di date o una data di riferimento",
                )
                .campo(format!("{p}.riferimentoRichiesta"))
                .atteso("dataIniziale e dataFinale delle registrazioni"),
            );
        }
    }

    // Id ranges.
    if let Some(ic) = &c.identificativi_comunali {
        let campo = format!("{p}.identificativiComunali");
        let tipo = TipoSchedaRange::parse(
            &format!("{campo}.tipoScheda"),
            ic.tipo_scheda.as_deref(),
            &mut e,
            TipoSchedaRange::Soggetto,
        );
        let pulisci = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let r = intervallo(
            &campo,
            pulisci(&ic.identificativo_comune_da).map(|s| (s.chars().count(), s)),
            pulisci(&ic.identificativo_comune_a).map(|s| (s.chars().count(), s)),
            |(_, s)| s.clone(),
            &mut e,
        )
        .map(|((_, da), (_, a))| (da, a));
        if let Some(r) = r {
            limitante = true;
            match tipo {
                TipoSchedaRange::Soggetto => out.id_comunale = Some(r),
                t => out.famiglie = Some((t, None, Some(r))),
            }
        }
    }
    if let Some(ia) = &c.identificativi_anpr {
        let campo = format!("{p}.identificativiANPR");
        let num = |v: &Option<String>, nome: &str, e: &mut Vec<Anomalia>| {
            v.as_deref()
                .and_then(|s| numero(&format!("{campo}.{nome}"), s, e))
        };
        let sogg_da = num(
            &ia.id_scheda_soggetto_anpr_da,
            "idSchedaSoggettoANPRDa",
            &mut e,
        );
        let sogg_a = num(
            &ia.id_scheda_soggetto_anpr_a,
            "idSchedaSoggettoANPRA",
            &mut e,
        );
        if let Some(r) = intervallo(&campo, sogg_da, sogg_a, ToString::to_string, &mut e) {
            out.id_anpr = Some(r);
            limitante = true;
        }
        let fam_da = num(&ia.identificativo_anpr_da, "identificativoANPRDa", &mut e);
        let fam_a = num(&ia.identificativo_anpr_a, "identificativoANPRA", &mut e);
        if let Some(r) = intervallo(&campo, fam_da, fam_a, ToString::to_string, &mut e) {
            let tipo = TipoSchedaRange::parse(
                &format!("{campo}.tipoScheda"),
                ia.tipo_scheda.as_deref(),
                &mut e,
                TipoSchedaRange::Famiglia,
            );
            if tipo == TipoSchedaRange::Soggetto {
                e.push(
                    Anomalia::errore(
                        "EN124",
                        "Per ricerca tramite identificativo famiglia/convivenza il campo tipo scheda deve essere valorizzato (valori ammessi 2: famiglia; 3: convivenza)",
                    )
                    .campo(format!("{campo}.tipoScheda"))
                    .valore("1")
                    .atteso("2 (famiglia) o 3 (convivenza)"),
                );
            } else if out.famiglie.is_some() {
                e.push(
                    Anomalia::errore(
                        CODICE_VALORE_NON_VALIDO,
                        "Un solo range di schede famiglia/convivenza",
                    )
                    .campo(campo.clone())
                    .atteso("identificativi comunali o ANPR della famiglia, non entrambi"),
                );
            } else {
                out.famiglie = Some((tipo, Some(r), None));
                limitante = true;
            }
        }
    }

    // Deed.
    if let Some(a) = &c.estremi_atto_parziali {
        let campo = format!("{p}.estremiAttoParziali");
        let tipo = match a.tipo_atto.as_deref().map(str::trim) {
            Some("1") => Some(TipoAtto::Nascita),
            Some("2") => Some(TipoAtto::Matrimonio),
            Some("3") => Some(TipoAtto::Morte),
            other => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Tipo atto non valido")
                        .campo(format!("{campo}.tipoAtto"))
                        .valore(other.unwrap_or(""))
                        .atteso("1 nascita, 2 matrimonio, 3 morte"),
                );
                None
            }
        };
        let anno = match a.anno.as_deref().map(str::trim) {
            None | Some("") => {
                e.push(
                    Anomalia::errore("EHR57", "Nella selezione per estremi di atto parziali il campo anno e' obbligatorio")
                        .campo(format!("{campo}.anno"))
                        .atteso("l'anno dell'atto"),
                );
                None
            }
            Some(s) => match s.parse::<i32>() {
                Ok(n) if (1800..=9999).contains(&n) => Some(n),
                _ => {
                    e.push(
                        Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Anno dell'atto non valido")
                            .campo(format!("{campo}.anno"))
                            .valore(s)
                            .atteso("un anno di quattro cifre"),
                    );
                    None
                }
            },
        };
        if let (Some(t), Some(anno)) = (tipo, anno) {
            let txt = |v: &Option<String>| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            out.atto = Some((t, anno, txt(&a.parte), txt(&a.serie)));
            limitante = true;
        }
    }

    // Address.
    if let Some(ind) = &c.indirizzo_parziale {
        let campo = format!("{p}.indirizzoParziale");
        let top = ind.toponimo.clone().unwrap_or_default();
        let specie = match (&top.specie, &top.cod_specie) {
            (Some(s), _) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            (_, Some(cod)) if !cod.trim().is_empty() => {
                match tables.code("specie_toponimo", cod.trim(), None) {
                    Some(row) => Some(row.description.clone()),
                    None => {
                        e.push(
                            Anomalia::errore(
                                "EC073",
                                "Codice specie Toponimo inesistente sulla tabella di riferimento",
                            )
                            .campo(format!("{campo}.toponimo.codSpecie"))
                            .valore(cod)
                            .atteso("un codice della tabella 4"),
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        let denominazione = top
            .denominazione_toponimo
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let numero = ind
            .numero_civico
            .as_ref()
            .and_then(|n| n.numero.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        match (specie, denominazione) {
            (Some(specie), Some(den)) => {
                // The building key is "<comune> <specie> <denominazione> <numero> ...", folded.
                // A number narrows the prefix; the exact number is checked on the record
                // (the prefix "... 10" also matches "... 100").
                let prefisso = match &numero {
                    Some(n) => anpr_domain::text::fold_key(&format!("{comune} {specie} {den} {n}")),
                    None => anpr_domain::text::fold_key(&format!("{comune} {specie} {den}")),
                };
                out.prefisso_indirizzo = Some(prefisso);
                out.numero_civico = numero;
                limitante = true;
            }
            (None, Some(den)) => {
                out.denominazione_toponimo = Some(anpr_domain::text::fold_key(den));
                out.numero_civico = numero;
            }
            _ => e.push(
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Indicare almeno la denominazione del toponimo",
                )
                .campo(format!("{campo}.toponimo.denominazioneToponimo"))
                .atteso("denominazione (e specie) del toponimo"),
            ),
        }
    }

    // Further selections: they need a limiting criterion (seed 000).
    if let Some(u) = &c.ulteriori_selezioni {
        ulteriori(
            tables,
            u,
            &format!("{p}.ulterioriSelezioni"),
            oggi,
            &mut out,
            &mut e,
        );
    }

    if !limitante && !massiva && e.is_empty() {
        e.push(
            Anomalia::errore(
                "EHR21",
                "Occorre impostare in alternativa un range di date o un range di identificativi di ANPR o un range di identificativi comunali",
            )
            .campo(p)
            .atteso(
                "identificativiANPR o identificativiComunali (da/a), oppure riferimentoRichiesta con registrazioni, \
                 oppure estremiAttoParziali o indirizzoParziale con specie e denominazione",
            ),
        );
    }
    if e.is_empty() {
        Ok(out)
    } else {
        Err(e)
    }
}

fn ulteriori(
    tables: &anpr_tables::Tables,
    u: &UlterioriSelezioni,
    p: &str,
    oggi: NaiveDate,
    out: &mut CriteriEstrazione,
    e: &mut Vec<Anomalia>,
) {
    // What this registry does not hold: refused, not silently ignored.
    for (nome, v) in [
        (
            "ricercaChiaveParziale",
            u.ricerca_chiave_parziale.as_ref().map(|_| ""),
        ),
        (
            "ricercaDataIscrizioneAire",
            u.ricerca_data_iscrizione_aire.as_deref(),
        ),
        (
            "ricercaDataArrivoConsolato",
            u.ricerca_data_arrivo_consolato.as_deref(),
        ),
        ("ricercaAnnoEspatrio", u.ricerca_anno_espatrio.as_deref()),
        ("statoIstruttoria", u.stato_istruttoria.as_deref()),
        ("possessoVeicoli", u.possesso_veicoli.as_deref()),
        (
            "elettoreAllaDataRiferimento",
            u.elettore_alla_data_riferimento.as_deref(),
        ),
        ("listaLeva", u.lista_leva.as_deref()),
    ] {
        if v.is_some() {
            e.push(
                Anomalia::errore(
                    "EN053",
                    "Servizio non attivo con i parametri di ricerca impostati",
                )
                .campo(format!("{p}.{nome}"))
                .atteso("un criterio disponibile (vedi docs/ESTRAZIONI.md)"),
            );
        }
    }
    out.senza_nome = flag(
        &format!("{p}.ricercaCittadiniSenzaNome"),
        u.ricerca_cittadini_senza_nome.as_deref(),
        e,
    ) == Some(true);
    out.senza_cognome = flag(
        &format!("{p}.ricercaCittadiniSenzaCognome"),
        u.ricerca_cittadini_senza_cognome.as_deref(),
        e,
    ) == Some(true);
    out.senza_giorno_nascita = flag(
        &format!("{p}.ricercaCittadiniSenzaGiornoNascita"),
        u.ricerca_cittadini_senza_giorno_nascita.as_deref(),
        e,
    ) == Some(true);
    out.senza_giorno_mese_nascita = flag(
        &format!("{p}.ricercaCittadiniSenzaGiornoMeseNascita"),
        u.ricerca_cittadini_senza_giorno_mese_nascita.as_deref(),
        e,
    ) == Some(true);
    if let Some(s) = u.stato_codice_fiscale.as_deref().map(str::trim) {
        match s {
            "1" | "2" | "3" | "4" | "5" | "6" | "9" => out.stato_cf = Some(s.to_owned()),
            other => e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Stato del codice fiscale non valido")
                    .campo(format!("{p}.statoCodiceFiscale"))
                    .valore(other)
                    .atteso("1 validato, 2 provvisorio, 3 dati difformi, 4 collegato, 5 omocodice, 6 assente in AE, 9 non validato"),
            ),
        }
    }
    if let Some(s) = u.tipo_residenza.as_deref().map(str::trim) {
        match s {
            "1" => out.posizioni = vec!["R".into()],
            "2" => out.posizioni = vec!["A".into()],
            "3" => out.posizioni = vec!["R".into(), "A".into()],
            other => e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Tipo residenza non valido")
                    .campo(format!("{p}.tipoResidenza"))
                    .valore(other)
                    .atteso("1 residenti, 2 AIRE, 3 entrambi"),
            ),
        }
    }
    if let Some(s) = u.sesso.as_deref().map(str::trim) {
        match s {
            "M" | "F" => out.sesso = Some(s.to_owned()),
            other => e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Sesso non valido")
                    .campo(format!("{p}.sesso"))
                    .valore(other)
                    .atteso("M o F"),
            ),
        }
    }
    out.stato_civile = codice_tabella(
        tables,
        "stato_civile",
        &format!("{p}.statoCivile"),
        u.stato_civile.as_deref(),
        e,
    );
    out.senza_fissa_dimora = flag(
        &format!("{p}.senzaFissaDimora"),
        u.senza_fissa_dimora.as_deref(),
        e,
    );
    out.tipo_cittadinanza = codice_tabella(
        tables,
        "tipi_cittadinanza",
        &format!("{p}.tipoCittadinanza"),
        u.tipo_cittadinanza.as_deref(),
        e,
    )
    .filter(|c| c != "9");
    if let Some(s) = u
        .codice_stato
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if s == "100" || tables.stato_estero_by_istat(s, None).is_some() {
            out.codice_stato = Some(s.to_owned());
        } else {
            e.push(
                Anomalia::errore(
                    "EC036",
                    "Stato estero cittadinanza inesistente sulla tabella di riferimento",
                )
                .campo(format!("{p}.codiceStato"))
                .valore(s)
                .atteso("un codice ISTAT di stato (100 Italia)"),
            );
        }
    }
    if let Some(s) = u
        .codice_consolato
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if tables.consolato(s).is_some() {
            out.codice_consolato = Some(s.to_owned());
        } else {
            e.push(
                Anomalia::errore(
                    "EC032",
                    "Codice consolato inesistente sulla tabella di riferimento",
                )
                .campo(format!("{p}.codiceConsolato"))
                .valore(s)
                .atteso("un codice della tabella 40"),
            );
        }
    }
    out.posizione_professionale = codice_tabella(
        tables,
        "posizione_professione",
        &format!("{p}.idProfessione"),
        u.id_professione.as_deref(),
        e,
    );
    out.condizione_non_professionale = codice_tabella(
        tables,
        "condizione_non_professionale",
        &format!("{p}.idCondizioneNonProfessionale"),
        u.id_condizione_non_professionale.as_deref(),
        e,
    );
    out.titolo_studio = codice_tabella(
        tables,
        "titolo_studio",
        &format!("{p}.titoloDiStudio"),
        u.titolo_di_studio.as_deref(),
        e,
    );
    out.patente = flag(
        &format!("{p}.possessoPatente"),
        u.possesso_patente.as_deref(),
        e,
    );

    // Ages: a band (today) and a minimum age at a reference date, as birth dates.
    let eta = |nome: &str, v: Option<&str>, e: &mut Vec<Anomalia>| -> Option<u32> {
        let v = v.map(str::trim).filter(|s| !s.is_empty())?;
        match v.parse::<u32>() {
            Ok(n) if n <= 150 => Some(n),
            _ => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Età non valida")
                        .campo(format!("{p}.{nome}"))
                        .valore(v)
                        .atteso("un numero da 0 a 150"),
                );
                None
            }
        }
    };
    let da = eta("fasciaEtaDa", u.fascia_eta_da.as_deref(), e);
    let a = eta("fasciaEtaA", u.fascia_eta_a.as_deref(), e);
    if let Some((da, a)) = intervallo(&format!("{p}.fasciaEta"), da, a, ToString::to_string, e) {
        // Age `da` or more today: born on or before today minus `da` years; age `a` or
        // less: born after today minus `a + 1` years.
        out.nascita_al = Some(anni_fa(oggi, da));
        out.nascita_dal = anni_fa(oggi, a + 1).succ_opt();
    }
    let minima = eta(
        "etaMinimaAllaDataRiferimento",
        u.eta_minima_alla_data_riferimento.as_deref(),
        e,
    );
    match (minima, u.data_riferimento) {
        (Some(m), Some(d)) => {
            let limite = anni_fa(d, m);
            out.nascita_al = Some(out.nascita_al.map_or(limite, |x| x.min(limite)));
        }
        (Some(_), None) => e.push(
            Anomalia::errore(
                "EHR30",
                "Per la selezione del criterio \"eta' minima alla data di riferimento\" occorre impostare obbligatoriamente il campo \"data di riferimento\"",
            )
            .campo(format!("{p}.dataRiferimento"))
            .atteso("la data di riferimento"),
        ),
        _ => {}
    }
}

/// The same day `anni` years before `d` (29 February becomes 28 February).
pub fn anni_fa(d: NaiveDate, anni: u32) -> NaiveDate {
    use chrono::Datelike;
    let y = d.year() - i32::try_from(anni).unwrap_or(0);
    NaiveDate::from_ymd_opt(y, d.month(), d.day())
        .or_else(|| NaiveDate::from_ymd_opt(y, d.month(), 28))
        .unwrap_or(d)
}

/// Age in whole years on `oggi` of someone born on `nascita`.
pub fn eta(nascita: NaiveDate, oggi: NaiveDate) -> i32 {
    use chrono::Datelike;
    let mut anni = oggi.year() - nascita.year();
    if (oggi.month(), oggi.day()) < (nascita.month(), nascita.day()) {
        anni -= 1;
    }
    anni
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn check(json: serde_json::Value, massiva: bool) -> Result<CriteriEstrazione, Vec<String>> {
        let c: CriteriRicerca4001 = serde_json::from_value(json).unwrap();
        valida(
            anpr_tables::tables(),
            &c,
            &"058091".parse().unwrap(),
            d("2026-11-23"),
            massiva,
        )
        .map_err(|e| e.into_iter().map(|a| a.codice).collect())
    }

    #[test]
    fn broad_requests_need_a_limiting_criterion() {
        let sole = serde_json::json!({"datiAnagraficiRichiesti": ["2"], "ulterioriSelezioni": {"sesso": "F"}});
        assert_eq!(check(sole.clone(), false).unwrap_err(), vec!["EHR21"]);
        assert!(
            check(sole, true).is_ok(),
            "a mass extraction needs no range"
        );
        let r = check(
            serde_json::json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "100"}, "ulterioriSelezioni": {"sesso": "F", "statoCivile": "2"}}),
            false,
        )
        .unwrap();
        assert_eq!(r.id_anpr, Some((1, 100)));
        assert!(r.serve_seconda_fase());
        assert_eq!(r.sezioni_filtro(), vec![SezioneSoggetto::StatoCivile]);
    }

    #[test]
    fn coded_refusals() {
        for (json, codes) in [
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["1", "2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "2"}}),
                vec!["EC020"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2", "2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "2"}}),
                vec!["EC026"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["31"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "2"}}),
                vec!["EC025"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "5"}}),
                vec!["EHR20"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "5", "idSchedaSoggettoANPRA": "4"}}),
                vec!["EHR78"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "registrazioni": {"codiceServizio": "1001"}}),
                vec!["EHR28"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "estremiAttoParziali": {"tipoAtto": "1"}}),
                vec!["EHR57"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "riferimentoRichiesta": {"dataIniziale": "2027-01-01", "dataFinale": "2027-01-02"}}),
                vec!["EHR15", "EHR16"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "2"}, "ulterioriSelezioni": {"etaMinimaAllaDataRiferimento": "18"}}),
                vec!["EHR30"],
            ),
            (
                serde_json::json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "2"}, "ulterioriSelezioni": {"possessoVeicoli": "S"}}),
                vec!["EN053"],
            ),
        ] {
            assert_eq!(check(json.clone(), false).unwrap_err(), codes, "{json}");
        }
    }

    #[test]
    fn ages_become_birth_dates() {
        let r = check(
            serde_json::json!({"datiAnagraficiRichiesti": ["2"], "identificativiANPR": {"idSchedaSoggettoANPRDa": "1", "idSchedaSoggettoANPRA": "9"}, "ulterioriSelezioni": {"fasciaEtaDa": "18", "fasciaEtaA": "20"}}),
            false,
        )
        .unwrap();
        // 18 to 20 on 2026-11-23: born 2005-11-24 .. 2008-11-23.
        assert_eq!(r.nascita_dal, Some(d("2005-11-24")));
        assert_eq!(r.nascita_al, Some(d("2008-11-23")));
        assert_eq!(eta(d("2008-11-23"), d("2026-11-23")), 18);
        assert_eq!(eta(d("2005-11-24"), d("2026-11-23")), 20);
        assert_eq!(eta(d("2005-11-23"), d("2026-11-23")), 21);
    }

    #[test]
    fn address_prefix_is_the_folded_building_key() {
        let r = check(
            serde_json::json!({"datiAnagraficiRichiesti": ["10"], "indirizzoParziale": {"toponimo": {"specie": "via", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}}}),
            false,
        )
        .unwrap();
        assert_eq!(
            r.prefisso_indirizzo.as_deref(),
            Some("058091 VIA NAZIONALE 10")
        );
        assert_eq!(r.numero_civico.as_deref(), Some("10"));
    }
}
