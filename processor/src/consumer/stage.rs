//! The stream stage: gather a bounded batch, write it once, publish, then acknowledge.
use super::DURABLE_NAME;
use crate::announce::{self, Announcer};
use crate::graph::ReferralGraph;
use crate::ledger::{self, Committed, DeadLetter, Delivered};
use crate::{graph_sync, isolate};
use async_nats::jetstream::{self, AckKind, Message};
use platform::metrics::metrics;
use platform::nats::Subjects;
use platform::Config;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

pub(super) struct Stage {
    pub(super) pool: PgPool,
    pub(super) js: jetstream::Context,
    pub(super) subjects: Subjects,
    pub(super) config: Config,
    /// Batches committed by this instance (for the `crash_after_commit_every` chaos knob).
    pub(super) committed: AtomicU32,
}

impl Stage {
    /// One worker: pull a batch, apply it, publish, ack; until shutdown.
    pub(super) async fn work(
        &self,
        mut graph: ReferralGraph,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut messages = platform::nats::durable_pull(
            &self.js,
            &self.config.nats,
            &self.subjects.purchases_stream(),
            DURABLE_NAME,
            Duration::from_secs(self.config.processor.ack_wait_secs),
            self.config.processor.max_ack_pending,
            // Bounded by bytes too: a pull of 1,000 groups of 100 purchases (30 MB) sat in
            // the client behind the batches before it longer than the ack wait, was
            // delivered again to the other worker, and the replays slowed the batches more
            // (a 60 s batch load spiralled until the stream was full).
            platform::nats::PullBatch {
                messages: self.config.processor.batch_max_messages,
                bytes: Some(self.config.processor.batch_max_bytes),
            },
        )
        .await?;
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                b = next_batch(&mut messages, &self.config.processor) => b?,
            };
            if !batch.is_empty() {
                self.handle(&mut graph, batch, &shutdown).await?;
            }
        }
    }

    async fn handle(
        &self,
        graph: &mut ReferralGraph,
        batch: Vec<Message>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let batch = Arc::new(batch);
        let _in_progress = self.keep_in_progress(batch.clone());
        let (delivered, dead) = crate::intake::parse(&self.subjects, &batch);
        let Some(committed) = self.apply(graph, &delivered, dead, shutdown).await else {
            return Ok(()); // told to stop first: JetStream redelivers the batch
        };
        metrics()
            .batch_latency
            .with_label_values(&["ledger"])
            .observe(started.elapsed().as_secs_f64());
        let committed_at = started.elapsed();
        let chaos = self.chaos_after_commit();
        if let Some((n, true)) = chaos {
            anyhow::bail!("chaos: crash after commit {n}, before publishing");
        }
        let announcer = Announcer {
            js: &self.js,
            subjects: &self.subjects,
            max_acks_in_flight: self.config.nats.max_acks_in_flight,
            entries_per_message: self.config.processor.entries_per_message,
        };
        let announced = match announcer.publish(&committed).await {
            Ok(announced) => announced,
            Err(e) => {
                // Committed but not announced: leave the batch unacked; its redelivery is
                // a replay that writes nothing and publishes again.
                tracing::warn!(error = ?e, "publishing entries failed; batch will be redelivered");
                return Ok(());
            }
        };
        let published_at = started.elapsed();
        if let Some((n, false)) = chaos {
            anyhow::bail!("chaos: crash after commit {n}, published but before acking");
        }
        announce::ack(&batch, announced).await;
        let outcome = committed.outcome();
        let m = metrics();
        m.messages_processed
            .with_label_values(&["batch", "applied"])
            .inc_by(batch.len() as u64);
        m.messages_processed
            .with_label_values(&["batch", "dead_letter"])
            .inc_by(outcome.dead.len() as u64);
        for status in &outcome.new_purchases {
            m.purchases_settled
                .with_label_values(&[status.as_str()])
                .inc();
        }
        m.batch_latency
            .with_label_values(&["total"])
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(
            messages = batch.len(),
            items = delivered.len(),
            ledger_ms = committed_at.as_millis() as u64,
            publish_ms = (published_at - committed_at).as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            entries = outcome.new_entries,
            dead = outcome.dead.len(),
            "batch applied"
        );
        Ok(())
    }

    /// Applies the batch in one transaction, retrying with backoff until it commits
    /// (after repeated failures of a data or constraint kind, one message at a time, so
    /// the one the database refuses alone is dead-lettered). `None`: told to stop first;
    /// nothing was committed.
    async fn apply(
        &self,
        graph: &mut ReferralGraph,
        delivered: &[Delivered],
        dead: Vec<DeadLetter>,
        shutdown: &CancellationToken,
    ) -> Option<Committed> {
        let pool = &self.pool;
        let rules = ledger::Rules {
            plan: &self.config.plan,
            order_lock_buckets: self.config.processor.order_lock_buckets,
        };
        let mut backoff = Duration::from_millis(self.config.processor.retry_backoff_first_ms);
        let mut failures = 0;
        loop {
            let attempt = async {
                graph_sync::catch_up(pool, graph, self.config.processor.graph_sync_page).await?;
                let users = i64::try_from(graph.len()).unwrap_or(i64::MAX);
                platform::metrics::metrics().graph_users.set(users);
                ledger::apply(pool, graph, rules, delivered, dead.clone()).await
            };
            let e = match attempt.await {
                Ok(o) => return Some(o),
                Err(e) => e,
            };
            tracing::error!(error = ?e, items = delivered.len(), "batch failed; retrying");
            failures += 1;
            let isolate_after = self.config.processor.isolate_after_failures;
            if failures >= isolate_after && isolate::is_deterministic(&e) {
                let attempts = self.config.processor.attempts_alone;
                let alone = isolate::apply_one_by_one(
                    pool,
                    graph,
                    rules,
                    delivered,
                    attempts,
                    dead.clone(),
                );
                match alone.await {
                    Ok(o) => return Some(o),
                    Err(e) => tracing::error!(error = ?e, "applying one by one failed; retrying"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            let max = Duration::from_millis(self.config.processor.retry_backoff_max_ms);
            backoff = (backoff * 2).min(max);
        }
    }

    /// Until the returned handle drops (the batch acknowledged, or left to redelivery),
    /// tells JetStream every third of the ack wait that the batch is still being worked
    /// on: a slow batch (Postgres retrying, a long lock wait) is then not delivered to
    /// another processor meanwhile, while a dead processor's batch is redelivered after
    /// one ack wait, which can therefore stay short.
    fn keep_in_progress(&self, messages: Arc<Vec<Message>>) -> AbortOnDropHandle<()> {
        let every = Duration::from_millis(self.config.processor.ack_wait_secs * 1_000 / 3);
        AbortOnDropHandle::new(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                for m in messages.iter() {
                    if let Err(e) = m.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %e, "telling the stream a batch is in progress failed");
                        break;
                    }
                }
            }
        }))
    }

    /// The chaos knob (tests only): on every n-th commit, fail as a crash after the commit
    /// would, alternately before publishing and before acking (`Some((n, before_publish))`);
    /// the role stops and JetStream redelivers the batch.
    fn chaos_after_commit(&self) -> Option<(u32, bool)> {
        let every = self.config.processor.crash_after_commit_every?;
        let n = self.committed.fetch_add(1, Ordering::Relaxed) + 1;
        n.is_multiple_of(every).then(|| (n, (n / every) % 2 == 1))
    }
}

