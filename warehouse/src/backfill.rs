//! Loading the warehouse from Postgres, the record of truth. EARNINGS keeps the newest
//! `nats.stream_max_bytes` and drops its oldest, so a ClickHouse outage longer than the
//! stream holds loses rows the sink never received (it counts them,
//! `referral_messages_lost_total{consumer="warehouse"}`); a new or emptied warehouse has
//! none of the past. This reads the settled purchases of a time range a page at a time,
//! with their entries (reversals included) and their facts as the processor announced
//! them, and writes them as the sink does: ids ClickHouse holds are left out, so a run
//! is safe to repeat. Beside a running sink only a range the sink can no longer be given
//! is (`crate::beside`): two writers could both insert what neither found.
use crate::batch::{Rows, Written};
use chrono::{DateTime, Utc};
use platform::clickhouse::Clickhouse;
use sqlx::PgPool;
use uuid::Uuid;

/// Which purchases, by when they were settled (`processed_at`); `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// What a run read and wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub purchases: usize,
    pub written: Written,
}

/// Reads `page` purchases at a time (by id, so memory stays flat however many there are)
/// and writes each page's rows in inserts of at most `months` partitions.
pub async fn backfill(
    pool: &PgPool,
    ch: &Clickhouse,
    range: Range,
    page: usize,
    months: usize,
) -> anyhow::Result<Backfilled> {
    let mut done = Backfilled::default();
    let mut after = Uuid::nil();
    let limit = i64::try_from(page.max(1)).unwrap_or(i64::MAX);
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar!(
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
        .fetch_all(pool)
        .await?;
        let Some(&last) = ids.last() else {
            return Ok(done);
        };
        after = last;
        let entries = platform::entries::of_purchases(pool, &ids).await?;
        let facts = platform::entries::facts_of_purchases(pool, &ids).await?;
        let written = Rows::from_ledger(&entries, &facts)
            .write(ch, months)
            .await?;
        done.purchases += ids.len();
        done.written.inserted += written.inserted;
        done.written.already_stored += written.already_stored;
        tracing::info!(
            purchases = done.purchases,
            inserted = done.written.inserted,
            "backfilling the warehouse"
        );
    }
}
