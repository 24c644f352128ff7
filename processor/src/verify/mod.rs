//! `referral verify`: recomputes every entry from purchases, refunds, plan versions and
//! the replayed graph history, and reports each difference. Independent of the writer:
//! it shares only the pure payout rule and the graph type.
use crate::graph::{Ancestor, ReferralGraph};
use crate::graph_sync;
use crate::payout::{payouts, reversal};
use crate::plans;
use rust_decimal::Decimal;
use schemas::{InactivePolicy, Money, UserId};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use uuid::Uuid;

mod sums;

#[derive(Debug, Default)]
pub struct Report {
    pub purchases: usize,
    pub refunds: usize,
    pub entries: usize,
    pub differences: Vec<String>,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "checked {} purchases, {} refunds, {} entries: {} differences",
            self.purchases,
            self.refunds,
            self.entries,
            self.differences.len()
        )
    }
}

type Key = (Uuid, i16, String); // beneficiary, level, refund id ('' for earnings)

/// Everything an entry states besides its key; all of it must be what the rules give.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fact {
    amount: Money,
    leg: Uuid,
    source: Uuid,
    base: Money,
    rate: Decimal,
    plan_version: i32,
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (base {} × rate {}, plan v{}, leg {}, source {})",
            self.amount,
            self.base,
            self.rate.normalize(),
            self.plan_version,
            self.leg,
            self.source
        )
    }
}

pub async fn verify(pool: &PgPool) -> anyhow::Result<Report> {
    let plans = plans::all(pool).await?;
    let mut report = Report::default();
    let mut entries: HashMap<Uuid, BTreeMap<Key, Fact>> = HashMap::new();
    let rows = sqlx::query!(
        "SELECT purchase_id, beneficiary_id, level, refund_id, amount, leg_user_id, source_user_id, base, rate,
                plan_version
         FROM earnings"
    )
    .fetch_all(pool)
    .await?;
    report.entries = rows.len();
    for r in rows {
        let fact = Fact {
            amount: Money::from_decimal(r.amount)?,
            leg: r.leg_user_id,
            source: r.source_user_id,
            base: Money::from_decimal(r.base)?,
            rate: r.rate,
            plan_version: r.plan_version,
        };
        entries
            .entry(r.purchase_id)
            .or_default()
            .insert((r.beneficiary_id, r.level, r.refund_id), fact);
    }
    let purchases = sqlx::query!(
        "SELECT id, user_id, amount, profit, plan_version, status, ancestors, graph_seq, refunded
         FROM purchases ORDER BY graph_seq, id"
    )
    .fetch_all(pool)
    .await?;
    let refunds = sqlx::query!(
        "SELECT purchase_id AS \"purchase_id!\", refund_id, amount, refunded_before AS \"before!\"
         FROM refunds WHERE status = 'applied'"
    )
    .fetch_all(pool)
    .await?;
    report.refunds = refunds.len();
    let mut refunds_of: HashMap<Uuid, Vec<Refund>> = HashMap::new();
    for r in refunds {
        refunds_of.entry(r.purchase_id).or_default().push((
            r.refund_id,
            Money::from_decimal(r.amount)?,
            Money::from_decimal(r.before)?,
        ));
    }

    let mut graph = ReferralGraph::default();
    let diffs = &mut report.differences;
    for p in &purchases {
        report.purchases += 1;
        graph_sync::replay_until(pool, &mut graph, p.graph_seq).await?;
        let Some(plan) = plans.get(&(p.plan_version as u32)) else {
            diffs.push(format!(
                "purchase {}: plan version {} is not recorded",
                p.id, p.plan_version
            ));
            continue;
        };
        let buyer = UserId(p.user_id);
        let compress = plan.inactive_policy == InactivePolicy::Compress;
        let ancestors = graph.payout_ancestors(buyer, plan.levels(), compress);
        let stored: Vec<Ancestor> = serde_json::from_value(p.ancestors.clone())?;
        if stored != ancestors {
            diffs.push(format!(
                "purchase {}: ancestors differ from the graph at seq {}",
                p.id, p.graph_seq
            ));
        }
        let (amount, profit) = (
            Money::from_decimal(p.amount)?,
            Money::from_decimal(p.profit)?,
        );
        let buyer_active = graph.is_active(buyer).unwrap_or(false);
        let expected_status = if !buyer_active {
            "rejected_inactive_buyer"
        } else if plan.qualifies(amount) {
            "paid"
        } else {
            "below_threshold"
        };
        if p.status != expected_status {
            diffs.push(format!(
                "purchase {}: status {} but expected {expected_status}",
                p.id, p.status
            ));
        }
        let mut expected: BTreeMap<Key, Fact> = BTreeMap::new();
        let refunds = refunds_of.remove(&p.id).unwrap_or_default();
        if expected_status == "paid" {
            for s in payouts(plan, buyer, amount, profit, &ancestors) {
                let fact = Fact {
                    amount: s.amount,
                    leg: s.leg.as_uuid(),
                    source: p.user_id,
                    base: s.base,
                    rate: s.rate.as_decimal(),
                    plan_version: p.plan_version,
                };
                let (who, level) = (s.beneficiary.as_uuid(), i16::from(s.level));
                for (refund_id, r_amount, before) in &refunds {
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
        }
        check_refunds(p.id, Money::from_decimal(p.refunded)?, &refunds, diffs);
        let actual = entries.remove(&p.id).unwrap_or_default();
        compare(&p.id, &expected, &actual, diffs);
    }
    for (purchase, orphans) in entries {
        diffs.push(format!(
            "{} entries name purchase {purchase}, which does not exist",
            orphans.len()
        ));
    }
    sums::check(pool, None, diffs).await?;
    Ok(report)
}

type Refund = (String, Money, Money); // refund id, amount, refunded before it applied

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
