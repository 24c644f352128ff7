use crate::money::{Money, Rate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Deepest level a plan may pay; bounds every ancestor walk.
pub const MAX_LEVELS: usize = 16;

/// What happens to the share of an inactive ancestor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InactivePolicy {
    /// The inactive ancestor's share is not paid to anyone.
    Skip,
    /// Inactive ancestors are passed over: level n goes to the n-th *active* ancestor.
    Compress,
}

/// The payout rules, versioned. A purchase records the version it was paid under, so a
/// new version never changes past earnings. Build one with `Plan::new` or by deserializing
/// (which runs the same checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "PlanFields", deny_unknown_fields)]
pub struct Plan {
    version: u32,
    /// `level_rates[0]` is level 1 (the parent), `[1]` level 2 (the grandparent), …
    level_rates: Vec<Rate>,
    /// A purchase whose amount is at least this qualifies.
    qualifying_threshold: Money,
    max_direct_referrals: u8,
    inactive_policy: InactivePolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFields {
    version: u32,
    level_rates: Vec<Rate>,
    qualifying_threshold: Money,
    max_direct_referrals: u8,
    inactive_policy: InactivePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan version must be at least 1")]
    Version,
    #[error("a plan pays between 1 and {MAX_LEVELS} levels")]
    Levels,
    #[error("the qualifying threshold must not be negative")]
    Threshold,
    #[error("max_direct_referrals must be at least 1")]
    MaxReferrals,
    #[error("level rates add up to more than 100%")]
    RatesOverOne,
}

impl TryFrom<PlanFields> for Plan {
    type Error = PlanError;
    fn try_from(f: PlanFields) -> Result<Self, PlanError> {
        Plan::new(
            f.version,
            f.level_rates,
            f.qualifying_threshold,
            f.max_direct_referrals,
            f.inactive_policy,
        )
    }
}

impl Plan {
    pub fn new(
        version: u32,
        level_rates: Vec<Rate>,
        qualifying_threshold: Money,
        max_direct_referrals: u8,
        inactive_policy: InactivePolicy,
    ) -> Result<Self, PlanError> {
        if version == 0 {
            return Err(PlanError::Version);
        }
        if level_rates.is_empty() || level_rates.len() > MAX_LEVELS {
            return Err(PlanError::Levels);
        }
        if qualifying_threshold.is_negative() {
            return Err(PlanError::Threshold);
        }
        if max_direct_referrals == 0 {
            return Err(PlanError::MaxReferrals);
        }
        let sum: Decimal = level_rates.iter().map(|r| r.as_decimal()).sum();
        if sum > Decimal::ONE {
            return Err(PlanError::RatesOverOne);
        }
        Ok(Plan {
            version,
            level_rates,
            qualifying_threshold,
            max_direct_referrals,
            inactive_policy,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Rates by level: `[0]` is level 1 (the parent), `[1]` level 2, …
    pub fn level_rates(&self) -> &[Rate] {
        &self.level_rates
    }

    pub fn qualifying_threshold(&self) -> Money {
        self.qualifying_threshold
    }

    pub fn max_direct_referrals(&self) -> u8 {
        self.max_direct_referrals
    }

    pub fn inactive_policy(&self) -> InactivePolicy {
        self.inactive_policy
    }

    /// The same rules under another inactive-beneficiary policy (always a valid plan).
    pub fn with_inactive_policy(self, inactive_policy: InactivePolicy) -> Self {
        Plan {
            inactive_policy,
            ..self
        }
    }

    pub fn levels(&self) -> usize {
        self.level_rates.len()
    }

    pub fn qualifies(&self, amount: Money) -> bool {
        amount >= self.qualifying_threshold
    }
}

impl Default for Plan {
    /// Version 1: parent 5%, grandparent 1%, purchases of ₹1000.00 or more, 8 direct
    /// referrals, inactive shares skipped.
    fn default() -> Self {
        Plan {
            version: 1,
            level_rates: vec![
                Rate::new(Decimal::new(5, 2)).unwrap_or_else(|_| unreachable!()),
                Rate::new(Decimal::new(1, 2)).unwrap_or_else(|_| unreachable!()),
            ],
            qualifying_threshold: Money::from_paise(100_000),
            max_direct_referrals: 8,
            inactive_policy: InactivePolicy::Skip,
        }
    }
}

#[cfg(test)]
#[path = "plan_test.rs"]
mod tests;
