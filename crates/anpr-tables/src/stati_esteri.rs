//! Foreign states and territories (Tabella 2, `tab_Stati_Esteri`).
//!
//! A state is identified on the wire by its three-digit ISTAT code (`codiceStato` in the
//! XSD) and inside the codice fiscale by its cadastral `Z` code. Territories (e.g. Aruba)
//! and a few special entries have no `Z` code, so [`StatoEstero::catastale`] is optional.
//!
//! Special codes: `100` Italia, `997` citizenship being defined, `998` *non attribuibile*
//! (not attributable: ANPR requires `noteStato` when a citizenship is 998, EC011, and
//! rejects it as a state of residence, ES099), `999` stateless, `888` ISTAT's "recognised
//! non-citizens". 998 is therefore not a code for ceased states.
//!
//! Ceased states (USSR, Yugoslavia, Czechoslovakia...) would appear as rows with a closed
//! validity period; every lookup honours validity, and [`StatiEsteri::by_istat`] keeps all
//! periods of a code. The table version shipped now (2019) happens to contain none: every
//! row is valid from 1900-01-01 with an open end.

use std::collections::HashMap;

use anpr_domain::ids::CodiceCatastale;
use anpr_domain::text::fold_key;
use chrono::NaiveDate;
use serde::Serialize;

use crate::csv::{for_each_row, Row};
use crate::error::TablesError;
use crate::index::{catastale_key, digits_key, spans_by_key, within, IntMap, Span};

/// One validity period of a foreign state or territory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatoEstero {
    /// Row identifier in the ANPR table (ID).
    pub id: u32,
    /// ISTAT code, three digits (CODISTAT); the `codiceStato` of the XSD.
    #[serde(rename = "codiceIstat")]
    pub istat: String,
    /// Cadastral code (CODAT), `Z` and three digits; `None` for territories without one.
    #[serde(rename = "codiceCatastale")]
    pub catastale: Option<CodiceCatastale>,
    /// ANPR name (DENOMINAZIONE), upper case.
    #[serde(rename = "denominazione")]
    pub nome: String,
    /// ISTAT's Italian name (DENOMINAZIONEISTAT).
    pub denominazione_istat: Option<String>,
    /// ISTAT's English name (DENOMINAZIONEISTAT_EN).
    pub denominazione_istat_en: Option<String>,
    /// ISO 3166-1 alpha-3 code; `ZZZ` for Jerusalem as in the source.
    #[serde(rename = "codiceIso3166Alpha3")]
    pub iso3: Option<String>,
    /// Code of the Ministry of Foreign Affairs (CODMAE).
    pub codice_mae: Option<String>,
    /// Code of the Ministry of the Interior (CODMIN).
    pub codice_min: Option<String>,
    /// First valid day, inclusive; `None` = no known start.
    #[serde(rename = "dataInizioValidita")]
    pub valid_from: Option<NaiveDate>,
    /// Last valid day, inclusive; `None` = still valid.
    #[serde(rename = "dataFineValidita")]
    pub valid_to: Option<NaiveDate>,
    /// Usable as a citizenship (CITTADINANZA = S).
    pub cittadinanza: bool,
    /// Usable as a place of birth (NASCITA = S).
    pub nascita: bool,
    /// Usable as a state of residence abroad (RESIDENZA = S).
    pub residenza: bool,
    /// Source of the row (FONTE): MAECI, ISTAT or ANPR.
    pub fonte: String,
    /// Kind (TIPO): STATO, TERRITORIO, ALTRO, or `None` for the special codes.
    pub tipo: Option<String>,
    /// ISO alpha-3 code of the sovereign state of a territory (CODISOSOVRANO).
    pub codice_iso_sovrano: Option<String>,
    /// Date of the row's last update (DATAULTIMOAGG).
    pub data_ultimo_aggiornamento: Option<NaiveDate>,
}

impl StatoEstero {
    /// True when `d` falls in this period (both ends inclusive).
    pub fn is_valid_at(&self, d: NaiveDate) -> bool {
        within(d, self.valid_from, self.valid_to)
    }
}

/// Foreign states with their indexes.
#[derive(Debug, Default)]
pub(crate) struct StatiEsteri {
    /// All rows, sorted by ISTAT code then start date.
    rows: Vec<StatoEstero>,
    by_istat: IntMap<Span>,
    by_catastale: IntMap<Vec<u32>>,
    by_name: HashMap<String, Vec<u32>>,
}

