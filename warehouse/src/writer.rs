//! One writer at a time. A write looks up which ids ClickHouse holds and inserts the
//! rest; two writers doing that at once (the sink and a backfill, or two sinks) could
//! both find a row missing and both insert it, and the rollup views would count it
//! twice. So every write, the sink's batches and a backfill's pages alike, runs under one
//! Postgres advisory lock, held in a transaction for the lookup and the inserts: a
//! backfill is safe beside a running sink, and a process that dies lets go of it.
use crate::batch::{Rows, Written};
use platform::clickhouse::Clickhouse;
use sqlx::PgPool;

/// The advisory lock's class ("whse"): no other lock of the project uses it.
const WRITER_LOCK: i32 = 0x7768_7365;

/// Where and how rows are written.
pub struct Writer<'a> {
    pub ch: &'a Clickhouse,
    pub pool: &'a PgPool,
    /// `clickhouse.partitions_per_insert`.
    pub months: usize,
}

impl Writer<'_> {
    /// Writes the rows ClickHouse does not hold yet, alone.
    pub async fn write(&self, rows: &Rows) -> anyhow::Result<Written> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SELECT pg_advisory_xact_lock($1, 0)", WRITER_LOCK)
            .execute(&mut *tx)
            .await?;
        let written = rows.write(self.ch, self.months).await?;
        tx.commit().await?;
        Ok(written)
    }
}
