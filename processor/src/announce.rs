//! Announcing a committed batch on the stream, then acknowledging it: the order that
//! keeps every acknowledged purchase (a crash before the ack redelivers the batch, whose
//! replay writes nothing and announces again).
use crate::ledger::Committed;
use async_nats::jetstream::{self, Message};
use platform::nats::Subjects;

/// Processed purchases per `ledger.purchases` message (~330 bytes each, so ~330 KB).
const FACTS_PER_MESSAGE: usize = 1_000;

/// Where and how a batch is announced.
pub struct Announcer<'a> {
    pub js: &'a jetstream::Context,
    pub subjects: &'a Subjects,
    /// `nats.max_acks_in_flight`: publishes awaiting their PubAck at once.
    pub max_acks_in_flight: usize,
    /// `processor.entries_per_message`.
    pub entries_per_message: usize,
}

/// Proof that a committed batch's entries, facts and dead letters are stored on the
/// stream. Only `Announcer::publish` makes one, from a `Committed`, and only with one is
/// a batch acked: "acks follow the commit" is a type, not a convention.
pub struct Announced(());

impl Announcer<'_> {
    pub async fn publish(&self, committed: &Committed) -> anyhow::Result<Announced> {
        let outcome = committed.outcome();
        let window = self.max_acks_in_flight;
        let mut pending = Vec::with_capacity(window);
        let mut publishes = Vec::new();
        // A batch's entries travel as a few arrays on `ledger.entries`, not one stored
        // message each: with fsync before every PubAck, stored messages are the
        // throughput budget. The live relay fans them out per beneficiary; consumers
        // dedup by entry (a replayed batch may announce an entry a second time).
        for chunk in outcome.entries.chunks(self.entries_per_message) {
            publishes.push((
                self.subjects.ledger("entries"),
                chunk_id("entries", chunk.iter().map(|e| e.earning_id)),
                serde_json::to_vec(chunk)?,
            ));
        }
        // Facts travel in arrays, not one message per purchase: with fsync before every
        // PubAck, stored messages are the throughput budget. Each array stays far below
        // NATS's max payload. The warehouse dedups by purchase id.
        for facts in outcome.purchases.chunks(FACTS_PER_MESSAGE) {
            publishes.push((
                self.subjects.ledger("purchases"),
                chunk_id("purchases", facts.iter().map(|f| f.purchase_id)),
                serde_json::to_vec(facts)?,
            ));
        }
        for d in &outcome.dead {
            publishes.push((
                self.subjects.deadletter(d.reason.as_str()),
                format!("dead:{}:{}:{}", d.subject, d.stream_seq, d.index),
                d.payload.clone(),
            ));
        }
        for (subject, id, payload) in publishes {
            let msg = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(id);
            pending.push(self.js.send_publish(subject, msg).await?);
            if pending.len() >= window {
                for ack in pending.drain(..) {
                    ack.await?;
                }
            }
        }
        for ack in pending {
            ack.await?;
        }
        Ok(Announced(()))
    }
}

/// A chunk's message id names every id in it, so the stream drops a chunk as a duplicate
/// only when it carries exactly what was stored before. A redelivered batch may be split
/// otherwise than the first time (two workers' batches replayed as [A,C] and [B,D] after
/// [A,B] was announced): an id of its first id and its length then named [A,C] like the
/// stored [A,B], and C's facts were dropped from the warehouse for good.
fn chunk_id(kind: &str, ids: impl Iterator<Item = uuid::Uuid>) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for id in ids {
        digest.update(id.as_bytes());
    }
    format!("{kind}:{}", hex::encode(&digest.finalize()[..16]))
}

/// Acks every message of the batch, after its commit and its announcement. An ack that
/// fails is logged, not returned: the message is redelivered after its ack wait and
/// replayed (writing nothing, announcing again), whereas an error here stopped the whole
/// role (and in `referral all` the edge and the API with it).
pub async fn ack(batch: &[Message], _announced: Announced) {
    let mut failed = 0usize;
    for m in batch {
        if let Err(e) = m.ack().await {
            failed += 1;
            if failed == 1 {
                tracing::warn!(error = %e, "acking a settled message failed; it will be redelivered and replayed");
            }
        }
    }
    if failed > 1 {
        tracing::warn!(failed, "acks failed in this batch");
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_id;
    use uuid::Uuid;

    #[test]
    fn a_chunk_is_named_by_every_id_it_carries() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let stored = chunk_id("purchases", [a, b].into_iter());
        assert_eq!(
            stored,
            chunk_id("purchases", [a, b].into_iter()),
            "a replay of it"
        );
        assert_ne!(
            stored,
            chunk_id("purchases", [a, c].into_iter()),
            "same first id and length"
        );
        assert_ne!(stored, chunk_id("entries", [a, b].into_iter()));
    }
}
