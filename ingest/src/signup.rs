//! Signup: the referrer is checked under a row lock, so the 8-referral limit holds
//! under any concurrency (no count-then-insert race).
use crate::error::IngestError;
use crate::IngestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use platform::auth::{Principal, Signer};
use platform::graph_writes;
use platform::problem::JsonBody;
use schemas::{UserEventKind, UserId, UserStatus};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

pub fn routes() -> axum::Router<IngestState> {
    axum::Router::new().route("/v1/users", axum::routing::post(create_user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[serde(default)]
    pub referrer_id: Option<UserId>,
    /// The shop's own reference for this customer; makes a retried signup idempotent
    /// (1 to 128 bytes).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    pub external_ref: Option<String>,
    /// A pseudonym shown to the user's upline instead of the id (1 to 40 characters, no
    /// surrounding spaces, no control or format (Unicode Cf) characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 40)]
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    pub id: UserId,
    pub referrer_id: Option<UserId>,
    pub status: UserStatus,
}

/// Signs up a user, optionally under a referrer (at most 8 direct referrals each).
#[utoipa::path(post, path = "/v1/users", tag = "ingest", request_body = SignupRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created", body = UserCreated),
        (status = 200, description = "a retry with the same external_ref", body = UserCreated),
        (status = 403, description = "forbidden: users do not sign others up", body = platform::Problem),
        (status = 409, description = "referral_limit_reached, external_ref_conflict", body = platform::Problem),
        (status = 422, description = "referrer_not_found, referrer_inactive, invalid_body, invalid_query", body = platform::Problem),
    ))]
pub async fn create_user(
    State(state): State<IngestState>,
    Signer(who): Signer,
    _: platform::problem::NoQuery,
    JsonBody(req): JsonBody<SignupRequest>,
) -> Result<(StatusCode, Json<UserCreated>), IngestError> {
    check_fields(&req)?;
    let ref_hash = req
        .external_ref
        .as_deref()
        .map(|r| pseudonymous_ref(&state.pseudonym_key, &who, r));
    let (created, user) = in_turn(&state, who, req, ref_hash).await?;
    Ok((created, Json(user)))
}

/// `write` in the caller's graph-write turn, on a task of its own: a request given up at
/// its deadline drops this future, but its statement may still be waiting on the graph's
/// lock (until its `statement_timeout`), and the next signup must not take another
/// connection meanwhile, so the task keeps the turn until its transaction has ended. A
/// request given up writes nothing: while it waits for its turn the task ends with it, and
/// a transaction under way is rolled back, not committed (the caller was answered 503 and
/// may retry; a signup without `external_ref` committed then would be a second user).
async fn in_turn(
    state: &IngestState,
    who: Principal,
    req: SignupRequest,
    ref_hash: Option<Vec<u8>>,
) -> Result<(StatusCode, UserCreated), IngestError> {
    let state = state.clone();
    let gone = tokio_util::sync::CancellationToken::new();
    let _asking = gone.clone().drop_guard();
    tokio::spawn(async move {
        let caller = who.key();
        let turn = tokio::select! {
            turn = state.graph_writes.turn(&caller) => turn,
            _ = gone.cancelled() => return Err(request_gone()),
        };
        let written = write(&state, who, &req, ref_hash.as_deref(), &gone).await;
        drop(turn);
        written
    })
    .await
    .map_err(|e| IngestError::Internal(anyhow::anyhow!("signup task: {e}")))?
}

