//! A small reader for the CSV files this crate embeds.
//!
//! The data files are written by `tools/derive_tables.py` with Python's `csv` module
//! (comma separator, `"` quoting only where needed, doubled quotes inside quoted fields,
//! `\n` line ends, quoted fields may span lines). This reader accepts exactly that dialect
//! (plus `\r\n`), which is all it ever sees; a general CSV crate would add a dependency for
//! no gain. Unquoted fields are borrowed from the input, so parsing the 2 MB municipality
//! archive allocates only for the few quoted fields.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;

use crate::error::TablesError;

/// One parsed line of a CSV file with access to its fields by column name.
#[derive(Debug)]
pub(crate) struct Row<'a, 'h> {
    file: &'h str,
    line: usize,
    header: &'h [String],
    columns: &'h HashMap<String, usize>,
    fields: Vec<Cow<'a, str>>,
}

impl Row<'_, '_> {
    /// The field of column `name`; a missing column is a data error, not a panic.
    pub(crate) fn get(&self, name: &str) -> Result<&str, TablesError> {
        let index = self
            .columns
            .get(name)
            .ok_or_else(|| self.error(format!("no column {name:?}")))?;
        Ok(self.fields.get(*index).map_or("", |field| field.as_ref()))
    }

    /// Like [`Row::get`], with the empty string mapped to `None`.
    pub(crate) fn optional(&self, name: &str) -> Result<Option<String>, TablesError> {
        let value = self.get(name)?;
        Ok((!value.is_empty()).then(|| value.to_owned()))
    }

    /// An ISO date field; the empty string is `None` (an open bound).
    pub(crate) fn date(&self, name: &str) -> Result<Option<NaiveDate>, TablesError> {
        let value = self.get(name)?;
        if value.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| self.error(format!("{name}: not an ISO date: {value:?}")))
    }

    /// `(column name, value)` pairs in file order.
    pub(crate) fn named_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.header
            .iter()
            .map(String::as_str)
            .zip(self.fields.iter().map(|field| field.as_ref()))
    }

    /// Builds an error that points at this row.
    pub(crate) fn error(&self, message: impl Into<String>) -> TablesError {
        TablesError::new(self.file, self.line, message)
    }
}

