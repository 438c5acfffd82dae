//! ANPR decoding tables (tabelle di decodifica) shipped inside the product.
//!
//! The data files under `data/` are derived from the public ANPR documentation repository
//! (CC BY 4.0, Ministero dell'Interno / ANPR) by `tools/derive_tables.py`, embedded in the
//! binary with `include_str!`, and parsed once, lazily, on the first call to [`tables()`].
//! The product therefore needs no external file to decode a municipality or a code.
//!
//! Validity periods are inclusive at both ends everywhere: a row is valid from its start
//! date through its end date, and an empty end date means "still valid". For
//! municipalities this is how ANPR writes DATACESSAZIONE (the last valid day); see
//! [`Comune`] and the `comuni` module for the evidence.
//!
//! Lookups by code go through hash maps from a compact integer key to the small sorted
//! run of periods of that code; name lookups go through a map keyed by
//! [`anpr_domain::text::fold_key`], so they ignore case, accents and punctuation.
#![forbid(unsafe_code)]

mod codes;
mod comuni;
mod consolati;
mod csv;
mod error;
mod errori;
mod index;
mod manifest;
mod stati_esteri;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune};
use chrono::NaiveDate;

pub use codes::{CodeRow, CodeTable, TableKind};
pub use comuni::{Comune, StatoComune};
pub use consolati::{Consolato, StatoConsolato};
pub use error::TablesError;
pub use errori::{ErroreAnpr, Severity};
pub use manifest::{TableInfo, TablesVersion};
pub use stati_esteri::StatoEstero;

use codes::CodeTableHeader;
use comuni::Comuni;
use consolati::Consolati;
use errori::Errori;
use manifest::{parse_manifest, table_key};
use stati_esteri::StatiEsteri;

/// One file of the embedded data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFile {
    /// File name inside `data/`, e.g. `comuni.csv`.
    pub name: &'static str,
    /// Its UTF-8 contents.
    pub contents: &'static str,
}

macro_rules! embedded_files {
    ($($name:literal),* $(,)?) => {
        &[$(DataFile { name: $name, contents: include_str!(concat!("../data/", $name)) }),*]
    };
}

/// Every file of `data/`; a test checks that this list matches the directory.
static DATA_FILES: &[DataFile] = embedded_files!(
    "ATTRIBUTION.md",
    "SHA256SUMS",
    "VERSION",
    "manifest.csv",
    "cessazione_unione_civile.csv",
    "comuni.csv",
    "condizione_non_professionale.csv",
    "consolati.csv",
    "conversione_codici_aire.csv",
    "criterio_comune_iscrizione_aire.csv",
    "dati_richiesti.csv",
    "errori.csv",
    "esenzione_bollo.csv",
    "funzionalita_web_app.csv",
    "iniziativa_iscrizione_aire.csv",
    "innesco_procedimento.csv",
    "legame_convivenza.csv",
    "lingue.csv",
    "motivi_cancellazione_aire.csv",
    "motivi_cancellazione_apr.csv",
    "motivi_iscrizione_aire.csv",
    "motivi_iscrizione_apr.csv",
    "motivi_non_certificabilita.csv",
    "motivo_costituzione_famiglia.csv",
    "motivo_revoca.csv",
    "posizione_professione.csv",
    "prospetti_statistici.csv",
    "relazione_parentela.csv",
    "righe_prospetti_statistici.csv",
    "servizi_web.csv",
    "servizi_web_allineamento.csv",
    "specie_convivenza.csv",
    "specie_toponimo.csv",
    "stati_consolati.csv",
    "stati_esteri.csv",
    "stati_lavorazione.csv",
    "stato_civile.csv",
    "stato_procedimento.csv",
    "stato_validazione_cf.csv",
    "tipi_cittadinanza.csv",
    "tipi_mutazione.csv",
    "tipo_certificato.csv",
    "tipo_cessazione_matrimonio.csv",
    "tipo_indirizzo.csv",
    "tipo_movimentazione.csv",
    "tipo_mutazione_famiglia_convivenza.csv",
    "tipo_mutazione_residenza.csv",
    "tipo_revoca.csv",
    "tipo_soggiorno.csv",
    "tipo_tribunale.csv",
    "titolo_studio.csv",
    "utilizzo_servizi_web.csv",
);

