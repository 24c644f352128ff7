//! A durable pull consumer that notices when it is lost and reopens itself.
//!
//! async-nats renews a pull request only when the request expires or the client
//! reconnects. When the node leading the consumer dies while the client stays connected
//! to another node, the outstanding request died with it and nothing arrives until the
//! expiry. The server sends idle heartbeats on a pull request; two missed in a row (or any
//! error, or the end of the stream) mean the consumer is lost: it is counted
//! (`referral_consumer_lost_total{consumer}`), logged, and reopened at once (then with a
//! bounded backoff while no leader answers).
use crate::config::NatsConfig;
use crate::metrics::metrics;
use anyhow::Context;
use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::{self, Message};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// How a pull is opened, and how often its liveness is checked.
#[derive(Clone, Debug)]
struct Spec {
    stream: String,
    name: String,
    ack_wait: Duration,
    max_ack_pending: i64,
    batch: PullBatch,
    heartbeat: Duration,
    expires: Duration,
    reopen_timeout: Duration,
    reopen_backoff_first: Duration,
    reopen_backoff_max: Duration,
}

pub struct DurablePull {
    js: jetstream::Context,
    spec: Spec,
    messages: Option<pull::Stream>,
    /// When the current loss began (for the log line when it is reopened).
    lost_at: Option<Instant>,
    /// Failed reopen attempts in a row, and when the next may be made.
    failures: u32,
    retry_at: Option<Instant>,
    /// When the pull last reopened and has not brought a message since.
    opened_at: Option<Instant>,
}

/// How much one pull request asks for: messages and payload bytes. The byte bound
/// matters where one message may carry a whole processor batch: a pull of thousands of
/// large messages outran what the server buffers for a client, the overflow was
/// dropped, and it came back only after the ack wait (a 28 s stall in `bench warehouse`).
#[derive(Clone, Copy, Debug)]
pub struct PullBatch {
    pub messages: usize,
    /// None: no byte bound.
    pub bytes: Option<usize>,
}

/// A durable pull consumer with explicit acks (created or reused by name) on `stream`,
/// pulling up to `batch` at a time. Every stage reads this way.
pub async fn durable_pull(
    js: &jetstream::Context,
    nats: &NatsConfig,
    stream: &str,
    name: &str,
    ack_wait: Duration,
    max_ack_pending: i64,
    batch: PullBatch,
) -> anyhow::Result<DurablePull> {
    let spec = Spec {
        stream: stream.to_owned(),
        name: name.to_owned(),
        ack_wait,
        max_ack_pending,
        batch,
        heartbeat: Duration::from_millis(nats.pull_heartbeat_ms),
        expires: Duration::from_millis(nats.pull_expires_ms),
        reopen_timeout: Duration::from_millis(nats.pull_reopen_timeout_ms),
        reopen_backoff_first: Duration::from_millis(nats.pull_reopen_backoff_first_ms),
        reopen_backoff_max: Duration::from_millis(nats.pull_reopen_backoff_max_ms),
    };
    let messages = open(js, &spec).await?;
    // Reopening asks a consumer whose leader may still be being elected: each attempt
    // gives up sooner than a normal request would, and the next one follows.
    let mut reopening = js.clone();
    reopening.set_timeout(spec.reopen_timeout);
    Ok(DurablePull {
        js: reopening,
        spec,
        messages: Some(messages),
        lost_at: None,
        failures: 0,
        retry_at: None,
        opened_at: None,
    })
}

async fn open(js: &jetstream::Context, spec: &Spec) -> anyhow::Result<pull::Stream> {
    let name = &spec.name;
    let consumer: PullConsumer = js
        .get_stream(&spec.stream)
        .await
        .with_context(|| format!("opening stream {}", spec.stream))?
        // Created, or updated to these settings (a durable made by another role, or one
        // made before the ack wait was changed, takes this process's).
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_ack_pending: spec.max_ack_pending,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating the {name} consumer"))?;
    let mut pull = consumer
        .stream()
        .max_messages_per_batch(spec.batch.messages);
    if let Some(bytes) = spec.batch.bytes {
        // Never below one message of the largest size the server takes: a message over
        // the pull's byte bound would never be delivered.
        pull = pull.max_bytes_per_batch(bytes.max(js.client().server_info().max_payload));
    }
    pull.heartbeat(spec.heartbeat)
        .expires(spec.expires)
        .messages()
        .await
        .with_context(|| format!("pulling from the {name} consumer"))
}

