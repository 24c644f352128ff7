//! `referral verify`: recomputes every entry from purchases, refunds, plan versions and
//! the replayed graph history, and reports each difference. Independent of the writer:
//! it shares only the pure payout rule and the graph type.
//!
//! It streams: purchases are read in graph order on one connection and checked in chunks
//! (their entries and refunds read per chunk by purchase id), while the graph history is
//! replayed from a second stream of `user_events` alongside. Memory holds the graph and
//! one chunk, whatever the size of the ledger; sums are compared inside Postgres.
use crate::graph::{ReferralGraph, UserChange};
use crate::graph_sync;
use crate::plans;
use chrono::{DateTime, Utc};
use futures::stream::{Peekable, Stream};
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use schemas::{Money, Plan, UserId};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::pin::Pin;
use uuid::Uuid;

mod orders;
mod purchase;
mod snapshot;
mod states;
mod sums;

/// Purchases checked together: one read of their entries and one of their refunds.
pub const CHUNK_PURCHASES: usize = 1_000;

/// What to check: everything, or the purchases that paid one user (and that user's
/// totals and rollups), or the purchases processed in a time range (sums are all-time,
/// so a range checks entries only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope {
    pub user: Option<UserId>,
    /// Purchases processed at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Purchases processed before this instant.
    pub to: Option<DateTime<Utc>>,
}

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

/// Checks the whole ledger.
pub async fn verify(pool: &PgPool) -> anyhow::Result<Report> {
    verify_scope(pool, Scope::default()).await
}

/// Checks what `scope` names, every read in one snapshot of the ledger (`snapshot`).
pub async fn verify_scope(pool: &PgPool, scope: Scope) -> anyhow::Result<Report> {
    let mut snapshot = snapshot::Snapshot::open(pool).await?;
    let plans = plans::all(&mut *snapshot.checks).await?;
    let mut report = Report::default();
    check_purchases(&mut snapshot, scope, &plans, &mut report).await?;
    let (db, diffs) = (&mut *snapshot.checks, &mut report.differences);
    orphans(&mut *db, scope, diffs).await?;
    orders::check(&mut *db, scope, diffs).await?;
    if scope.from.is_none() && scope.to.is_none() {
        let user = scope.user.map(|u| u.as_uuid());
        sums::check(&mut *db, user, diffs).await?;
        states::check(&mut *db, user, diffs).await?;
    }
    snapshot.close().await?;
    Ok(report)
}

/// Recomputes each purchase in scope (in graph order, a chunk at a time) beside the graph
/// history replayed up to it.
async fn check_purchases(
    snapshot: &mut snapshot::Snapshot,
    scope: Scope,
    plans: &HashMap<u32, Plan>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut graph = ReferralGraph::default();
    let mut events = sqlx::query!(
        "SELECT seq, user_id, kind, referrer_id, status FROM user_events ORDER BY seq"
    )
    .fetch(&mut *snapshot.events)
    .map(|r| {
        let r = r?;
        let change = graph_sync::change(r.user_id, &r.kind, r.referrer_id, &r.status)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok((r.seq, change))
    })
    .peekable();
    // For one user: their purchases, those that paid them, and those of everyone who was
    // ever within the plans' levels below them, so a payment they were owed and never
    // got is found too (it has no entry of theirs to be found by).
    let depth = plans.values().map(Plan::levels).max().unwrap_or(0);
    let mut purchases = sqlx::query_as!(
        purchase::Stored,
        "WITH RECURSIVE down (user_id, depth) AS (
             SELECT DISTINCT user_id, 1 FROM user_events WHERE $1::uuid IS NOT NULL AND referrer_id = $1
             UNION
             SELECT e.user_id, d.depth + 1 FROM down d JOIN user_events e ON e.referrer_id = d.user_id
             WHERE d.depth < $4
         )
         SELECT id, user_id, amount, profit, plan_version, status, ancestors, graph_seq, refunded
         FROM purchases
         WHERE ($1::uuid IS NULL OR user_id = $1 OR user_id IN (SELECT user_id FROM down)
                OR id IN (SELECT purchase_id FROM earnings WHERE beneficiary_id = $1))
           AND ($2::timestamptz IS NULL OR processed_at >= $2)
           AND ($3::timestamptz IS NULL OR processed_at < $3)
         ORDER BY graph_seq, id",
        scope.user.map(|u| u.as_uuid()),
        scope.from,
        scope.to,
        i32::try_from(depth).unwrap_or(i32::MAX)
    )
    .fetch(&mut *snapshot.purchases);
    let mut chunk = Vec::with_capacity(CHUNK_PURCHASES);
    loop {
        let next = purchases.try_next().await?;
        let end = next.is_none();
        chunk.extend(next);
        if chunk.len() == CHUNK_PURCHASES || (end && !chunk.is_empty()) {
            let facts = Chunk::read(&mut snapshot.checks, &chunk).await?;
            for p in &chunk {
                replay_until(&mut events, &mut graph, p.graph_seq).await?;
                facts.check(p, plans, &graph, report)?;
            }
            chunk.clear();
        }
        if end {
            break;
        }
    }
    Ok(())
}

