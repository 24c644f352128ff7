//! One ordered consumer per process on `ledger.entries` (each message a processor
//! batch's entries) fans entries out to in-process channels of connected users.
use anyhow::Context;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, Message};
use bytes::Bytes;
use futures::StreamExt;
use platform::config::LiveConfig;
use platform::nats::Subjects;
use platform::Config;
use schemas::{EarningEvent, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One entry as relayed: its position in the user's ledger (the SSE id) and its JSON body
/// (a `LiveEarning`: the stream's entry without its shop).
#[derive(Clone, Debug)]
pub struct Frame {
    pub seq: u64,
    pub data: Bytes,
}

impl Frame {
    pub fn of(e: &EarningEvent) -> anyhow::Result<Frame> {
        Ok(Frame {
            seq: e.seq,
            data: serde_json::to_vec(&schemas::LiveEarning::from(e))?.into(),
        })
    }
}

struct Channel {
    sender: broadcast::Sender<Frame>,
    clients: usize,
}

struct Inner {
    channels: Mutex<HashMap<UserId, Channel>>,
    /// Clients connected across all users (kept apart so subscribing stays O(1)).
    clients: AtomicUsize,
    js: jetstream::Context,
    subjects: Subjects,
    config: LiveConfig,
    /// The consumer's idle heartbeat: two missed in a row and it is recreated (its node
    /// was lost), from where it stopped.
    heartbeat: Duration,
}

#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

/// A client's place on a user's channel; leaving drops it (and the channel when last).
pub struct Subscription {
    pub rx: broadcast::Receiver<Frame>,
    user: UserId,
    inner: Arc<Inner>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut channels) = self.inner.channels.lock() {
            if let Some(c) = channels.get_mut(&self.user) {
                c.clients -= 1;
                if c.clients == 0 {
                    channels.remove(&self.user);
                }
            }
        }
        self.inner.clients.fetch_sub(1, Ordering::Relaxed);
        platform::metrics::metrics().live_connections.dec();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("this user already has the maximum number of live connections")]
    PerUser,
    #[error("the server has the maximum number of live connections")]
    Total,
}

impl Relay {
    /// Subscribes to the entries subject before returning, so nothing stored after
    /// this returns is missed by live clients.
    pub async fn start(
        config: &Config,
        nats: async_nats::Client,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let js = jetstream::new(nats);
        let subjects = Subjects::new(&config.nats.prefix);
        let inner = Arc::new(Inner {
            channels: Mutex::new(HashMap::new()),
            clients: AtomicUsize::new(0),
            js,
            subjects,
            config: config.live.clone(),
            heartbeat: Duration::from_millis(config.nats.pull_heartbeat_ms),
        });
        let last = stored_upto(&inner).await?;
        let messages = open(&inner, after(last)).await?;
        tokio::spawn(pump(inner.clone(), messages, last, shutdown));
        Ok(Relay { inner })
    }

    pub fn subscribe(&self, user: UserId) -> Result<Subscription, SubscribeError> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .map_err(|_| SubscribeError::Total)?;
        if self.inner.clients.load(Ordering::Relaxed) >= self.inner.config.max_connections_total {
            return Err(SubscribeError::Total);
        }
        let capacity = self.inner.config.client_buffer;
        let channel = channels.entry(user).or_insert_with(|| Channel {
            sender: broadcast::channel(capacity).0,
            clients: 0,
        });
        if channel.clients >= self.inner.config.max_connections_per_user {
            return Err(SubscribeError::PerUser);
        }
        channel.clients += 1;
        self.inner.clients.fetch_add(1, Ordering::Relaxed);
        platform::metrics::metrics().live_connections.inc();
        Ok(Subscription {
            rx: channel.sender.subscribe(),
            user,
            inner: self.inner.clone(),
        })
    }
}

type Messages = jetstream::consumer::pull::Ordered;

async fn open(inner: &Inner, deliver_policy: DeliverPolicy) -> anyhow::Result<Messages> {
    let stream = inner
        .js
        .get_stream(inner.subjects.earnings_stream())
        .await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: inner.subjects.ledger("entries"),
            deliver_policy,
            // async-nats heartbeats an ordered consumer at half its pull expiry (15 s by
            // default): capping the expiry sets the heartbeat, so a consumer lost with its
            // node is recreated within four heartbeats, not a minute.
            max_expires: inner.heartbeat * 2,
            ..Default::default()
        })
        .await
        .context("creating the live relay consumer")?;
    Ok(consumer.messages().await?)
}