/// Parses `input` (named `file` in error messages), checks that its header starts with
/// `required` columns, and calls `each` for every data row. Returns the header.
pub(crate) fn for_each_row<'a>(
    file: &str,
    input: &'a str,
    required: &[&str],
    mut each: impl FnMut(&Row<'a, '_>) -> Result<(), TablesError>,
) -> Result<Vec<String>, TablesError> {
    let mut reader = Reader::new(input);
    let header: Vec<String> = match reader.next_record(file)? {
        Some((_, fields)) => fields.into_iter().map(Cow::into_owned).collect(),
        None => return Err(TablesError::new(file, 1, "empty file, expected a header")),
    };
    for column in required {
        if !header.iter().any(|name| name == column) {
            return Err(TablesError::new(
                file,
                1,
                format!("header lacks column {column:?}"),
            ));
        }
    }
    let columns: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(index, name)| (name.clone(), index))
        .collect();
    while let Some((line, fields)) = reader.next_record(file)? {
        if fields.len() != header.len() {
            return Err(TablesError::new(
                file,
                line,
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        let row = Row {
            file,
            line,
            header: &header,
            columns: &columns,
            fields,
        };
        each(&row)?;
    }
    Ok(header)
}

/// A record and the line it starts on.
type Record<'a> = (usize, Vec<Cow<'a, str>>);

/// Splits the input into records; tracks line numbers for error messages.
struct Reader<'a> {
    input: &'a str,
    position: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a str) -> Self {
        Self {
            input,
            position: 0,
            line: 1,
        }
    }

    /// Returns the next record and the line it starts on, or `None` at the end.
    fn next_record(&mut self, file: &str) -> Result<Option<Record<'a>>, TablesError> {
        if self.position >= self.input.len() {
            return Ok(None);
        }
        let start_line = self.line;
        let bytes = self.input.as_bytes();
        let mut fields = Vec::new();
        loop {
            if bytes.get(self.position) == Some(&b'"') {
                fields.push(Cow::Owned(self.quoted_field(file)?));
            } else {
                let start = self.position;
                while let Some(&byte) = bytes.get(self.position) {
                    if byte == b',' || byte == b'\n' || byte == b'\r' {
                        break;
                    }
                    self.position += 1;
                }
                fields.push(Cow::Borrowed(&self.input[start..self.position]));
            }
            match bytes.get(self.position) {
                Some(b',') => self.position += 1,
                Some(b'\r') if bytes.get(self.position + 1) == Some(&b'\n') => {
                    self.position += 2;
                    self.line += 1;
                    break;
                }
                Some(b'\n') => {
                    self.position += 1;
                    self.line += 1;
                    break;
                }
                None => break,
                Some(_) => {
                    return Err(TablesError::new(
                        file,
                        self.line,
                        "unexpected character after a quoted field",
                    ))
                }
            }
        }
        Ok(Some((start_line, fields)))
    }

    /// Reads a field that starts with `"`, undoubling `""`; may span lines.
    fn quoted_field(&mut self, file: &str) -> Result<String, TablesError> {
        let start_line = self.line;
        self.position += 1;
        let mut value = String::new();
        loop {
            let rest = &self.input[self.position..];
            let Some(quote) = rest.find('"') else {
                return Err(TablesError::new(
                    file,
                    start_line,
                    "unterminated quoted field",
                ));
            };
            let chunk = &rest[..quote];
            self.line += chunk.matches('\n').count();
            value.push_str(chunk);
            self.position += quote + 1;
            if self.input.as_bytes().get(self.position) == Some(&b'"') {
                value.push('"');
                self.position += 1;
            } else {
                return Ok(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::for_each_row;

    /// Parses `input` and compares every row (as plain strings) with `expected`.
    fn check(input: &str, expected: &[&[&str]]) {
        let mut rows: Vec<Vec<String>> = Vec::new();
        for_each_row("test.csv", input, &["a"], |row| {
            rows.push(
                row.named_fields()
                    .map(|(_, value)| value.to_owned())
                    .collect(),
            );
            Ok(())
        })
        .expect("test input parses");
        let expected: Vec<Vec<String>> = expected
            .iter()
            .map(|row| row.iter().map(|f| (*f).to_owned()).collect())
            .collect();
        assert_eq!(rows, expected, "parsing {input:?}");
    }

    #[test]
    fn reads_the_dialect_written_by_the_generator() {
        check("a,b\n1,2\n", &[&["1", "2"]]);
        check("a,b\n1,2", &[&["1", "2"]]);
        check("a,b\r\n1,2\r\n", &[&["1", "2"]]);
        check("a,b\n,\n", &[&["", ""]]);
        check(
            "a,b\n\"x, y\",\"say \"\"hi\"\"\"\n",
            &[&["x, y", "say \"hi\""]],
        );
        check(
            "a,b\n\"two\nlines\",z\n3,4\n",
            &[&["two\nlines", "z"], &["3", "4"]],
        );
        check("a,b\nCITTÀ,Ž\n", &[&["CITTÀ", "Ž"]]);
    }

    #[test]
    fn reports_malformed_input_with_its_line() {
        let cases: &[(&str, &str)] = &[
            ("a,b\n1,2,3\n", "test.csv:2: 3 fields, the header has 2"),
            (
                "a,b\n1,2\n\"open,2\n",
                "test.csv:3: unterminated quoted field",
            ),
            (
                "a,b\n\"x\"y,2\n",
                "test.csv:2: unexpected character after a quoted field",
            ),
            ("b\n1\n", "test.csv:1: header lacks column \"a\""),
            ("", "test.csv:1: empty file, expected a header"),
        ];
        for (input, expected) in cases {
            let error = for_each_row("test.csv", input, &["a"], |_| Ok(()))
                .expect_err("malformed input is rejected");
            assert_eq!(error.to_string(), *expected, "parsing {input:?}");
        }
    }
}
