//! Conversions between registry values and their stored SQL form, and error mapping.
//!
//! Dates are stored as ISO text (`YYYY-MM-DD`) and timestamps as RFC 3339 text in UTC
//! with exactly six fractional digits and a `Z` suffix. Both forms are fixed-width for
//! years 0000–9999, so SQL text comparison is chronological; writes outside that range
//! are refused and query bounds outside it are clamped, which keeps that true.
//!
//! Everything read back is parsed, never trusted: a value that does not parse is
//! reported as [`StoreError::Corrupt`], never a panic.

use anpr_store::StoreError;
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, SubsecRound, TimeDelta, Utc};

/// Adds context to a rusqlite result, turning it into a [`StoreError`].
pub(crate) trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| sql_error(what, e))
    }
}

/// Maps a rusqlite error: a stored value of the wrong type or out of range means the
/// data are corrupt; anything else is a backend failure.
pub(crate) fn sql_error(what: &str, e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(format!("{what}: {e}")),
        e => StoreError::Backend(format!("{what}: {e}")),
    }
}

const MIN_YEAR: i32 = 0;
const MAX_YEAR: i32 = 9999;

/// A date to be stored. Refuses years that would break the fixed-width text order.
pub(crate) fn date_to_sql(d: NaiveDate) -> Result<String, StoreError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&d.year()) {
        Ok(d.format("%Y-%m-%d").to_string())
    } else {
        Err(StoreError::Invalid(format!(
            "date {d} is outside the years {MIN_YEAR}-{MAX_YEAR}"
        )))
    }
}

/// A date used as a query bound: clamped into the storable range, which gives the same
/// answer since no stored date lies outside it.
pub(crate) fn date_bound(d: NaiveDate) -> String {
    let clamped = if d.year() > MAX_YEAR {
        NaiveDate::from_ymd_opt(MAX_YEAR, 12, 31)
    } else if d.year() < MIN_YEAR {
        NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1)
    } else {
        Some(d)
    };
    clamped.unwrap_or(d).format("%Y-%m-%d").to_string()
}

pub(crate) fn date_from_sql(s: &str, what: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt(format!("{what}: date {s:?}: {e}")))
}

/// The stored precision of timestamps. The audit hash covers the timestamp, so an
/// entry's `istante` is truncated to this precision *before* it is hashed: what the
/// store returns, what it reads back later and what was hashed are then identical.
pub(crate) fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The smallest microsecond-precision instant not before `t`. Stored timestamps have
/// microsecond precision, so `stored >= t` and `stored < t` are exactly
/// `stored >= ceil(t)` and `stored < ceil(t)`.
fn ceil_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = truncate_micros(t);
    if truncated == t {
        t
    } else {
        truncated
            .checked_add_signed(TimeDelta::microseconds(1))
            .unwrap_or(truncated)
    }
}

pub(crate) fn timestamp_to_sql(t: DateTime<Utc>) -> Result<String, StoreError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&t.year()) {
        Ok(truncate_micros(t).to_rfc3339_opts(SecondsFormat::Micros, true))
    } else {
        Err(StoreError::Invalid(format!(
            "timestamp {t} is outside the years {MIN_YEAR}-{MAX_YEAR}"
        )))
    }
}

/// A timestamp used as a query bound (see [`ceil_micros`]), clamped like [`date_bound`].
pub(crate) fn timestamp_bound(t: DateTime<Utc>) -> String {
    if t.year() > MAX_YEAR {
        return "9999-12-31T23:59:59.999999Z".to_owned();
    }
    if t.year() < MIN_YEAR {
        return "0000-01-01T00:00:00.000000Z".to_owned();
    }
    ceil_micros(t).to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn timestamp_from_sql(s: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{what}: timestamp {s:?}: {e}")))
}

/// An unsigned value to be stored in an INTEGER column.
pub(crate) fn u64_to_sql(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        StoreError::Invalid(format!("{what} {v} does not fit a 64-bit signed integer"))
    })
}

/// An unsigned query bound: values beyond `i64::MAX` match nothing more than
/// `i64::MAX` does, so saturating gives the same answer.
pub(crate) fn u64_bound(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn u64_from_sql(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what}: negative value {v}")))
}

pub(crate) fn json_to_sql<T: serde::Serialize + ?Sized>(
    v: &T,
    what: &str,
) -> Result<String, StoreError> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::Invalid(format!("{what}: not serialisable as JSON: {e}")))
}

pub(crate) fn json_from_sql<T: serde::de::DeserializeOwned>(
    s: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Parses a stored value with its `FromStr`, reporting a failure as corruption.
pub(crate) fn parse_stored<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let stored = timestamp_to_sql(t).unwrap();
        assert_eq!(stored, "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            timestamp_from_sql(&stored, "t").unwrap(),
            truncate_micros(t)
        );
        let whole = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            timestamp_to_sql(whole).unwrap(),
            "2023-11-14T22:13:20.000000Z"
        );
    }

    #[test]
    fn bounds_round_up_to_the_stored_precision() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_001).unwrap();
        assert_eq!(timestamp_bound(t), "2023-11-14T22:13:20.123457Z");
        let exact = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(timestamp_bound(exact), "2023-11-14T22:13:20.123456Z");
    }

    #[test]
    fn dates_are_fixed_width_or_refused() {
        assert_eq!(
            date_to_sql(NaiveDate::from_ymd_opt(5, 3, 1).unwrap()).unwrap(),
            "0005-03-01"
        );
        assert!(date_to_sql(NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap()).is_err());
        assert_eq!(
            date_bound(NaiveDate::from_ymd_opt(12_000, 1, 1).unwrap()),
            "9999-12-31"
        );
        assert_eq!(
            date_from_sql("2020-02-29", "d").unwrap(),
            NaiveDate::from_ymd_opt(2020, 2, 29).unwrap()
        );
        assert!(matches!(
            date_from_sql("2020-02-30", "d"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn integers_out_of_range_are_refused_or_reported() {
        assert!(u64_to_sql(u64::MAX, "x").is_err());
        assert_eq!(u64_bound(u64::MAX), i64::MAX);
        assert!(matches!(u64_from_sql(-1, "x"), Err(StoreError::Corrupt(_))));
    }
}
