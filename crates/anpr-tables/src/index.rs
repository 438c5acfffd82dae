//! Building blocks shared by the table indexes: compact integer keys, a cheap hasher for
//! them, contiguous spans of periods, and the date parsing of the data files.
//!
//! Lookups by code are the hot path of validation (every birth place, every address is
//! checked "as at" a date), so codes are turned into small integers and hashed with a
//! multiply-rotate hasher instead of SipHash: the keys come from our own data and from
//! already-parsed codes, so hash flooding is not a concern here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::NaiveDate;

/// A multiply-rotate hasher (the FxHash scheme) for small integer keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IntHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.hash = (self.hash.rotate_left(5) ^ value).wrapping_mul(SEED);
    }
}

/// A hash map keyed by small integers, hashed with [`IntHasher`].
pub(crate) type IntMap<V> = HashMap<u32, V, BuildHasherDefault<IntHasher>>;

/// A run of consecutive entries in a sorted vector: all periods of one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// Groups the positions of a vector already sorted by key into one span per key.
pub(crate) fn spans_by_key(keys: impl Iterator<Item = u32>) -> IntMap<Span> {
    let mut spans: IntMap<Span> = IntMap::default();
    for (position, key) in keys.enumerate() {
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        spans
            .entry(key)
            .and_modify(|span| span.len += 1)
            .or_insert(Span {
                start: position,
                len: 1,
            });
    }
    spans
}

/// Encodes a string of ASCII digits (at most nine) as its numeric value.
///
/// ISTAT codes have a fixed width, so the value identifies the code once the width is
/// checked by the caller.
pub(crate) fn digits_key(code: &str, width: usize) -> Option<u32> {
    let bytes = code.as_bytes();
    if bytes.len() != width || width > 9 {
        return None;
    }
    let mut value: u32 = 0;
    for byte in bytes {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

/// Encodes a cadastral code (an upper-case letter and three digits) as an integer.
pub(crate) fn catastale_key(code: &str) -> Option<u32> {
    let bytes = code.as_bytes();
    let (&letter, digits) = bytes.split_first()?;
    if !letter.is_ascii_uppercase() {
        return None;
    }
    let number = digits_key(std::str::from_utf8(digits).ok()?, 3)?;
    Some(u32::from(letter - b'A') * 1000 + number)
}

/// True when `at` falls in the inclusive period `from..=to` (open bounds are `None`).
///
/// Both bounds are inclusive because that is how ANPR writes them: a municipality's
/// DATACESSAZIONE is its last valid day and the next period starts the day after.
pub(crate) fn within(at: NaiveDate, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    from.is_none_or(|from| from <= at) && to.is_none_or(|to| at <= to)
}

#[cfg(test)]
mod tests {
    use super::{catastale_key, digits_key, within};
    use chrono::NaiveDate;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are valid")
    }

    #[test]
    fn encodes_codes_as_integers() {
        fn check(actual: Option<u32>, expected: Option<u32>, what: &str) {
            assert_eq!(actual, expected, "{what}");
        }
        check(digits_key("058091", 6), Some(58091), "istat");
        check(digits_key("000000", 6), Some(0), "zeros");
        check(digits_key("58091", 6), None, "short");
        check(digits_key("05809a", 6), None, "letter");
        check(digits_key("536", 3), Some(536), "foreign state");
        check(catastale_key("H501"), Some(7501), "Roma");
        check(catastale_key("A001"), Some(1), "Abano");
        check(catastale_key("Z404"), Some(25404), "USA");
        check(catastale_key("h501"), None, "lower case");
        check(catastale_key("H5011"), None, "long");
        check(catastale_key("ND"), None, "not determined");
        check(catastale_key(""), None, "empty");
    }

    #[test]
    fn periods_include_both_bounds() {
        let cases = [
            ("1924-11-13", Some("1866-11-19"), Some("1924-11-13"), true),
            ("1924-11-14", Some("1866-11-19"), Some("1924-11-13"), false),
            ("1866-11-19", Some("1866-11-19"), Some("1924-11-13"), true),
            ("1866-11-18", Some("1866-11-19"), Some("1924-11-13"), false),
            ("2999-01-01", Some("1924-11-14"), None, true),
            ("1000-01-01", None, None, true),
        ];
        for (at, from, to, expected) in cases {
            assert_eq!(
                within(date(at), from.map(date), to.map(date)),
                expected,
                "{at} in {from:?}..={to:?}"
            );
        }
    }
}
