//! Analytics from the ClickHouse warehouse: admin views (top earners, purchases per shop
//! per day, conversion of referred users) and a user's own (earnings over time, levels,
//! legs). Rollups are read with sum() GROUP BY. ClickHouse 18.16 has no query
//! parameters, so SQL is built only from parsed values: UUIDs, dates and integers.
mod bodies;
mod shared;
mod warehouse;

pub use bodies::*;
pub use shared::SharedAnswers;

use crate::params::{self, ReadableUser};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use platform::auth::Admin;
use platform::problem::QueryParams;
use platform::Problem;
use rust_decimal::Decimal;
use serde::Deserialize;
use warehouse::{query, shared_answer};

/// Warehouse reports: program-wide for admins, per user for the user or an admin.
pub fn routes() -> axum::Router<ApiState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/analytics/top-earners", get(top_earners))
        .route("/v1/analytics/purchases-per-shop", get(purchases_per_shop))
        .route("/v1/analytics/conversion", get(conversion))
        .route(
            "/v1/users/{id}/analytics/earnings-over-time",
            get(earnings_over_time),
        )
        .route("/v1/users/{id}/analytics/levels", get(levels))
        .route("/v1/users/{id}/analytics/legs", get(legs))
}

/// Most shop-day rows one answer carries (`truncated` says when there were more).
const MAX_SHOP_DAYS: usize = 10_000;

/// Top earners by net earnings (reversals subtracted); all time unless a range is given.
#[utoipa::path(get, path = "/v1/analytics/top-earners", tag = "analytics", params(TopQuery),
    security(("bearer" = [])),
    responses((status = 200, body = TopEarners), (status = 403, body = Problem),
        (status = 422, description = "invalid_limit, invalid_range, invalid_query", body = Problem),
        (status = 503, description = "analytics_disabled, analytics_unavailable", body = Problem)))]
pub async fn top_earners(
    State(state): State<ApiState>,
    _: Admin,
    QueryParams(q): QueryParams<TopQuery>,
) -> Result<Response, ApiError> {
    let limit = params::page_limit(q.limit, &state.reports)?;
    let days = day_filter(q.from, q.to)?;
    let sql = |db: &str| {
        format!(
        "SELECT toString(beneficiary_id) AS user_id, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_level WHERE 1 {days}
         GROUP BY beneficiary_id ORDER BY sum(amount) DESC, beneficiary_id LIMIT {limit}"
    )
    };
    shared_answer(&state, sql, |earners| TopEarners {
        from: q.from,
        to: q.to,
        earners,
    })
    .await
}

/// Purchases, qualifying purchases and amount per shop per UTC day (of the purchase).
#[utoipa::path(get, path = "/v1/analytics/purchases-per-shop", tag = "analytics",
    params(RangeQuery), security(("bearer" = [])),
    responses((status = 200, body = PurchasesPerShop), (status = 403, body = Problem),
        (status = 422, description = "invalid_range, invalid_query", body = Problem),
        (status = 503, description = "analytics_disabled, analytics_unavailable", body = Problem)))]
pub async fn purchases_per_shop(
    State(state): State<ApiState>,
    _: Admin,
    QueryParams(q): QueryParams<RangeQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = params::series(q.from, q.to)?;
    let days = day_filter(Some(from), Some(to))?;
    let sql = |db: &str| {
        format!(
            "SELECT day, shop_id, sum(purchases) AS purchases,
                sum(qualifying) AS qualifying, toString(sum(amount)) AS amount
         FROM {db}.purchases_daily_by_shop WHERE 1 {days}
         GROUP BY day, shop_id ORDER BY day, shop_id LIMIT {}",
            MAX_SHOP_DAYS + 1
        )
    };
    shared_answer(&state, sql, |mut rows: Vec<ShopDay>| {
        let truncated = rows.len() > MAX_SHOP_DAYS;
        rows.truncate(MAX_SHOP_DAYS);
        PurchasesPerShop {
            from,
            to,
            days: rows,
            truncated,
        }
    })
    .await
}

/// The share of referred users (a referrer now) with at least one qualifying purchase.
#[utoipa::path(get, path = "/v1/analytics/conversion", tag = "analytics",
    security(("bearer" = [])),
    responses((status = 200, body = Conversion), (status = 403, body = Problem),
        (status = 422, description = "invalid_query", body = Problem),
        (status = 503, description = "analytics_disabled, analytics_unavailable", body = Problem)))]
