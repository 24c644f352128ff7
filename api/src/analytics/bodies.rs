//! What the analytics routes take (query strings) and answer. Money as decimal strings,
//! ids as UUIDs, days as UTC dates.
use chrono::NaiveDate;
use schemas::{Money, ShopId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First UTC day, inclusive.
    #[serde(default, deserialize_with = "platform::wire_time::opt_date")]
    pub(super) from: Option<NaiveDate>,
    /// Last UTC day, inclusive.
    #[serde(default, deserialize_with = "platform::wire_time::opt_date")]
    pub(super) to: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    /// How many earners (default `[reports] default_page_size`, at most `max_page_size`).
    #[param(minimum = 1)]
    pub(super) limit: Option<i64>,
    #[serde(default, deserialize_with = "platform::wire_time::opt_date")]
    pub(super) from: Option<NaiveDate>,
    #[serde(default, deserialize_with = "platform::wire_time::opt_date")]
    pub(super) to: Option<NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Earner {
    pub(super) user_id: UserId,
    pub(super) total: Money,
    pub(super) entries: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopEarners {
    pub(super) from: Option<NaiveDate>,
    pub(super) to: Option<NaiveDate>,
    pub(super) earners: Vec<Earner>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShopDay {
    pub(super) day: NaiveDate,
    pub(super) shop_id: ShopId,
    pub(super) purchases: u64,
    pub(super) qualifying: u64,
    pub(super) amount: Money,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurchasesPerShop {
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    pub(super) days: Vec<ShopDay>,
    /// More than the answer holds: narrow the range.
    pub(super) truncated: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Conversion {
    /// Users who have a referrer now.
    pub(super) referred_users: u64,
    /// Of those, users with at least one qualifying purchase.
    pub(super) converted_users: u64,
    /// converted / referred, four decimal places ("0.0000" when none are referred).
    pub(super) rate: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayLevel {
    pub(super) day: NaiveDate,
    pub(super) level: u8,
    pub(super) total: Money,
    pub(super) entries: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EarningsOverTime {
    pub(super) user_id: UserId,
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    pub(super) points: Vec<DayLevel>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LevelShare {
    pub(super) level: u8,
    pub(super) total: Money,
    pub(super) entries: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Levels {
    pub(super) user_id: UserId,
    pub(super) levels: Vec<LevelShare>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LegShare {
    pub(super) leg_user_id: UserId,
    pub(super) total: Money,
    pub(super) entries: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Legs {
    pub(super) user_id: UserId,
    pub(super) legs: Vec<LegShare>,
}
