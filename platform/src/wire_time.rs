//! Dates and instants on the wire, each with one spelling: a day is `YYYY-MM-DD` and an
//! instant RFC 3339 (`2026-01-05T10:00:00Z`, an offset or fractional seconds allowed).
//! chrono's own `FromStr`, which serde uses, also takes `2026-1-5` and a space for the
//! `T`: second spellings of one value that a strict parser refuses.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{de::Error, Deserialize, Deserializer};

/// `YYYY-MM-DD`, ten characters, a real day.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

/// RFC 3339 with its date as `parse_date` takes it, in UTC.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    parse_date(text.get(..10)?)?;
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// For `#[serde(default, deserialize_with = "…")]` on an optional day.
pub fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|t| {
            parse_date(&t).ok_or_else(|| D::Error::custom(format!("`{t}` is not a YYYY-MM-DD day")))
        })
        .transpose()
}

/// For `#[serde(default, deserialize_with = "…")]` on an optional instant.
pub fn opt_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|t| {
            parse_instant(&t)
                .ok_or_else(|| D::Error::custom(format!("`{t}` is not an RFC 3339 instant")))
        })
        .transpose()
}

#[cfg(test)]
#[path = "wire_time_test.rs"]
mod tests;
