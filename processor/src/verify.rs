//! `referral verify`: recomputes every entry from purchases, refunds, plan versions and
//! the replayed graph history, and reports each difference. Independent of the writer:
//! it shares only the pure payout rule and the graph type.
use crate::graph::{Ancestor, ReferralGraph};
use crate::graph_sync;
use crate::payout::{payouts, reversal};
use crate::plans;
use schemas::{InactivePolicy, Money, UserId};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

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

pub async fn verify(pool: &PgPool) -> anyhow::Result<Report> {
    let plans = plans::all(pool).await?;
    let mut report = Report::default();
    let mut entries: HashMap<Uuid, BTreeMap<Key, (Money, Uuid)>> = HashMap::new();
    let rows = sqlx::query!(
        "SELECT purchase_id, beneficiary_id, level, refund_id, amount, leg_user_id FROM earnings"
    )
    .fetch_all(pool)
    .await?;
    report.entries = rows.len();
    for r in rows {
        entries.entry(r.purchase_id).or_default().insert(
            (r.beneficiary_id, r.level, r.refund_id),
            (Money::from_decimal(r.amount)?, r.leg_user_id),
        );
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
    let mut refunds_of: HashMap<Uuid, Vec<(String, Money, Money)>> = HashMap::new();
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
        let mut expected: BTreeMap<Key, (Money, Uuid)> = BTreeMap::new();
        if expected_status == "paid" {
            for s in payouts(plan, buyer, amount, profit, &ancestors) {
                let key = (s.beneficiary.as_uuid(), i16::from(s.level), String::new());
                expected.insert(key.clone(), (s.amount, s.leg.as_uuid()));
                let mut refunded = Money::ZERO;
                for (refund_id, r_amount, before) in refunds_of.get(&p.id).into_iter().flatten() {
                    refunded = refunded + *r_amount;
                    let back = reversal(s.amount, amount, *before, *before + *r_amount);
                    if !back.is_zero() {
                        expected.insert((key.0, key.1, refund_id.clone()), (back, s.leg.as_uuid()));
                    }
                }
            }
        }
        let refunded: Money = refunds_of
            .get(&p.id)
            .into_iter()
            .flatten()
            .map(|r| r.1)
            .sum();
        if Money::from_decimal(p.refunded)? != refunded {
            diffs.push(format!(
                "purchase {}: refunded {} but refunds add up to {refunded}",
                p.id, p.refunded
            ));
        }
        let actual = entries.remove(&p.id).unwrap_or_default();
        compare(&p.id, &expected, &actual, diffs);
    }
    for (purchase, orphans) in entries {
        diffs.push(format!(
            "{} entries name purchase {purchase}, which does not exist",
            orphans.len()
        ));
    }
    check_balances(pool, diffs).await?;
    Ok(report)
}

fn compare(
    purchase: &Uuid,
    expected: &BTreeMap<Key, (Money, Uuid)>,
    actual: &BTreeMap<Key, (Money, Uuid)>,
    diffs: &mut Vec<String>,
) {
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!(
                "purchase {purchase}: missing entry {k:?} of {}",
                v.0
            )),
            Some(a) if a != v => diffs.push(format!(
                "purchase {purchase}: entry {k:?} is {} (leg {}), expected {} (leg {})",
                a.0, a.1, v.0, v.1
            )),
            Some(_) => {}
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            diffs.push(format!(
                "purchase {purchase}: unexpected entry {k:?} of {}",
                v.0
            ));
        }
    }
}

/// Balances and totals must equal the sum of the entries they summarize.
async fn check_balances(pool: &PgPool, diffs: &mut Vec<String>) -> anyhow::Result<()> {
    let bad_levels = sqlx::query!(
        r#"SELECT coalesce(b.user_id, e.user_id) AS "user_id!", coalesce(b.level, e.level) AS "level!",
                  b.total AS balance, e.total AS entries
           FROM balances b
           FULL JOIN (SELECT beneficiary_id AS user_id, level, sum(amount) AS total FROM earnings GROUP BY 1, 2) e
             ON e.user_id = b.user_id AND e.level = b.level
           WHERE b.total IS DISTINCT FROM e.total AND NOT (b.total = 0 AND e.total IS NULL)"#
    )
    .fetch_all(pool)
    .await?;
    for r in bad_levels {
        diffs.push(format!(
            "balance of {} level {}: {:?} but entries add up to {:?}",
            r.user_id, r.level, r.balance, r.entries
        ));
    }
    let bad_totals = sqlx::query!(
        r#"SELECT a.user_id, a.total, coalesce(e.total, 0) AS "entries!"
           FROM account_totals a
           LEFT JOIN (SELECT beneficiary_id, sum(amount) AS total FROM earnings GROUP BY 1) e ON e.beneficiary_id = a.user_id
           WHERE a.total <> coalesce(e.total, 0)"#
    )
    .fetch_all(pool)
    .await?;
    for r in bad_totals {
        diffs.push(format!(
            "total of {}: {} but entries add up to {}",
            r.user_id, r.total, r.entries
        ));
    }
    Ok(())
}
