//! What crosses the PURCHASES stream. Shops may publish these directly; the processor
//! parses them again and dead-letters what does not parse.
use crate::ids::{OrderId, RefundId, ShopId, UserId};
use crate::money::Money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseMessage {
    pub purchase_id: Uuid,
    pub shop_id: ShopId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    pub profit: Money,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
    /// sha256 (hex) of the request as the shop sent it; a same order id with another
    /// hash is a conflict, never a second purchase.
    pub body_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundMessage {
    pub shop_id: ShopId,
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub amount: Money,
    pub received_at: DateTime<Utc>,
}

/// Why a message could not be applied; the dead-letter reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    Malformed,
    InvalidAmounts,
    InvalidTime,
    ProcessingFailed,
    UnknownUser,
    UnknownCurrency,
    OrderConflict,
    RefundExceedsPurchase,
    /// A refund id already recorded with another order or amount.
    RefundConflict,
    /// A purchase for a user another shop signed up.
    ForeignUser,
    /// A message whose shop is not the shop of the subject it was published on.
    ShopMismatch,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Malformed => "malformed",
            DeadLetterReason::InvalidAmounts => "invalid_amounts",
            DeadLetterReason::InvalidTime => "invalid_time",
            DeadLetterReason::ProcessingFailed => "processing_failed",
            DeadLetterReason::UnknownUser => "unknown_user",
            DeadLetterReason::UnknownCurrency => "unknown_currency",
            DeadLetterReason::OrderConflict => "order_conflict",
            DeadLetterReason::RefundExceedsPurchase => "refund_exceeds_purchase",
            DeadLetterReason::RefundConflict => "refund_conflict",
            DeadLetterReason::ForeignUser => "foreign_user",
            DeadLetterReason::ShopMismatch => "shop_mismatch",
        }
    }
}

impl PurchaseMessage {
    /// The invariants a purchase must hold however it arrived.
    pub fn check(&self) -> Result<(), DeadLetterReason> {
        if self.currency != crate::CURRENCY {
            return Err(DeadLetterReason::UnknownCurrency);
        }
        if self.amount <= Money::ZERO
            || !self.amount.is_single_amount()
            || self.profit.is_negative()
            || self.profit > self.amount
        {
            return Err(DeadLetterReason::InvalidAmounts);
        }
        // Judged against this host's clock plus a margin: the edge that answered 202
        // judged it against its own, which may run ahead of this one.
        let now = Utc::now() + chrono::Duration::seconds(HOST_CLOCK_MARGIN_SECS);
        if !plausible_time(self.occurred_at, now) {
            return Err(DeadLetterReason::InvalidTime);
        }
        Ok(())
    }
}

/// How far an edge's clock may run ahead of the processor's without a purchase the edge
/// accepted (a time up to `MAX_CLOCK_SKEW_SECS` ahead of the edge's clock) being refused
/// when it is settled: hosts kept in time by NTP differ by milliseconds, so an hour is a
/// margin for a clock gone wrong, not a tolerance for shops.
pub const HOST_CLOCK_MARGIN_SECS: i64 = 3600;

/// Earliest `occurred_at` accepted: older is a client bug, not a purchase.
pub const EARLIEST_PURCHASE_YEAR: i32 = 2000;
/// How far ahead of our clock a shop's clock may run.
pub const MAX_CLOCK_SKEW_SECS: i64 = 24 * 3600;

/// A purchase time the ledger (and Postgres, and ClickHouse) can hold and believe.
pub fn plausible_time(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    at.year() >= EARLIEST_PURCHASE_YEAR
        && at <= now + chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS)
}

/// A purchase as the processor settled it (published, an array per batch, on
/// `ledger.purchases` for the warehouse).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedPurchase {
    pub purchase_id: Uuid,
    pub shop_id: ShopId,
    pub user_id: UserId,
    pub amount: Money,
    pub profit: Money,
    pub qualifying: bool,
    pub plan_version: u32,
    pub status: crate::PurchaseStatus,
    pub occurred_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
}

/// One item of a stored group: the purchase with its own bytes, or why it is none (with
/// its bytes, which a dead letter keeps).
pub type GroupItem = Result<(PurchaseMessage, Vec<u8>), (String, Vec<u8>)>;

/// A group of purchases as ingest's group commit stores it (a JSON array): each item is
/// decoded on its own, so one bad item does not take the group's good ones with it; the
/// whole payload is malformed only if it is no array.
pub fn decode_group(payload: &[u8]) -> Result<Vec<GroupItem>, String> {
    let raw: Vec<Box<serde_json::value::RawValue>> =
        serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let bytes = r.get().as_bytes().to_vec();
            match serde_json::from_str(r.get()) {
                Ok(p) => Ok((p, bytes)),
                Err(e) => Err((format!("item of a group: {e}"), bytes)),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ahead: chrono::Duration) -> PurchaseMessage {
        PurchaseMessage {
            purchase_id: Uuid::new_v4(),
            shop_id: ShopId::new(),
            order_id: OrderId::parse("o-1").unwrap(),
            user_id: UserId::new(),
            amount: Money::parse("2000.00").unwrap(),
            profit: Money::parse("500.00").unwrap(),
            currency: crate::CURRENCY.to_owned(),
            occurred_at: Utc::now() + ahead,
            body_hash: String::new(),
        }
    }

    /// An edge whose clock ran half an hour ahead accepted a purchase a day ahead of its
    /// clock: the processor settles it. Past the margin, it is still refused.
    #[test]
    fn a_time_the_edge_accepted_on_a_clock_ahead_of_this_one_is_settled() {
        let day = chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS);
        assert_eq!(at(day + chrono::Duration::minutes(30)).check(), Ok(()));
        assert_eq!(
            at(day + chrono::Duration::minutes(90)).check(),
            Err(DeadLetterReason::InvalidTime)
        );
    }
}
