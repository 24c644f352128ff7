//! Purchases of a batch: classify (new, replayed, conflicting), pay the new ones.
//!
//! An order's registry is `purchase_requests` (one row per shop and order, naming its
//! purchase id: reserved at the edge, or recorded here for a purchase a shop published
//! straight to the stream). `purchases` itself is keyed by purchase id only: the order's
//! uniqueness is the registry's primary key, so a settled purchase pays for one index
//! less (migration 0006).
use super::orders::{self, Registered};
use super::{lock_totals, step, write_entries, DeadLetter, Delivered, Entry, Item, Outcome};
use crate::graph::{Ancestor, ReferralGraph};
use crate::payout::decide;
use chrono::{DateTime, SubsecRound, Utc};
use schemas::messages::{DeadLetterReason, ProcessedPurchase, PurchaseMessage};
use schemas::{EarningEvent, EntryKind, Plan, PurchaseStatus};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// A purchase about to be inserted, with what it pays.
pub(super) struct Planned<'a> {
    pub delivered: &'a Delivered,
    pub msg: &'a PurchaseMessage,
    pub status: PurchaseStatus,
    /// As `purchases.ancestors` stores them (`Ancestor::encode_all`).
    pub ancestors: Vec<u8>,
    pub shares: Vec<crate::payout::Share>,
    /// The order is not in the registry yet (published straight to the stream).
    pub unregistered: bool,
}

fn dead(d: &Delivered, reason: DeadLetterReason, detail: String) -> DeadLetter {
    DeadLetter::of(d, reason, detail)
}

/// A batch's purchases, and the totals its refunds will move (locked with theirs).
pub(super) struct Batch<'a, 'b> {
    pub items: &'a [&'b Delivered],
    pub also_lock: Vec<Uuid>,
}

/// Settles the batch's new purchases and replays the settled ones. Returns the (shop,
/// order) keys of purchases inserted now, for pending refunds.
pub(super) async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    graph: &ReferralGraph,
    plan: &Plan,
    batch: Batch<'_, '_>,
    outcome: &mut Outcome,
    dead_letters: &mut Vec<DeadLetter>,
) -> anyhow::Result<Vec<(Uuid, String)>> {
    let Batch {
        items,
        mut also_lock,
    } = batch;
    let valid = well_formed(items, dead_letters);
    let owned = super::tenancy::owned_by_their_shops(tx, valid, dead_letters);
    let valid = step("tenancy", owned).await?;
    if valid.is_empty() {
        if !also_lock.is_empty() {
            step("lock_totals", lock_totals(tx, &mut also_lock)).await?;
        }
        return Ok(Vec::new());
    }
    let known = step("read_known", orders::known(tx, &valid)).await?;
    let (planned, mut replayed) = classify(graph, plan, valid, &known, dead_letters)?;
    let planned = orders::unique_ids(planned, dead_letters);
    // One instant for the purchases, stored and announced alike: a replay announces the
    // stored one, and the warehouse knows a purchase it holds by (second, id). (Stored by
    // the column's default, the transaction's start, it could fall in another second than
    // the one announced, and a replay was then counted again in the warehouse's rollup.)
    let processed_at = Utc::now().trunc_subsecs(6);
    let insert = orders::insert_purchases(tx, plan, graph.seq, processed_at, &planned);
    step("insert_purchases", insert).await?;
    step("register_orders", orders::register(tx, &planned)).await?;
    let keys = pay(tx, plan, &planned, also_lock, processed_at, outcome).await?;
    replayed.sort();
    replayed.dedup();
    step("replay", super::replay::purchases(tx, &replayed, outcome)).await?;
    Ok(keys)
}

/// The purchases whose fields pass their checks; the others are dead-lettered.
fn well_formed<'a>(
    batch: &[&'a Delivered],
    dead_letters: &mut Vec<DeadLetter>,
) -> Vec<(&'a Delivered, &'a PurchaseMessage)> {
    let mut valid = Vec::new();
    for d in batch {
        let Item::Purchase(m) = &d.item else { continue };
        match m.check() {
            Ok(()) => valid.push((*d, m)),
            Err(reason) => dead_letters.push(dead(
                d,
                reason,
                format!("purchase {} refused", m.purchase_id),
            )),
        }
    }
    valid
}

/// What one message is, against the registry and the batch so far.
pub(super) enum Seen {
    New,
    /// A redelivery of a settled purchase (to republish), or of one earlier in the batch.
    Replay(Option<Uuid>),
    Conflict(String),
}

