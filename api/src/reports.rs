//! Earnings reports, each one indexed read of the ledger (balances or earnings by
//! beneficiary).
use crate::{authorize, ApiError, ApiState};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::Principal;
use platform::problem::QueryParams;
use rust_decimal::Decimal;
use schemas::reports::*;
use schemas::{EntryKind, Money, UserId, CURRENCY};
use serde::{Deserialize, Serialize};

fn money(d: Decimal) -> Result<Money, ApiError> {
    Money::from_decimal(d).map_err(|e| ApiError::Internal(e.into()))
}

fn level(l: i16) -> u8 {
    u8::try_from(l).unwrap_or(u8::MAX)
}

fn user_path(id: &str) -> Result<UserId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::Invalid("invalid_user_id", "the user id is not a UUID".into()))
}

/// Parses the path id and checks the caller may read that user.
pub(crate) fn readable(who: &Principal, id: &str) -> Result<UserId, ApiError> {
    let user = user_path(id)?;
    authorize(who, user)?;
    Ok(user)
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
    ))]
pub async fn summary(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<EarningsSummary>, ApiError> {
    let user = readable(&who, &id)?;
    ensure_user(&state, user).await?;
    let rows = sqlx::query!(
        "SELECT level, total, entries FROM balances WHERE user_id = $1 ORDER BY level",
        user.as_uuid()
    )
    .fetch_all(&state.pool)
    .await?;
    let mut by_level = Vec::with_capacity(rows.len());
    for r in rows {
        by_level.push(LevelTotal {
            level: level(r.level),
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
    ))]
pub async fn by_referral(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ByReferral>, ApiError> {
    let user = readable(&who, &id)?;
    ensure_user(&state, user).await?;
    let rows = sqlx::query!(
        r#"SELECT source_user_id, level, sum(amount) AS "total!", count(*) AS "entries!"
           FROM earnings WHERE beneficiary_id = $1
           GROUP BY source_user_id, level ORDER BY 3 DESC, 1 LIMIT $2"#,
        user.as_uuid(),
        state.reports.max_page_size
    )
    .fetch_all(&state.pool)
    .await?;
    let mut referrals = Vec::with_capacity(rows.len());
    for r in rows {
        referrals.push(ReferralTotal {
            user_id: UserId(r.source_user_id),
            level: level(r.level),
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
    ))]
pub async fn by_leg(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ByLeg>, ApiError> {
    let user = readable(&who, &id)?;
    ensure_user(&state, user).await?;
    // Every current direct referral is a leg, even before it earns anything; legs
    // recorded on past entries stay even if that referral has since moved.
    let rows = sqlx::query!(
        r#"SELECT leg AS "leg!", sum(amount) AS "total!", count(entry) AS "entries!" FROM (
               SELECT leg_user_id AS leg, amount, id AS entry FROM earnings WHERE beneficiary_id = $1
               UNION ALL
               SELECT id, 0, NULL FROM users WHERE referrer_id = $1
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
    limit: Option<i64>,
    cursor: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    level: Option<i16>,
}

/// Entries newest first; pass `next_cursor` back as `cursor` for the next page.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/history", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user"), HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = HistoryPage),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, body = platform::Problem),
        (status = 422, description = "invalid_limit, invalid_cursor", body = platform::Problem),
    ))]
pub async fn history(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let user = readable(&who, &id)?;
    let limit = q.limit.unwrap_or(
        state
            .reports
            .default_page_size
            .min(state.reports.max_page_size),
    );
    if limit < 1 || limit > state.reports.max_page_size {
        return Err(ApiError::Invalid(
            "invalid_limit",
            format!(
                "limit must be between 1 and {}",
                state.reports.max_page_size
            ),
        ));
    }
    // The cursor is the ledger position of the last entry seen; pages go newest first.
    let before = match &q.cursor {
        None => i64::MAX,
        Some(c) => c.parse::<i64>().map_err(|_| {
            ApiError::Invalid(
                "invalid_cursor",
                "the cursor is not one this API issued".into(),
            )
        })?,
    };
    ensure_user(&state, user).await?;
    let rows = sqlx::query!(
        "SELECT id, seq, purchase_id, source_user_id, leg_user_id, level, kind, amount, created_at
         FROM earnings
         WHERE beneficiary_id = $1 AND seq < $2
           AND ($3::timestamptz IS NULL OR created_at >= $3)
           AND ($4::timestamptz IS NULL OR created_at < $4)
           AND ($5::smallint IS NULL OR level = $5)
         ORDER BY seq DESC LIMIT $6",
        user.as_uuid(),
        before,
        q.from,
        q.to,
        q.level,
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last_seq = None;
    for r in rows.into_iter().take(limit as usize) {
        last_seq = Some(r.seq);
        items.push(HistoryItem {
            earning_id: r.id,
            purchase_id: r.purchase_id,
            source_user_id: UserId(r.source_user_id),
            leg_user_id: UserId(r.leg_user_id),
            level: level(r.level),
            kind: EntryKind::parse(&r.kind).unwrap_or(EntryKind::Earning),
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

/// Most days one series may span.
const MAX_DAILY_SPAN_DAYS: i64 = 366;

/// A daily series (UTC days) for charts.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/daily", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user"), DailyQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DailySeries),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, body = platform::Problem),
        (status = 422, description = "invalid_range", body = platform::Problem),
    ))]
pub async fn daily(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DailyQuery>,
) -> Result<Json<DailySeries>, ApiError> {
    let user = readable(&who, &id)?;
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = q.from.unwrap_or(to - chrono::Days::new(29));
    if from > to || (to - from).num_days() >= MAX_DAILY_SPAN_DAYS {
        return Err(ApiError::Invalid(
            "invalid_range",
            format!("from must not be after to, and the span at most {MAX_DAILY_SPAN_DAYS} days"),
        ));
    }
    ensure_user(&state, user).await?;
    let rows = sqlx::query!(
        r#"SELECT (created_at AT TIME ZONE 'UTC')::date AS "day!", sum(amount) AS "total!", count(*) AS "entries!"
           FROM earnings
           WHERE beneficiary_id = $1 AND created_at >= $2::date AND created_at < ($3::date + 1)
           GROUP BY 1 ORDER BY 1"#,
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
