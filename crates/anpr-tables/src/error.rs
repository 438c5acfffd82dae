//! The one error this crate can produce: a data file that does not parse.
//!
//! The embedded tables are verified by the crate's tests, so in the product this error
//! only surfaces when someone loads a different data set with [`crate::Tables::from_data_files`].

/// A data file (or one of its rows) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TablesError {
    /// The data file name, e.g. `comuni.csv`.
    pub file: String,
    /// The 1-based line where the offending record starts (1 = header, 0 = the file as a
    /// whole, e.g. two rows that contradict each other).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl TablesError {
    pub(crate) fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}
