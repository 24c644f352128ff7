//! Purchases of a batch: classify (new, replayed, conflicting), pay the new ones.
use super::{lock_totals, step, write_entries, DeadLetter, Delivered, Entry, Item, Outcome};
use crate::graph::ReferralGraph;
use crate::payout::payouts;
use anyhow::Context;
use chrono::{SubsecRound, Utc};
use rust_decimal::Decimal;
use schemas::messages::{DeadLetterReason, ProcessedPurchase, PurchaseMessage};
use schemas::{EarningEvent, EntryKind, InactivePolicy, Plan};
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A purchase about to be inserted, with what it pays.
struct Planned<'a> {
    delivered: &'a Delivered,
    msg: &'a PurchaseMessage,
    status: &'static str,
    ancestors: serde_json::Value,
    shares: Vec<crate::payout::Share>,
}

fn dead(d: &Delivered, reason: DeadLetterReason, detail: String) -> DeadLetter {
    DeadLetter::of(d, reason, detail)
}

/// Returns the (shop, order) keys of purchases inserted now, for pending refunds.
pub(super) async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    graph: &ReferralGraph,
    plan: &Plan,
    batch: &[&Delivered],
    outcome: &mut Outcome,
    dead_letters: &mut Vec<DeadLetter>,
) -> anyhow::Result<Vec<(Uuid, String)>> {
    let mut valid: Vec<(&Delivered, &PurchaseMessage)> = Vec::new();
    for d in batch {
        let Item::Purchase(m) = &d.item else { continue };
        match m.check() {
            Ok(()) => valid.push((d, m)),
            Err(reason) => dead_letters.push(dead(
                d,
                reason,
                format!("purchase {} refused", m.purchase_id),
            )),
        }
    }
    let owned = super::tenancy::owned_by_their_shops(tx, valid, dead_letters);
    let valid = step("tenancy", owned).await?;
    if valid.is_empty() {
        return Ok(Vec::new());
    }

    let shops: Vec<Uuid> = valid.iter().map(|(_, m)| m.shop_id.as_uuid()).collect();
    let orders: Vec<String> = valid.iter().map(|(_, m)| m.order_id.to_string()).collect();
    let existing: HashMap<(Uuid, String), (Uuid, String)> = step("read_known", async {
        Ok(sqlx::query!(
            "SELECT p.id, p.shop_id, p.order_id, p.body_hash FROM purchases p
         JOIN UNNEST($1::uuid[], $2::text[]) AS k(shop_id, order_id)
           ON p.shop_id = k.shop_id AND p.order_id = k.order_id",
            &shops,
            &orders
        )
        .fetch_all(&mut **tx)
        .await?)
    })
    .await
    .context("reading known purchases")?
    .into_iter()
    .map(|r| ((r.shop_id, r.order_id), (r.id, r.body_hash)))
    .collect();

    // An order's body is the settled one, or else the first in this batch: an identical
    // message is a duplicate delivery (a replay), a different one a conflict.
    let compress = plan.inactive_policy == InactivePolicy::Compress;
    let mut first: HashMap<(Uuid, &str), &str> = HashMap::new();
    let mut replayed = Vec::new();
    let mut planned = Vec::new();
    for (d, m) in valid {
        let key = (m.shop_id.as_uuid(), m.order_id.as_str());
        let settled = existing.get(&(key.0, key.1.to_owned()));
        let reference = settled
            .map(|(_, hash)| hash.as_str())
            .or_else(|| first.get(&key).copied());
        match reference {
            Some(hash) if hash != m.body_hash => {
                dead_letters.push(dead(
                    d,
                    DeadLetterReason::OrderConflict,
                    format!("order {}", m.order_id),
                ));
                continue;
            }
            Some(_) => {
                replayed.extend(settled.map(|(id, _)| *id));
                continue;
            }
            None => {
                first.insert(key, &m.body_hash);
            }
        }
        let Some(buyer_active) = graph.is_active(m.user_id) else {
            dead_letters.push(dead(
                d,
                DeadLetterReason::UnknownUser,
                format!("purchase {}", m.purchase_id),
            ));
            continue;
        };
        let ancestors = graph.payout_ancestors(m.user_id, plan.levels(), compress);
        let (status, shares) = if !buyer_active {
            ("rejected_inactive_buyer", Vec::new())
        } else if !plan.qualifies(m.amount) {
            ("below_threshold", Vec::new())
        } else {
            (
                "paid",
                payouts(plan, m.user_id, m.amount, m.profit, &ancestors),
            )
        };
        planned.push(Planned {
            delivered: d,
            msg: m,
            status,
            ancestors: serde_json::to_value(&ancestors)?,
            shares,
        });
    }

    let planned = step("taken_ids", without_taken_ids(tx, planned, dead_letters)).await?;
    let inserted = step(
        "insert_purchases",
        insert_purchases(tx, plan, graph.seq, &planned),
    )
    .await?;
    // Totals are locked last, for as short a time as the batch allows: a beneficiary
    // with a large downline is in almost every batch, and the row lock is what
    // concurrent workers wait on.
    let mut beneficiaries: Vec<Uuid> = planned
        .iter()
        .filter(|p| inserted.contains_key(&p.msg.purchase_id))
        .flat_map(|p| p.shares.iter().map(|s| s.beneficiary.as_uuid()))
        .collect();
    let mut totals = step("lock_totals", lock_totals(tx, &mut beneficiaries)).await?;

    let now = Utc::now().trunc_subsecs(6);
    let mut entries = Vec::new();
    let mut keys = Vec::new();
    for p in planned
        .iter()
        .filter(|p| inserted.contains_key(&p.msg.purchase_id))
    {
        let m = p.msg;
        keys.push((m.shop_id.as_uuid(), m.order_id.to_string()));
        outcome.new_purchases.push(p.status);
        outcome.purchases.push(ProcessedPurchase {
            purchase_id: m.purchase_id,
            shop_id: m.shop_id,
            user_id: m.user_id,
            amount: m.amount,
            profit: m.profit,
            qualifying: plan.qualifies(m.amount),
            plan_version: plan.version,
            status: p.status.to_owned(),
            occurred_at: m.occurred_at,
            processed_at: now,
        });
        for s in &p.shares {
            let (total, seq) = totals
                .entry(s.beneficiary.as_uuid())
                .or_default()
                .push(s.amount);
            entries.push(Entry {
                event: EarningEvent {
                    earning_id: Uuid::now_v7(),
                    seq,
                    purchase_id: m.purchase_id,
                    shop_id: m.shop_id,
                    beneficiary_id: s.beneficiary,
                    source_user_id: m.user_id,
                    leg_user_id: s.leg,
                    level: s.level,
                    direct: s.level == 1,
                    kind: EntryKind::Earning,
                    amount: s.amount,
                    total,
                    plan_version: plan.version,
                    created_at: now,
                },
                base: s.base,
                rate: s.rate.as_decimal(),
                refund_id: String::new(),
            });
        }
    }
    write_entries(tx, &entries, &totals).await?;
    outcome.new_entries += entries.len();
    outcome.entries.extend(entries.into_iter().map(|e| e.event));
    // Orders are locked per batch (`lock_orders`), so none was inserted meanwhile; were
    // one, it would be the same purchase settled by another processor: a replay.
    replayed.extend(
        planned
            .iter()
            .map(|p| p.msg.purchase_id)
            .filter(|id| !inserted.contains_key(id)),
    );
    replayed.sort();
    replayed.dedup();
    step("replay", super::replay::purchases(tx, &replayed, outcome)).await?;
    Ok(keys)
}

