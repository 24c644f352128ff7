//! Group commit: purchases accepted by concurrent requests are stored as one JetStream
//! message, and every request is answered after that message's one PubAck. With fsync
//! before each PubAck, stored messages are the throughput budget; under load a group
//! grows to what arrived while the previous groups were being stored, and an idle
//! request pays one fsync, as before.
use crate::backlog::Backlog;
use crate::group::Grouper;
use async_nats::jetstream;
use schemas::messages::PurchaseMessage;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One request's purchases, all for one subject.
type Request = (String, Vec<PurchaseMessage>);

#[derive(Clone)]
pub struct Committer {
    group: Grouper<Request, Result<(), String>>,
}

pub use crate::group::Limits;

impl Committer {
    /// Starts the committing task; it ends when every `Committer` clone is dropped.
    pub fn start(js: jetstream::Context, limits: Limits, backlog: Arc<Backlog>) -> Committer {
        let max_group = limits.max_group;
        let waiting = platform::metrics::metrics()
            .ingest_waiting
            .with_label_values(&["store"]);
        let group = Grouper::start(
            limits,
            |(_, m): &Request| m.len(),
            waiting,
            move |requests, place| {
                let stored = store_groups(js.clone(), requests, max_group, backlog.clone());
                async move {
                    // The place is held until the PubAck: one group stored at a time.
                    let _place = place;
                    stored.await
                }
            },
        );
        Committer { group }
    }

    /// Stores `messages` (all on `subject`); returns once JetStream acknowledged them.
    pub async fn store(
        &self,
        subject: String,
        messages: Vec<PurchaseMessage>,
    ) -> Result<(), String> {
        if messages.is_empty() {
            return Ok(());
        }
        self.group
            .submit((subject, messages))
            .await
            .unwrap_or_else(|| Err("the committer has stopped".to_owned()))
    }
}

/// One group per subject; every request answered with the outcome of its subject's group.
async fn store_groups(
    js: jetstream::Context,
    requests: Vec<Request>,
    max_group: usize,
    backlog: Arc<Backlog>,
) -> Vec<Result<(), String>> {
    let mut by_subject: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (subject, _)) in requests.iter().enumerate() {
        by_subject.entry(subject).or_default().push(i);
    }
    let mut answers = vec![Ok(()); requests.len()];
    for (subject, members) in by_subject {
        let all: Vec<&PurchaseMessage> = members.iter().flat_map(|&i| &requests[i].1).collect();
        let result = store_group(&js, subject, &all, max_group, &backlog).await;
        for i in members {
            answers[i] = result.clone();
        }
    }
    answers
}

/// Stores the group in messages of at most `max_group` purchases (so one stays well under
/// NATS's max payload however requests add up), all acks awaited together; every request
/// in the group is answered with the outcome of the whole group. Each stored message
/// counts against its shop's share of the stream (`crate::backlog`).
async fn store_group(
    js: &jetstream::Context,
    subject: &str,
    all: &[&PurchaseMessage],
    max_group: usize,
    backlog: &Backlog,
) -> Result<(), String> {
    let stores = all.chunks(max_group).map(|chunk| {
        let (js, subject) = (js.clone(), subject.to_owned());
        let payload = serde_json::to_vec(chunk);
        let shop = chunk.first().map(|m| m.shop_id);
        async move {
            let payload = payload.map_err(|e| e.to_string())?;
            let bytes = payload.len() as u64;
            let ack = platform::nats::publish_stored(&js, subject, None, payload)
                .await
                .map_err(|e| format!("{e:#}"))?;
            if let Some(shop) = shop {
                backlog.stored(shop, &ack, bytes);
            }
            Ok::<_, String>(())
        }
    });
    let result = futures::future::try_join_all(stores).await.map(|_| ());
    let m = platform::metrics::metrics();
    m.purchases_accepted
        .with_label_values(&["group", if result.is_ok() { "stored" } else { "failed" }])
        .inc();
    result
}
