//! Loading the warehouse from Postgres, the record of truth. EARNINGS keeps the newest
//! `nats.stream_max_bytes` and drops its oldest, so a ClickHouse outage longer than the
//! stream holds loses rows the sink never received (it counts them and says what to run,
//! `crate::gaps`); a new or emptied warehouse has none of the past. A run loads, a page
//! at a time (by id, so memory stays flat):
//! 1. the purchases settled in the range (`processed_at`), with all their entries;
//! 2. the purchases with an entry made in the range (`created_at`), with all theirs: a
//!    refund's reversals are made when the refund is applied, long after the purchase.
//!
//! and writes them as the sink does, under the writers' lock (`crate::writer`): ids
//! ClickHouse holds are left out, so a run is safe to repeat and beside a running sink.
//! Each pass reads its table once in id order (no index on the times: the ledger's
//! writes pay for none), like `referral verify`.
use crate::batch::{Rows, Written};
use crate::writer::Writer;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Which purchases and entries, by when they were settled or made; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// What a run read and wrote (a purchase found by both passes is read twice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub purchases: usize,
    pub written: Written,
}

/// The two passes of a run, in order.
#[derive(Clone, Copy)]
enum Pass {
    /// Purchases settled in the range.
    Settled,
    /// Purchases with an entry made in the range.
    Entries,
}

/// Loads `range`, `page` purchases (or entries) at a time.
pub async fn backfill(
    writer: &Writer<'_>,
    range: Range,
    page: usize,
) -> anyhow::Result<Backfilled> {
    let limit = i64::try_from(page.max(1)).unwrap_or(i64::MAX);
    let mut done = Backfilled::default();
    for pass in [Pass::Settled, Pass::Entries] {
        let mut after = Uuid::nil();
        loop {
            let rows = next_page(writer, pass, after, range, limit).await?;
            let Some(&(last, _)) = rows.last() else { break };
            after = last;
            let mut ids: Vec<Uuid> = rows.into_iter().map(|(_, purchase)| purchase).collect();
            ids.sort_unstable();
            ids.dedup();
            load(writer, &ids, &mut done).await?;
        }
    }
    Ok(done)
}

/// A page of the pass after `after`, in id order: (the row's id, its purchase's id).
async fn next_page(
    writer: &Writer<'_>,
    pass: Pass,
    after: Uuid,
    range: Range,
    limit: i64,
) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    Ok(match pass {
        Pass::Settled => sqlx::query_scalar!(
            "SELECT id FROM purchases
             WHERE id > $1
               AND ($2::timestamptz IS NULL OR processed_at >= $2)
               AND ($3::timestamptz IS NULL OR processed_at < $3)
             ORDER BY id LIMIT $4",
            after,
            range.from,
            range.to,
            limit
        )
        .fetch_all(writer.pool)
        .await?
        .into_iter()
        .map(|id| (id, id))
        .collect(),
        Pass::Entries => sqlx::query!(
            "SELECT id, purchase_id FROM earnings
             WHERE id > $1
               AND ($2::timestamptz IS NULL OR created_at >= $2)
               AND ($3::timestamptz IS NULL OR created_at < $3)
             ORDER BY id LIMIT $4",
            after,
            range.from,
            range.to,
            limit
        )
        .fetch_all(writer.pool)
        .await?
        .into_iter()
        .map(|r| (r.id, r.purchase_id))
        .collect(),
    })
}

/// Writes the purchases `ids` with every entry of each.
async fn load(writer: &Writer<'_>, ids: &[Uuid], done: &mut Backfilled) -> anyhow::Result<()> {
    let entries = platform::entries::of_purchases(writer.pool, ids).await?;
    let facts = platform::entries::facts_of_purchases(writer.pool, ids).await?;
    let written = writer.write(&Rows::from_ledger(&entries, &facts)).await?;
    done.purchases += ids.len();
    done.written.inserted += written.inserted;
    done.written.already_stored += written.already_stored;
    tracing::info!(
        purchases = done.purchases,
        inserted = done.written.inserted,
        "backfilling the warehouse"
    );
    Ok(())
}
