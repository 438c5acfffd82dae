//! Italian municipalities (Tabella 3, `ANPR_archivio_comuni`) with their full history.
//!
//! Each row of the archive is one *period* of one municipality: the ISTAT code, cadastral
//! code, name, province and region that held between DATAISTITUZIONE and DATACESSAZIONE.
//! A municipality that changed province, name or code has several rows; a municipality
//! merged into another keeps its old rows, ceased (`C`). A cadastral code may belong to
//! different ISTAT codes over time (a change of province renumbers the ISTAT code) and,
//! in principle, an ISTAT code may be reused, so both indexes keep every period and
//! lookups pick the one valid at the requested date. Periods of one ISTAT code never
//! overlap (checked when parsing); periods of one cadastral code overlap once in the
//! source (D588, see [`crate::Tables::comune_by_catastale`]).
//!
//! Validity is inclusive at both ends: DATACESSAZIONE is the *last* valid day. The data
//! shows it: ABANO (A001) ceases on 1924-11-13 and ABANO TERME (same codes) starts on
//! 1924-11-14; across all 19,352 rows consecutive periods of one ISTAT code never share a
//! day and most follow each other with no gap, which an exclusive end date would not give.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, InvalidValue};
use anpr_domain::text::fold_key;
use chrono::NaiveDate;
use serde::Serialize;

use crate::csv::{for_each_row, Row};
use crate::error::TablesError;
use crate::index::{catastale_key, digits_key, spans_by_key, within, IntMap, Span};

/// State of a municipality record (STATO): active, ceased, or to be established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StatoComune {
    /// `A`: the current period of an existing municipality.
    #[serde(rename = "A")]
    Attivo,
    /// `C`: a closed period (renamed, renumbered, merged or suppressed).
    #[serde(rename = "C")]
    Cessato,
    /// `D`: announced but not yet established (none in the current archive).
    #[serde(rename = "D")]
    DaIstituire,
}

impl StatoComune {
    /// The one-letter code used by ANPR.
    pub fn code(self) -> &'static str {
        match self {
            Self::Attivo => "A",
            Self::Cessato => "C",
            Self::DaIstituire => "D",
        }
    }
}

impl FromStr for StatoComune {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "A" => Ok(Self::Attivo),
            "C" => Ok(Self::Cessato),
            "D" => Ok(Self::DaIstituire),
            _ => Err(InvalidValue::new("statoComune", s, "A, C or D")),
        }
    }
}