/// Waits for one message, then takes whatever follows within the batch window, up to the
/// message and byte bounds (a message may carry a group of purchases, so bytes bound the
/// work of one transaction).
async fn next_batch(
    messages: &mut platform::nats::DurablePull,
    limits: &platform::config::ProcessorConfig,
) -> anyhow::Result<Vec<Message>> {
    let (max, wait_ms) = (limits.batch_max_messages, limits.batch_max_wait_ms);
    let mut batch: Vec<Message> = Vec::new();
    // The pull stream reports what it recovers from (missed heartbeats while NATS is
    // away, reconnects) as items; those are not the end of the stage.
    while batch.is_empty() {
        match messages.next().await {
            Some(Ok(m)) => batch.push(m),
            Some(Err(e)) => tracing::warn!(error = %e, "processor consumer reported an error"),
            None => anyhow::bail!("the consumer's message stream ended"),
        }
    }
    // `timeout_at` polls the stream before its deadline, so with no wait (the default)
    // the batch still takes every message that has already arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut bytes: usize = batch.iter().map(|m| m.payload.len()).sum();
    while batch.len() < max && bytes < limits.batch_max_bytes {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(m))) => {
                bytes += m.payload.len();
                batch.push(m);
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "processor consumer reported an error");
                break;
            }
            Ok(None) | Err(_) => break,
        }
    }
    Ok(batch)
}
