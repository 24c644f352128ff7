//! The payout rule: pure, no I/O, no clock. Property-tested against a reference model.
use crate::graph::Ancestor;
use schemas::{InactivePolicy, Money, Plan, PurchaseStatus, Rate, UserId};

/// One beneficiary's share of one purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub beneficiary: UserId,
    pub level: u8,
    /// The beneficiary's direct referral on the path down to the buyer.
    pub leg: UserId,
    pub base: Money,
    pub rate: Rate,
    pub amount: Money,
}

/// How a purchase ends and who earns what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: PurchaseStatus,
    /// Empty unless the purchase is paid.
    pub shares: Vec<Share>,
}

/// The one place that decides a purchase: an inactive buyer's purchase is recorded
/// unpaid, one under the plan's threshold is recorded unpaid, and any other pays its
/// ancestors (nearest first, as `ReferralGraph::payout_ancestors` gives them) by level.
/// The ledger applies this; `verify` and the bench seed check and build with it.
pub fn decide(
    plan: &Plan,
    buyer: UserId,
    buyer_active: bool,
    amount: Money,
    profit: Money,
    ancestors: &[Ancestor],
) -> Decision {
    let status = if !buyer_active {
        PurchaseStatus::RejectedInactiveBuyer
    } else if !plan.qualifies(amount) {
        PurchaseStatus::BelowThreshold
    } else {
        PurchaseStatus::Paid
    };
    let shares = match status {
        PurchaseStatus::Paid => shares(plan, buyer, profit, ancestors),
        _ => Vec::new(),
    };
    Decision { status, shares }
}

/// Who earns what when an active `buyer` makes a purchase (`decide`'s shares): nothing
/// under the threshold; no zero shares.
pub fn payouts(
    plan: &Plan,
    buyer: UserId,
    amount: Money,
    profit: Money,
    ancestors: &[Ancestor],
) -> Vec<Share> {
    decide(plan, buyer, true, amount, profit, ancestors).shares
}

/// The shares of a paid purchase, by the plan's inactive-beneficiary policy.
fn shares(plan: &Plan, buyer: UserId, profit: Money, ancestors: &[Ancestor]) -> Vec<Share> {
    // For each paid level (1-based; a plan has at most `MAX_LEVELS`, so each fits a u8
    // and the bounded `1..=u8::MAX` never runs out), the index into `ancestors` of whoever
    // is paid for it.
    let levels = 1..=u8::MAX;
    let paid: Vec<(u8, usize)> = match plan.inactive_policy() {
        InactivePolicy::Skip => (0..plan.levels().min(ancestors.len()))
            .zip(levels)
            .filter(|&(i, _)| ancestors[i].active)
            .map(|(i, level)| (level, i))
            .collect(),
        InactivePolicy::Compress => ancestors
            .iter()
            .enumerate()
            .filter(|(_, a)| a.active)
            .map(|(i, _)| i)
            .take(plan.levels())
            .zip(levels)
            .map(|(at, level)| (level, at))
            .collect(),
    };
    paid.into_iter()
        .filter_map(|(level, at)| {
            let rate = plan.level_rates()[usize::from(level - 1)];
            let amount = profit.share(rate);
            if amount.is_zero() {
                return None;
            }
            let leg = if at == 0 {
                buyer
            } else {
                ancestors[at - 1].user_id
            };
            Some(Share {
                beneficiary: ancestors[at].user_id,
                level,
                leg,
                base: profit,
                rate,
                amount,
            })
        })
        .collect()
}

/// The (non-positive) reversal of `earning` when the refunded part of a purchase of
/// `amount` grows from `before` to `after`. Pro rata, computed on the cumulative
/// refund, so a full refund in any number of parts reverses the earning exactly.
pub fn reversal(earning: Money, amount: Money, before: Money, after: Money) -> Money {
    (earning.pro_rata(after, amount) - earning.pro_rata(before, amount)).negated()
}

#[cfg(test)]
#[path = "payout_test.rs"]
mod tests;
