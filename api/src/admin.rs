//! Admin actions on the referral graph. Each writes the user row and its `user_events`
//! outbox entry in one transaction under the graph lock, so the processor's graph and
//! Postgres cannot disagree, and a refused change writes nothing.
use crate::params::{self, UserPath};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use platform::auth::Admin;
use platform::graph_writes::{self, ReferrerRefusal};
use platform::problem::JsonBody;
use platform::problem::QueryParams;
use schemas::{Plan, UserEventKind, UserId, UserStatus};
use serde::{Deserialize, Serialize};

/// Admin changes to the graph, and what the plan and dead letters hold.
pub fn routes() -> axum::Router<ApiState> {
    use axum::routing::{get, post, put};
    axum::Router::new()
        .route("/v1/admin/users/{id}/deactivate", post(deactivate))
        .route("/v1/admin/users/{id}/reactivate", post(reactivate))
        .route("/v1/admin/users/{id}/referrer", put(move_user))
        .route("/v1/admin/users/{id}/tokens/revoke", post(revoke_tokens))
        .route("/v1/admin/plan", get(plan))
        .route("/v1/admin/dead-letters", get(dead_letters))
}

#[derive(Serialize, utoipa::ToSchema)]
/// A user's place in the graph after an admin change.
pub struct UserState {
    id: UserId,
    referrer_id: Option<UserId>,
    status: UserStatus,
}

#[utoipa::path(post, path = "/v1/admin/users/{id}/deactivate", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserState),
        (status = 403, description = "admins only", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_query", body = platform::Problem),
    ))]
pub async fn deactivate(
    state: State<ApiState>,
    _: Admin,
    id: UserPath,
    _: platform::problem::NoQuery,
) -> Result<Json<UserState>, ApiError> {
    set_status(state, id, UserStatus::Inactive).await
}

#[utoipa::path(post, path = "/v1/admin/users/{id}/reactivate", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserState),
        (status = 403, description = "admins only", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_query", body = platform::Problem),
    ))]
pub async fn reactivate(
    state: State<ApiState>,
    _: Admin,
    id: UserPath,
    _: platform::problem::NoQuery,
) -> Result<Json<UserState>, ApiError> {
    set_status(state, id, UserStatus::Active).await
}

#[derive(Serialize, utoipa::ToSchema)]
/// Every token of the user issued at or before `not_before` is refused (within
/// `[auth] revocations_refresh_ms` on every instance); one issued later passes.
pub struct TokensRevoked {
    user_id: UserId,
    not_before: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(post, path = "/v1/admin/users/{id}/tokens/revoke", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TokensRevoked),
        (status = 403, description = "admins only", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_query", body = platform::Problem),
    ))]
pub async fn revoke_tokens(
    State(state): State<ApiState>,
    _: Admin,
    UserPath(user): UserPath,
    _: platform::problem::NoQuery,
) -> Result<Json<TokensRevoked>, ApiError> {
    crate::reports::ensure_user(&state, user).await?;
    let subject = platform::auth::Principal::User(user).key();
    let not_before = platform::auth::revocations::revoke(&state.pool, &subject).await?;
    tracing::info!("a user's tokens revoked");
    Ok(Json(TokensRevoked {
        user_id: user,
        not_before,
    }))
}

/// Reactivation pays nothing retroactively: purchases settled while inactive stay as paid.
async fn set_status(
    State(state): State<ApiState>,
    UserPath(user): UserPath,
    status: UserStatus,
) -> Result<Json<UserState>, ApiError> {
    let (_turn, mut tx) = state.graph_writes.begin(&state.pool, "admin").await?;
    let row = sqlx::query!(
        "SELECT referrer_id, status FROM users WHERE id = $1 FOR UPDATE",
        user.as_uuid()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("user"))?;
    let referrer = row.referrer_id.map(UserId);
    if row.status.parse::<UserStatus>()? != status {
        sqlx::query!(
            "UPDATE users SET status = $2 WHERE id = $1",
            user.as_uuid(),
            status.as_str()
        )
        .execute(&mut *tx)
        .await?;
        let kind = match status {
            UserStatus::Active => UserEventKind::Reactivated,
            UserStatus::Inactive => UserEventKind::Deactivated,
        };
        graph_writes::record(&mut tx, user, kind, referrer, status).await?;
    }
    tx.commit().await?;
    tracing::info!(user_id = %user, %status, "user status set");
    Ok(Json(UserState {
        id: user,
        referrer_id: referrer,
        status,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    referrer_id: Option<UserId>,
}

/// Re-parents a user. Refused: self-referral, unknown or inactive referrer, a referrer
/// at its limit, or a move under one's own downline (a cycle).
#[utoipa::path(put, path = "/v1/admin/users/{id}/referrer", tag = "admin", request_body = MoveRequest,
    params(("id" = uuid::Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserState),
        (status = 403, description = "admins only", body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 409, description = "referral_limit_reached, cycle_detected", body = platform::Problem),
        (status = 422, description = "invalid_user_id, self_referral, referrer_not_found, referrer_inactive, invalid_body, invalid_query", body = platform::Problem),
    ))]
pub async fn move_user(
    State(state): State<ApiState>,
    _: Admin,
    UserPath(user): UserPath,
    _: platform::problem::NoQuery,
    JsonBody(req): JsonBody<MoveRequest>,
) -> Result<Json<UserState>, ApiError> {
    let (_turn, mut tx) = state.graph_writes.begin(&state.pool, "admin").await?;
    let row = sqlx::query!(
        "SELECT referrer_id, status FROM users WHERE id = $1 FOR UPDATE",
        user.as_uuid()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("user"))?;
    let status: UserStatus = row.status.parse()?;
    let new = req.referrer_id;
    if row.referrer_id.map(UserId) == new {
        return Ok(Json(UserState {
            id: user,
            referrer_id: new,
            status,
        }));
    }
    if let Some(r) = new {
        check_new_referrer(&mut tx, user, r, state.plan.max_direct_referrals()).await?;
    }
    if let Some(old) = row.referrer_id {
        graph_writes::release_referrer(&mut tx, UserId(old)).await?;
    }
    sqlx::query!(
        "UPDATE users SET referrer_id = $2 WHERE id = $1",
        user.as_uuid(),
        new.map(UserId::as_uuid)
    )
    .execute(&mut *tx)
    .await?;
    graph_writes::record(&mut tx, user, UserEventKind::Moved, new, status).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user, "user moved");
    Ok(Json(UserState {
        id: user,
        referrer_id: new,
        status,
    }))
}

