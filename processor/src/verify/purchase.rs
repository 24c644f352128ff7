//! One purchase checked against the rules: its ancestors, its status, the entries it
//! must have (earnings, and reversals for its applied refunds), and its refund chain.
use super::{Fact, Key, Refund};
use crate::graph::{Ancestor, ReferralGraph};
use crate::payout::{decide, reversal, Share};
use rust_decimal::Decimal;
use schemas::{Money, Plan, UserId};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// A purchase row as verify reads it.
pub(super) struct Stored {
    pub id: Uuid,
    pub user_id: Uuid,
    pub amount: Decimal,
    pub profit: Decimal,
    pub plan_version: i32,
    pub status: String,
    pub ancestors: Vec<u8>,
    pub graph_seq: i64,
    pub refunded: Decimal,
}

/// Checks `p` with `graph` standing as it did at `p.graph_seq`.
pub(super) fn check(
    p: &Stored,
    plans: &HashMap<u32, Plan>,
    graph: &ReferralGraph,
    refunds: &[Refund],
    actual: &BTreeMap<Key, Fact>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let Some(plan) = plans.get(&(p.plan_version as u32)) else {
        diffs.push(format!(
            "purchase {}: plan version {} is not recorded",
            p.id, p.plan_version
        ));
        return Ok(());
    };
    let buyer = UserId(p.user_id);
    let ancestors = graph.payout_ancestors(buyer, plan);
    let stored = Ancestor::decode_all(&p.ancestors)?;
    if stored != ancestors {
        diffs.push(format!(
            "purchase {}: ancestors differ from the graph at seq {}",
            p.id, p.graph_seq
        ));
    }
    let Some(buyer_active) = graph.is_active(buyer) else {
        diffs.push(format!(
            "purchase {}: the buyer is not in the graph at seq {}",
            p.id, p.graph_seq
        ));
        return Ok(());
    };
    let (amount, profit) = (
        Money::from_decimal(p.amount)?,
        Money::from_decimal(p.profit)?,
    );
    let decision = decide(plan, buyer, buyer_active, amount, profit, &ancestors);
    if p.status.parse() != Ok(decision.status) {
        diffs.push(format!(
            "purchase {}: status {} but expected {}",
            p.id, p.status, decision.status
        ));
    }
    let expected = expected_entries(p, amount, &decision.shares, refunds);
    check_refunds(p.id, Money::from_decimal(p.refunded)?, refunds, diffs);
    compare(&p.id, &expected, actual, diffs);
    Ok(())
}

/// The entries a purchase must have: its shares, and their reversals for its refunds.
fn expected_entries(
    p: &Stored,
    amount: Money,
    shares: &[Share],
    refunds: &[Refund],
) -> BTreeMap<Key, Fact> {
    let mut expected: BTreeMap<Key, Fact> = BTreeMap::new();
    for s in shares {
        let fact = Fact {
            amount: s.amount,
            leg: s.leg.as_uuid(),
            source: p.user_id,
            base: s.base,
            rate: s.rate.as_decimal(),
            plan_version: p.plan_version,
        };
        let (who, level) = (s.beneficiary.as_uuid(), i16::from(s.level));
        for (refund_id, r_amount, before) in refunds {
            let back = reversal(s.amount, amount, *before, *before + *r_amount);
            if !back.is_zero() {
                let reversed = Fact {
                    amount: back,
                    ..fact.clone()
                };
                expected.insert((who, level, refund_id.clone()), reversed);
            }
        }
        expected.insert((who, level, String::new()), fact);
    }
    expected
}

/// The applied refunds of a purchase must chain: each applied on top of exactly the ones
/// before it, and together they are what the purchase says was refunded.
fn check_refunds(purchase: Uuid, refunded: Money, refunds: &[Refund], diffs: &mut Vec<String>) {
    let mut in_order: Vec<&Refund> = refunds.iter().collect();
    in_order.sort_by_key(|r| r.2);
    let mut so_far = Money::ZERO;
    for (refund_id, amount, before) in in_order {
        if *before != so_far {
            diffs.push(format!(
                "purchase {purchase}: refund {refund_id} applied on top of {before}, but the refunds before it add up to {so_far}"
            ));
        }
        so_far = so_far + *amount;
    }
    if refunded != so_far {
        diffs.push(format!(
            "purchase {purchase}: refunded {refunded} but refunds add up to {so_far}"
        ));
    }
}

fn compare(
    purchase: &Uuid,
    expected: &BTreeMap<Key, Fact>,
    actual: &BTreeMap<Key, Fact>,
    diffs: &mut Vec<String>,
) {
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!("purchase {purchase}: missing entry {k:?} of {v}")),
            Some(a) if a != v => diffs.push(format!(
                "purchase {purchase}: entry {k:?} is {a}, expected {v}"
            )),
            Some(_) => {}
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            diffs.push(format!(
                "purchase {purchase}: unexpected entry {k:?} of {v}"
            ));
        }
    }
}