impl DurablePull {
    /// The next message. A lost consumer is reopened here; an `Err` is a reopen that
    /// failed (the next call tries again after a backoff). Never ends: `None` is not
    /// returned. Cancel-safe: a call dropped mid-way loses no message and no state.
    pub async fn next(&mut self) -> Option<anyhow::Result<Message>> {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                if let Err(e) = self.reopen().await {
                    return Some(Err(e));
                }
                continue;
            };
            match messages.next().await {
                Some(Ok(m)) => {
                    // Delivering again: a later loss starts its backoff afresh.
                    self.failures = 0;
                    self.opened_at = None;
                    return Some(Ok(m));
                }
                Some(Err(e)) => self.lost(&e.to_string()),
                None => self.lost("the message stream ended"),
            }
        }
    }

    fn lost(&mut self, why: &str) {
        self.messages = None;
        // A pull lost soon after it reopened (a consumer leader still being elected
        // answers the reopen, then fails the pull) counts as a failed reopen, so the next
        // one waits; otherwise the two went round at once, two JetStream requests a pass.
        let open_for = self.opened_at.take().map(|t| t.elapsed());
        self.failures = failures_after_loss(self.failures, open_for, self.spec.reopen_backoff_max);
        if self.failures > 0 {
            let wait = reopen_backoff(
                self.failures,
                self.spec.reopen_backoff_first,
                self.spec.reopen_backoff_max,
            );
            self.retry_at = Some(Instant::now() + wait);
        }
        if self.lost_at.is_none() {
            self.lost_at = Some(Instant::now());
            metrics()
                .consumer_lost
                .with_label_values(&[&self.spec.name])
                .inc();
            tracing::warn!(consumer = %self.spec.name, reason = why, "consumer lost; reopening");
        }
    }

    async fn reopen(&mut self) -> anyhow::Result<()> {
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at).await;
        }
        match open(&self.js, &self.spec).await {
            Ok(messages) => {
                let lost_ms = self.lost_at.take().map(|t| t.elapsed().as_millis() as u64);
                tracing::info!(
                    consumer = %self.spec.name,
                    lost_ms,
                    attempts = self.failures + 1,
                    "consumer reopened"
                );
                self.messages = Some(messages);
                self.retry_at = None;
                self.opened_at = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let wait = reopen_backoff(
                    self.failures,
                    self.spec.reopen_backoff_first,
                    self.spec.reopen_backoff_max,
                );
                self.retry_at = Some(Instant::now() + wait);
                Err(e.context(format!("reopening the {} consumer", self.spec.name)))
            }
        }
    }
}

/// Failures counted after the pull was lost, `open_for` after it last reopened (`None`:
/// it brought a message since, or never reopened): lost within `settle` of a reopen, the
/// reopen counts as failed; lost later, the count starts again.
fn failures_after_loss(failures: u32, open_for: Option<Duration>, settle: Duration) -> u32 {
    match open_for {
        Some(open_for) if open_for < settle => failures.saturating_add(1),
        _ => 0,
    }
}

/// `first`, doubling per failed attempt, at most `max`.
fn reopen_backoff(failures: u32, first: Duration, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    first.saturating_mul(1 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_lost_right_after_its_reopen_counts_as_a_failed_reopen() {
        let settle = Duration::from_millis(2_000);
        let soon = Some(Duration::from_millis(5));
        assert_eq!(failures_after_loss(0, soon, settle), 1);
        assert_eq!(failures_after_loss(3, soon, settle), 4);
        let later = Some(Duration::from_millis(2_500));
        assert_eq!(failures_after_loss(3, later, settle), 0);
        assert_eq!(
            failures_after_loss(3, None, settle),
            0,
            "it delivered since"
        );
    }

    #[test]
    fn reopen_backoff_doubles_up_to_its_bound() {
        let (first, max) = (Duration::from_millis(50), Duration::from_millis(2_000));
        let waits: Vec<u64> = (1..=8)
            .map(|n| reopen_backoff(n, first, max).as_millis() as u64)
            .collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1_600, 2_000, 2_000]);
        assert_eq!(reopen_backoff(u32::MAX, first, max), max);
    }
}