/// A purchase id names one purchase: a message reusing the id of another order (shops that
/// publish directly choose their ids) is dead-lettered, instead of failing the batch
/// on the primary key for ever.
async fn without_taken_ids<'a>(
    tx: &mut Transaction<'_, Postgres>,
    planned: Vec<Planned<'a>>,
    dead_letters: &mut Vec<DeadLetter>,
) -> anyhow::Result<Vec<Planned<'a>>> {
    let ids: Vec<Uuid> = planned.iter().map(|p| p.msg.purchase_id).collect();
    let mut taken: HashSet<Uuid> =
        sqlx::query_scalar!("SELECT id FROM purchases WHERE id = ANY($1)", &ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let mut kept = Vec::with_capacity(planned.len());
    for p in planned {
        if taken.insert(p.msg.purchase_id) {
            kept.push(p);
        } else {
            let detail = format!(
                "purchase id {} already names another order",
                p.msg.purchase_id
            );
            dead_letters.push(dead(p.delivered, DeadLetterReason::OrderConflict, detail));
        }
    }
    Ok(kept)
}

/// Inserts the planned purchases; returns the ids actually inserted.
async fn insert_purchases(
    tx: &mut Transaction<'_, Postgres>,
    plan: &Plan,
    graph_seq: i64,
    planned: &[Planned<'_>],
) -> anyhow::Result<HashMap<Uuid, ()>> {
    if planned.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = planned.iter().map(|p| p.msg.purchase_id).collect();
    let shops: Vec<Uuid> = planned.iter().map(|p| p.msg.shop_id.as_uuid()).collect();
    let orders: Vec<String> = planned.iter().map(|p| p.msg.order_id.to_string()).collect();
    let users: Vec<Uuid> = planned.iter().map(|p| p.msg.user_id.as_uuid()).collect();
    let amounts: Vec<Decimal> = planned.iter().map(|p| p.msg.amount.as_decimal()).collect();
    let profits: Vec<Decimal> = planned.iter().map(|p| p.msg.profit.as_decimal()).collect();
    let occurred: Vec<_> = planned.iter().map(|p| p.msg.occurred_at).collect();
    let statuses: Vec<String> = planned.iter().map(|p| p.status.to_owned()).collect();
    let hashes: Vec<String> = planned.iter().map(|p| p.msg.body_hash.clone()).collect();
    let ancestors: Vec<serde_json::Value> = planned.iter().map(|p| p.ancestors.clone()).collect();
    let rows = sqlx::query_scalar!(
        "INSERT INTO purchases (id, shop_id, order_id, user_id, amount, profit, occurred_at, status, body_hash,
                                ancestors, plan_version, graph_seq)
         SELECT *, $11::int, $12::bigint FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::numeric[],
                                 $6::numeric[], $7::timestamptz[], $8::text[], $9::text[], $10::jsonb[])
         ON CONFLICT (shop_id, order_id) DO NOTHING
         RETURNING id",
        &ids,
        &shops,
        &orders,
        &users,
        &amounts,
        &profits,
        &occurred,
        &statuses,
        &hashes,
        &ancestors,
        plan.version as i32,
        graph_seq
    )
    .fetch_all(&mut **tx)
    .await
    .context("inserting purchases")?;
    let inserted: HashMap<Uuid, ()> = rows.into_iter().map(|id| (id, ())).collect();
    record_direct_orders(tx, planned, &inserted).await?;
    Ok(inserted)
}

