//! Postgres writes for one batch, in one transaction. Purchases are keyed by
//! (shop, order) and earnings by (purchase, beneficiary, level, kind, refund), so a
//! replayed batch inserts nothing; totals are locked in user-id order, so concurrent
//! processors cannot deadlock on them.
mod orders;
mod purchases;
mod refunds;
mod replay;
mod rollups;
mod tenancy;

use crate::graph::ReferralGraph;
use anyhow::Context;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemas::messages::{DeadLetterReason, ProcessedPurchase, PurchaseMessage, RefundMessage};
use schemas::{EarningEvent, Money, Plan};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub enum Item {
    Purchase(PurchaseMessage),
    Refund(RefundMessage),
}

impl Item {
    pub fn shop_id(&self) -> schemas::ShopId {
        match self {
            Item::Purchase(p) => p.shop_id,
            Item::Refund(r) => r.shop_id,
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub subject: String,
    pub reason: DeadLetterReason,
    pub detail: String,
    pub payload: Vec<u8>,
    pub stream_seq: u64,
    /// Position of the item within its stored message (0 for single messages).
    pub index: u32,
}

impl DeadLetter {
    /// A dead letter for one delivered item, naming where it came from.
    pub fn of(d: &Delivered, reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        DeadLetter {
            subject: d.subject.clone(),
            reason,
            detail: detail.into(),
            payload: d.payload.clone(),
            stream_seq: d.stream_seq,
            index: d.index,
        }
    }
}

/// One item of a batch (a stored message may carry several): where it came from, and what it said.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub subject: String,
    pub stream_seq: u64,
    /// Position of the item within its stored message (0 for single messages).
    pub index: u32,
    pub payload: Vec<u8>,
    pub item: Item,
}

#[derive(Default, Debug)]
pub struct Outcome {
    /// New and replayed entries, to (re)publish; msg-id = earning id dedups replays.
    pub entries: Vec<EarningEvent>,
    pub purchases: Vec<ProcessedPurchase>,
    pub dead: Vec<DeadLetter>,
    pub new_entries: usize,
    /// Status of each purchase settled for the first time by this batch.
    pub new_purchases: Vec<&'static str>,
}

/// What a batch is applied under: the plan, and how its orders are locked.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub plan: &'a Plan,
    /// `processor.order_lock_buckets`.
    pub order_lock_buckets: u32,
}

/// Applies one batch. On error nothing was written and the batch must not be acked.
pub async fn apply(
    pool: &PgPool,
    graph: &ReferralGraph,
    rules: Rules<'_>,
    batch: &[Delivered],
    mut dead: Vec<DeadLetter>,
) -> anyhow::Result<Outcome> {
    let plan = rules.plan;
    let mut tx = step("begin", async { Ok(pool.begin().await?) }).await?;
    let locks = lock_orders(&mut tx, batch, rules.order_lock_buckets);
    step("lock_orders", locks).await?;
    let mut outcome = Outcome::default();
    let purchases: Vec<&Delivered> = batch
        .iter()
        .filter(|d| matches!(d.item, Item::Purchase(_)))
        .collect();
    let settled =
        purchases::apply(&mut tx, graph, plan, &purchases, &mut outcome, &mut dead).await?;
    let pending = refunds::apply_pending_for(&mut tx, &settled, &mut outcome, &mut dead);
    step("pending_refunds", pending).await?;
    for d in batch {
        if let Item::Refund(r) = &d.item {
            refunds::apply_one(&mut tx, d, r, &mut outcome, &mut dead).await?;
        }
    }
    step("dead_letters", record_dead_letters(&mut tx, &dead)).await?;
    step("commit", async { Ok(tx.commit().await?) })
        .await
        .context("committing batch")?;
    outcome.dead = dead;
    Ok(outcome)
}

