//! What a batch of stored messages carries: each message as its items (a purchase, a group
//! of purchases as ingest's group commit stores them, or a refund), and a dead letter for
//! what cannot be read or names another shop than its subject's.
use crate::ledger::{DeadLetter, Delivered, Item};
use async_nats::jetstream::Message;
use platform::nats::Subjects;
use schemas::messages::DeadLetterReason;

/// Each stored message as the items it carries: a purchase, a group of purchases (a
/// JSON array, as ingest's group commit stores them), or a refund.
pub fn parse(subjects: &Subjects, batch: &[Message]) -> (Vec<Delivered>, Vec<DeadLetter>) {
    let mut ok = Vec::with_capacity(batch.len());
    let mut dead = Vec::new();
    for m in batch {
        let subject = m.subject.to_string();
        // Every message a pull consumer delivers carries its stream position in its reply
        // subject; one without it did not come from the stream, cannot be acked, and
        // would collide with others as a dead letter at position 0: say so, skip it.
        let stream_seq = match m.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "a delivered message has no stream position; skipped");
                continue;
            }
        };
        let payload = m.payload.to_vec();
        let tail = subjects.tail(&subject);
        let items: Result<Vec<Parsed>, String> = match tail {
            Some(("purchases", _)) if payload.trim_ascii_start().starts_with(b"[") => {
                parse_group(&payload)
            }
            Some(("purchases", _)) => serde_json::from_slice(&payload)
                .map(|p| vec![Ok((Item::Purchase(p), payload.clone()))])
                .map_err(|e| e.to_string()),
            Some(("refunds", _)) => serde_json::from_slice(&payload)
                .map(|r| vec![Ok((Item::Refund(r), payload.clone()))])
                .map_err(|e| e.to_string()),
            _ => Err(format!("no purchases or refunds on subject {subject}")),
        };
        let items = match items {
            Ok(items) => items,
            Err(detail) => vec![Err((detail, payload))],
        };
        let shop = tail.map(|(_, shop)| shop).unwrap_or_default();
        for (index, parsed) in items.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let dead_letter = |reason, detail, payload| DeadLetter {
                subject: subject.clone(),
                reason,
                detail,
                payload,
                stream_seq,
                index,
            };
            match parsed {
                // A shop publishes on its own subject (the stream's permissions can
                // enforce that per shop); a body naming another shop is refused.
                Ok((item, payload)) if item.shop_id().to_string() != shop => {
                    let detail = format!("the message's shop is not {shop}");
                    dead.push(dead_letter(DeadLetterReason::ShopMismatch, detail, payload))
                }
                Ok((item, payload)) => ok.push(Delivered {
                    subject: subject.clone(),
                    stream_seq,
                    index,
                    payload,
                    item,
                }),
                Err((detail, payload)) => {
                    dead.push(dead_letter(DeadLetterReason::Malformed, detail, payload))
                }
            }
        }
    }
    (ok, dead)
}

/// One item of a stored message: parsed, or why not (with its bytes).
pub type Parsed = Result<(Item, Vec<u8>), (String, Vec<u8>)>;

/// A group of purchases (`schemas::messages::decode_group`), each item as a purchase.
pub fn parse_group(payload: &[u8]) -> Result<Vec<Parsed>, String> {
    Ok(schemas::messages::decode_group(payload)?
        .into_iter()
        .map(|item| item.map(|(p, bytes)| (Item::Purchase(p), bytes)))
        .collect())
}
