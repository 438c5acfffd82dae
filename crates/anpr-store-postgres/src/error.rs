//! How driver failures become [`StoreError`]s.
//!
//! Inside a transaction we keep the raw driver error (with a short description of the
//! step that failed) until the transaction is over, because some of them are not
//! failures of the request at all: a deadlock or a collision on the "one open version
//! per section" index means another transaction got there first, and the right answer is
//! to run ours again. Everything else becomes `StoreError::Backend` with context; the
//! message is for logs and operators, callers map `Backend` to a generic error.

use anpr_store::StoreError;
use tokio_postgres::error::SqlState;

/// Name of the partial unique index allowing one open version per section.
pub(crate) const OPEN_VERSION_INDEX: &str = "versioni_correnti";
/// Primary key of the operation log.
pub(crate) const OPERATION_PK: &str = "operazioni_pkey";
/// Unique (comune, idOperazioneComune).
pub(crate) const COMUNE_ID_UNIQUE: &str = "operazioni_id_comune_unico";

/// A failure inside a unit of work.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A decided outcome (conflict, validation, corruption): returned as is.
    Store(StoreError),
    /// A driver error during step `what`: classified by [`Failure::classify`].
    Db {
        what: &'static str,
        error: tokio_postgres::Error,
    },
    /// The pool could not hand out a connection.
    Pool(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Failure::Pool(e.to_string())
    }
}

/// What to do about a failure.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Another transaction won a race; running again will see its effects. Carries the
    /// description, for the log.
    Retry(String),
    /// A unique constraint (by name) was violated.
    Unique(String),
    /// The final answer.
    Fail(StoreError),
}

impl Failure {
    pub(crate) fn classify(self) -> Verdict {
        match self {
            Failure::Store(e) => Verdict::Fail(e),
            Failure::Pool(_) => Verdict::Fail(StoreError::Backend(describe_failure(&self))),
            Failure::Db { ref error, .. } => {
                let code = error.code();
                if code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
                    || code == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                {
                    return Verdict::Retry(describe_failure(&self));
                }
                if code == Some(&SqlState::UNIQUE_VIOLATION) {
                    let constraint = error
                        .as_db_error()
                        .and_then(|d| d.constraint())
                        .unwrap_or_default();
                    if constraint == OPEN_VERSION_INDEX {
                        return Verdict::Retry(describe_failure(&self));
                    }
                    if constraint == OPERATION_PK || constraint == COMUNE_ID_UNIQUE {
                        return Verdict::Unique(constraint.to_owned());
                    }
                }
                Verdict::Fail(StoreError::Backend(describe_failure(&self)))
            }
        }
    }

    /// Converts into the error returned to callers, for reads (nothing to retry).
    pub(crate) fn into_store_error(self) -> StoreError {
        match self {
            Failure::Store(e) => e,
            other => StoreError::Backend(describe_failure(&other)),
        }
    }
}

fn describe_failure(f: &Failure) -> String {
    match f {
        Failure::Store(e) => e.to_string(),
        Failure::Pool(e) => format!("getting a connection from the pool: {e}"),
        Failure::Db { what, error } => describe(what, error),
    }
}

/// "step: message (SQLSTATE)" — the driver's own `Display` says only "db error".
pub(crate) fn describe(what: &str, error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut s = format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str(": ");
                s.push_str(detail);
            }
            s
        }
        None => format!("{what}: {error}"),
    }
}

/// Attaches the step description to driver results.
pub(crate) trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|error| Failure::Db { what, error })
    }
}

/// Converts a value that must fit a `bigint` column.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::Invalid(format!(
            "{what} {value} does not fit a 64-bit signed integer"
        ))
    })
}

/// Converts a stored `bigint` that must be positive.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} is negative")))
}
