//! Earnings reports, each one indexed read by beneficiary: totals from `balances`, history
//! from `earnings`, and the rest from the rollups kept beside the entries (migration 0004),
//! so no report's cost grows with the number of entries a user has.
use crate::params::{self, ReadableUser};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::Principal;
use platform::problem::QueryParams;
use rust_decimal::Decimal;
use schemas::reports::*;
use schemas::{EntryKind, Money, UserId, CURRENCY};
use serde::{Deserialize, Serialize};

/// The earnings reports of one user.
pub fn routes() -> axum::Router<ApiState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/me", get(me))
        .route("/v1/users/{id}/earnings", get(summary))
        .route("/v1/users/{id}/earnings/by-referral", get(by_referral))
        .route("/v1/users/{id}/earnings/by-leg", get(by_leg))
        .route("/v1/users/{id}/earnings/history", get(history))
        .route("/v1/users/{id}/earnings/daily", get(daily))
}

fn money(d: Decimal) -> Result<Money, ApiError> {
    Money::from_decimal(d).map_err(|e| ApiError::Internal(e.into()))
}

/// A stored level outside `u8` means the database and the code disagree: an error.
fn level(l: i16) -> Result<u8, ApiError> {
    u8::try_from(l).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored level {l}: {e}")))
}

pub(crate) async fn ensure_user(state: &ApiState, user: UserId) -> Result<(), ApiError> {
    let exists = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
        user.as_uuid()
    )
    .fetch_one(&state.pool)
    .await?;
    if exists == Some(true) {
        Ok(())
    } else {
        Err(ApiError::NotFound("user"))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    user_id: Option<UserId>,
    role: &'static str,
}

/// Who the bearer is.
#[utoipa::path(get, path = "/v1/me", tag = "reports", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = platform::Problem)))]
pub async fn me(who: Principal) -> Json<Me> {
    let user_id = match who {
        Principal::User(u) => Some(u),
        _ => None,
    };
    Json(Me {
        user_id,
        role: who.kind(),
    })
}

/// Totals, overall and by level.
#[utoipa::path(get, path = "/v1/users/{id}/earnings", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = EarningsSummary),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, description = "forbidden", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id", body = platform::Problem),
    ))]
pub async fn summary(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
) -> Result<Json<EarningsSummary>, ApiError> {
    let rows = sqlx::query!(
        "SELECT level, total, entries FROM balances WHERE user_id = $1 ORDER BY level",
        user.as_uuid()
    )
    .fetch_all(&state.pool)
    .await?;
    let mut by_level = Vec::with_capacity(rows.len());
    for r in rows {
        by_level.push(LevelTotal {
            level: level(r.level)?,
            total: money(r.total)?,
            entries: r.entries,
        });
    }
    let total = by_level.iter().map(|l| l.total).sum();
    Ok(Json(EarningsSummary {
        user_id: user,
        currency: CURRENCY.into(),
        total,
        by_level,
    }))
}

/// Per downline user and level.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/by-referral", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ByReferral),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, description = "forbidden", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_query", body = platform::Problem),
    ))]
pub async fn by_referral(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
) -> Result<Json<ByReferral>, ApiError> {
    let rows = sqlx::query!(
        r#"SELECT source_user_id, level, sum(total) AS "total!", sum(entries)::bigint AS "entries!"
           FROM earnings_by_source WHERE beneficiary_id = $1
           GROUP BY source_user_id, level ORDER BY 3 DESC, 1, 2 LIMIT $2"#,
        user.as_uuid(),
        state.reports.max_page_size
    )
    .fetch_all(&state.pool)
    .await?;
    let mut referrals = Vec::with_capacity(rows.len());
    for r in rows {
        referrals.push(ReferralTotal {
            user_id: UserId(r.source_user_id),
            level: level(r.level)?,
            total: money(r.total)?,
            entries: r.entries,
        });
    }
    Ok(Json(ByReferral {
        user_id: user,
        referrals,
    }))
}

/// Per direct referral: what that whole subtree earned this user.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/by-leg", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ByLeg),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, description = "forbidden", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_query", body = platform::Problem),
    ))]
pub async fn by_leg(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
) -> Result<Json<ByLeg>, ApiError> {
    // Every current direct referral is a leg, even before it earns anything; legs
    // recorded on past entries stay even if that referral has since moved.
    let rows = sqlx::query!(
        r#"SELECT leg AS "leg!", sum(total) AS "total!", sum(entries)::bigint AS "entries!" FROM (
               SELECT leg_user_id AS leg, total, entries FROM earnings_by_source WHERE beneficiary_id = $1
               UNION ALL
               SELECT id, 0, 0 FROM users WHERE referrer_id = $1
           ) legs GROUP BY leg ORDER BY 2 DESC, 1 LIMIT $2"#,
        user.as_uuid(),
        state.reports.max_page_size
    )
    .fetch_all(&state.pool)
    .await?;
    let mut legs = Vec::with_capacity(rows.len());
    for r in rows {
        legs.push(LegTotal {
            leg_user_id: UserId(r.leg),
            total: money(r.total)?,
            entries: r.entries,
        });
    }
    Ok(Json(ByLeg {
        user_id: user,
        legs,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Entries per page (default `[reports] default_page_size`, at most `max_page_size`).
    #[param(minimum = 1)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    from: Option<DateTime<Utc>>,
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
    params::ordered(q.from.as_ref(), q.to.as_ref())?;
    // Planned with its values each time (an unnamed statement, so checked by the e2e tests
    // rather than the macro): a cached generic plan cannot drop the unused filters, and
    // would read every entry of the user to sort them instead of the newest page.
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT id, user_seq, purchase_id, source_user_id, leg_user_id, level, kind, amount, created_at
         FROM earnings
         WHERE beneficiary_id = $1 AND user_seq < $2
           AND ($3::timestamptz IS NULL OR created_at >= $3)
           AND ($4::timestamptz IS NULL OR created_at < $4)
           AND ($5::smallint IS NULL OR level = $5)
         ORDER BY user_seq DESC LIMIT $6",
    )
    .bind(user.as_uuid())
    .bind(before)
    .bind(q.from)
    .bind(q.to)
    .bind(only_level)
    .bind(limit + 1)
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
    } else {
        None
    };
    Ok(Json(HistoryPage { items, next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DailyQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// A daily series (UTC days) for charts.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/daily", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user"), DailyQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DailySeries),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_range, invalid_query", body = platform::Problem),
    ))]
pub async fn daily(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    QueryParams(q): QueryParams<DailyQuery>,
) -> Result<Json<DailySeries>, ApiError> {
    let (from, to) = params::series(q.from, q.to)?;
    let rows = sqlx::query!(
        "SELECT day, total, entries FROM earnings_daily
         WHERE beneficiary_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day",
        user.as_uuid(),
        from,
        to
    )
    .fetch_all(&state.pool)
    .await?;
    let mut points = Vec::with_capacity(rows.len());
    for r in rows {
        points.push(DailyPoint {
            day: r.day,
            total: money(r.total)?,
            entries: r.entries,
        });
    }
    Ok(Json(DailySeries {
        user_id: user,
        points,
    }))
}
