//! The streams, created or updated at start-up.
//!
//! PURCHASES holds what a shop was told is stored (a 202) until the processor has settled
//! it. It keeps a message while a consumer has not acknowledged it (interest retention),
//! and when `stream_max_bytes` of such messages wait it refuses new ones (discard new): the
//! edge answers 503 with a retry hint. Limits retention with discard old, as before, would
//! at that bound have deleted the oldest purchases not yet settled: acknowledged and lost.
//! EARNINGS and DEADLETTER are derived from the ledger in Postgres and keep the newest.
use super::{NatsConfig, Subjects};
use anyhow::Context;
use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// The processor's durable consumer on PURCHASES.
pub const PROCESSOR_CONSUMER: &str = "processor";

/// Creates or updates the streams; file storage, so a stored message survives restarts.
/// Replicas are `num_replicas` for a new stream; an existing one keeps more if it has them
/// (an operator scaled it up), so a start-up never lowers them.
pub async fn ensure_streams(js: &jetstream::Context, config: &NatsConfig) -> anyhow::Result<()> {
    let s = Subjects::new(&config.prefix);
    let base = |name: String, subjects: Vec<String>| stream::Config {
        name,
        subjects,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(config.duplicate_window_secs),
        max_bytes: config.stream_max_bytes,
        num_replicas: config.num_replicas,
        ..Default::default()
    };
    let purchases = stream::Config {
        retention: stream::RetentionPolicy::Interest,
        discard: stream::DiscardPolicy::New,
        ..base(s.purchases_stream(), s.purchases_all())
    };
    ensure(js, purchases, config.num_replicas).await?;
    ensure_interest(js, &s.purchases_stream()).await?;
    let earnings = base(s.earnings_stream(), vec![s.earnings_all(), s.ledger_all()]);
    ensure(js, earnings, config.num_replicas).await?;
    let deadletter = base(s.deadletter_stream(), vec![s.deadletter_all()]);
    ensure(js, deadletter, config.num_replicas).await
}

async fn ensure(
    js: &jetstream::Context,
    mut cfg: stream::Config,
    configured_replicas: usize,
) -> anyhow::Result<()> {
    let name = cfg.name.clone();
    let Ok(mut existing) = js.get_stream(&name).await else {
        js.create_stream(cfg)
            .await
            .with_context(|| format!("creating stream {name}"))?;
        return Ok(());
    };
    let current = existing
        .info()
        .await
        .with_context(|| format!("reading stream {name}"))?
        .config
        .clone();
    cfg.num_replicas = replicas_to_apply(configured_replicas, current.num_replicas);
    if cfg.num_replicas > configured_replicas {
        tracing::info!(stream = %name, replicas = cfg.num_replicas, configured = configured_replicas,
            "stream keeps its replicas (more than configured)");
    }
    if same(&current, &cfg) {
        // Nothing to change: no request (one made while an operator's change of the
        // stream is still settling on a cluster can time out).
        return Ok(());
    }
    if current.retention != cfg.retention {
        // Servers before 2.10 cannot change a stream's retention; 2.10 and later can move
        // between limits and interest. Where it cannot, the stream keeps its old policies.
        match js.update_stream(cfg.clone()).await {
            Ok(_) => {
                tracing::info!(stream = %name, retention = ?cfg.retention, "stream retention changed");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(stream = %name, error = %e, kept = ?current.retention,
                    "the server cannot change this stream's retention: it keeps discarding its \
                     oldest messages at stream_max_bytes; recreate it while empty to bound it safely");
                cfg.retention = current.retention;
                cfg.discard = current.discard;
            }
        }
    }
    js.update_stream(cfg)
        .await
        .with_context(|| format!("updating stream {name}"))?;
    Ok(())
}

/// Whether `current` already has every setting `ensure` applies.
fn same(current: &stream::Config, wanted: &stream::Config) -> bool {
    current.subjects == wanted.subjects
        && current.storage == wanted.storage
        && current.duplicate_window == wanted.duplicate_window
        && current.max_bytes == wanted.max_bytes
        && current.num_replicas.max(1) == wanted.num_replicas
        && current.retention == wanted.retention
        && current.discard == wanted.discard
}

/// An interest stream deletes a message no consumer is interested in as soon as it is
/// stored, so the processor's consumer exists before anything is accepted: whichever role
/// starts first creates it (the processor applies its own ack settings when it opens it).
async fn ensure_interest(js: &jetstream::Context, stream: &str) -> anyhow::Result<()> {
    js.get_stream(stream)
        .await
        .with_context(|| format!("opening stream {stream}"))?
        .get_or_create_consumer(PROCESSOR_CONSUMER, processor_placeholder())
        .await
        .with_context(|| format!("creating the {PROCESSOR_CONSUMER} consumer on {stream}"))?;
    Ok(())
}

fn processor_placeholder() -> pull::Config {
    pull::Config {
        durable_name: Some(PROCESSOR_CONSUMER.to_owned()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    }
}

/// An existing stream's replicas after start-up: raised to the configured number, never
/// lowered below what the stream has (0, as an old stream may report, counts as 1).
pub fn replicas_to_apply(configured: usize, current: usize) -> usize {
    configured.max(current).max(1)
}
