//! Postgres writes for one batch, in one transaction. Purchases are keyed by
//! (shop, order) and earnings by (purchase, beneficiary, level, kind, refund), so a
//! replayed batch inserts nothing; a batch locks every total it may move in one
//! acquisition in user-id order (its purchases' beneficiaries and those of the purchases
//! its refunds reverse), so concurrent processors cannot deadlock on them.
mod entries;
mod orders;
mod purchases;
mod refunds;
mod replay;
mod rollups;
mod tenancy;

use entries::{lock_totals, write_entries, Entry};

use crate::graph::ReferralGraph;
use anyhow::Context;
use schemas::messages::{DeadLetterReason, ProcessedPurchase, PurchaseMessage, RefundMessage};
use schemas::{EarningEvent, Plan};
use sqlx::{PgPool, Postgres, Transaction};

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
    /// New and replayed entries, to (re)publish; each message's id names its entries
    /// (`entries:<first>:<last>:<count>`, announce.rs), so a replay in the window is dropped.
    pub entries: Vec<EarningEvent>,
    pub purchases: Vec<ProcessedPurchase>,
    pub dead: Vec<DeadLetter>,
    pub new_entries: usize,
    /// Status of each purchase settled for the first time by this batch.
    pub new_purchases: Vec<schemas::PurchaseStatus>,
}

/// An outcome whose transaction has committed. Only this module makes one (after the
/// commit), and the consumer acks a batch only for one, so "a batch's acks follow its
/// commit" is a type rather than a convention. Neither `Clone` nor `Default`.
#[derive(Debug)]
pub struct Committed(Outcome);

impl Committed {
    pub fn outcome(&self) -> &Outcome {
        &self.0
    }

    /// A batch applied in parts (one transaction each) is committed as a whole.
    pub fn merge(mut self, other: Committed) -> Committed {
        let (into, from) = (&mut self.0, other.0);
        into.entries.extend(from.entries);
        into.purchases.extend(from.purchases);
        into.dead.extend(from.dead);
        into.new_entries += from.new_entries;
        into.new_purchases.extend(from.new_purchases);
        self
    }
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
) -> anyhow::Result<Committed> {
    let plan = rules.plan;
    let mut tx = step("begin", async { Ok(pool.begin().await?) }).await?;
    let locks = lock_orders(&mut tx, batch, rules.order_lock_buckets);
    step("lock_orders", locks).await?;
    let mut outcome = Outcome::default();
    let purchases: Vec<&Delivered> = batch
        .iter()
        .filter(|d| matches!(d.item, Item::Purchase(_)))
        .collect();
    // Locked with the purchases' beneficiaries, not refund by refund after them: a batch
    // that paid u1 then reversed u2 and one that paid u2 then reversed u1 deadlocked.
    let refunded = step(
        "refund_beneficiaries",
        refunds::beneficiaries(&mut tx, batch),
    )
    .await?;
    let purchases = purchases::Batch {
        items: &purchases,
        also_lock: refunded,
    };
    let settled =
        purchases::apply(&mut tx, graph, plan, purchases, &mut outcome, &mut dead).await?;
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
    Ok(Committed(outcome))
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