/// Runs one step of a batch, timed into `processor_batch_seconds{stage}` (a fixed set of
/// step names), so where a batch's time goes is visible under load, not only in a profile.
async fn step<T>(
    stage: &'static str,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let started = std::time::Instant::now();
    let result = f.await;
    platform::metrics::metrics()
        .batch_latency
        .with_label_values(&[stage])
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Advisory-lock class of the order locks (the two-int4 key space, apart from the
/// single-int8 keys such as `platform::db::USER_EVENTS_LOCK`).
const ORDER_LOCK_CLASS: i32 = 0x6f72_6472; // "ordr"

/// Serializes what must not overlap on one order, which N processors sharing the
/// consumer may hold at once: a purchase on one and its early refund on another (the
/// refund would stay pending beside its settled purchase), or two refunds. Each order
/// hashes to one of `buckets` advisory locks, taken in bucket order before anything is
/// read, so they cannot deadlock: shared for a bucket with only purchases (purchase
/// batches never wait on each other; two deliveries of one purchase meet on its primary
/// key, and the later batch is retried as a replay), exclusive for one with a refund.
/// A batch holds at most `buckets` locks, however many orders it carries.
async fn lock_orders(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[Delivered],
    buckets: u32,
) -> anyhow::Result<()> {
    let mut shops = Vec::with_capacity(batch.len());
    let mut orders = Vec::with_capacity(batch.len());
    let mut refunds = Vec::with_capacity(batch.len());
    for d in batch {
        let (shop, order, refund) = match &d.item {
            Item::Purchase(m) => (m.shop_id, m.order_id.to_string(), false),
            Item::Refund(r) => (r.shop_id, r.order_id.to_string(), true),
        };
        shops.push(shop.as_uuid());
        orders.push(order);
        refunds.push(refund);
    }
    if shops.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "SELECT CASE WHEN exclusive THEN pg_advisory_xact_lock($4, k)
                     ELSE pg_advisory_xact_lock_shared($4, k) END
         FROM (SELECT (hashtext(s::text || ':' || o) & 2147483647) % $5 AS k,
                      bool_or(r) AS exclusive
               FROM UNNEST($1::uuid[], $2::text[], $3::bool[]) AS u(s, o, r)
               GROUP BY 1 ORDER BY 1) AS keys",
        &shops,
        &orders,
        &refunds,
        ORDER_LOCK_CLASS,
        i32::try_from(buckets)?
    )
    .fetch_all(&mut **tx)
    .await
    .context("locking the batch's orders")?;
    Ok(())
}

async fn record_dead_letters(
    tx: &mut Transaction<'_, Postgres>,
    dead: &[DeadLetter],
) -> anyhow::Result<()> {
    for d in dead {
        sqlx::query!(
            "INSERT INTO dead_letters (subject, reason, detail, payload, stream_seq, item_index)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (subject, stream_seq, item_index) DO NOTHING",
            d.subject,
            d.reason.as_str(),
            d.detail,
            d.payload,
            i64::try_from(d.stream_seq).unwrap_or(i64::MAX),
            i32::try_from(d.index).unwrap_or(i32::MAX)
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A beneficiary's running total and entry count inside one batch.
#[derive(Clone, Copy, Debug, Default)]
struct Running {
    total: Money,
    entries: i64,
}

impl Running {
    /// Adds one entry; returns the total after it and the entry's position in the
    /// beneficiary's ledger (its live event id).
    fn push(&mut self, amount: Money) -> (Money, u64) {
        self.total = self.total + amount;
        self.entries += 1;
        (self.total, u64::try_from(self.entries).unwrap_or_default())
    }
}

/// Locks the running totals of `users` (in id order) and returns them.
async fn lock_totals(
    tx: &mut Transaction<'_, Postgres>,
    users: &mut Vec<Uuid>,
) -> anyhow::Result<BTreeMap<Uuid, Running>> {
    users.sort();
    users.dedup();
    sqlx::query!(
        "INSERT INTO account_totals (user_id) SELECT * FROM UNNEST($1::uuid[]) ON CONFLICT DO NOTHING",
        &users[..]
    )
    .execute(&mut **tx)
    .await?;
    let rows = sqlx::query!(
        "SELECT user_id, total, entries FROM account_totals WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE",
        &users[..]
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            let total = Money::from_decimal(r.total)?;
            Ok((
                r.user_id,
                Running {
                    total,
                    entries: r.entries,
                },
            ))
        })
        .collect()
}

/// One ledger row about to be written.
#[derive(Clone, Debug)]
struct Entry {
    event: EarningEvent,
    base: Money,
    rate: Decimal,
    refund_id: String,
}

/// Writes entries (whose `total` is already the running total) and moves the summaries
/// they add to: report rollups, balances per level, and the locked totals.
async fn write_entries(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
    totals: &BTreeMap<Uuid, Running>,
) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    step("insert_entries", insert_entries(tx, entries)).await?;
    step("rollups", rollups::add(tx, entries)).await?;
    let touched = step("balances", move_balances(tx, entries)).await?;
    step("totals", move_totals(tx, totals, &touched)).await?;
    crate::metrics_entries(entries.iter().map(|e| e.event.kind));
    Ok(())
}

/// The ledger rows themselves, in one statement.
async fn insert_entries(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
) -> anyhow::Result<()> {
    let col = |f: fn(&Entry) -> Uuid| entries.iter().map(f).collect::<Vec<_>>();
    let ids = col(|e| e.event.earning_id);
    let purchase_ids = col(|e| e.event.purchase_id);
    let beneficiaries = col(|e| e.event.beneficiary_id.as_uuid());
    let legs = col(|e| e.event.leg_user_id.as_uuid());
    let sources = col(|e| e.event.source_user_id.as_uuid());
    let levels: Vec<i16> = entries.iter().map(|e| i16::from(e.event.level)).collect();
    let bases: Vec<Decimal> = entries.iter().map(|e| e.base.as_decimal()).collect();
    let rates: Vec<Decimal> = entries.iter().map(|e| e.rate).collect();
    let amounts: Vec<Decimal> = entries
        .iter()
        .map(|e| e.event.amount.as_decimal())
        .collect();
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| e.event.kind.as_str().to_owned())
        .collect();
    let refund_ids: Vec<String> = entries.iter().map(|e| e.refund_id.clone()).collect();
    let versions: Vec<i32> = entries
        .iter()
        .map(|e| e.event.plan_version as i32)
        .collect();
    let after: Vec<Decimal> = entries.iter().map(|e| e.event.total.as_decimal()).collect();
    let user_seqs: Vec<i64> = entries
        .iter()
        .map(|e| i64::try_from(e.event.seq))
        .collect::<Result<_, _>>()?;
    let created: Vec<DateTime<Utc>> = entries.iter().map(|e| e.event.created_at).collect();
    sqlx::query!(
        "INSERT INTO earnings (id, purchase_id, beneficiary_id, leg_user_id, source_user_id, level, base, rate,
                               amount, kind, refund_id, plan_version, balance_after, created_at, user_seq)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::smallint[],
                              $7::numeric[], $8::numeric[], $9::numeric[], $10::text[], $11::text[], $12::int[],
                              $13::numeric[], $14::timestamptz[], $15::bigint[])",
        &ids,
        &purchase_ids,
        &beneficiaries,
        &legs,
        &sources,
        &levels,
        &bases,
        &rates,
        &amounts,
        &kinds,
        &refund_ids,
        &versions,
        &after,
        &created,
        &user_seqs
    )
    .execute(&mut **tx)
    .await
    .context("inserting earnings")?;
    Ok(())
}