impl StatiEsteri {
    pub(crate) fn parse(file: &str, text: &str) -> Result<Self, TablesError> {
        let mut rows = Vec::new();
        for_each_row(
            file,
            text,
            &["id", "codice_istat", "codice_catastale"],
            |row| {
                rows.push(parse_stato(row)?);
                Ok(())
            },
        )?;
        rows.sort_by(|a, b| {
            (a.istat.as_str(), a.valid_from).cmp(&(b.istat.as_str(), b.valid_from))
        });
        for pair in rows.windows(2) {
            if let [earlier, later] = pair {
                let overlaps = earlier
                    .valid_to
                    .is_none_or(|to| later.valid_from.is_none_or(|from| from <= to));
                if earlier.istat == later.istat && overlaps {
                    return Err(TablesError::new(
                        file,
                        0,
                        format!("overlapping periods for state {}", later.istat),
                    ));
                }
            }
        }
        let by_istat = spans_by_key(
            rows.iter()
                .map(|s| digits_key(&s.istat, 3).unwrap_or(u32::MAX)),
        );
        let mut by_catastale: IntMap<Vec<u32>> = IntMap::default();
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (position, stato) in rows.iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            if let Some(key) = stato
                .catastale
                .as_ref()
                .and_then(|c| catastale_key(c.as_str()))
            {
                by_catastale.entry(key).or_default().push(position);
            }
            let names = [
                Some(&stato.nome),
                stato.denominazione_istat.as_ref(),
                stato.denominazione_istat_en.as_ref(),
            ];
            let mut keys: Vec<String> = names.into_iter().flatten().map(|n| fold_key(n)).collect();
            keys.sort();
            keys.dedup();
            for key in keys.into_iter().filter(|k| !k.is_empty()) {
                by_name.entry(key).or_default().push(position);
            }
        }
        Ok(Self {
            rows,
            by_istat,
            by_catastale,
            by_name,
        })
    }

    pub(crate) fn all(&self) -> &[StatoEstero] {
        &self.rows
    }

    /// All periods of an ISTAT code, oldest first.
    pub(crate) fn history_by_istat(&self, code: &str) -> &[StatoEstero] {
        digits_key(code, 3)
            .and_then(|key| self.by_istat.get(&key))
            .and_then(|span| self.rows.get(span.range()))
            .unwrap_or(&[])
    }

    /// The period valid at `at`, or with `at = None` the most recent period.
    pub(crate) fn by_istat(&self, code: &str, at: Option<NaiveDate>) -> Option<&StatoEstero> {
        let history = self.history_by_istat(code);
        match at {
            Some(d) => history.iter().find(|s| s.is_valid_at(d)),
            None => history.last(),
        }
    }

    pub(crate) fn by_catastale(
        &self,
        code: &CodiceCatastale,
        at: NaiveDate,
    ) -> Option<&StatoEstero> {
        catastale_key(code.as_str())
            .and_then(|key| self.by_catastale.get(&key))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.rows.get(i as usize))
            .find(|s| s.is_valid_at(at))
    }

    pub(crate) fn by_name(&self, name: &str, at: Option<NaiveDate>) -> Vec<&StatoEstero> {
        let Some(positions) = self.by_name.get(&fold_key(name)) else {
            return Vec::new();
        };
        positions
            .iter()
            .filter_map(|&i| self.rows.get(i as usize))
            .filter(|s| at.is_none_or(|d| s.is_valid_at(d)))
            .collect()
    }
}

fn parse_stato(row: &Row<'_, '_>) -> Result<StatoEstero, TablesError> {
    let id = row
        .get("id")?
        .parse::<u32>()
        .map_err(|_| row.error("bad id"))?;
    let istat = row.get("codice_istat")?;
    if digits_key(istat, 3).is_none() {
        return Err(row.error(format!("bad codice_istat {istat:?}")));
    }
    let catastale = match row.get("codice_catastale")? {
        "" => None,
        code => Some(
            code.parse::<CodiceCatastale>()
                .map_err(|e| row.error(e.to_string()))?,
        ),
    };
    let flag = |name: &str| -> Result<bool, TablesError> {
        match row.get(name)? {
            "S" => Ok(true),
            "N" => Ok(false),
            other => Err(row.error(format!("{name}: expected S or N, found {other:?}"))),
        }
    };
    let valid_from = row.date("valid_from")?;
    let valid_to = row.date("valid_to")?;
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        if to < from {
            return Err(row.error("valid_to precedes valid_from"));
        }
    }
    Ok(StatoEstero {
        id,
        istat: istat.to_owned(),
        catastale,
        nome: row.get("denominazione")?.to_owned(),
        denominazione_istat: row.optional("denominazione_istat")?,
        denominazione_istat_en: row.optional("denominazione_istat_en")?,
        iso3: row.optional("codice_iso3")?,
        codice_mae: row.optional("codice_mae")?,
        codice_min: row.optional("codice_min")?,
        valid_from,
        valid_to,
        cittadinanza: flag("cittadinanza")?,
        nascita: flag("nascita")?,
        residenza: flag("residenza")?,
        fonte: row.get("fonte")?.to_owned(),
        tipo: row.optional("tipo")?,
        codice_iso_sovrano: row.optional("codice_iso_sovrano")?,
        data_ultimo_aggiornamento: row.date("data_ultimo_aggiornamento")?,
    })
}

