//! The contract every role shares: ids, money, the payout plan, and the messages
//! that cross NATS. Pure types; no I/O.
#![forbid(unsafe_code)]

pub mod earning_event;
pub mod ids;
pub mod messages;
pub mod money;
pub mod plan;
pub mod reports;
pub mod status;

pub use earning_event::{EarningEvent, LiveEarning};
pub use ids::{OrderId, RefundId, ShopId, UserId};
pub use money::{Money, MoneyError, Rate};
pub use plan::{InactivePolicy, Plan, PlanError};
pub use status::{
    EntryKind, PurchaseStatus, RefundStatus, UnknownValue, UserEventKind, UserStatus,
};

/// The one currency the ledger holds today; anything else is refused at the edge.
pub const CURRENCY: &str = "INR";