/// The raw embedded data files (e.g. to offer them for download, or to check hashes).
pub fn data_files() -> &'static [DataFile] {
    DATA_FILES
}

/// The embedded data set, parsed on first use.
pub fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        Tables::from_data_files(DATA_FILES.iter().map(|file| (file.name, file.contents)))
            .expect("the embedded ANPR tables parse (the crate's tests verify them)")
    })
}

/// All decoding tables, parsed and indexed. Obtain the embedded set with [`tables()`].
pub struct Tables {
    version: TablesVersion,
    manifest: Vec<TableInfo>,
    comuni: Comuni,
    stati_esteri: StatiEsteri,
    consolati: Consolati,
    errori: Errori,
    code_tables: Vec<CodeTable>,
    code_table_keys: HashMap<String, usize>,
    table_keys: HashMap<String, usize>,
}

impl fmt::Debug for Tables {
    // The derived form would print 20,000 rows; a summary is what a log line needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tables")
            .field("version", &self.version.to_string())
            .field("tables", &self.manifest.len())
            .field("comuni", &self.comuni.all().len())
            .field("stati_esteri", &self.stati_esteri.all().len())
            .finish_non_exhaustive()
    }
}

impl Tables {
    /// Parses a data set given as `(file name, contents)` pairs, laid out like `data/`:
    /// `VERSION`, `manifest.csv` and every file the manifest names. Row counts are checked
    /// against the manifest.
    pub fn from_data_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, TablesError> {
        let files: HashMap<&str, &str> = files.into_iter().collect();
        let file = |name: &str| -> Result<&str, TablesError> {
            files
                .get(name)
                .copied()
                .ok_or_else(|| TablesError::new(name, 0, "file missing from the data set"))
        };
        let version = TablesVersion::parse("VERSION", file("VERSION")?)?;
        let manifest = parse_manifest("manifest.csv", file("manifest.csv")?)?;

        let find = |kind: TableKind| -> Result<&TableInfo, TablesError> {
            manifest
                .iter()
                .find(|info| info.kind == kind)
                .ok_or_else(|| {
                    TablesError::new("manifest.csv", 0, format!("no table of kind {kind:?}"))
                })
        };
        let comuni_info = find(TableKind::Comuni)?;
        let comuni = Comuni::parse(&comuni_info.file, file(&comuni_info.file)?)?;
        let stati_info = find(TableKind::StatiEsteri)?;
        let stati_esteri = StatiEsteri::parse(&stati_info.file, file(&stati_info.file)?)?;
        let consolati_info = find(TableKind::Consolati)?;
        let stati_consolati_info = find(TableKind::StatiConsolati)?;
        let consolati = Consolati::parse(
            &consolati_info.file,
            file(&consolati_info.file)?,
            &stati_consolati_info.file,
            file(&stati_consolati_info.file)?,
        )?;
        let errori_info = find(TableKind::Errori)?;
        let errori = Errori::parse(&errori_info.file, file(&errori_info.file)?)?;

        let mut code_tables = Vec::new();
        for info in &manifest {
            if matches!(info.kind, TableKind::Codici | TableKind::Elenco) {
                let header = CodeTableHeader {
                    name: &info.name,
                    description: &info.description,
                    anpr_number: info.anpr_number,
                    kind: info.kind,
                    notes: info.notes.clone(),
                };
                code_tables.push(CodeTable::parse(&info.file, file(&info.file)?, header)?);
            }
        }

        let mut tables = Self {
            version,
            manifest,
            comuni,
            stati_esteri,
            consolati,
            errori,
            code_tables,
            code_table_keys: HashMap::new(),
            table_keys: HashMap::new(),
        };
        tables.check_row_counts()?;
        tables.index_names()?;
        Ok(tables)
    }

