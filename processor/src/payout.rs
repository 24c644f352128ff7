//! The payout rule: pure, no I/O, no clock. Property-tested against a reference model.
use crate::graph::Ancestor;
use schemas::{InactivePolicy, Money, Plan, Rate, UserId};

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

/// Who earns what when `buyer` makes a purchase, given the ancestors nearest first.
/// Nothing when the amount is under the threshold; no zero shares.
pub fn payouts(
    plan: &Plan,
    buyer: UserId,
    amount: Money,
    profit: Money,
    ancestors: &[Ancestor],
) -> Vec<Share> {
    if !plan.qualifies(amount) {
        return Vec::new();
    }
    // For each level, the index into `ancestors` of whoever is paid for it.
    let paid: Vec<(usize, usize)> = match plan.inactive_policy {
        InactivePolicy::Skip => (0..plan.levels().min(ancestors.len()))
            .filter(|&i| ancestors[i].active)
            .map(|i| (i, i))
            .collect(),
        InactivePolicy::Compress => ancestors
            .iter()
            .enumerate()
            .filter(|(_, a)| a.active)
            .map(|(i, _)| i)
            .take(plan.levels())
            .enumerate()
            .collect(),
    };
    paid.into_iter()
        .filter_map(|(level_index, at)| {
            let rate = plan.level_rates[level_index];
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
                level: u8::try_from(level_index + 1).unwrap_or(u8::MAX),
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
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn chain(n: usize) -> (UserId, Vec<Ancestor>) {
        let buyer = UserId::new();
        let anc = (0..n)
            .map(|_| Ancestor {
                user_id: UserId::new(),
                active: true,
            })
            .collect();
        (buyer, anc)
    }

    #[test]
    fn parent_earns_five_percent_and_grandparent_one() {
        let (buyer, anc) = chain(3);
        let shares = payouts(&Plan::default(), buyer, m("2000.00"), m("500.00"), &anc);
        assert_eq!(shares.len(), 2);
        assert_eq!(
            (shares[0].beneficiary, shares[0].level, shares[0].amount),
            (anc[0].user_id, 1, m("25.00"))
        );
        assert_eq!(
            (shares[1].beneficiary, shares[1].level, shares[1].amount),
            (anc[1].user_id, 2, m("5.00"))
        );
        assert_eq!(shares[0].leg, buyer);
        assert_eq!(shares[1].leg, anc[0].user_id);
    }

    #[test]
    fn threshold_is_inclusive() {
        let (buyer, anc) = chain(2);
        assert!(payouts(&Plan::default(), buyer, m("999.99"), m("999.99"), &anc).is_empty());
        assert_eq!(
            payouts(&Plan::default(), buyer, m("1000.00"), m("1000.00"), &anc).len(),
            2
        );
    }

    #[test]
    fn inactive_share_is_skipped_or_compressed() {
        let (buyer, mut anc) = chain(3);
        anc[0].active = false;
        let skip = payouts(&Plan::default(), buyer, m("1000"), m("1000"), &anc);
        assert_eq!(skip.len(), 1);
        assert_eq!((skip[0].beneficiary, skip[0].level), (anc[1].user_id, 2));
        let plan = Plan {
            inactive_policy: InactivePolicy::Compress,
            ..Plan::default()
        };
        let comp = payouts(&plan, buyer, m("1000"), m("1000"), &anc);
        assert_eq!(comp.len(), 2);
        assert_eq!(
            (comp[0].beneficiary, comp[0].level, comp[0].amount),
            (anc[1].user_id, 1, m("50.00"))
        );
        assert_eq!(comp[0].leg, anc[0].user_id);
        assert_eq!((comp[1].beneficiary, comp[1].level), (anc[2].user_id, 2));
    }

    #[test]
    fn partial_refunds_add_up_to_the_whole() {
        let e = m("33.33");
        let a = m("1000.00");
        let parts = [m("333.33"), m("333.33"), m("333.34")];
        let mut before = Money::ZERO;
        let mut total = Money::ZERO;
        for p in parts {
            total = total + reversal(e, a, before, before + p);
            before = before + p;
        }
        assert_eq!(total, e.negated());
        let _ = Decimal::ONE;
    }
}
