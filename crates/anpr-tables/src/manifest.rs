//! What the data set is: its source snapshot and content hash (`VERSION`) and the list of
//! its tables with row counts, hashes and footnotes (`manifest.csv`).
//!
//! Both files are written by `tools/derive_tables.py`. The version travels with every
//! table listing so that a client can tell which ANPR snapshot a decoding came from.

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use crate::codes::TableKind;
use crate::csv::for_each_row;
use crate::error::TablesError;

/// Identity of the embedded data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TablesVersion {
    /// Repository the tables were derived from.
    #[serde(rename = "repositoryFonte")]
    pub source_repository: String,
    /// Commit of that repository.
    #[serde(rename = "commitFonte")]
    pub source_commit: String,
    /// Date of that commit.
    #[serde(rename = "dataFonte")]
    pub source_date: NaiveDate,
    /// SHA-256 over the `sha256sum` listing of all data files (`SHA256SUMS`).
    #[serde(rename = "sha256")]
    pub content_sha256: String,
    /// Licence of the data.
    #[serde(rename = "licenza")]
    pub licence: String,
    /// Required attribution.
    #[serde(rename = "attribuzione")]
    pub attribution: String,
}

impl fmt::Display for TablesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let commit = self.source_commit.get(..12).unwrap_or(&self.source_commit);
        let hash = self
            .content_sha256
            .get(..16)
            .unwrap_or(&self.content_sha256);
        write!(
            f,
            "ANPR decoding tables {commit} ({}), content sha256 {hash}",
            self.source_date
        )
    }
}

impl TablesVersion {
    pub(crate) fn parse(file: &str, text: &str) -> Result<Self, TablesError> {
        let mut values = std::collections::HashMap::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(TablesError::new(file, number + 1, "expected key=value"));
            };
            values.insert(key.trim(), value.trim());
        }
        let get = |key: &str| -> Result<String, TablesError> {
            values
                .get(key)
                .map(|value| (*value).to_owned())
                .ok_or_else(|| TablesError::new(file, 0, format!("missing {key}")))
        };
        let date = get("source_date")?;
        let source_date = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| {
            TablesError::new(file, 0, format!("source_date: not an ISO date: {date:?}"))
        })?;
        Ok(Self {
            source_repository: get("source_repository")?,
            source_commit: get("source_commit")?,
            source_date,
            content_sha256: get("content_sha256")?,
            licence: get("licence")?,
            attribution: get("attribution")?,
        })
    }
}

/// Description of one table, as listed by `GET /api/v1/tabelle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    /// Stable snake_case name, e.g. `stato_civile`, `comuni`.
    #[serde(rename = "nome")]
    pub name: String,
    /// Other names the table is found under (`tabella_1`, the source file's base name).
    #[serde(rename = "alias")]
    pub aliases: Vec<String>,
    /// The ANPR table number (`Tabella N`), when it has one.
    #[serde(rename = "numeroTabella")]
    pub anpr_number: Option<u32>,
    /// What the table holds.
    #[serde(rename = "tipo")]
    pub kind: TableKind,
    /// One-line description, in English.
    #[serde(rename = "descrizione")]
    pub description: String,
    /// The source file in the ANPR repository.
    #[serde(rename = "fonte")]
    pub source: String,
    /// The data file in this crate.
    #[serde(rename = "file")]
    pub file: String,
    /// Number of data rows.
    #[serde(rename = "righe")]
    pub rows: usize,
    /// SHA-256 of the data file: the table's version hash.
    #[serde(rename = "sha256")]
    pub sha256: String,
    /// Footnotes of the source sheet and notes on the conversion.
    #[serde(rename = "note")]
    pub notes: Vec<String>,
}

pub(crate) fn parse_manifest(file: &str, text: &str) -> Result<Vec<TableInfo>, TablesError> {
    let mut tables = Vec::new();
    for_each_row(
        file,
        text,
        &["name", "file", "kind", "rows", "sha256"],
        |row| {
            let kind_text = row.get("kind")?;
            let kind = TableKind::from_manifest(kind_text)
                .ok_or_else(|| row.error(format!("unknown kind {kind_text:?}")))?;
            let anpr_number = match row.get("anpr_number")? {
                "" => None,
                value => Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| row.error(format!("bad anpr_number {value:?}")))?,
                ),
            };
            let rows = row
                .get("rows")?
                .parse::<usize>()
                .map_err(|_| row.error("bad row count"))?;
            tables.push(TableInfo {
                name: row.get("name")?.to_owned(),
                aliases: row
                    .get("aliases")?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                anpr_number,
                kind,
                description: row.get("description")?.to_owned(),
                source: row.get("source")?.to_owned(),
                file: row.get("file")?.to_owned(),
                rows,
                sha256: row.get("sha256")?.to_owned(),
                notes: row
                    .get("notes")?
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
            Ok(())
        },
    )?;
    Ok(tables)
}

/// Normalises a table name for lookup: case, accents and separators do not matter, so
/// `Tabella 1`, `tabella_1` and `TAB_Stato_civile` all find their table.
pub(crate) fn table_key(name: &str) -> String {
    anpr_domain::text::fold_key(name)
        .to_lowercase()
        .replace(' ', "_")
}