/// An order's body is the settled one, or else the first in this batch: an identical
/// message is a duplicate delivery (a replay), a different one a conflict. An order
/// registered to another purchase id that has not settled yet is a conflict too: the
/// registered purchase is the one that pays; so is one under the registered id with
/// another body than it was reserved with (a direct publisher reusing the id the edge
/// answered with, under a changed body, would otherwise race the edge's own message).
fn seen<'a>(
    m: &'a PurchaseMessage,
    known: &HashMap<(Uuid, String), Registered>,
    first: &mut HashMap<(Uuid, &'a str), &'a str>,
) -> Seen {
    let key = (m.shop_id.as_uuid(), m.order_id.as_str());
    let conflict = || Seen::Conflict(format!("order {}", m.order_id));
    match known.get(&(key.0, key.1.to_owned())) {
        Some(Registered {
            purchase_id,
            settled_hash: Some(hash),
            ..
        }) => {
            return if *hash == m.body_hash {
                Seen::Replay(Some(*purchase_id))
            } else {
                conflict()
            };
        }
        Some(r) if r.purchase_id != m.purchase_id => return conflict(),
        Some(r) if r.reserved_hash != orders::hash_bytes(&m.body_hash) => return conflict(),
        _ => {}
    }
    match first.get(&key) {
        Some(hash) if *hash != m.body_hash => conflict(),
        Some(_) => Seen::Replay(None),
        None => {
            first.insert(key, &m.body_hash);
            Seen::New
        }
    }
}

/// The new purchases with what each pays, and the settled ones redelivered.
fn classify<'a>(
    graph: &ReferralGraph,
    plan: &Plan,
    valid: Vec<(&'a Delivered, &'a PurchaseMessage)>,
    known: &orders::Known,
    dead_letters: &mut Vec<DeadLetter>,
) -> anyhow::Result<(Vec<Planned<'a>>, Vec<Uuid>)> {
    let (taken, known) = (&known.taken, &known.registered);
    let mut first = HashMap::new();
    let (mut planned, mut replayed) = (Vec::new(), Vec::new());
    for (d, m) in valid {
        // Before `seen` notes the order's first body: a copy refused for its id must not
        // make the next copy of the order (under a free id) look like its duplicate.
        let judged = match orders::taken_id(m, taken) {
            Some(judged) => judged,
            None => seen(m, known, &mut first),
        };
        match judged {
            Seen::Conflict(detail) => {
                dead_letters.push(dead(d, DeadLetterReason::OrderConflict, detail));
                continue;
            }
            Seen::Replay(settled) => {
                replayed.extend(settled);
                continue;
            }
            Seen::New => {}
        }
        let Some(buyer_active) = graph.is_active(m.user_id) else {
            let detail = format!("purchase {}", m.purchase_id);
            dead_letters.push(dead(d, DeadLetterReason::UnknownUser, detail));
            continue;
        };
        let ancestors = graph.payout_ancestors(m.user_id, plan);
        let decision = decide(
            plan,
            m.user_id,
            buyer_active,
            m.amount,
            m.profit,
            &ancestors,
        );
        let (status, shares) = (decision.status, decision.shares);
        let key = (m.shop_id.as_uuid(), m.order_id.to_string());
        planned.push(Planned {
            delivered: d,
            msg: m,
            status,
            ancestors: Ancestor::encode_all(&ancestors),
            shares,
            unregistered: !known.contains_key(&key),
        });
    }
    Ok((planned, replayed))
}

/// Pays the inserted purchases: locks their beneficiaries' totals and `also_lock` (last,
/// for as short a time as the batch allows: a beneficiary with a large downline is in
/// almost every batch, and the row lock is what concurrent workers wait on), then writes
/// the entries.
async fn pay(
    tx: &mut Transaction<'_, Postgres>,
    plan: &Plan,
    planned: &[Planned<'_>],
    also_lock: Vec<Uuid>,
    processed_at: DateTime<Utc>,
    outcome: &mut Outcome,
) -> anyhow::Result<Vec<(Uuid, String)>> {
    let mut beneficiaries: Vec<Uuid> = planned
        .iter()
        .flat_map(|p| p.shares.iter().map(|s| s.beneficiary.as_uuid()))
        .chain(also_lock)
        .collect();
    let mut totals = step("lock_totals", lock_totals(tx, &mut beneficiaries)).await?;
    let now = Utc::now().trunc_subsecs(6);
    let mut entries = Vec::new();
    let mut keys = Vec::with_capacity(planned.len());
    for p in planned {
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
            plan_version: plan.version(),
            status: p.status,
            occurred_at: m.occurred_at,
            processed_at,
        });
        for s in &p.shares {
            let running = totals.entry(s.beneficiary.as_uuid()).or_default();
            let (total, seq) = running.push(s.amount);
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
                    plan_version: plan.version(),
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
    Ok(keys)
}