#[cfg(test)]
mod tests {
    //! The shipped table has no ceased state, so the support for them is checked here on
    //! a fixture shaped like the real file. The fixture rows are not reference data: codes
    //! and dates only illustrate a state that ceased and one that succeeded it.
    use super::StatiEsteri;
    use anpr_domain::ids::CodiceCatastale;
    use chrono::NaiveDate;

    const HEADER: &str = "id,codice_istat,codice_catastale,denominazione,denominazione_istat,\
denominazione_istat_en,codice_iso3,codice_mae,codice_min,valid_from,valid_to,cittadinanza,\
nascita,residenza,fonte,tipo,codice_iso_sovrano,data_ultimo_aggiornamento";

    fn fixture() -> StatiEsteri {
        let text = format!(
            "{HEADER}\n\
1,224,Z118,JUGOSLAVIA,Jugoslavia,Yugoslavia,YUG,,224,1918-12-01,1992-04-26,S,S,S,TEST,STATO,,\n\
2,224,Z118,SERBIA E MONTENEGRO,,,SCG,,224,1992-04-27,2006-06-02,S,S,S,TEST,STATO,,\n\
3,271,Z158,REPUBBLICA DI SERBIA,Serbia,Serbia,SRB,,271,2006-06-03,,S,S,S,TEST,STATO,,\n"
        );
        StatiEsteri::parse("fixture.csv", &text).expect("fixture parses")
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are valid")
    }

    fn check(found: Option<&super::StatoEstero>, expected: Option<&str>, what: &str) {
        assert_eq!(found.map(|s| s.nome.as_str()), expected, "{what}");
    }

    #[test]
    fn ceased_states_are_found_only_inside_their_period() {
        let stati = fixture();
        let z118: CodiceCatastale = "Z118".parse().expect("valid code");
        check(
            stati.by_istat("224", Some(date("1980-01-01"))),
            Some("JUGOSLAVIA"),
            "224 in 1980",
        );
        check(
            stati.by_istat("224", Some(date("1992-04-26"))),
            Some("JUGOSLAVIA"),
            "224 last day",
        );
        check(
            stati.by_istat("224", Some(date("1992-04-27"))),
            Some("SERBIA E MONTENEGRO"),
            "224 next day",
        );
        check(
            stati.by_istat("224", Some(date("2020-01-01"))),
            None,
            "224 today",
        );
        check(
            stati.by_istat("224", None),
            Some("SERBIA E MONTENEGRO"),
            "224 latest period",
        );
        check(
            stati.by_catastale(&z118, date("1950-06-01")),
            Some("JUGOSLAVIA"),
            "Z118 in 1950",
        );
        check(
            stati.by_catastale(&z118, date("2020-01-01")),
            None,
            "Z118 today",
        );
        check(
            stati.by_istat("271", Some(date("2020-01-01"))),
            Some("REPUBBLICA DI SERBIA"),
            "271 today",
        );
        check(
            stati.by_istat("271", Some(date("1980-01-01"))),
            None,
            "271 before it existed",
        );
        assert_eq!(
            stati.by_name("jugoslavia", Some(date("2020-01-01"))).len(),
            0,
            "by name today"
        );
        assert_eq!(
            stati.by_name("Jugoslavia", Some(date("1980-01-01"))).len(),
            1,
            "by name in 1980"
        );
        assert_eq!(stati.history_by_istat("224").len(), 2, "history of 224");
    }

    #[test]
    fn overlapping_periods_are_rejected() {
        let text = format!(
            "{HEADER}\n\
1,224,Z118,A,,,,,,1918-12-01,1992-04-26,S,S,S,TEST,STATO,,\n\
2,224,Z118,B,,,,,,1992-04-26,,S,S,S,TEST,STATO,,\n"
        );
        let error = StatiEsteri::parse("fixture.csv", &text).expect_err("overlap is rejected");
        assert!(error.message.contains("overlapping"), "{error}");
    }
}