impl fmt::Display for StatoComune {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One validity period of one municipality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comune {
    /// ANPR identifier of this record (ID); unique per row, not per municipality.
    pub id: u32,
    /// ISTAT code during this period (CODISTAT).
    #[serde(rename = "codiceIstat")]
    pub istat: CodiceIstatComune,
    /// Cadastral code (CODCATASTALE). `None` for the 28 pre-1975 ceased rows where the
    /// archive says `ND` (not determined): no cadastral code was ever assigned to them.
    #[serde(rename = "codiceCatastale")]
    pub catastale: Option<CodiceCatastale>,
    /// Official Italian name (DENOMINAZIONE_IT), as written by ANPR (upper case, accents).
    #[serde(rename = "denominazione")]
    pub nome: String,
    /// Transliterated name (DENOMTRASLITTERATA), accents written as apostrophes.
    #[serde(rename = "denominazioneTraslitterata")]
    pub nome_traslitterato: String,
    /// Name in the second official language (ALTRADENOMINAZIONE), e.g. `BOZEN`.
    #[serde(rename = "denominazioneAltraLingua")]
    pub nome_altra_lingua: Option<String>,
    /// Transliteration of the second-language name (ALTRADENOMTRASLITTERATA).
    #[serde(rename = "denominazioneAltraLinguaTraslitterata")]
    pub nome_altra_lingua_traslitterato: Option<String>,
    /// ANPR province identifier (ID_PROVINCIA), including provinces that no longer exist.
    pub id_provincia: u32,
    /// ISTAT province code (IDPROVINCIAISTAT), three digits.
    pub codice_provincia_istat: String,
    /// ISTAT region code (IDREGIONE); `EX` = region no longer existing, `00` = unknown.
    pub codice_regione: String,
    /// ANPR prefecture identifier (IDPREFETTURA), set only on active rows.
    pub id_prefettura: Option<String>,
    /// Record state (STATO).
    pub stato: StatoComune,
    /// Province abbreviation (SIGLAPROVINCIA), e.g. `RM`.
    pub sigla_provincia: String,
    /// Source of the datum (FONTE): `I` = ISTAT, `AE` = Agenzia delle Entrate.
    pub fonte: Option<String>,
    /// First valid day (DATAISTITUZIONE), inclusive.
    #[serde(rename = "dataInizioValidita")]
    pub valid_from: NaiveDate,
    /// Last valid day (DATACESSAZIONE), inclusive; `None` = still valid.
    #[serde(rename = "dataFineValidita")]
    pub valid_to: Option<NaiveDate>,
    /// Date of the record's last update (DATAULTIMOAGG).
    pub data_ultimo_aggiornamento: NaiveDate,
    /// ISTAT code of a name no longer in use (COD_DENOM).
    pub codice_denominazione: Option<String>,
}

impl Comune {
    /// True when `d` falls in this period (both ends inclusive).
    pub fn is_valid_at(&self, d: NaiveDate) -> bool {
        within(d, Some(self.valid_from), self.valid_to)
    }
}

/// The municipalities with their indexes.
#[derive(Debug, Default)]
pub(crate) struct Comuni {
    /// All rows, sorted by ISTAT code then start date, so one code's history is contiguous.
    rows: Vec<Comune>,
    by_istat: IntMap<Span>,
    /// Row positions sorted by cadastral code then start date.
    catastale_order: Vec<u32>,
    by_catastale: IntMap<Span>,
    by_name: HashMap<String, Vec<u32>>,
}

impl Comuni {
    pub(crate) fn parse(file: &str, text: &str) -> Result<Self, TablesError> {
        let mut rows = Vec::new();
        for_each_row(file, text, &["id", "codice_istat", "valid_from"], |row| {
            rows.push(parse_comune(row)?);
            Ok(())
        })?;
        rows.sort_by(|a, b| {
            (a.istat.as_str(), a.valid_from).cmp(&(b.istat.as_str(), b.valid_from))
        });
        for pair in rows.windows(2) {
            if let [earlier, later] = pair {
                if earlier.istat == later.istat
                    && earlier.valid_to.is_none_or(|to| later.valid_from <= to)
                {
                    return Err(TablesError::new(
                        file,
                        0,
                        format!("overlapping periods for ISTAT code {}", later.istat),
                    ));
                }
            }
        }
        let by_istat = spans_by_key(rows.iter().map(|c| istat_key(&c.istat)));

        let mut catastale_order: Vec<u32> = (0..rows.len())
            .filter(|&i| rows[i].catastale.is_some())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        // Rows are in ISTAT order and the sort is stable, so periods of one cadastral code
        // that start on the same day stay in ISTAT order.
        catastale_order.sort_by_key(|&i| {
            let comune = &rows[i as usize];
            (
                comune
                    .catastale
                    .as_ref()
                    .and_then(|c| catastale_key(c.as_str())),
                comune.valid_from,
            )
        });
        let by_catastale = spans_by_key(catastale_order.iter().map(|&i| {
            rows[i as usize]
                .catastale
                .as_ref()
                .and_then(|c| catastale_key(c.as_str()))
                .unwrap_or(u32::MAX)
        }));

        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (position, comune) in rows.iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            for key in name_keys(comune) {
                let entry = by_name.entry(key).or_default();
                if entry.last() != Some(&position) {
                    entry.push(position);
                }
            }
        }
        Ok(Self {
            rows,
            by_istat,
            catastale_order,
            by_catastale,
            by_name,
        })
    }

    pub(crate) fn all(&self) -> &[Comune] {
        &self.rows
    }

    pub(crate) fn history_by_istat(&self, code: &CodiceIstatComune) -> &[Comune] {
        self.by_istat
            .get(&istat_key(code))
            .and_then(|span| self.rows.get(span.range()))
            .unwrap_or(&[])
    }

    pub(crate) fn by_istat(&self, code: &CodiceIstatComune, at: NaiveDate) -> Option<&Comune> {
        // Periods of one ISTAT code never overlap, so the direction of the scan does not
        // change the answer; newest first is shorter for the usual recent dates.
        self.history_by_istat(code)
            .iter()
            .rev()
            .find(|c| c.is_valid_at(at))
    }

