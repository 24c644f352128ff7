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
        if !plausible_time(self.occurred_at, Utc::now()) {
            return Err(DeadLetterReason::InvalidTime);
        }
        Ok(())
    }
}

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
