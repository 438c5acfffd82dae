//! Generic code tables: the many small decoding tables that map a code to a description
//! (civil status, relationship, reasons for registration, ...), plus the lists of services
//! and functions, which have the same shape but no code of their own.
//!
//! Every such file has the columns `code,description,order,valid_from,valid_to` followed
//! by table-specific attribute columns (e.g. `note`, `id_prospetto`). A code may appear in
//! several rows only with disjoint validity periods; lookups pick the period valid at the
//! requested date.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use crate::csv::for_each_row;
use crate::error::TablesError;
use crate::index::within;

/// What a table holds, which decides how it is parsed and which accessor serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TableKind {
    /// Municipalities with history (Tabella 3).
    Comuni,
    /// Foreign states (Tabella 2).
    StatiEsteri,
    /// Consulates (Tabella 40).
    Consolati,
    /// State of residence to competent consulate (Tabella 41).
    StatiConsolati,
    /// ANPR outcome codes.
    Errori,
    /// A code table: codes defined by ANPR.
    Codici,
    /// A list without codes of its own (services, web-app functions): code = row number.
    Elenco,
}

impl TableKind {
    pub(crate) fn from_manifest(value: &str) -> Option<Self> {
        Some(match value {
            "comuni" => Self::Comuni,
            "stati_esteri" => Self::StatiEsteri,
            "consolati" => Self::Consolati,
            "stati_consolati" => Self::StatiConsolati,
            "errori" => Self::Errori,
            "codici" => Self::Codici,
            "elenco" => Self::Elenco,
            _ => return None,
        })
    }
}

/// One row (one validity period of one code) of a code table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeRow {
    /// The code as ANPR writes it (`1`, `C01`, `IT`; `<report>.<row>` for report rows).
    #[serde(rename = "codice")]
    pub code: String,
    /// Its description, in Italian.
    #[serde(rename = "descrizione")]
    pub description: String,
    /// Explicit display order (ORDINAMENTO) when the table gives one.
    #[serde(rename = "ordinamento")]
    pub order: Option<u32>,
    /// First valid day, inclusive; `None` = no start bound.
    #[serde(rename = "dataInizioValidita")]
    pub valid_from: Option<NaiveDate>,
    /// Last valid day, inclusive; `None` = still valid.
    #[serde(rename = "dataFineValidita")]
    pub valid_to: Option<NaiveDate>,
    /// Table-specific columns that have a value in this row (e.g. `note`).
    #[serde(rename = "attributi")]
    pub attributes: BTreeMap<String, String>,
}

impl CodeRow {
    /// True when `d` falls in this row's period (both ends inclusive).
    pub fn is_valid_at(&self, d: NaiveDate) -> bool {
        within(d, self.valid_from, self.valid_to)
    }

    /// The value of a table-specific column, if set in this row.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// A generic code table with an index by code.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeTable {
    #[serde(rename = "nome")]
    name: String,
    #[serde(rename = "descrizione")]
    description: String,
    #[serde(rename = "numeroTabella")]
    anpr_number: Option<u32>,
    #[serde(rename = "tipo")]
    kind: TableKind,
    #[serde(rename = "colonneAttributi")]
    attribute_columns: Vec<String>,
    #[serde(rename = "righe")]
    rows: Vec<CodeRow>,
    #[serde(rename = "note")]
    notes: Vec<String>,
    #[serde(skip)]
    by_code: HashMap<String, Vec<usize>>,
}

/// The fixed leading columns of every code-table file.
const FIXED_COLUMNS: [&str; 5] = ["code", "description", "order", "valid_from", "valid_to"];

/// What the manifest says about a code table, needed to build it.
pub(crate) struct CodeTableHeader<'a> {
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) anpr_number: Option<u32>,
    pub(crate) kind: TableKind,
    pub(crate) notes: Vec<String>,
}

