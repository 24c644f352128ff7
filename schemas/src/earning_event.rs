use crate::ids::UserId;
use crate::money::Money;
use crate::status::EntryKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One ledger entry as its beneficiary sees it live (published in arrays on `ledger.entries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EarningEvent {
    pub earning_id: Uuid,
    /// The entry's position in its beneficiary's ledger (1, 2, …, gapless): the live
    /// feed's event id, and what a client sends back to resume.
    pub seq: u64,
    pub purchase_id: Uuid,
    #[schema(value_type = Uuid)]
    pub shop_id: crate::ShopId,
    #[schema(value_type = Uuid)]
    pub beneficiary_id: UserId,
    #[schema(value_type = Uuid)]
    pub source_user_id: UserId,
    /// The beneficiary's direct referral whose subtree the purchase came from.
    #[schema(value_type = Uuid)]
    pub leg_user_id: UserId,
    pub level: u8,
    /// Level 1: the buyer is the beneficiary's own referral.
    pub direct: bool,
    pub kind: EntryKind,
    #[schema(value_type = String)]
    pub amount: Money,
    /// The beneficiary's total after this entry.
    #[schema(value_type = String)]
    pub total: Money,
    pub plan_version: u32,
    pub created_at: DateTime<Utc>,
}

/// An entry as its beneficiary is sent it live (SSE data, WebSocket `data`): the stream's
/// `EarningEvent` without the shop the purchase was made at, which the history report
/// does not name either: where a member of someone's downline shops is the member's own
/// business (the warehouse, for admins, keeps it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveEarning {
    pub earning_id: Uuid,
    /// The entry's position in its beneficiary's ledger (1, 2, …, gapless): the live
    /// feed's event id, and what a client sends back to resume.
    pub seq: u64,
    pub purchase_id: Uuid,
    #[schema(value_type = Uuid)]
    pub beneficiary_id: UserId,
    #[schema(value_type = Uuid)]
    pub source_user_id: UserId,
    /// The beneficiary's direct referral whose subtree the purchase came from.
    #[schema(value_type = Uuid)]
    pub leg_user_id: UserId,
    pub level: u8,
    /// Level 1: the buyer is the beneficiary's own referral.
    pub direct: bool,
    pub kind: EntryKind,
    #[schema(value_type = String)]
    pub amount: Money,
    /// The beneficiary's total after this entry.
    #[schema(value_type = String)]
    pub total: Money,
    pub plan_version: u32,
    pub created_at: DateTime<Utc>,
}

impl From<&EarningEvent> for LiveEarning {
    fn from(e: &EarningEvent) -> Self {
        LiveEarning {
            earning_id: e.earning_id,
            seq: e.seq,
            purchase_id: e.purchase_id,
            beneficiary_id: e.beneficiary_id,
            source_user_id: e.source_user_id,
            leg_user_id: e.leg_user_id,
            level: e.level,
            direct: e.direct,
            kind: e.kind,
            amount: e.amount,
            total: e.total,
            plan_version: e.plan_version,
            created_at: e.created_at,
        }
    }
}