/// Sends each entry of one stored message to its beneficiary's channel, if anyone of
/// theirs is connected here. Order and gaps are the followers' business (`super::follow`).
fn fan_out(inner: &Inner, m: &Message) {
    let anyone = inner
        .channels
        .lock()
        .map(|c| !c.is_empty())
        .unwrap_or(false);
    if !anyone {
        return;
    }
    // Parsed outside the lock: subscribing clients never wait on a big message.
    let entries: Vec<EarningEvent> = match serde_json::from_slice(&m.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "unparsable ledger.entries message skipped by the relay");
            return;
        }
    };
    let Ok(channels) = inner.channels.lock() else {
        return;
    };
    for e in &entries {
        let Some(channel) = channels.get(&e.beneficiary_id) else {
            continue;
        };
        match Frame::of(e) {
            Ok(frame) => {
                let _ = channel.sender.send(frame);
            }
            Err(err) => tracing::error!(error = %err, "an entry could not be encoded"),
        }
    }
}

/// Moves stream messages to the channels of connected users; reopens on failure from
/// where it stopped. A consumer can also go quiet without an error (its node lost, the
/// client still connected elsewhere): see [`Stall`].
async fn pump(
    inner: Arc<Inner>,
    mut messages: Messages,
    mut last: u64,
    shutdown: CancellationToken,
) {
    let quiet = Duration::from_millis(inner.config.stall_check_ms);
    let mut stall = Stall::default();
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = tokio::time::timeout(quiet, messages.next()) => n,
        };
        let reason = match next {
            Ok(Some(Ok(m))) => {
                let Ok(info) = m.info() else { continue };
                last = info.stream_sequence;
                fan_out(&inner, &m);
                continue;
            }
            Err(_) => match stored_upto(&inner).await {
                Ok(stored) => match stall.check(last, stored) {
                    Some(reason) => reason,
                    None => continue,
                },
                Err(e) => format!("checking the stream failed: {e:#}"),
            },
            Ok(Some(Err(e))) => format!("failed: {e}"),
            Ok(None) => "ended".to_owned(),
        };
        stall = Stall::default();
        tracing::warn!(reason, "live relay consumer lost; reopening");
        platform::metrics::metrics()
            .consumer_lost
            .with_label_values(&["live_relay"])
            .inc();
        let Some(m) = reopen(&inner, last, &shutdown).await else {
            return;
        };
        messages = m;
    }
}

/// Judges a quiet consumer at each check (`stall_check_ms` without a message). It has
/// stalled when it has not reached what the stream held at the previous check: a whole
/// quiet period later, that message should have arrived. Compared with what the stream
/// holds now instead, a message stored a moment before the check, still on its way,
/// reopened a healthy consumer (seen at the start of a bench).
#[derive(Default)]
struct Stall {
    stored_before: Option<u64>,
}

impl Stall {
    fn check(&mut self, last: u64, stored: u64) -> Option<String> {
        if let Some(before) = self.stored_before.filter(|&before| before > last) {
            return Some(format!(
                "stalled at {last} while {before} was stored a check ago"
            ));
        }
        self.stored_before = (stored > last).then_some(stored);
        None
    }
}

/// Where the stream's `ledger.entries` stand (0 when it holds none).
async fn stored_upto(inner: &Inner) -> anyhow::Result<u64> {
    let stream = inner
        .js
        .get_stream(inner.subjects.earnings_stream())
        .await?;
    match stream
        .get_last_raw_message_by_subject(&inner.subjects.ledger("entries"))
        .await
    {
        Ok(m) => Ok(m.sequence),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(e).context("reading the stream's last entries message"),
    }
}

fn after(last: u64) -> DeliverPolicy {
    DeliverPolicy::ByStartSequence {
        start_sequence: last + 1,
    }
}

/// Reopens the consumer after stream sequence `last`, retrying until it works or shutdown.
async fn reopen(inner: &Inner, last: u64, shutdown: &CancellationToken) -> Option<Messages> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(inner.config.reopen_delay_ms)) => {}
        }
        match open(inner, after(last)).await {
            Ok(m) => return Some(m),
            Err(e) => tracing::warn!(error = ?e, "reopening the live relay failed"),
        }
    }
}

#[cfg(test)]
#[path = "relay_test.rs"]
mod tests;
