//! Stream names and subjects, derived from one prefix so deployments and tests can
//! share a server without seeing each other.
use crate::config::NatsConfig;
use anyhow::Context;
use async_nats::jetstream;
use async_nats::ServerAddr;
use std::time::Duration;

mod credentials;
mod pull;
mod streams;
pub use pull::{durable_pull, DurablePull, PullBatch};
pub use streams::{ensure_streams, replicas_to_apply, PROCESSOR_CONSUMER};

#[derive(Clone, Debug)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Subjects {
            prefix: prefix.trim_end_matches('.').to_owned(),
        }
    }

    fn subject(&self, tail: &str) -> String {
        if self.prefix.is_empty() {
            tail.to_owned()
        } else {
            format!("{}.{tail}", self.prefix)
        }
    }

    fn stream(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!(
                "{}_{name}",
                self.prefix.to_uppercase().replace(['.', '-'], "_")
            )
        }
    }

    pub fn purchases_stream(&self) -> String {
        self.stream("PURCHASES")
    }
    pub fn earnings_stream(&self) -> String {
        self.stream("EARNINGS")
    }
    pub fn deadletter_stream(&self) -> String {
        self.stream("DEADLETTER")
    }
    pub fn purchase(&self, shop: &schemas::ShopId) -> String {
        self.subject(&format!("purchases.{shop}"))
    }
    pub fn refund(&self, shop: &schemas::ShopId) -> String {
        self.subject(&format!("refunds.{shop}"))
    }
    pub fn purchases_all(&self) -> Vec<String> {
        vec![self.subject("purchases.*"), self.subject("refunds.*")]
    }
    /// One entry per message, as releases before `ledger.entries` published them: kept
    /// in the stream's subjects so a stream holding them still reads (the warehouse does).
    pub fn earnings_all(&self) -> String {
        self.subject("earnings.*")
    }
    /// What the processor settled (`ledger.purchases`, `ledger.entries`): read by the
    /// warehouse, and `ledger.entries` by the live relay too.
    pub fn ledger(&self, kind: &str) -> String {
        self.subject(&format!("ledger.{kind}"))
    }
    pub fn ledger_all(&self) -> String {
        self.subject("ledger.*")
    }
    pub fn deadletter(&self, reason: &str) -> String {
        self.subject(&format!("deadletter.{reason}"))
    }
    pub fn deadletter_all(&self) -> String {
        self.subject("deadletter.*")
    }
    /// Strips the prefix and the first token: `p.purchases.<shop>` → `<shop>`.
    pub fn tail<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = if self.prefix.is_empty() {
            subject
        } else {
            subject.strip_prefix(&self.prefix)?.strip_prefix('.')?
        };
        rest.split_once('.')
    }
}

/// The servers `url` names: one URL, or several separated by commas (a cluster).
pub fn server_addrs(url: &str) -> anyhow::Result<Vec<ServerAddr>> {
    let addrs = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<ServerAddr>()
                .with_context(|| format!("nats.url: {u:?} is not a NATS server URL"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!addrs.is_empty(), "nats.url names no server");
    Ok(addrs)
}

/// Connects to any of the configured servers; the client moves to another when its
/// server is lost (and learns the cluster's other members from the one it reached).
pub async fn connect(config: &NatsConfig) -> anyhow::Result<async_nats::Client> {
    let addrs = server_addrs(&config.url)?;
    let options = async_nats::ConnectOptions::new()
        .name("referral")
        .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
        .retry_on_initial_connect();
    credentials::apply(options, &addrs)?
        .connect(addrs)
        .await
        .with_context(|| format!("connecting to NATS at {}", redacted(&config.url)))
}

/// `url` as it may be shown (logs, errors, bench reports): any credentials replaced.
pub fn redacted(url: &str) -> String {
    credentials::redacted(url)
}

/// Removes this prefix's streams (tests clean up after themselves).
pub async fn delete_streams(js: &jetstream::Context, prefix: &str) {
    let s = Subjects::new(prefix);
    for name in [
        s.purchases_stream(),
        s.earnings_stream(),
        s.deadletter_stream(),
    ] {
        let _ = js.delete_stream(&name).await;
    }
}

/// Publishes and returns once JetStream has stored the message. With a `msg_id`, a
/// repeat within the stream's duplicate window is stored once; without one (a group of
/// purchases has no single identity) dedup rests on the processor's order keys.
pub async fn publish_stored(
    js: &jetstream::Context,
    subject: String,
    msg_id: Option<&str>,
    payload: Vec<u8>,
) -> anyhow::Result<jetstream::publish::PublishAck> {
    let mut message = jetstream::message::PublishMessage::build().payload(payload.into());
    if let Some(id) = msg_id {
        message = message.message_id(id);
    }
    let ack = js
        .send_publish(subject, message)
        .await
        .context("publishing")?
        .await
        .context("awaiting the stream's acknowledgement")?;
    Ok(ack)
}

#[cfg(test)]
#[path = "nats_test.rs"]
mod tests;