pub async fn conversion(
    State(state): State<ApiState>,
    _: Admin,
    _: platform::problem::NoQuery,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Counts {
        referred_users: u64,
        converted_users: u64,
    }
    // argMax takes each user's latest graph event; a Nullable argument would skip the
    // NULL of a user moved to no referrer, so it compares isNotNull() instead.
    let sql = |db: &str| {
        format!(
        "SELECT count() AS referred_users,
                countIf(user_id IN (SELECT user_id FROM {db}.purchase_events WHERE qualifying = 1)) AS converted_users
         FROM (SELECT user_id, argMax(isNotNull(referrer_id), seq) AS referred
               FROM {db}.user_events GROUP BY user_id HAVING referred = 1)"
    )
    };
    shared_answer(&state, sql, |counts: Vec<Counts>| {
        let (referred, converted) = counts
            .first()
            .map_or((0, 0), |c| (c.referred_users, c.converted_users));
        let rate = if referred == 0 {
            Decimal::ZERO
        } else {
            Decimal::from(converted) / Decimal::from(referred)
        };
        Conversion {
            referred_users: referred,
            converted_users: converted,
            rate: format!("{:.4}", rate.round_dp(4)),
        }
    })
    .await
}

/// A user's net earnings per UTC day and level (default: the last 30 days).
#[utoipa::path(get, path = "/v1/users/{id}/analytics/earnings-over-time", tag = "analytics",
    params(("id" = uuid::Uuid, Path, description = "the user"), RangeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = EarningsOverTime), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "invalid_range, invalid_query", body = Problem),
        (status = 503, description = "analytics_disabled, analytics_unavailable", body = Problem)))]
pub async fn earnings_over_time(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    QueryParams(q): QueryParams<RangeQuery>,
) -> Result<Json<EarningsOverTime>, ApiError> {
    let (from, to) = params::series(q.from, q.to)?;
    let days = day_filter(Some(from), Some(to))?;
    let points = query(&state, |db| {
        format!(
            "SELECT day, level, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_level WHERE beneficiary_id = toUUID('{user}') {days}
         GROUP BY day, level ORDER BY day, level"
        )
    })
    .await?;
    Ok(Json(EarningsOverTime {
        user_id: user,
        from,
        to,
        points,
    }))
}

/// A user's net earnings per referral level; all time unless a range is given.
#[utoipa::path(get, path = "/v1/users/{id}/analytics/levels", tag = "analytics",
    params(("id" = uuid::Uuid, Path, description = "the user"), RangeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Levels), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "invalid_range, invalid_query", body = Problem),
        (status = 503, description = "analytics_disabled, analytics_unavailable", body = Problem)))]
pub async fn levels(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    QueryParams(q): QueryParams<RangeQuery>,
) -> Result<Json<Levels>, ApiError> {
    let days = day_filter(q.from, q.to)?;
    let levels = query(&state, |db| {
        format!(
            "SELECT level, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_level WHERE beneficiary_id = toUUID('{user}') {days}
         GROUP BY level ORDER BY level"
        )
    })
    .await?;
    Ok(Json(Levels {
        user_id: user,
        levels,
    }))
}

/// A user's net earnings per leg (direct referral whose subtree bought), largest first.
#[utoipa::path(get, path = "/v1/users/{id}/analytics/legs", tag = "analytics",
    params(("id" = uuid::Uuid, Path, description = "the user"), RangeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Legs), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "invalid_range, invalid_query", body = Problem),
        (status = 503, description = "analytics_disabled, analytics_unavailable", body = Problem)))]
pub async fn legs(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    QueryParams(q): QueryParams<RangeQuery>,
) -> Result<Json<Legs>, ApiError> {
    let days = day_filter(q.from, q.to)?;
    let limit = state.reports.max_page_size;
    let legs = query(&state, |db| {
        format!(
            "SELECT leg_user_id, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_leg WHERE beneficiary_id = toUUID('{user}') {days}
         GROUP BY leg_user_id ORDER BY sum(amount) DESC, leg_user_id LIMIT {limit}"
        )
    })
    .await?;
    Ok(Json(Legs {
        user_id: user,
        legs,
    }))
}

/// ` AND day >= toDate('…') AND day <= toDate('…')` for the bounds given (inclusive).
/// The days are checked first (`params::days`): only parsed, bounded dates reach the SQL.
fn day_filter(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<String, ApiError> {
    params::days(from, to)?;
    let mut sql = String::new();
    for (op, day) in [(">=", from), ("<=", to)] {
        let Some(day) = day else { continue };
        sql.push_str(&format!(" AND day {op} toDate('{day}')"));
    }
    Ok(sql)
}
