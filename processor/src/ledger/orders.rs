//! The rows a batch's new purchases write: `purchases`, and the order registry
//! (`purchase_requests`) for orders the edge did not reserve.
use super::purchases::{Planned, Seen};
use super::{DeadLetter, Delivered};
use anyhow::Context;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemas::messages::{DeadLetterReason, PurchaseMessage};
use schemas::Plan;
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// An order in the registry: the purchase id it names, the body hash it was reserved with
/// (as the registry keeps it, `hash_bytes`) and, once that purchase has settled, the
/// settled body's hash.
pub(super) struct Registered {
    pub purchase_id: Uuid,
    pub reserved_hash: Vec<u8>,
    pub settled_hash: Option<String>,
}

/// A settled purchase by its id: which order it settled, with which body.
pub(super) struct Taken {
    pub shop_id: Uuid,
    pub order_id: String,
    pub body_hash: String,
}

/// What Postgres knows of a batch's purchases, read in one statement so both halves are
/// one snapshot: the registry rows of their orders, by (shop, order), and the settled
/// purchases that hold their ids. (As two statements, a concurrent batch could settle an
/// order between them: missed by the registry read, then met as a taken id.)
pub(super) struct Known {
    pub registered: HashMap<(Uuid, String), Registered>,
    pub taken: HashMap<Uuid, Taken>,
}

pub(super) async fn known(
    tx: &mut Transaction<'_, Postgres>,
    valid: &[(&Delivered, &PurchaseMessage)],
) -> anyhow::Result<Known> {
    let shops: Vec<Uuid> = valid.iter().map(|(_, m)| m.shop_id.as_uuid()).collect();
    let orders: Vec<String> = valid.iter().map(|(_, m)| m.order_id.to_string()).collect();
    let ids: Vec<Uuid> = valid.iter().map(|(_, m)| m.purchase_id).collect();
    // Primary-key lookups per message (LATERAL … LIMIT 1 keeps them so): as plain joins,
    // the planner hashed the whole registry and scanned `purchases` for a batch of a few
    // thousand, a cost that grew with every order ever taken (55 ms a batch at 100,000).
    let rows = sqlx::query!(
        r#"SELECT k.shop_id AS "shop_id!", k.order_id AS "order_id!", k.id AS "id!",
                  r.purchase_id AS "registered_id?", r.body_hash AS "reserved_hash?",
                  r.settled_hash AS "settled_hash?",
                  t.shop_id AS "taken_shop?", t.order_id AS "taken_order?", t.body_hash AS "taken_hash?"
           FROM UNNEST($1::uuid[], $2::text[], $3::uuid[]) AS k(shop_id, order_id, id)
           LEFT JOIN LATERAL (
               SELECT r.purchase_id, r.body_hash, p.body_hash AS settled_hash
               FROM purchase_requests r LEFT JOIN purchases p ON p.id = r.purchase_id
               WHERE r.shop_id = k.shop_id AND r.order_id = k.order_id LIMIT 1) r ON true
           LEFT JOIN LATERAL (
               SELECT p.shop_id, p.order_id, p.body_hash FROM purchases p
               WHERE p.id = k.id LIMIT 1) t ON true"#,
        &shops,
        &orders,
        &ids
    )
    .fetch_all(&mut **tx)
    .await
    .context("reading the orders' registry and taken ids")?;
    let mut known = Known {
        registered: HashMap::new(),
        taken: HashMap::new(),
    };
    for r in rows {
        if let (Some(shop_id), Some(order_id), Some(body_hash)) =
            (r.taken_shop, r.taken_order, r.taken_hash)
        {
            let taken = Taken {
                shop_id,
                order_id,
                body_hash,
            };
            known.taken.insert(r.id, taken);
        }
        if let Some(purchase_id) = r.registered_id {
            let registered = Registered {
                purchase_id,
                reserved_hash: r.reserved_hash.unwrap_or_default(),
                settled_hash: r.settled_hash,
            };
            known.registered.insert((r.shop_id, r.order_id), registered);
        }
    }
    Ok(known)
}

/// A purchase id names one purchase: a message under the id of a settled purchase is a
/// replay if it is that purchase's order and body, else a conflict (shops that publish
/// directly choose their ids; it is dead-lettered, instead of failing the batch on the
/// primary key for ever). `None`: the id is free.
pub(super) fn taken_id(m: &PurchaseMessage, taken: &HashMap<Uuid, Taken>) -> Option<Seen> {
    let t = taken.get(&m.purchase_id)?;
    let same = t.shop_id == m.shop_id.as_uuid()
        && t.order_id == m.order_id.as_str()
        && t.body_hash == m.body_hash;
    Some(if same {
        Seen::Replay(Some(m.purchase_id))
    } else {
        Seen::Conflict(id_taken(m.purchase_id))
    })
}

fn id_taken(id: Uuid) -> String {
    format!("purchase id {id} already names another order")
}

/// Two new purchases of one batch under one id (of different orders: copies of one order
/// are replays by then): the first is kept, the other dead-lettered.
pub(super) fn unique_ids<'a>(
    planned: Vec<Planned<'a>>,
    dead_letters: &mut Vec<DeadLetter>,
) -> Vec<Planned<'a>> {
    let mut seen = HashSet::new();
    let mut kept = Vec::with_capacity(planned.len());
    for p in planned {
        if seen.insert(p.msg.purchase_id) {
            kept.push(p);
        } else {
            let detail = id_taken(p.msg.purchase_id);
            let d = DeadLetter::of(p.delivered, DeadLetterReason::OrderConflict, detail);
            dead_letters.push(d);
        }
    }
    kept
}

