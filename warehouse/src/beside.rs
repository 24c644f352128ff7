//! A backfill beside a running sink. Two writers checking what ClickHouse holds before
//! inserting could both insert the same purchase (the rollups would count it twice), so
//! while the sink's consumer is pulling, a backfill may only load purchases the sink can
//! no longer be given: those settled before the oldest message EARNINGS still holds, less
//! `clickhouse.gap_backfill_margin_secs` (a batch is settled a little before it is
//! announced). What the stream still holds, the sink writes itself, and gaps it sees while
//! it runs it loads itself (`crate::gaps`).
use crate::backfill::Range;
use anyhow::Context;
use async_nats::jetstream;
use chrono::{DateTime, Duration, Utc};
use platform::nats::Subjects;
use platform::Config;

/// Refuses a range the running sink may write too, saying what to pass instead.
pub async fn check(config: &Config, range: Range) -> anyhow::Result<()> {
    let Some(limit) = latest_safe(config).await? else {
        return Ok(());
    };
    match range.to {
        Some(to) if to <= limit => Ok(()),
        _ => anyhow::bail!(
            "the warehouse sink is running and writes what EARNINGS still holds (and any gap \
             it sees) itself; pass --to {} or earlier, or stop every process running the sink",
            limit.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    }
}

/// The latest `to` a backfill may have while the sink runs; `None` when it does not.
async fn latest_safe(config: &Config) -> anyhow::Result<Option<DateTime<Utc>>> {
    let js = jetstream::new(platform::nats::connect(&config.nats).await?);
    let name = Subjects::new(&config.nats.prefix).earnings_stream();
    let Ok(mut stream) = js.get_stream(&name).await else {
        return Ok(None);
    };
    let Ok(sink) = stream.consumer_info(crate::DURABLE_NAME).await else {
        return Ok(None);
    };
    if sink.num_waiting == 0 && sink.num_ack_pending == 0 {
        return Ok(None);
    }
    let first = stream
        .info()
        .await
        .context("reading EARNINGS")?
        .state
        .first_sequence;
    let oldest = match stream.get_raw_message(first).await {
        Ok(m) => {
            let nanos = i64::try_from(m.time.unix_timestamp_nanos()).unwrap_or(i64::MAX);
            DateTime::from_timestamp_nanos(nanos)
        }
        // An empty stream: the sink may be given whatever is settled from now on.
        Err(_) => Utc::now(),
    };
    let margin =
        i64::try_from(config.clickhouse.gap_backfill_margin_secs).unwrap_or(i64::MAX / 1_000_000);
    Ok(Some(oldest - Duration::seconds(margin)))
}
