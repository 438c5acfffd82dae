//! Time as the registry sees it.
//!
//! Registry dates are Italian civil dates: "today" is the date in Rome, not in UTC (at
//! 00:30 in Rome it is still yesterday in UTC). Italy follows the EU summer-time rule
//! (CEST, UTC+2, from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
//! Sunday of October; CET, UTC+1, otherwise), which is computed here rather than pulling
//! in a time-zone database for one zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};

/// Source of the current time; tests use a fixed one.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Today's date in Italy.
    fn today(&self) -> NaiveDate {
        italian_date(self.now())
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at a given instant (tests, reproducible runs).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid month start");
    let mut d = first_of_next - Duration::days(1);
    while d.weekday() != Weekday::Sun {
        d -= Duration::days(1);
    }
    d
}

/// Italy's offset from UTC at instant `t`, in hours (2 in summer time, else 1).
fn offset_italiano(t: DateTime<Utc>) -> i64 {
    let year = t.year();
    let at_one_utc =
        |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(1, 0, 0).expect("valid time"));
    let summer_start = at_one_utc(last_sunday(year, 3));
    let summer_end = at_one_utc(last_sunday(year, 10));
    if t >= summer_start && t < summer_end {
        2
    } else {
        1
    }
}

/// The civil date in Italy at instant `t`.
pub fn italian_date(t: DateTime<Utc>) -> NaiveDate {
    (t + Duration::hours(offset_italiano(t))).date_naive()
}

/// The instant of Italian civil time `n` (a date and time read in Rome), in UTC. In
/// the hour repeated when summer time ends, the first (summer) one; a time skipped
/// when it starts is read with the winter offset.
pub fn istante_italiano(n: NaiveDateTime) -> DateTime<Utc> {
    let summer = Utc.from_utc_datetime(&n) - Duration::hours(2);
    if offset_italiano(summer) == 2 {
        summer
    } else {
        Utc.from_utc_datetime(&n) - Duration::hours(1)
    }
}

/// The instant Italian civil date `d` begins (midnight in Rome), in UTC. Summer time
/// starts and ends at 01:00 UTC, after midnight in Rome, so midnight has the offset of
/// the day before the switch: try summer time first and check it.
pub fn inizio_giorno_italiano(d: NaiveDate) -> DateTime<Utc> {
    let midnight = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("valid time"));
    let summer = midnight - Duration::hours(2);
    if italian_date(summer) == d {
        summer
    } else {
        midnight - Duration::hours(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(utc: &str, expected: &str) {
        let t: DateTime<Utc> = utc.parse().unwrap();
        assert_eq!(italian_date(t).to_string(), expected, "at {utc}");
    }

    #[test]
    fn rome_civil_times_to_instants() {
        let at = |s: &str| istante_italiano(s.parse().unwrap()).to_rfc3339();
        assert_eq!(at("2026-01-15T10:00:00"), "2026-01-15T09:00:00+00:00");
        assert_eq!(at("2026-07-15T10:00:00"), "2026-07-15T08:00:00+00:00");
        assert_eq!(at("2026-03-29T01:59:59"), "2026-03-29T00:59:59+00:00");
        assert_eq!(at("2026-03-29T03:00:00"), "2026-03-29T01:00:00+00:00");
        assert_eq!(at("2026-10-25T02:30:00"), "2026-10-25T00:30:00+00:00");
        assert_eq!(at("2026-10-25T03:00:00"), "2026-10-25T02:00:00+00:00");
    }

    #[test]
    fn rome_dates_across_midnight_and_dst() {
        check("2026-01-15T22:59:59Z", "2026-01-15");
        check("2026-01-15T23:00:00Z", "2026-01-16"); // CET midnight
        check("2026-07-15T21:59:59Z", "2026-07-15");
        check("2026-07-15T22:00:00Z", "2026-07-16"); // CEST midnight
                                                     // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        check("2026-03-28T23:30:00Z", "2026-03-29");
        check("2026-10-24T22:30:00Z", "2026-10-25");
        check("2026-10-25T22:30:00Z", "2026-10-25");
        check("2026-12-31T23:00:00Z", "2027-01-01");
    }

    #[test]
    fn italian_midnights_in_utc() {
        for (d, expected) in [
            ("2026-01-16", "2026-01-15T23:00:00Z"),
            ("2026-07-16", "2026-07-15T22:00:00Z"),
            // The switch days: midnight is still on the previous day's offset.
            ("2026-03-29", "2026-03-28T23:00:00Z"),
            ("2026-03-30", "2026-03-29T22:00:00Z"),
            ("2026-10-25", "2026-10-24T22:00:00Z"),
            ("2026-10-26", "2026-10-25T23:00:00Z"),
        ] {
            let day: NaiveDate = d.parse().unwrap();
            let start = inizio_giorno_italiano(day);
            assert_eq!(
                start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                expected,
                "{d}"
            );
            assert_eq!(italian_date(start), day);
            assert_eq!(
                italian_date(start - Duration::seconds(1)),
                day.pred_opt().unwrap()
            );
        }
    }

    #[test]
    fn last_sundays() {
        assert_eq!(last_sunday(2026, 3).to_string(), "2026-03-29");
        assert_eq!(last_sunday(2026, 10).to_string(), "2026-10-25");
        assert_eq!(last_sunday(2024, 12).to_string(), "2024-12-29");
    }
}
