//! Report bodies the API returns: the contract with dashboards and clients.
use crate::ids::UserId;
use crate::money::Money;
use crate::status::EntryKind;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LevelTotal {
    pub level: u8,
    #[schema(value_type = String)]
    pub total: Money,
    pub entries: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EarningsSummary {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub currency: String,
    #[schema(value_type = String)]
    pub total: Money,
    pub by_level: Vec<LevelTotal>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReferralTotal {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub level: u8,
    #[schema(value_type = String)]
    pub total: Money,
    pub entries: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ByReferral {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub referrals: Vec<ReferralTotal>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LegTotal {
    #[schema(value_type = Uuid)]
    pub leg_user_id: UserId,
    #[schema(value_type = String)]
    pub total: Money,
    pub entries: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ByLeg {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub legs: Vec<LegTotal>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryItem {
    pub earning_id: Uuid,
    pub purchase_id: Uuid,
    #[schema(value_type = Uuid)]
    pub source_user_id: UserId,
    #[schema(value_type = Uuid)]
    pub leg_user_id: UserId,
    pub level: u8,
    pub kind: EntryKind,
    #[schema(value_type = String)]
    pub amount: Money,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    /// Pass as `cursor` to get the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TreeNode {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub status: crate::UserStatus,
    /// The pseudonym the user chose, if any.
    pub display_name: Option<String>,
    pub depth: u8,
    /// What this user's purchases have earned the root.
    #[schema(value_type = String)]
    pub contributed: Money,
    #[schema(no_recursion)]
    pub children: Vec<TreeNode>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Tree {
    pub root: TreeNode,
    /// True when the downline was cut at the node limit.
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DailyPoint {
    pub day: NaiveDate,
    #[schema(value_type = String)]
    pub total: Money,
    pub entries: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DailySeries {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub points: Vec<DailyPoint>,
}