/// The signup's transaction (in its turn): a retry answered with its user, or the referrer
/// taken and the user recorded.
async fn write(
    state: &IngestState,
    who: Principal,
    req: &SignupRequest,
    ref_hash: Option<&[u8]>,
    gone: &tokio_util::sync::CancellationToken,
) -> Result<(StatusCode, UserCreated), IngestError> {
    let mut tx = platform::db::GraphWrites::open(&state.pool).await?;
    if let Some(existing) = existing_signup(&mut tx, req, ref_hash).await? {
        return Ok((StatusCode::OK, existing));
    }
    if let Some(referrer) = req.referrer_id {
        let cap = match who {
            Principal::Shop(shop) => Some(graph_writes::ShopCap {
                shop,
                under_others: state.referrals_per_shop_under_others,
            }),
            _ => None,
        };
        let max_direct = state.plan.max_direct_referrals();
        graph_writes::take_referrer(&mut tx, referrer, max_direct, cap)
            .await?
            .map_err(IngestError::Referrer)?;
    }
    let id = UserId::new();
    let referrer = req.referrer_id.map(UserId::as_uuid);
    // The user belongs to the shop that signs them up (none when an admin does).
    let shop = match who {
        Principal::Shop(s) => Some(s.as_uuid()),
        _ => None,
    };
    let inserted = sqlx::query!(
        "INSERT INTO users (id, referrer_id, external_ref_hash, display_name, shop_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (external_ref_hash) DO NOTHING",
        id.as_uuid(),
        referrer,
        ref_hash,
        req.display_name,
        shop
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // A concurrent signup with the same external_ref won; answer as its retry.
        drop(tx);
        let mut tx = state.pool.begin().await?;
        return existing_signup(&mut tx, req, ref_hash)
            .await?
            .map(|u| (StatusCode::OK, u))
            .ok_or(IngestError::ExternalRefConflict);
    }
    let (created, active) = (UserEventKind::Created, UserStatus::Active);
    graph_writes::record(&mut tx, id, created, req.referrer_id, active).await?;
    if gone.is_cancelled() {
        tx.rollback().await?;
        return Err(request_gone());
    }
    tx.commit().await?;
    tracing::info!(user_id = %id, has_referrer = referrer.is_some(), "user signed up");
    let user = UserCreated {
        id,
        referrer_id: req.referrer_id,
        status: UserStatus::Active,
    };
    Ok((StatusCode::CREATED, user))
}

fn request_gone() -> IngestError {
    IngestError::Internal(anyhow::anyhow!("the signup's request is gone"))
}

/// The optional fields a caller chooses: bounded, printable.
fn check_fields(req: &SignupRequest) -> Result<(), IngestError> {
    if let Some(r) = &req.external_ref {
        if r.is_empty() || r.len() > 128 {
            return Err(IngestError::Invalid(
                "invalid_external_ref",
                "external_ref must be 1 to 128 bytes".into(),
            ));
        }
    }
    if let Some(name) = &req.display_name {
        let chars = name.chars().count();
        let unprintable = name
            .chars()
            .any(|c| c.is_control() || is_format(c) || is_blank(c));
        let marks_only = name.chars().all(is_combining_mark);
        if !(1..=40).contains(&chars) || unprintable || marks_only || name.trim() != name {
            return Err(IngestError::Invalid(
                "invalid_display_name",
                "display_name must be 1 to 40 printable characters without surrounding spaces"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Unicode format characters (general category Cf, as of Unicode 15): invisible, and some
/// (bidi overrides and isolates) reorder the text shown around them, so a name holding
/// one can pass for another. Listed here rather than pulled in with a Unicode crate.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Characters that show as nothing or as a line break: every Unicode space but U+0020
/// (line and paragraph separators among them), and the Hangul, Khmer and Braille fillers
/// that render blank, so a name cannot look empty or break the tree's layout.
fn is_blank(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || matches!(
            c,
            '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FFA0}'
        )
}

/// The combining marks' main blocks: a name made of these alone has nothing to combine
/// with and shows as stray accents or nothing.
fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{300}'..='\u{36F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// A signup retried with the same external_ref returns the user it created; with
/// another referrer it is a conflict.
async fn existing_signup(
    tx: &mut Transaction<'_, Postgres>,
    req: &SignupRequest,
    ref_hash: Option<&[u8]>,
) -> Result<Option<UserCreated>, IngestError> {
    let Some(ref_hash) = ref_hash else {
        return Ok(None);
    };
    let row = sqlx::query!(
        "SELECT id, referrer_id, status FROM users WHERE external_ref_hash = $1",
        ref_hash
    )
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        None => Ok(None),
        Some(r) if r.referrer_id == req.referrer_id.map(UserId::as_uuid) => Ok(Some(UserCreated {
            id: UserId(r.id),
            referrer_id: r.referrer_id.map(UserId),
            status: r.status.parse()?,
        })),
        Some(_) => Err(IngestError::ExternalRefConflict),
    }
}

/// The stored stand-in for a shop's customer reference: keyed, and scoped to the caller,
/// so two shops' "cust-1" are different users and the reference itself is never kept.
fn pseudonymous_ref(key: &str, who: &Principal, external_ref: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [key, &who.key(), external_ref] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}

#[cfg(test)]
#[path = "signup_test.rs"]
mod tests;
