//! The one way anything changes the referral graph. Ingest's signup and the admin API
//! both hold the outbox lock (`db::GraphWrites::begin`), take a referrer through the same
//! check, and record the change in `user_events` the same way, so the processors that
//! follow the outbox see every change once, in commit order.
use crate::problem::Problem;
use axum::http::StatusCode;
use schemas::{ShopId, UserEventKind, UserId, UserStatus};
use sqlx::{Postgres, Transaction};

/// Why a user cannot be given this referrer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferrerRefusal {
    #[error("referrer not found")]
    NotFound,
    #[error("referrer is inactive")]
    Inactive,
    #[error("the referrer already has the maximum of {0} direct referrals")]
    LimitReached(u8),
    #[error("this shop has already signed up {0} direct referrals of a user another shop signed up, the most it may")]
    ShopLimitReached(u8),
}

/// A shop signing a user up may fill at most `under_others` of the direct referrals of a
/// user that another shop (or an admin) signed up: referrals cross shops, but one shop
/// cannot take all of another's user's places and lock everyone else out of them.
#[derive(Clone, Copy, Debug)]
pub struct ShopCap {
    pub shop: ShopId,
    pub under_others: u8,
}

impl ReferrerRefusal {
    pub fn problem(&self) -> Problem {
        let (status, code) = match self {
            ReferrerRefusal::NotFound => (StatusCode::UNPROCESSABLE_ENTITY, "referrer_not_found"),
            ReferrerRefusal::Inactive => (StatusCode::UNPROCESSABLE_ENTITY, "referrer_inactive"),
            ReferrerRefusal::LimitReached(_) => (StatusCode::CONFLICT, "referral_limit_reached"),
            ReferrerRefusal::ShopLimitReached(_) => {
                (StatusCode::CONFLICT, "shop_referral_limit_reached")
            }
        };
        Problem::new(status, code, self.to_string())
    }
}

/// Locks the referrer's row to commit, checks that it is known, active and below
/// `max_direct` direct referrals (and, for a shop, below its `ShopCap` under another
/// shop's user), and counts one more. The outer error is the database's, the inner one
/// the caller's refusal to answer.
pub async fn take_referrer(
    tx: &mut Transaction<'_, Postgres>,
    referrer: UserId,
    max_direct: u8,
    cap: Option<ShopCap>,
) -> sqlx::Result<Result<(), ReferrerRefusal>> {
    let row = sqlx::query!(
        "SELECT status, direct_referrals, shop_id FROM users WHERE id = $1 FOR UPDATE",
        referrer.as_uuid()
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(ReferrerRefusal::NotFound));
    };
    let status: UserStatus = row
        .status
        .parse()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    if !status.is_active() {
        return Ok(Err(ReferrerRefusal::Inactive));
    }
    if row.direct_referrals >= i32::from(max_direct) {
        return Ok(Err(ReferrerRefusal::LimitReached(max_direct)));
    }
    if let Some(cap) = cap.filter(|c| row.shop_id != Some(c.shop.as_uuid())) {
        // The referrer's row is locked, so the count cannot change under this check.
        let taken = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM users WHERE referrer_id = $1 AND shop_id = $2"#,
            referrer.as_uuid(),
            cap.shop.as_uuid()
        )
        .fetch_one(&mut **tx)
        .await?;
        if taken >= i64::from(cap.under_others) {
            return Ok(Err(ReferrerRefusal::ShopLimitReached(cap.under_others)));
        }
    }
    sqlx::query!(
        "UPDATE users SET direct_referrals = direct_referrals + 1 WHERE id = $1",
        referrer.as_uuid()
    )
    .execute(&mut **tx)
    .await?;
    Ok(Ok(()))
}

/// Uncounts the referral a user leaves when it moves to another referrer.
pub async fn release_referrer(
    tx: &mut Transaction<'_, Postgres>,
    referrer: UserId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET direct_referrals = direct_referrals - 1 WHERE id = $1",
        referrer.as_uuid()
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends the change to the outbox the processors follow (`user_events`); `referrer` and
/// `status` are the user's after the change.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    kind: UserEventKind,
    referrer: Option<UserId>,
    status: UserStatus,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO user_events (user_id, kind, referrer_id, status) VALUES ($1, $2, $3, $4)",
        user.as_uuid(),
        kind.as_str(),
        referrer.map(UserId::as_uuid),
        status.as_str()
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
