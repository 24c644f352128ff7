//! Earnings reports, each one indexed read by beneficiary: totals from `balances`, history
//! from `earnings`, and the rest from the rollups kept beside the entries (migration 0004),
//! so no report's cost grows with the number of entries a user has.
use crate::params::{self, ReadableUser};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use platform::auth::Principal;
use platform::problem::{NoQuery, QueryParams};
use rust_decimal::Decimal;
use schemas::reports::*;
use schemas::{Money, UserId, CURRENCY};
use serde::{Deserialize, Serialize};

pub mod history;
use history::history;

/// The earnings reports of one user.
/// Who the bearer is: no database read, so it does not wait for a report's place.
pub fn me_route() -> axum::Router<ApiState> {
    axum::Router::new().route("/v1/me", axum::routing::get(me))
}

pub fn routes() -> axum::Router<ApiState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/users/{id}/earnings", get(summary))
        .route("/v1/users/{id}/earnings/by-referral", get(by_referral))
        .route("/v1/users/{id}/earnings/by-leg", get(by_leg))
        .route("/v1/users/{id}/earnings/history", get(history))
        .route("/v1/users/{id}/earnings/daily", get(daily))
}

pub(crate) fn money(d: Decimal) -> Result<Money, ApiError> {
    Money::from_decimal(d).map_err(|e| ApiError::Internal(e.into()))
}

/// A stored level outside `u8` means the database and the code disagree: an error.
pub(crate) fn level(l: i16) -> Result<u8, ApiError> {
    u8::try_from(l).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored level {l}: {e}")))
}

/// The user exists: known in memory, or found in Postgres (and then known).
pub(crate) async fn ensure_user(state: &ApiState, user: UserId) -> Result<(), ApiError> {
    if state.known_users.contains(user) {
        return Ok(());
    }
    let exists = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
        user.as_uuid()
    )
    .fetch_one(&state.pool)
    .await?;
    if exists == Some(true) {
        state.known_users.insert(user);
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
    responses((status = 200, body = Me), (status = 401, body = platform::Problem),
        (status = 422, description = "invalid_query", body = platform::Problem)))]
pub async fn me(who: Principal, _: NoQuery) -> Json<Me> {
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
        (status = 422, description = "invalid_user_id, invalid_query", body = platform::Problem),
    ))]
pub async fn summary(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    _: NoQuery,
) -> Result<Json<EarningsSummary>, ApiError> {
    let _place = state.read_lanes.take_for(user).await?;
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
    _: NoQuery,
) -> Result<Json<ByReferral>, ApiError> {
    let _place = state.read_lanes.take_for(user).await?;
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
    _: NoQuery,
) -> Result<Json<ByLeg>, ApiError> {
    let _place = state.read_lanes.take_for(user).await?;
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
pub struct DailyQuery {
    #[serde(default, deserialize_with = "platform::wire_time::opt_date")]
    from: Option<NaiveDate>,
    #[serde(default, deserialize_with = "platform::wire_time::opt_date")]
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
    let _place = state.read_lanes.take_for(user).await?;
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
