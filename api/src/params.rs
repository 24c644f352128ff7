//! One rule per parameter, shared by every route that takes it: the same value is
//! refused with the same code wherever it is sent. (A value serde cannot read as the
//! parameter's type, or an unknown parameter, is `invalid_query`, from `QueryParams`.)
use crate::{ApiError, ApiState};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::Principal;
use platform::config::ReportsConfig;
use schemas::UserId;

/// Most days one series (daily earnings, analytics over time) may span.
pub const MAX_SERIES_DAYS: i64 = 366;
/// The days a date parameter may name: ClickHouse's `Date` range (on 18.16), for all.
pub const FIRST_DAY: NaiveDate = day(1970, 1, 1);
pub const LAST_DAY: NaiveDate = day(2105, 12, 31);

const fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(d) => d,
        None => panic!("not a date"),
    }
}

fn invalid(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::Invalid(code, detail.into())
}

/// `{id}` in a path: a UUID (an undecodable or other segment is `invalid_user_id`).
pub struct UserPath(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for UserPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_a_uuid = || invalid("invalid_user_id", "the user id in the path is not a UUID");
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_a_uuid())?;
        id.parse().map(UserPath).map_err(|_| not_a_uuid())
    }
}

/// `{id}` of a user-scoped read: a UUID (422), a user the caller may read (403), a user
/// who exists (404). Every route under `/v1/users/{id}` takes it, live streams included.
pub struct ReadableUser(pub UserId);

impl FromRequestParts<ApiState> for ReadableUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let who = Principal::from_request_parts(parts, state).await?;
        let UserPath(user) = UserPath::from_request_parts(parts, state).await?;
        crate::authorize(&who, user)?;
        crate::reports::ensure_user(state, user).await?;
        Ok(ReadableUser(user))
    }
}

/// `limit`: 1 to `max_page_size`; absent, `default_page_size` (capped the same).
pub fn page_limit(limit: Option<i64>, reports: &ReportsConfig) -> Result<i64, ApiError> {
    let max = reports.max_page_size;
    let limit = limit.unwrap_or(reports.default_page_size);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid(
            "invalid_limit",
            format!("limit must be between 1 and {max}"),
        ))
    }
}

/// `depth`: 1 to `max_tree_depth`; absent, `default_tree_depth`.
pub fn tree_depth(depth: Option<i32>, reports: &ReportsConfig) -> Result<u8, ApiError> {
    let max = reports.max_tree_depth;
    match depth {
        None => Ok(reports.default_tree_depth),
        Some(d) => u8::try_from(d)
            .ok()
            .filter(|d| (1..=max).contains(d))
            .ok_or_else(|| {
                invalid(
                    "invalid_depth",
                    format!("depth must be between 1 and {max}"),
                )
            }),
    }
}

/// A non-negative integer in decimal digits without a sign or leading zeros, as this
/// API writes them; `None` for anything else (or more than a u64 holds).
fn canonical_u64(text: &[u8]) -> Option<u64> {
    let digits = !text.is_empty() && text.iter().all(u8::is_ascii_digit);
    if !digits || (text.len() > 1 && text[0] == b'0') {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `cursor`: a `next_cursor` this API issued (a positive integer); absent, the start.
pub fn cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = cursor else { return Ok(None) };
    canonical_u64(text.as_bytes())
        .and_then(|c| i64::try_from(c).ok())
        .filter(|c| *c > 0)
        .map(Some)
        .ok_or_else(|| invalid("invalid_cursor", "the cursor is not one this API issued"))
}

/// `Last-Event-ID` (SSE header) and `last_event_id` (WebSocket query): the id of the
/// last event received, a non-negative integer in decimal digits.
/// The `Last-Event-ID` header, sent at most once: two would be two readings of one
/// request (a proxy that keeps the other one would resume elsewhere), as with
/// `Authorization` and `Content-Type`.
pub fn last_event_id_header(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let mut values = headers.get_all("last-event-id").iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(invalid(
            "invalid_last_event_id",
            "send Last-Event-ID at most once",
        ));
    }
    last_event_id(first.map(|v| v.as_bytes()))
}

pub fn last_event_id(raw: Option<&[u8]>) -> Result<Option<u64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    canonical_u64(raw).map(Some).ok_or_else(|| {
        invalid(
            "invalid_last_event_id",
            "the last event id must be the id of an event received: a non-negative integer",
        )
    })
}

/// `level`: 1 to the deepest level a plan may pay.
pub fn level(level: Option<i64>) -> Result<Option<i16>, ApiError> {
    let max = schemas::plan::MAX_LEVELS;
    let Some(level) = level else { return Ok(None) };
    usize::try_from(level)
        .ok()
        .filter(|l| (1..=max).contains(l))
        .and_then(|l| i16::try_from(l).ok())
        .map(Some)
        .ok_or_else(|| {
            invalid(
                "invalid_level",
                format!("level must be between 1 and {max}"),
            )
        })
}

/// `from` and `to` of any kind (days or instants): `from` must not be after `to`.
pub fn ordered<T: PartialOrd>(from: Option<&T>, to: Option<&T>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(invalid("invalid_range", "from must not be after to")),
        _ => Ok(()),
    }
}

/// Optional `from`/`to` days: ordered, each between `FIRST_DAY` and `LAST_DAY`.
pub fn days(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<(), ApiError> {
    ordered(from.as_ref(), to.as_ref())?;
    for d in [from, to].into_iter().flatten() {
        if !(FIRST_DAY..=LAST_DAY).contains(&d) {
            return Err(invalid(
                "invalid_range",
                format!("days must lie between {FIRST_DAY} and {LAST_DAY}"),
            ));
        }
    }
    Ok(())
}

/// Optional `from`/`to` instants (history): ordered, each on a day `days` accepts, so
/// Postgres is never handed a time outside its own range (a 500, not a refusal).
pub fn instants(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    ordered(from.as_ref(), to.as_ref())?;
    days(from.map(|t| t.date_naive()), to.map(|t| t.date_naive()))
}

/// The days of a series: `to` defaults to today (UTC), `from` to 29 days before `to`;
/// as `days`, and at most `MAX_SERIES_DAYS` long.
pub fn series(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = match from {
        Some(f) => f,
        None => to.checked_sub_days(chrono::Days::new(29)).unwrap_or(to),
    };
    days(Some(from), Some(to))?;
    if (to - from).num_days() >= MAX_SERIES_DAYS {
        return Err(invalid(
            "invalid_range",
            format!("a series spans at most {MAX_SERIES_DAYS} days"),
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
#[path = "params_test.rs"]
mod tests;
