//! Result files of extractions and lists: a table (header + rows of text cells) written
//! as CSV (RFC 4180, UTF-8, comma) or XLSX (one worksheet, header in bold).
//!
//! Record sections are flattened into columns named by their JSON path within the
//! record (`generalita.luogoNascita.codiceIstat`, `cittadinanze.0.codiceStato`), so a
//! partial record has exactly the columns of the groups asked for, and a full one every
//! datum the registry holds.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Output format of a result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Formato {
    #[default]
    Csv,
    Xlsx,
}

impl Formato {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Formato::Csv),
            "xlsx" => Some(Formato::Xlsx),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Formato::Csv => "csv",
            Formato::Xlsx => "xlsx",
        }
    }

    /// Media type of the file.
    pub fn media_type(self) -> &'static str {
        match self {
            Formato::Csv => "text/csv; charset=utf-8",
            Formato::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// XLSX worksheets hold at most this many rows (header included).
pub const RIGHE_MASSIME_XLSX: usize = 1_048_576;

/// A table being built: fixed leading columns, then columns discovered from the
/// flattened sections in order of first appearance.
#[derive(Debug, Default)]
pub struct Tabella {
    colonne: Vec<String>,
    posizione: HashMap<String, usize>,
    righe: Vec<Vec<(usize, String)>>,
}

impl Tabella {
    pub fn new(fisse: &[&str]) -> Self {
        let mut t = Tabella::default();
        for c in fisse {
            t.colonna(c);
        }
        t
    }

    fn colonna(&mut self, nome: &str) -> usize {
        if let Some(i) = self.posizione.get(nome) {
            return *i;
        }
        let i = self.colonne.len();
        self.colonne.push(nome.to_owned());
        self.posizione.insert(nome.to_owned(), i);
        i
    }

    /// Adds a row: `celle` are (column, value) pairs, columns created as needed.
    pub fn riga(&mut self, celle: Vec<(String, String)>) {
        let r = celle
            .into_iter()
            .map(|(c, v)| (self.colonna(&c), v))
            .collect();
        self.righe.push(r);
    }

    pub fn righe(&self) -> usize {
        self.righe.len()
    }

    pub fn colonne(&self) -> &[String] {
        &self.colonne
    }

    fn densa(&self, r: &[(usize, String)]) -> Vec<String> {
        let mut out = vec![String::new(); self.colonne.len()];
        for (i, v) in r {
            out[*i].clone_from(v);
        }
        out
    }

    /// Writes the table in `formato`.
    pub fn scrivi(&self, formato: Formato, foglio: &str) -> Result<Vec<u8>, String> {
        match formato {
            Formato::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
                w.write_record(&self.colonne).map_err(|e| e.to_string())?;
                for r in &self.righe {
                    w.write_record(self.densa(r)).map_err(|e| e.to_string())?;
                }
                w.into_inner().map_err(|e| e.to_string())
            }
            Formato::Xlsx => {
                if self.righe.len() + 1 > RIGHE_MASSIME_XLSX {
                    return Err(format!("{} rows do not fit a worksheet", self.righe.len()));
                }
                let mut wb = rust_xlsxwriter::Workbook::new();
                let grassetto = rust_xlsxwriter::Format::new().set_bold();
                let ws = wb.add_worksheet();
                ws.set_name(foglio).map_err(|e| e.to_string())?;
                for (c, nome) in self.colonne.iter().enumerate() {
                    let c = u16::try_from(c).map_err(|_| "too many columns".to_string())?;
                    ws.write_string_with_format(0, c, nome, &grassetto)
                        .map_err(|e| e.to_string())?;
                }
                for (i, r) in self.righe.iter().enumerate() {
                    let riga = u32::try_from(i + 1).map_err(|_| "too many rows".to_string())?;
                    for (c, v) in r {
                        if v.is_empty() {
                            continue;
                        }
                        let c = u16::try_from(*c).map_err(|_| "too many columns".to_string())?;
                        ws.write_string(riga, c, v).map_err(|e| e.to_string())?;
                    }
                }
                wb.save_to_buffer().map_err(|e| e.to_string())
            }
        }
    }
}

/// Flattens a JSON value into (path, text) cells under `prefisso`.
pub fn appiattisci(prefisso: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => {
            out.push((prefisso.to_owned(), if *b { "S" } else { "N" }.into()))
        }
        serde_json::Value::Number(n) => out.push((prefisso.to_owned(), n.to_string())),
        serde_json::Value::String(s) => out.push((prefisso.to_owned(), s.clone())),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                appiattisci(&format!("{prefisso}.{i}"), x, out);
            }
        }
        serde_json::Value::Object(m) => {
            // Sorted keys: the same record always gives the same columns in the same order.
            let ordinato: BTreeMap<&String, &serde_json::Value> = m.iter().collect();
            for (k, x) in ordinato {
                appiattisci(&format!("{prefisso}.{k}"), x, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_names_columns_by_path() {
        let mut out = Vec::new();
        appiattisci(
            "generalita",
            &serde_json::json!({"cognome": "D'Àngelo", "dataNascita": {"data": "1980-01-01"}, "x": [1, {"y": true}], "n": null}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("generalita.cognome".into(), "D'Àngelo".into()),
                ("generalita.dataNascita.data".into(), "1980-01-01".into()),
                ("generalita.x.0".into(), "1".into()),
                ("generalita.x.1.y".into(), "S".into()),
            ]
        );
    }

    #[test]
    fn csv_has_every_column_in_every_row() {
        let mut t = Tabella::new(&["idANPR"]);
        t.riga(vec![
            ("idANPR".into(), "1".into()),
            ("a".into(), "x,y".into()),
        ]);
        t.riga(vec![
            ("idANPR".into(), "2".into()),
            ("b".into(), "è".into()),
        ]);
        let csv = String::from_utf8(t.scrivi(Formato::Csv, "E").unwrap()).unwrap();
        assert_eq!(csv, "idANPR,a,b\n1,\"x,y\",\n2,,è\n");
        let xlsx = t.scrivi(Formato::Xlsx, "Estrazione").unwrap();
        assert_eq!(&xlsx[..2], b"PK", "an XLSX is a zip archive");
    }
}