/// Takes the new referrer (locked, known, active, below its limit: the same check as at
/// signup) and checks the move: not oneself, and not inside the user's own downline (a
/// cycle).
async fn check_new_referrer(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user: UserId,
    r: UserId,
    max_direct: u8,
) -> Result<(), ApiError> {
    if r == user {
        return Err(ApiError::Invalid(
            "self_referral",
            "a user cannot refer themself".into(),
        ));
    }
    graph_writes::take_referrer(tx, r, max_direct, None)
        .await?
        .map_err(|refusal: ReferrerRefusal| ApiError::Problem(refusal.problem()))?;
    let cycle = sqlx::query_scalar!(
        r#"WITH RECURSIVE up AS (
               SELECT id, referrer_id, 0 AS hops FROM users WHERE id = $1
               UNION ALL
               SELECT u.id, u.referrer_id, up.hops + 1 FROM users u JOIN up ON u.id = up.referrer_id
               WHERE up.hops < 100000
           )
           SELECT EXISTS (SELECT 1 FROM up WHERE id = $2) AS "cycle!""#,
        r.as_uuid(),
        user.as_uuid()
    )
    .fetch_one(&mut **tx)
    .await?;
    if cycle {
        return Err(ApiError::Conflict(
            "cycle_detected",
            "the new referrer is in this user's downline; the move would make a cycle".into(),
        ));
    }
    Ok(())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Plans {
    current: Plan,
    versions: Vec<Plan>,
}

#[utoipa::path(get, path = "/v1/admin/plan", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Plans),
        (status = 403, description = "admins only", body = platform::Problem),
        (status = 422, description = "invalid_query", body = platform::Problem),
    ))]
pub async fn plan(
    State(state): State<ApiState>,
    _: Admin,
    _: platform::problem::NoQuery,
) -> Result<Json<Plans>, ApiError> {
    let rows = sqlx::query_scalar!("SELECT body FROM plans ORDER BY version")
        .fetch_all(&state.pool)
        .await?;
    let versions = rows
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<Vec<Plan>, _>>()
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(Plans {
        current: (*state.plan).clone(),
        versions,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// Dead letters per page (default `[reports] default_page_size`, at most `max_page_size`).
    #[param(minimum = 1)]
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterItem {
    id: i64,
    subject: String,
    reason: String,
    detail: String,
    stream_seq: i64,
    at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    items: Vec<DeadLetterItem>,
    next_cursor: Option<i64>,
}

#[utoipa::path(get, path = "/v1/admin/dead-letters", tag = "admin",
    params(DeadLetterQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DeadLetterPage),
        (status = 403, description = "admins only", body = platform::Problem),
        (status = 422, description = "invalid_limit, invalid_cursor, invalid_query", body = platform::Problem),
    ))]
pub async fn dead_letters(
    State(state): State<ApiState>,
    _: Admin,
    QueryParams(q): QueryParams<DeadLetterQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let limit = params::page_limit(q.limit, &state.reports)?;
    let before = params::cursor(q.cursor.as_deref())?.unwrap_or(i64::MAX);
    let items = sqlx::query_as!(
        DeadLetterItem,
        "SELECT id, subject, reason, detail, stream_seq, at FROM dead_letters WHERE id < $1 ORDER BY id DESC LIMIT $2",
        before,
        limit
    )
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = if items.len() as i64 == limit {
        items.last().map(|i| i.id)
    } else {
        None
    };
    Ok(Json(DeadLetterPage { items, next_cursor }))
}