/// Shops may publish to the stream directly; their orders are recorded at the edge too,
/// with the message as settled, so refunds find them and a retry through ingest is
/// answered as the same purchase (or a 409 when its body differs).
async fn record_direct_orders(
    tx: &mut Transaction<'_, Postgres>,
    planned: &[Planned<'_>],
    inserted: &HashMap<Uuid, ()>,
) -> anyhow::Result<()> {
    // Most orders came through ingest, which reserved them under the same purchase id:
    // only the others are recorded (sending every message to meet a conflict cost more
    // than the rest of the batch's purchase writes).
    let new_ids: Vec<Uuid> = inserted.keys().copied().collect();
    let reserved: HashSet<Uuid> = sqlx::query_scalar!(
        "SELECT purchase_id FROM purchase_requests WHERE purchase_id = ANY($1)",
        &new_ids
    )
    .fetch_all(&mut **tx)
    .await
    .context("reading edge reservations")?
    .into_iter()
    .collect();
    let recorded: Vec<&PurchaseMessage> = planned
        .iter()
        .map(|p| p.msg)
        .filter(|m| inserted.contains_key(&m.purchase_id) && !reserved.contains(&m.purchase_id))
        .collect();
    if recorded.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = recorded.iter().map(|m| m.purchase_id).collect();
    let messages = recorded
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query!(
        "INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, message, amount)
         SELECT p.shop_id, p.order_id, p.id,
                CASE WHEN p.body_hash ~ '^[0-9a-f]{64}$' THEN decode(p.body_hash, 'hex')
                     ELSE convert_to(p.body_hash, 'UTF8') END,
                m.message, p.amount
         FROM UNNEST($1::uuid[], $2::jsonb[]) AS m(id, message)
         JOIN purchases p ON p.id = m.id JOIN shops s ON s.id = p.shop_id
         ON CONFLICT DO NOTHING",
        &ids,
        &messages
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
