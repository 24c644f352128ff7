//! The closed sets of words the ledger stores in text columns (each guarded there by a
//! `CHECK`): statuses and kinds. Code names them by these enums, never by string
//! literals, and a stored word outside the set is an error, never a default.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A stored word that names none of an enum's values (the database and the code disagree).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: unknown value {value:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The word stored in Postgres and sent on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Whether a user takes part: inactive users neither earn nor buy.
    UserStatus { Active = "active", Inactive = "inactive" }
}

text_enum! {
    /// What a user's change in `user_events` was.
    UserEventKind {
        Created = "created",
        Deactivated = "deactivated",
        Reactivated = "reactivated",
        Moved = "moved",
    }
}

text_enum! {
    /// How a settled purchase ended: paid by the plan, or recorded without payout.
    PurchaseStatus {
        Paid = "paid",
        BelowThreshold = "below_threshold",
        RejectedInactiveBuyer = "rejected_inactive_buyer",
    }
}

text_enum! {
    /// A refund waits for its purchase, then is applied or rejected.
    RefundStatus { Pending = "pending", Applied = "applied", Rejected = "rejected" }
}

text_enum! {
    /// A ledger entry pays (earning) or takes back (reversal, from a refund).
    EntryKind { Earning = "earning", Reversal = "reversal" }
}

impl UserStatus {
    pub const fn from_active(active: bool) -> Self {
        if active {
            UserStatus::Active
        } else {
            UserStatus::Inactive
        }
    }

    pub const fn is_active(self) -> bool {
        matches!(self, UserStatus::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_and_strangers_are_refused() {
        for s in [UserStatus::Active, UserStatus::Inactive] {
            assert_eq!(s.as_str().parse::<UserStatus>(), Ok(s));
        }
        for k in [EntryKind::Earning, EntryKind::Reversal] {
            assert_eq!(k.as_str().parse::<EntryKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).ok(), Some(k.as_str().into()));
        }
        let bad = "Active".parse::<UserStatus>().unwrap_err();
        assert_eq!(bad.what, "UserStatus");
        assert!("".parse::<PurchaseStatus>().is_err());
        assert!("paid ".parse::<PurchaseStatus>().is_err());
    }
}
