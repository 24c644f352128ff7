//! The warehouse sink: its own durable pull consumer on the EARNINGS stream (earning
//! events and settled purchases) writes each batch to ClickHouse once, then acks. When
//! ClickHouse is down the batch waits (bounded backoff, the messages kept in progress)
//! and the sink catches up after; the id check before each insert means a redelivered
//! or republished message is never counted twice by the rollup views.
#![forbid(unsafe_code)]

mod backfill;
mod batch;
mod gaps;
mod migrate;
pub mod rows;
mod users;
mod writer;

pub use backfill::{backfill, Backfilled, Range};
pub use batch::{Rows, Written};
pub use migrate::migrate;
pub use writer::Writer;

use async_nats::jetstream::{self, AckKind, Message};
use platform::clickhouse::Clickhouse;
use platform::nats::Subjects;
use platform::Config;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use users::UserEventsCopy;

pub const DURABLE_NAME: &str = "warehouse";

pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A config built in code (tests, benches) passes the checks a loaded one did.
    config.validate()?;
    let limits = &config.clickhouse;
    let ch = Clickhouse::new(limits)?;
    let mut backoff = Backoff::new(limits);
    while let Err(e) = migrate::apply(&ch).await {
        tracing::warn!(error = %e, "ClickHouse schema not applied yet; retrying");
        if !backoff.wait(&shutdown).await {
            return Ok(());
        }
    }
    let subjects = Subjects::new(&config.nats.prefix);
    let mut messages = subscribe(&config, &subjects).await?;
    let pool = platform::db::connect(&config.database).await?;
    let mut users = UserEventsCopy::new(pool.clone(), limits.batch_max_rows);
    let wait = Duration::from_millis(limits.batch_max_wait_ms);
    tracing::info!(database = ch.database(), "warehouse sink started");
    let mut gaps = gaps::Gaps::default();
    let writer = Writer {
        ch: &ch,
        pool: &pool,
        months: limits.partitions_per_insert,
    };
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = next_batch(&mut messages, limits.batch_max_rows, limits.batch_max_bytes, wait) => b?,
        };
        gaps.see(&batch);
        if !batch.is_empty() {
            let backoff = Backoff::new(limits);
            if !write_then_ack(&writer, &subjects, &batch, backoff, &shutdown).await {
                break;
            }
        }
        if let Err(e) = users.step(&ch).await {
            tracing::warn!(error = ?e, "copying user events failed; retrying next batch");
        }
    }
    tracing::info!("warehouse sink stopped");
    Ok(())
}

/// The sink's durable pull consumer on the EARNINGS stream (all its subjects).
async fn subscribe(
    config: &Config,
    subjects: &Subjects,
) -> anyhow::Result<platform::nats::DurablePull> {
    let js = jetstream::new(platform::nats::connect(&config.nats).await?);
    platform::nats::ensure_streams(&js, &config.nats).await?;
    let rows = config.clickhouse.batch_max_rows;
    // One batch being written plus the next one being gathered.
    let max_ack_pending = i64::try_from(rows.saturating_mul(2)).unwrap_or(i64::MAX);
    platform::nats::durable_pull(
        &js,
        &config.nats,
        &subjects.earnings_stream(),
        DURABLE_NAME,
        Duration::from_secs(config.clickhouse.ack_wait_secs),
        max_ack_pending,
        platform::nats::PullBatch {
            messages: rows,
            bytes: Some(config.clickhouse.batch_max_bytes),
        },
    )
    .await
}

/// Waits up to `wait` for messages, returning early once `max` messages or `max_bytes`
/// of payload have arrived (a message may carry a whole processor batch); an empty batch
/// means the stream was idle (the loop then copies user events).
async fn next_batch(
    messages: &mut platform::nats::DurablePull,
    max: usize,
    max_bytes: usize,
    wait: Duration,
) -> anyhow::Result<Vec<Message>> {
    let deadline = Instant::now() + wait;
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while batch.len() < max && bytes < max_bytes {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(m))) => {
                bytes += m.payload.len();
                batch.push(m)
            }
            Ok(Some(Err(e))) => {
                // The consumer was lost and reopening it failed; it retries.
                tracing::warn!(error = %e, "warehouse consumer reported an error");
                tokio::time::sleep_until(deadline).await;
                break;
            }
            Ok(None) => anyhow::bail!("the warehouse consumer's message stream ended"),
            Err(_) => break,
        }
    }
    Ok(batch)
}

/// Writes the batch (retrying until ClickHouse takes it) and acks it. Returns false
/// when told to stop first: the batch stays unacked and JetStream redelivers it.
async fn write_then_ack(
    writer: &Writer<'_>,
    subjects: &Subjects,
    batch: &[Message],
    mut backoff: Backoff,
    shutdown: &CancellationToken,
) -> bool {
    let rows = Rows::from_messages(subjects, batch);
    let written = loop {
        match writer.write(&rows).await {
            Ok(w) => break w,
            Err(e) => {
                tracing::warn!(error = %e, messages = batch.len(), "warehouse insert failed; retrying");
                // Keep JetStream from redelivering what this sink still holds.
                for m in batch {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
                if !backoff.wait(shutdown).await {
                    return false;
                }
            }
        }
    };
    for m in batch {
        if let Err(e) = m.ack().await {
            // Stored already; a redelivery finds its ids in ClickHouse and skips them.
            tracing::warn!(error = %e, "acking a warehouse message failed");
        }
    }
    tracing::debug!(
        messages = batch.len(),
        inserted = written.inserted,
        already_stored = written.already_stored,
        skipped = rows.skipped,
        "warehouse batch written"
    );
    true
}

/// Exponential backoff from `FIRST_BACKOFF` to a bound, cut short by shutdown.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// From `retry_backoff_first_ms`, doubling, to `retry_backoff_max_ms`.
    fn new(limits: &platform::config::ClickhouseConfig) -> Self {
        let first = Duration::from_millis(limits.retry_backoff_first_ms);
        Backoff {
            next: first,
            max: Duration::from_millis(limits.retry_backoff_max_ms).max(first),
        }
    }

    /// Sleeps the current delay; false if shutdown came first.
    async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}