    /// A truncated or hand-edited file shows up as a row count that differs from the
    /// manifest written together with it.
    fn check_row_counts(&self) -> Result<(), TablesError> {
        for info in &self.manifest {
            let parsed = self.row_count(info);
            if parsed != info.rows {
                return Err(TablesError::new(
                    &info.file,
                    0,
                    format!("{parsed} rows, the manifest says {}", info.rows),
                ));
            }
        }
        Ok(())
    }

    fn row_count(&self, info: &TableInfo) -> usize {
        match info.kind {
            TableKind::Comuni => self.comuni.all().len(),
            TableKind::StatiEsteri => self.stati_esteri.all().len(),
            TableKind::Consolati => self.consolati.all().len(),
            TableKind::StatiConsolati => self.consolati.stati().len(),
            TableKind::Errori => self.errori.all().len(),
            TableKind::Codici | TableKind::Elenco => self
                .code_tables
                .iter()
                .find(|table| table.name() == info.name)
                .map_or(0, |table| table.rows().len()),
        }
    }

    fn index_names(&mut self) -> Result<(), TablesError> {
        for (position, info) in self.manifest.iter().enumerate() {
            for name in std::iter::once(&info.name).chain(&info.aliases) {
                let key = table_key(name);
                if let Some(previous) = self.table_keys.insert(key.clone(), position) {
                    if previous != position {
                        return Err(TablesError::new(
                            "manifest.csv",
                            0,
                            format!("table name {name:?} is used twice"),
                        ));
                    }
                }
                if let Some(code_table) =
                    self.code_tables.iter().position(|t| t.name() == info.name)
                {
                    self.code_table_keys.insert(key, code_table);
                }
            }
        }
        Ok(())
    }

    /// Source snapshot and content hash of the data set.
    pub fn version(&self) -> &TablesVersion {
        &self.version
    }

    // ----------------------------------------------------------------- municipalities

    /// Every municipality period, sorted by ISTAT code then start date.
    pub fn comuni(&self) -> &[Comune] {
        self.comuni.all()
    }

    /// The municipality holding ISTAT code `code` on day `at`.
    pub fn comune_by_istat(&self, code: &CodiceIstatComune, at: NaiveDate) -> Option<&Comune> {
        self.comuni.by_istat(code, at)
    }

    /// The municipality holding cadastral code `code` on day `at`.
    ///
    /// The archive gives one cadastral code to two municipalities at once in a single
    /// case (D588, MARNE and FILAGO, 1861-1928); there the lower ISTAT code wins. Use
    /// [`Tables::comuni_by_catastale`] to see every candidate.
    pub fn comune_by_catastale(&self, code: &CodiceCatastale, at: NaiveDate) -> Option<&Comune> {
        self.comuni.by_catastale(code, at)
    }

    /// Every municipality holding cadastral code `code` on day `at` (at most one, except
    /// for the overlap noted on [`Tables::comune_by_catastale`]), by ISTAT code.
    pub fn comuni_by_catastale(&self, code: &CodiceCatastale, at: NaiveDate) -> Vec<&Comune> {
        self.comuni
            .history_by_catastale(code)
            .filter(|c| c.is_valid_at(at))
            .collect()
    }

    /// Municipalities whose Italian or second-language name matches `name` ignoring case,
    /// accents and punctuation (`"citta di castello"`, `"Bozen"`). With `at`, only the
    /// periods valid that day; with `None`, every period, in ISTAT-code order.
    pub fn comuni_by_name(&self, name: &str, at: Option<NaiveDate>) -> Vec<&Comune> {
        self.comuni.by_name(name, at)
    }

    /// Municipality periods in state `stato` (e.g. the 7,901 active ones).
    pub fn comuni_by_stato(&self, stato: StatoComune) -> impl Iterator<Item = &Comune> {
        self.comuni.all().iter().filter(move |c| c.stato == stato)
    }

    /// All periods of ISTAT code `code`, oldest first.
    pub fn comune_history_by_istat(&self, code: &CodiceIstatComune) -> Vec<&Comune> {
        self.comuni.history_by_istat(code).iter().collect()
    }