/// Inserts the planned purchases. Each is new: its order is locked by this batch
/// (`lock_orders`) and was read from the registry under that lock, and its id was
/// checked free; anything else is a bug or a race with the edge, and fails the batch
/// (retried, then read again), never a silent skip.
pub(super) async fn insert_purchases(
    tx: &mut Transaction<'_, Postgres>,
    plan: &Plan,
    graph_seq: i64,
    processed_at: DateTime<Utc>,
    planned: &[Planned<'_>],
) -> anyhow::Result<()> {
    if planned.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = planned.iter().map(|p| p.msg.purchase_id).collect();
    let shops: Vec<Uuid> = planned.iter().map(|p| p.msg.shop_id.as_uuid()).collect();
    let orders: Vec<String> = planned.iter().map(|p| p.msg.order_id.to_string()).collect();
    let users: Vec<Uuid> = planned.iter().map(|p| p.msg.user_id.as_uuid()).collect();
    let amounts: Vec<Decimal> = planned.iter().map(|p| p.msg.amount.as_decimal()).collect();
    let profits: Vec<Decimal> = planned.iter().map(|p| p.msg.profit.as_decimal()).collect();
    let occurred: Vec<_> = planned.iter().map(|p| p.msg.occurred_at).collect();
    let statuses: Vec<String> = planned
        .iter()
        .map(|p| p.status.as_str().to_owned())
        .collect();
    let hashes: Vec<String> = planned.iter().map(|p| p.msg.body_hash.clone()).collect();
    let ancestors: Vec<Vec<u8>> = planned.iter().map(|p| p.ancestors.clone()).collect();
    sqlx::query!(
        "INSERT INTO purchases (id, shop_id, order_id, user_id, amount, profit, occurred_at, status, body_hash,
                                ancestors, plan_version, graph_seq, processed_at)
         SELECT *, $11::int, $12::bigint, $13::timestamptz FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::numeric[],
                                 $6::numeric[], $7::timestamptz[], $8::text[], $9::text[], $10::bytea[])",
        &ids,
        &shops,
        &orders,
        &users,
        &amounts,
        &profits,
        &occurred,
        &statuses,
        &hashes,
        &ancestors,
        plan.version() as i32,
        graph_seq,
        processed_at
    )
    .execute(&mut **tx)
    .await
    .context("inserting purchases")?;
    Ok(())
}

/// Shops may publish to the stream directly; their orders are registered here, settled
/// in the same transaction, so refunds find them and a retry through ingest is answered
/// as the same purchase (or a 409 when its body differs). No message is kept for them:
/// the edge republishes a stored message only for an order not settled yet. Should the
/// edge have reserved one of these orders meanwhile, the primary key fails the batch,
/// and its retry finds the order registered to the edge's purchase.
pub(super) async fn register(
    tx: &mut Transaction<'_, Postgres>,
    planned: &[Planned<'_>],
) -> anyhow::Result<()> {
    let recorded: Vec<&PurchaseMessage> = planned
        .iter()
        .filter(|p| p.unregistered)
        .map(|p| p.msg)
        .collect();
    if recorded.is_empty() {
        return Ok(());
    }
    let shops: Vec<Uuid> = recorded.iter().map(|m| m.shop_id.as_uuid()).collect();
    let orders: Vec<String> = recorded.iter().map(|m| m.order_id.to_string()).collect();
    let ids: Vec<Uuid> = recorded.iter().map(|m| m.purchase_id).collect();
    let hashes: Vec<Vec<u8>> = recorded.iter().map(|m| hash_bytes(&m.body_hash)).collect();
    let amounts: Vec<Decimal> = recorded.iter().map(|m| m.amount.as_decimal()).collect();
    let occurred: Vec<_> = recorded.iter().map(|m| m.occurred_at).collect();
    sqlx::query!(
        "INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, amount, occurred_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bytea[], $5::numeric[],
                              $6::timestamptz[])",
        &shops,
        &orders,
        &ids,
        &hashes,
        &amounts,
        &occurred
    )
    .execute(&mut **tx)
    .await
    .context("registering orders published to the stream")?;
    Ok(())
}

/// The registry keeps a body hash as bytes: the 32 bytes of a SHA-256 written in hex (as
/// ingest computes it), else the text's own bytes (a direct publisher's hash is its own).
/// Ingest compares a retry's hash with `hex::encode` of these bytes.
pub(super) fn hash_bytes(hash: &str) -> Vec<u8> {
    let is_sha256_hex =
        hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match is_sha256_hex.then(|| hex::decode(hash)) {
        Some(Ok(bytes)) => bytes,
        _ => hash.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::hash_bytes;

    #[test]
    fn a_sha256_in_hex_is_kept_as_its_bytes_and_anything_else_as_text() {
        let hex = "ab".repeat(32);
        assert_eq!(hash_bytes(&hex), vec![0xab; 32]);
        assert_eq!(
            hash_bytes("AB".repeat(32).as_str()),
            "AB".repeat(32).into_bytes()
        );
        assert_eq!(hash_bytes("abc"), b"abc".to_vec());
        assert_eq!(hash_bytes(&"g".repeat(64)), "g".repeat(64).into_bytes());
    }
}
