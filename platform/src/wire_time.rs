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
mod tests {
    use super::{parse_date, parse_instant};

    #[test]
    fn one_spelling_of_a_day() {
        assert_eq!(parse_date("2026-01-05").unwrap().to_string(), "2026-01-05");
        for bad in [
            "2026-1-5",
            "2026-01-5",
            "26-01-05",
            "+2026-01-05",
            "2026-02-30",
            "2026/01/05",
            "2026-01-05 ",
            " 2026-01-05",
            "２026-01-05",
            "20260-01-05",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn one_spelling_of_an_instant() {
        for good in [
            "2026-01-05T10:00:00Z",
            "2026-01-05t10:00:00z",
            "2026-01-05T15:30:00+05:30",
            "2026-01-05T10:00:00.123456Z",
        ] {
            assert!(parse_instant(good).is_some(), "{good}");
        }
        assert_eq!(
            parse_instant("2026-01-05T15:30:00+05:30")
                .unwrap()
                .to_rfc3339(),
            "2026-01-05T10:00:00+00:00"
        );
        for bad in [
            "2026-1-5T10:00:00Z",
            "2026-01-05 10:00:00Z",
            "2026-01-05",
            "2026-01-05T10:00Z",
            "2026-01-05T1:00:00Z",
            "2026-01-05T10:00:00",
            "2026-01-05T10:00:00+0530",
            "2026-01-05T24:00:00Z",
            "",
            "2026-01-0",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