    /// All periods of cadastral code `code`, oldest first; they may span several ISTAT codes.
    pub fn comune_history_by_catastale(&self, code: &CodiceCatastale) -> Vec<&Comune> {
        self.comuni.history_by_catastale(code).collect()
    }

    // ----------------------------------------------------------------- foreign states

    /// The foreign state with cadastral code `code` (`Z...`) valid on day `at`.
    pub fn stato_estero_by_catastale(
        &self,
        code: &CodiceCatastale,
        at: NaiveDate,
    ) -> Option<&StatoEstero> {
        self.stati_esteri.by_catastale(code, at)
    }

    /// The foreign state with three-digit ISTAT code `code` valid on `at`; with `None`,
    /// the code's most recent period (which may have ceased).
    pub fn stato_estero_by_istat(&self, code: &str, at: Option<NaiveDate>) -> Option<&StatoEstero> {
        self.stati_esteri.by_istat(code, at)
    }

    /// Foreign states whose ANPR, ISTAT or English name matches `name` (folded).
    pub fn stati_esteri_by_name(&self, name: &str, at: Option<NaiveDate>) -> Vec<&StatoEstero> {
        self.stati_esteri.by_name(name, at)
    }

    /// Every foreign-state period, sorted by ISTAT code then start date.
    pub fn stati_esteri(&self) -> &[StatoEstero] {
        self.stati_esteri.all()
    }

    // ----------------------------------------------------------------- consulates

    /// All consulates, sorted by code.
    pub fn consolati(&self) -> &[Consolato] {
        self.consolati.all()
    }

    /// The consulate with MAE code `code` (seven digits).
    pub fn consolato(&self, code: &str) -> Option<&Consolato> {
        self.consolati.by_code(code)
    }

    /// The consulates competent for residents of the state with ISTAT code `codice_istat_stato`.
    pub fn consolati_for_stato(&self, codice_istat_stato: &str) -> Vec<&Consolato> {
        self.consolati.for_stato(codice_istat_stato)
    }

    /// The state-to-consulate relation (Tabella 41).
    pub fn stati_consolati(&self) -> &[StatoConsolato] {
        self.consolati.stati()
    }

    // ----------------------------------------------------------------- generic tables

    /// Every table of the data set (including comuni, stati esteri, consolati, errori),
    /// sorted by name.
    pub fn table_names(&self) -> Vec<TableInfo> {
        self.manifest.clone()
    }

    /// The description of one table, found by name or alias (see [`Tables::table`]).
    pub fn table_info(&self, name: &str) -> Option<&TableInfo> {
        let position = match self.table_keys.get(name) {
            Some(&position) => position,
            None => *self.table_keys.get(&table_key(name))?,
        };
        self.manifest.get(position)
    }

    /// A generic code table by its snake_case name (`stato_civile`), its ANPR number
    /// (`tabella_1`, `Tabella 1`) or its source file name (`tab_Stato_civile`).
    pub fn table(&self, name: &str) -> Option<&CodeTable> {
        // Callers in the service layer pass the canonical name; only other spellings pay
        // for the normalisation (which allocates and decomposes accents).
        let position = match self.code_table_keys.get(name) {
            Some(&position) => position,
            None => *self.code_table_keys.get(&table_key(name))?,
        };
        self.code_tables.get(position)
    }

    /// All generic code tables and lists, sorted by name.
    pub fn code_tables(&self) -> &[CodeTable] {
        &self.code_tables
    }

    /// The row of `code` in `table` valid on `at` (with `None`, its most recent period).
    pub fn code(&self, table: &str, code: &str, at: Option<NaiveDate>) -> Option<&CodeRow> {
        self.table(table)?.get(code, at)
    }

    // ----------------------------------------------------------------- outcome codes

    /// The ANPR outcome code `code` (e.g. `EC011`).
    pub fn errore(&self, code: &str) -> Option<&ErroreAnpr> {
        self.errori.by_code(code)
    }

    /// All ANPR outcome codes, sorted by code.
    pub fn errori(&self) -> &[ErroreAnpr] {
        self.errori.all()
    }
}
