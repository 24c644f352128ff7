use anyhow::Context;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::{self, stream::LastRawMessageErrorKind};
use bytes::Bytes;
use futures::StreamExt;
use platform::config::LiveConfig;
use platform::nats::Subjects;
use platform::Config;
use schemas::UserId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One entry as relayed: its stream sequence (the SSE id) and its JSON body.
#[derive(Clone, Debug)]
pub struct Frame {
    pub seq: u64,
    pub data: Bytes,
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
    /// Subscribes to the earnings subjects before returning, so nothing stored after
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
        });
        let messages = open(&inner, DeliverPolicy::New).await?;
        tokio::spawn(pump(inner.clone(), messages, shutdown));
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
        let capacity = self.inner.config.client_buffer.max(1);
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

    /// The user's entries stored after `after`, read from the stream, and the sequence
    /// they were read up to (live frames at or below it are duplicates).
    pub async fn replay(&self, user: UserId, after: u64) -> anyhow::Result<(Vec<Frame>, u64)> {
        let subject = self.inner.subjects.earning(&user);
        let stream = self
            .inner
            .js
            .get_stream(self.inner.subjects.earnings_stream())
            .await?;
        let high = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
            Err(e) => return Err(e).context("reading the stream's last entry"),
        };
        if high <= after {
            return Ok((Vec::new(), after));
        }
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let mut frames = Vec::new();
        while frames.len() < self.inner.config.max_replay {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .context("replay stalled")?;
            let Some(m) = next else { break };
            let m = m.map_err(|e| anyhow::anyhow!(e))?;
            let seq = m.info().map_err(|e| anyhow::anyhow!(e))?.stream_sequence;
            frames.push(Frame {
                seq,
                data: m.payload.clone(),
            });
            if seq >= high {
                break;
            }
        }
        let upto = frames.last().map(|f| f.seq).unwrap_or(after);
        Ok((frames, upto))
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
            filter_subject: inner.subjects.earnings_all(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("creating the live relay consumer")?;
    Ok(consumer.messages().await?)
}

/// Moves stream messages to the channels of connected users; reopens on failure from
/// where it stopped.
async fn pump(inner: Arc<Inner>, mut messages: Messages, shutdown: CancellationToken) {
    let mut last = 0u64;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = messages.next() => n,
        };
        match next {
            Some(Ok(m)) => {
                let Ok(info) = m.info() else { continue };
                last = info.stream_sequence;
                let user = inner
                    .subjects
                    .tail(m.subject.as_str())
                    .and_then(|(_, rest)| rest.parse::<UserId>().ok());
                let Some(user) = user else { continue };
                let sender = inner
                    .channels
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&user).map(|c| c.sender.clone()));
                if let Some(sender) = sender {
                    let _ = sender.send(Frame {
                        seq: last,
                        data: m.payload.clone(),
                    });
                }
            }
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(error = %e, "live relay consumer failed; reopening");
                }
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    let policy = if last == 0 {
                        DeliverPolicy::New
                    } else {
                        DeliverPolicy::ByStartSequence {
                            start_sequence: last + 1,
                        }
                    };
                    match open(&inner, policy).await {
                        Ok(m) => {
                            messages = m;
                            break;
                        }
                        Err(e) => tracing::warn!(error = ?e, "reopening the live relay failed"),
                    }
                }
            }
        }
    }
}
