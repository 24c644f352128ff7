//! A user's entries newest first, a page at a time. The walk is the index of
//! `(beneficiary_id, user_seq)`; a time range first narrows it to the positions the range
//! can hold, read from the daily rollup's lowest and highest position per day (migration
//! 0010), so a range far in the past costs a page, not every newer entry.
use super::{level, money};
use crate::params::{self, ReadableUser};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use platform::problem::QueryParams;
use rust_decimal::Decimal;
use schemas::reports::*;
use schemas::{EntryKind, UserId};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Entries per page (default `[reports] default_page_size`, at most `max_page_size`).
    #[param(minimum = 1)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    #[serde(default, deserialize_with = "platform::wire_time::opt_instant")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "platform::wire_time::opt_instant")]
    to: Option<DateTime<Utc>>,
    /// Only entries of this level (1 is a direct referral's purchase; at most the plan's depth).
    #[param(minimum = 1)]
    level: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    id: uuid::Uuid,
    user_seq: i64,
    purchase_id: uuid::Uuid,
    source_user_id: uuid::Uuid,
    leg_user_id: uuid::Uuid,
    level: i16,
    kind: String,
    amount: Decimal,
    created_at: DateTime<Utc>,
}

/// Entries newest first; pass `next_cursor` back as `cursor` for the next page.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/history", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user"), HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = HistoryPage),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_limit, invalid_cursor, invalid_level, invalid_range, invalid_query", body = platform::Problem),
    ))]
pub async fn history(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = params::page_limit(q.limit, &state.reports)?;
    // The cursor is the ledger position of the last entry seen; pages go newest first.
    let before = params::cursor(q.cursor.as_deref())?.unwrap_or(i64::MAX);
    let only_level = params::level(q.level)?;
    params::instants(q.from, q.to)?;
    let _place = state.read_lanes.take_for(user).await?;
    if let Some(level) = only_level {
        if !paid_at(&state, user, level).await? {
            return Ok(Json(empty_page()));
        }
    }
    let Some(window) = Window::of(&state, user, q.from, q.to).await? else {
        return Ok(Json(empty_page()));
    };
    let before = before.min(window.below);
    let filtered = only_level.is_some() || q.from.is_some() || q.to.is_some();
    let floor = scan_floor(&state, user, before, &window, filtered).await?;
    // Planned with its values each time (an unnamed statement, so checked by the e2e tests
    // rather than the macro): a cached generic plan cannot drop the unused filters, and
    // would read every entry of the user to sort them instead of the newest page.
    let rows: Vec<HistoryRow> = sqlx::query_as(crate::HISTORY_PAGE_SQL)
        .bind(user.as_uuid())
        .bind(before)
        .bind(q.from)
        .bind(q.to)
        .bind(only_level)
        .bind(limit + 1)
        .bind(floor)
        .persistent(false)
        .fetch_all(&state.pool)
        .await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last_seq = None;
    for r in rows.into_iter().take(limit as usize) {
        last_seq = Some(r.user_seq);
        items.push(HistoryItem {
            earning_id: r.id,
            purchase_id: r.purchase_id,
            source_user_id: UserId(r.source_user_id),
            leg_user_id: UserId(r.leg_user_id),
            level: level(r.level)?,
            kind: r.kind.parse::<EntryKind>()?,
            amount: money(r.amount)?,
            created_at: r.created_at,
        });
    }
    let next_cursor = if more {
        last_seq.map(|s| s.to_string())
    } else if floor > window.from {
        // The walk stopped at its bound, not at the start: older positions remain.
        Some(floor.to_string())
    } else {
        None
    };
    Ok(Json(HistoryPage { items, next_cursor }))
}

fn empty_page() -> HistoryPage {
    HistoryPage {
        items: Vec::new(),
        next_cursor: None,
    }
}

/// Whether the user has entries at `level` (their balance row for it counts them). A
/// level they were never paid at has none to page through, and the walk along the ledger
/// that filters on the level would otherwise read every entry they have looking for one:
/// a user asking for `level=16` could keep Postgres busy with requests about their own data.
async fn paid_at(state: &ApiState, user: UserId, level: i16) -> Result<bool, ApiError> {
    let entries = sqlx::query_scalar!(
        "SELECT entries FROM balances WHERE user_id = $1 AND level = $2",
        user.as_uuid(),
        level
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(entries.is_some_and(|n| n > 0))
}

/// The lowest position this page walks down to: the window's start, or, for a filtered
/// page (whose filter may skip any number of entries), at most `history_max_scan`
/// positions below `before`, so a page costs the same however rare its matches are.
async fn scan_floor(
    state: &ApiState,
    user: UserId,
    before: i64,
    window: &Window,
    filtered: bool,
) -> Result<i64, ApiError> {
    if !filtered {
        return Ok(window.from);
    }
    // Walk down from the user's newest position, whatever the cursor says, so the stretch
    // walked always holds entries. A time range's window ends there already (`before` is
    // at most its end); without one, read it (one row, read backward).
    let top = if window.below < i64::MAX {
        before
    } else {
        let head = sqlx::query_scalar!(
            "SELECT max(user_seq) FROM earnings WHERE beneficiary_id = $1",
            user.as_uuid()
        )
        .fetch_one(&state.pool)
        .await?;
        before.min(head.map_or(window.from, |h| h.saturating_add(1)))
    };
    let bound = state.reports.history_max_scan;
    Ok(window.from.max(top.saturating_sub(bound)))
}

/// The positions an entry in the time range can have: `from..below`. Bounds, not the
/// range itself: a day's lowest and highest position cover every entry of that day
/// whatever the order of positions and times, so the time filter still decides.
struct Window {
    from: i64,
    below: i64,
}

impl Window {
    /// `None` when no entry can be in the range (no day of the user's ledger overlaps it).
    async fn of(
        state: &ApiState,
        user: UserId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<Window>, ApiError> {
        if from.is_none() && to.is_none() {
            return Ok(Some(Window {
                from: 1,
                below: i64::MAX,
            }));
        }
        // `to` is exclusive, so its own day can hold entries before it.
        let r = sqlx::query!(
            r#"SELECT
                 (SELECT min(first_seq) FROM earnings_daily
                  WHERE beneficiary_id = $1 AND ($2::timestamptz IS NULL OR day >= ($2 AT TIME ZONE 'UTC')::date)) AS "first?",
                 (SELECT max(last_seq) FROM earnings_daily
                  WHERE beneficiary_id = $1 AND ($3::timestamptz IS NULL OR day <= ($3 AT TIME ZONE 'UTC')::date)) AS "last?""#,
            user.as_uuid(),
            from,
            to
        )
        .fetch_one(&state.pool)
        .await?;
        Ok(match (r.first, r.last) {
            (Some(first), Some(last)) if first <= last => Some(Window {
                from: first,
                below: last.saturating_add(1),
            }),
            _ => None,
        })
    }
}