    pub(crate) fn history_by_catastale(
        &self,
        code: &CodiceCatastale,
    ) -> impl Iterator<Item = &Comune> + '_ {
        let positions = catastale_key(code.as_str())
            .and_then(|key| self.by_catastale.get(&key))
            .and_then(|span| self.catastale_order.get(span.range()))
            .unwrap_or(&[]);
        positions.iter().filter_map(|&i| self.rows.get(i as usize))
    }

    pub(crate) fn by_catastale(&self, code: &CodiceCatastale, at: NaiveDate) -> Option<&Comune> {
        self.history_by_catastale(code).find(|c| c.is_valid_at(at))
    }

    pub(crate) fn by_name(&self, name: &str, at: Option<NaiveDate>) -> Vec<&Comune> {
        let Some(positions) = self.by_name.get(&fold_key(name)) else {
            return Vec::new();
        };
        positions
            .iter()
            .filter_map(|&i| self.rows.get(i as usize))
            .filter(|c| at.is_none_or(|d| c.is_valid_at(d)))
            .collect()
    }
}

/// The ISTAT code is six digits (guaranteed by its type), hence always a valid key.
fn istat_key(code: &CodiceIstatComune) -> u32 {
    digits_key(code.as_str(), 6).unwrap_or(u32::MAX)
}

/// The folded names a municipality is found under: the Italian name, the second-language
/// name, and, for bilingual names written `ITALIAN-OTHER` (e.g. `SGONICO-ZGONIK`), each part.
fn name_keys(comune: &Comune) -> Vec<String> {
    let mut keys = vec![fold_key(&comune.nome)];
    if let Some(other) = &comune.nome_altra_lingua {
        keys.push(fold_key(other));
        if comune.nome.contains('-') {
            keys.extend(comune.nome.split('-').map(fold_key));
        }
    }
    keys.retain(|key| !key.is_empty());
    keys.sort();
    keys.dedup();
    keys
}

fn parse_comune(row: &Row<'_, '_>) -> Result<Comune, TablesError> {
    let line_error = |message: String| row.error(message);
    let id = row
        .get("id")?
        .parse::<u32>()
        .map_err(|_| line_error(format!("bad id {:?}", row.get("id").unwrap_or_default())))?;
    let istat = row
        .get("codice_istat")?
        .parse::<CodiceIstatComune>()
        .map_err(|e| line_error(e.to_string()))?;
    let catastale = match row.get("codice_catastale")? {
        "" => None,
        code => Some(
            code.parse::<CodiceCatastale>()
                .map_err(|e| line_error(e.to_string()))?,
        ),
    };
    let stato = row
        .get("stato")?
        .parse::<StatoComune>()
        .map_err(|e| line_error(e.to_string()))?;
    let valid_from = row
        .date("valid_from")?
        .ok_or_else(|| line_error("valid_from is empty".into()))?;
    let valid_to = row.date("valid_to")?;
    if valid_to.is_some_and(|to| to < valid_from) {
        return Err(line_error("valid_to precedes valid_from".into()));
    }
    let data_ultimo_aggiornamento = row
        .date("data_ultimo_aggiornamento")?
        .ok_or_else(|| line_error("data_ultimo_aggiornamento is empty".into()))?;
    let id_provincia = row
        .get("id_provincia")?
        .parse::<u32>()
        .map_err(|_| line_error("bad id_provincia".into()))?;
    Ok(Comune {
        id,
        istat,
        catastale,
        nome: row.get("denominazione")?.to_owned(),
        nome_traslitterato: row.get("denominazione_traslitterata")?.to_owned(),
        nome_altra_lingua: row.optional("denominazione_altra_lingua")?,
        nome_altra_lingua_traslitterato: row
            .optional("denominazione_altra_lingua_traslitterata")?,
        id_provincia,
        codice_provincia_istat: row.get("codice_provincia_istat")?.to_owned(),
        codice_regione: row.get("codice_regione")?.to_owned(),
        id_prefettura: row.optional("id_prefettura")?,
        stato,
        sigla_provincia: row.get("sigla_provincia")?.to_owned(),
        fonte: row.optional("fonte")?,
        valid_from,
        valid_to,
        data_ultimo_aggiornamento,
        codice_denominazione: row.optional("codice_denominazione")?,
    })
}
