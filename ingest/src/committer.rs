//! Group commit: purchases accepted by concurrent requests are stored as one JetStream
//! message, and every request is answered after that message's one PubAck. With fsync
//! before each PubAck, stored messages are the throughput budget; under load a group
//! grows to what arrived while the previous groups were being stored, and an idle
//! request pays one fsync, as before.
use async_nats::jetstream;
use schemas::messages::PurchaseMessage;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// One request's purchases, all for one subject, and where to say they were stored.
struct Pending {
    subject: String,
    messages: Vec<PurchaseMessage>,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests waiting for a group at once (beyond it, callers wait to enqueue).
    pub queue: usize,
    /// Purchases in one stored message (also bounded by NATS's max payload).
    pub max_group: usize,
    /// Groups awaiting their PubAck at once; more pending requests join the next group.
    pub in_flight: usize,
}

impl Committer {
    /// Starts the committing task; it ends when every `Committer` clone is dropped.
    pub fn start(js: jetstream::Context, limits: Limits) -> Committer {
        let (queue, rx) = mpsc::channel(limits.queue.max(1));
        tokio::spawn(run(js, rx, limits));
        Committer { queue }
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
        let (done, stored) = oneshot::channel();
        self.queue
            .send(Pending {
                subject,
                messages,
                done,
            })
            .await
            .map_err(|_| "the committer has stopped".to_owned())?;
        stored
            .await
            .map_err(|_| "the committer dropped the request".to_owned())?
    }
}

async fn run(js: jetstream::Context, mut rx: mpsc::Receiver<Pending>, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.in_flight.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        // Everything already waiting joins this group, up to the bound.
        let mut groups: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        let mut size = first.messages.len();
        groups.entry(first.subject.clone()).or_default().push(first);
        while size < limits.max_group {
            let Ok(next) = rx.try_recv() else { break };
            size += next.messages.len();
            groups.entry(next.subject.clone()).or_default().push(next);
        }
        let (js, max_group) = (js.clone(), limits.max_group);
        tokio::spawn(async move {
            for (subject, pending) in groups {
                store_group(&js, subject, pending, max_group).await;
            }
            drop(permit);
        });
    }
}

/// Stores the group in messages of at most `max_group` purchases (so one stays well under
/// NATS's max payload however requests add up), all acks awaited together; every request
/// in the group is answered with the outcome of the whole group.
async fn store_group(
    js: &jetstream::Context,
    subject: String,
    pending: Vec<Pending>,
    max_group: usize,
) {
    let all: Vec<&PurchaseMessage> = pending.iter().flat_map(|p| p.messages.iter()).collect();
    let stores = all.chunks(max_group.max(1)).map(|chunk| {
        let (js, subject) = (js.clone(), subject.clone());
        let payload = serde_json::to_vec(chunk);
        async move {
            let payload = payload.map_err(|e| e.to_string())?;
            platform::nats::publish_stored(&js, subject, None, payload)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        }
    });
    let result = futures::future::try_join_all(stores).await.map(|_| ());
    let m = platform::metrics::metrics();
    m.purchases_accepted
        .with_label_values(&["group", if result.is_ok() { "stored" } else { "failed" }])
        .inc();
    for p in pending {
        let _ = p.done.send(result.clone());
    }
}