/// Adds the entries to `balances` (grouped per beneficiary and level first); returns the
/// beneficiaries they touched.
async fn move_balances(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
) -> anyhow::Result<BTreeSet<Uuid>> {
    let mut by_level: BTreeMap<(Uuid, i16), (Decimal, i64)> = BTreeMap::new();
    let mut touched: BTreeSet<Uuid> = BTreeSet::new();
    for e in entries {
        let slot = by_level
            .entry((e.event.beneficiary_id.as_uuid(), i16::from(e.event.level)))
            .or_default();
        slot.0 += e.event.amount.as_decimal();
        slot.1 += 1;
        touched.insert(e.event.beneficiary_id.as_uuid());
    }
    let (keys, sums): (Vec<_>, Vec<_>) = by_level.into_iter().unzip();
    let (users, lvls): (Vec<Uuid>, Vec<i16>) = keys.into_iter().unzip();
    let (deltas, ns): (Vec<Decimal>, Vec<i64>) = sums.into_iter().unzip();
    sqlx::query!(
        "INSERT INTO balances (user_id, level, total, entries)
         SELECT * FROM UNNEST($1::uuid[], $2::smallint[], $3::numeric[], $4::bigint[])
         ON CONFLICT (user_id, level) DO UPDATE
         SET total = balances.total + EXCLUDED.total, entries = balances.entries + EXCLUDED.entries",
        &users,
        &lvls,
        &deltas,
        &ns
    )
    .execute(&mut **tx)
    .await
    .context("moving balances")?;
    Ok(touched)
}

/// Totals and counts as they stand after the batch (the rows are locked by us).
async fn move_totals(
    tx: &mut Transaction<'_, Postgres>,
    totals: &BTreeMap<Uuid, Running>,
    touched: &BTreeSet<Uuid>,
) -> anyhow::Result<()> {
    let touched: Vec<(&Uuid, &Running)> = totals
        .iter()
        .filter(|(u, _)| touched.contains(*u))
        .collect();
    let tusers: Vec<Uuid> = touched.iter().map(|(u, _)| **u).collect();
    let finals: Vec<Decimal> = touched.iter().map(|(_, r)| r.total.as_decimal()).collect();
    let tcounts: Vec<i64> = touched.iter().map(|(_, r)| r.entries).collect();
    sqlx::query!(
        "UPDATE account_totals a SET total = u.total, entries = u.entries
         FROM UNNEST($1::uuid[], $2::numeric[], $3::bigint[]) AS u(user_id, total, entries)
         WHERE a.user_id = u.user_id",
        &tusers,
        &finals,
        &tcounts
    )
    .execute(&mut **tx)
    .await
    .context("moving totals")?;
    Ok(())
}