impl CodeTable {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        header: CodeTableHeader<'_>,
    ) -> Result<Self, TablesError> {
        let mut rows = Vec::new();
        let columns = for_each_row(file, text, &FIXED_COLUMNS, |row| {
            let order = match row.get("order")? {
                "" => None,
                value => Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| row.error(format!("order is not a number: {value:?}")))?,
                ),
            };
            let code = row.get("code")?;
            if code.is_empty() {
                return Err(row.error("empty code"));
            }
            let attributes: BTreeMap<String, String> = row
                .named_fields()
                .filter(|(name, value)| !value.is_empty() && !FIXED_COLUMNS.contains(name))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            rows.push(CodeRow {
                code: code.to_owned(),
                description: row.get("description")?.to_owned(),
                order,
                valid_from: row.date("valid_from")?,
                valid_to: row.date("valid_to")?,
                attributes,
            });
            Ok(())
        })?;
        let attribute_columns: Vec<String> = columns
            .into_iter()
            .filter(|name| !FIXED_COLUMNS.contains(&name.as_str()))
            .collect();

        let mut by_code: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, row) in rows.iter().enumerate() {
            by_code.entry(row.code.clone()).or_default().push(position);
        }
        for (code, positions) in &mut by_code {
            positions.sort_by_key(|&i| rows[i].valid_from);
            for pair in positions.windows(2) {
                if let [earlier, later] = pair {
                    let (earlier, later) = (&rows[*earlier], &rows[*later]);
                    let overlaps = earlier
                        .valid_to
                        .is_none_or(|to| later.valid_from.is_none_or(|from| from <= to));
                    if overlaps {
                        return Err(TablesError::new(
                            file,
                            0,
                            format!("code {code} has overlapping validity periods"),
                        ));
                    }
                }
            }
        }
        Ok(Self {
            name: header.name.to_owned(),
            description: header.description.to_owned(),
            anpr_number: header.anpr_number,
            kind: header.kind,
            attribute_columns,
            rows,
            notes: header.notes,
            by_code,
        })
    }

    /// Stable snake_case name, e.g. `stato_civile`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One-line description of the table, in English.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The ANPR table number (`Tabella N`), when the table has one.
    pub fn anpr_number(&self) -> Option<u32> {
        self.anpr_number
    }

    /// [`TableKind::Codici`] or [`TableKind::Elenco`].
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// Names of the table-specific columns, in file order.
    pub fn attribute_columns(&self) -> &[String] {
        &self.attribute_columns
    }

    /// All rows, in the order of the source sheet.
    pub fn rows(&self) -> &[CodeRow] {
        &self.rows
    }

    /// Footnotes of the source sheet (e.g. which codes apply to civil unions).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The row of `code` valid at `at`; with `at = None`, its most recent period.
    pub fn get(&self, code: &str, at: Option<NaiveDate>) -> Option<&CodeRow> {
        let positions = self.by_code.get(code)?;
        let mut periods = positions.iter().filter_map(|&i| self.rows.get(i));
        match at {
            Some(d) => periods.find(|row| row.is_valid_at(d)),
            None => periods.next_back(),
        }
    }

    /// The rows valid at `at`, in table order.
    pub fn valid_at(&self, at: NaiveDate) -> impl Iterator<Item = &CodeRow> + '_ {
        self.rows.iter().filter(move |row| row.is_valid_at(at))
    }
}

#[cfg(test)]
mod tests {
    use super::{CodeTable, CodeTableHeader, TableKind};
    use chrono::NaiveDate;

    fn header() -> CodeTableHeader<'static> {
        CodeTableHeader {
            name: "test",
            description: "a test table",
            anpr_number: Some(9),
            kind: TableKind::Codici,
            notes: Vec::new(),
        }
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are valid")
    }

    #[test]
    fn codes_resolve_by_validity() {
        let text = "code,description,order,valid_from,valid_to,note\n\
1,Dirigente,,,,\n\
A,Dirigente o impiegato,,,2015-12-31,Solo per conversione\n\
B,Vecchio,,,2000-12-31,\n\
B,Nuovo,2,2001-01-01,,\n";
        let table = CodeTable::parse("test.csv", text, header()).expect("valid table");
        let check = |code: &str, at: Option<&str>, expected: Option<&str>| {
            let found = table
                .get(code, at.map(date))
                .map(|row| row.description.as_str());
            assert_eq!(found, expected, "code {code} at {at:?}");
        };
        check("1", Some("2024-01-01"), Some("Dirigente"));
        check("A", Some("2015-12-31"), Some("Dirigente o impiegato"));
        check("A", Some("2016-01-01"), None);
        check("A", None, Some("Dirigente o impiegato"));
        check("B", Some("1999-01-01"), Some("Vecchio"));
        check("B", Some("2001-01-01"), Some("Nuovo"));
        check("B", None, Some("Nuovo"));
        check("C", None, None);
        assert_eq!(table.attribute_columns(), ["note"]);
        assert_eq!(
            table.get("A", None).and_then(|row| row.attribute("note")),
            Some("Solo per conversione")
        );
        assert_eq!(
            table.get("1", None).and_then(|row| row.attribute("note")),
            None
        );
        assert_eq!(table.get("B", None).and_then(|row| row.order), Some(2));
        assert_eq!(table.valid_at(date("2020-01-01")).count(), 2);
    }

    #[test]
    fn malformed_tables_are_rejected() {
        let cases = [
            (
                "code,description,order,valid_from,valid_to\n1,a,,,\n1,b,,,\n",
                "overlapping",
            ),
            (
                "code,description,order,valid_from,valid_to\n1,a,x,,\n",
                "order is not a number",
            ),
            (
                "code,description,order,valid_from,valid_to\n,a,,,\n",
                "empty code",
            ),
            (
                "code,description,order,valid_from,valid_to\n1,a,,31/12/2015,\n",
                "not an ISO date",
            ),
            (
                "code,description,valid_from,valid_to\n1,a,,\n",
                "header lacks column \"order\"",
            ),
        ];
        for (text, expected) in cases {
            let error = CodeTable::parse("test.csv", text, header()).expect_err("rejected");
            assert!(error.message.contains(expected), "{text:?}: {error}");
        }
    }
}