/// Applies the graph history up to and including `until` from the stream of user events.
async fn replay_until<S>(
    events: &mut Peekable<S>,
    graph: &mut ReferralGraph,
    until: i64,
) -> anyhow::Result<()>
where
    S: Stream<Item = Result<(i64, UserChange), sqlx::Error>> + Unpin,
{
    loop {
        match Pin::new(&mut *events).peek().await {
            Some(Ok((seq, _))) if *seq > until => return Ok(()),
            None => return Ok(()),
            Some(_) => {} // the next event is due, or an error that try_next returns
        }
        if let Some((seq, change)) = events.try_next().await? {
            graph.apply(&change)?;
            graph.seq = seq;
        }
    }
}

type Refund = (String, Money, Money); // refund id, amount, refunded before it applied

/// The entries and applied refunds of one chunk of purchases.
struct Chunk {
    entries: HashMap<Uuid, BTreeMap<Key, Fact>>,
    refunds: HashMap<Uuid, Vec<Refund>>,
}

impl Chunk {
    async fn read(db: &mut PgConnection, purchases: &[purchase::Stored]) -> anyhow::Result<Chunk> {
        let ids: Vec<Uuid> = purchases.iter().map(|p| p.id).collect();
        // One index lookup per purchase, whatever the planner knows (the file says why).
        let rows = sqlx::query_file!("sql/verify_chunk_entries.sql", &ids)
            .fetch_all(&mut *db)
            .await?;
        let mut chunk = Chunk {
            entries: HashMap::new(),
            refunds: HashMap::new(),
        };
        for r in rows {
            let fact = Fact {
                amount: Money::from_decimal(r.amount)?,
                leg: r.leg_user_id,
                source: r.source_user_id,
                base: Money::from_decimal(r.base)?,
                rate: r.rate,
                plan_version: r.plan_version,
            };
            let key = (r.beneficiary_id, r.level, r.refund_id);
            chunk
                .entries
                .entry(r.purchase_id)
                .or_default()
                .insert(key, fact);
        }
        // `OFFSET 0` keeps this a lookup per purchase too (see the entries' statement).
        let refunds = sqlx::query!(
            r#"SELECT r.purchase_id AS "purchase_id!", r.refund_id AS "refund_id!", r.amount AS "amount!",
                      r.refunded_before AS "before!"
               FROM UNNEST($1::uuid[]) AS k(id)
               CROSS JOIN LATERAL (SELECT * FROM refunds r
                                   WHERE r.purchase_id = k.id AND r.status = 'applied' OFFSET 0) r"#,
            &ids
        )
        .fetch_all(&mut *db)
        .await?;
        for r in refunds {
            let refund = (
                r.refund_id,
                Money::from_decimal(r.amount)?,
                Money::from_decimal(r.before)?,
            );
            chunk.refunds.entry(r.purchase_id).or_default().push(refund);
        }
        Ok(chunk)
    }

    fn check(
        &self,
        p: &purchase::Stored,
        plans: &HashMap<u32, Plan>,
        graph: &ReferralGraph,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        report.purchases += 1;
        let refunds = self
            .refunds
            .get(&p.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        report.refunds += refunds.len();
        let actual = self.entries.get(&p.id);
        report.entries += actual.map_or(0, BTreeMap::len);
        let empty = BTreeMap::new();
        let actual = actual.unwrap_or(&empty);
        purchase::check(p, plans, graph, refunds, actual, &mut report.differences)
    }
}

/// Entries that name a purchase that does not exist (in scope: by beneficiary, by time).
async fn orphans(
    db: &mut PgConnection,
    scope: Scope,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rows = sqlx::query!(
        r#"SELECT purchase_id, count(*) AS "entries!" FROM earnings e
           WHERE NOT EXISTS (SELECT 1 FROM purchases p WHERE p.id = e.purchase_id)
             AND ($1::uuid IS NULL OR beneficiary_id = $1)
             AND ($2::timestamptz IS NULL OR created_at >= $2)
             AND ($3::timestamptz IS NULL OR created_at < $3)
           GROUP BY purchase_id"#,
        scope.user.map(|u| u.as_uuid()),
        scope.from,
        scope.to
    )
    .fetch_all(&mut *db)
    .await?;
    for r in rows {
        diffs.push(format!(
            "{} entries name purchase {}, which does not exist",
            r.entries, r.purchase_id
        ));
    }
    // Purchases hold no foreign key to their buyer (migration 0006): a writer that
    // settled a purchase for no known user is caught here.
    let buyers = sqlx::query_scalar!(
        "SELECT p.id FROM purchases p
         WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p.user_id)
           AND ($1::uuid IS NULL OR p.user_id = $1)
           AND ($2::timestamptz IS NULL OR p.processed_at >= $2)
           AND ($3::timestamptz IS NULL OR p.processed_at < $3)",
        scope.user.map(|u| u.as_uuid()),
        scope.from,
        scope.to
    )
    .fetch_all(&mut *db)
    .await?;
    for id in buyers {
        diffs.push(format!("purchase {id} names a buyer who does not exist"));
    }
    Ok(())
}
