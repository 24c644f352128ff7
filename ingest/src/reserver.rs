//! Group reservation: the order ids of concurrent purchase requests are reserved in one
//! INSERT (one round trip and one WAL flush for the group, not one per request), each
//! request answered with whether its row was inserted. A row not inserted is a retry,
//! a conflicting body, or a user who cannot buy; the caller tells which.
//!
//! A single purchase's reservation is stored straight from here once inserted: the
//! group's new rows go to the committer as one request, without first waking each
//! request to submit its own. Its requests are answered after the PubAck, so each waits
//! once (not once for the INSERT and again for the store), and the store takes the whole
//! group at once rather than whichever of its requests had run by then.
use crate::committer::Committer;
use crate::group::Grouper;
use rust_decimal::Decimal;
use schemas::messages::PurchaseMessage;
use schemas::UserStatus;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;
use uuid::Uuid;

/// One request's reservation: the message it will publish. The registry keeps what a
/// retry cannot repeat (the purchase id, the time the edge gave it); a retry's body is the
/// first one's (the body hash says so), so the message is rebuilt from the two.
pub struct Reservation {
    pub message: PurchaseMessage,
    pub body_hash: Vec<u8>,
    /// Store the message on this subject once its row is inserted (a single purchase);
    /// `None` leaves storing to the caller (a batch stores its items together).
    pub store_on: Option<String>,
    /// When the request asked (for the edge's step timings).
    pub asked: Instant,
}

/// Why a group failed, shared by every request of the group.
#[derive(Clone, Debug)]
pub enum Failed {
    /// The INSERT failed; `unavailable`: Postgres could not be reached, or a race was
    /// lost every time (`platform::db::is_unavailable`): retryable, a 503.
    Database { detail: String, unavailable: bool },
    /// The row was inserted but the stream did not store the message: retryable, a 503
    /// (the retry finds the reservation and stores the same message).
    Stream(String),
}

#[derive(Clone)]
pub struct Reserver {
    group: Grouper<Reservation, Result<bool, Failed>>,
}

pub use crate::group::Limits;

impl Reserver {
    /// `retries`: how often a group's INSERT runs again after losing a race (a deadlock or
    /// serialization failure) before its requests are answered 503.
    pub fn start(pool: PgPool, limits: Limits, retries: u32, committer: Committer) -> Reserver {
        let waiting = platform::metrics::metrics()
            .ingest_waiting
            .with_label_values(&["reserve"]);
        let group = Grouper::start(
            limits,
            |_| 1,
            waiting,
            move |rows, mut place| {
                let (pool, committer) = (pool.clone(), committer.clone());
                async move {
                    let inserted = insert_retrying(&pool, &rows, retries).await;
                    // The next group's INSERT may start while this one's messages are stored.
                    place.release();
                    let inserted = match inserted {
                        Ok(ids) => ids,
                        Err(e) => {
                            let failed = Failed::Database {
                                // A race lost every time is as retryable as a database away.
                                unavailable: platform::db::is_conflict(&e)
                                    || platform::db::sqlx_unavailable(&e),
                                detail: e.to_string(),
                            };
                            return vec![Err(failed); rows.len()];
                        }
                    };
                    let reserved = Instant::now();
                    let stored = store(&committer, &rows, &inserted).await;
                    observe(&rows, &inserted, reserved);
                    rows.iter().map(|r| answer(r, &inserted, &stored)).collect()
                }
            },
        );
        Reserver { group }
    }

    /// Reserves the order for an active buyer of the shop's; true when this call inserted
    /// the row (and, with `store_on`, the stream stored the message).
    pub async fn reserve(&self, reservation: Reservation) -> Result<bool, Failed> {
        self.group.submit(reservation).await.unwrap_or_else(|| {
            Err(Failed::Database {
                detail: "the reserver has stopped".to_owned(),
                unavailable: false,
            })
        })
    }
}

/// The group's new rows that asked to be stored, one committer request per subject (all
/// at once); the outcome by subject.
async fn store<'a>(
    committer: &Committer,
    rows: &'a [Reservation],
    inserted: &HashSet<Uuid>,
) -> BTreeMap<&'a str, Result<(), String>> {
    let mut by_subject: BTreeMap<&str, Vec<PurchaseMessage>> = BTreeMap::new();
    for r in rows {
        if let Some(subject) = &r.store_on {
            if inserted.contains(&r.message.purchase_id) {
                by_subject
                    .entry(subject)
                    .or_default()
                    .push(r.message.clone());
            }
        }
    }
    let stores = by_subject
        .into_iter()
        .map(|(subject, messages)| async move {
            (subject, committer.store(subject.to_owned(), messages).await)
        });
    futures::future::join_all(stores)
        .await
        .into_iter()
        .collect()
}

fn answer(
    r: &Reservation,
    inserted: &HashSet<Uuid>,
    stored: &BTreeMap<&str, Result<(), String>>,
) -> Result<bool, Failed> {
    if !inserted.contains(&r.message.purchase_id) {
        return Ok(false);
    }
    match r.store_on.as_deref().and_then(|s| stored.get(s)) {
        Some(Err(e)) => Err(Failed::Stream(e.clone())),
        _ => Ok(true),
    }
}

/// The edge's step timings of each single purchase: waiting for and running its group's
/// INSERT, then storing its message.
fn observe(rows: &[Reservation], inserted: &HashSet<Uuid>, reserved: Instant) {
    let stage = &platform::metrics::metrics().ingest_stage;
    let stored = reserved.elapsed().as_secs_f64();
    for r in rows.iter().filter(|r| r.store_on.is_some()) {
        stage
            .with_label_values(&["reserve"])
            .observe(reserved.saturating_duration_since(r.asked).as_secs_f64());
        if inserted.contains(&r.message.purchase_id) {
            stage.with_label_values(&["store"]).observe(stored);
        }
    }
}

/// `insert`, again while it loses races with another writer (bounded by `retries`); a
/// race still lost is answered as the database being unavailable (503, retry).
async fn insert_retrying(
    pool: &PgPool,
    group: &[Reservation],
    retries: u32,
) -> sqlx::Result<HashSet<Uuid>> {
    let mut attempt = 0;
    loop {
        match insert(pool, group).await {
            Err(e) if platform::db::is_conflict(&e) && attempt < retries => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "reservation lost a race; retrying");
            }
            result => return result,
        }
    }
}

/// One statement for the group (`sql/reserve.sql`); a row is inserted only for an active buyer the shop may
/// sell to (its own user, or one no shop signed up) and a new (shop, order). Of two requests
/// for one order in a group, the first wins. Rows go in (shop, order) order, so concurrent
/// groups (several ingest processes) take the registry's index locks in one order and
/// cannot deadlock.
async fn insert(pool: &PgPool, group: &[Reservation]) -> sqlx::Result<HashSet<Uuid>> {
    let col = |f: fn(&Reservation) -> Uuid| -> Vec<Uuid> { group.iter().map(f).collect() };
    let shops = col(|r| r.message.shop_id.as_uuid());
    let ids = col(|r| r.message.purchase_id);
    let users = col(|r| r.message.user_id.as_uuid());
    let orders: Vec<String> = group
        .iter()
        .map(|p| p.message.order_id.to_string())
        .collect();
    let hashes: Vec<Vec<u8>> = group.iter().map(|p| p.body_hash.clone()).collect();
    let occurred: Vec<_> = group.iter().map(|p| p.message.occurred_at).collect();
    let amounts: Vec<Decimal> = group
        .iter()
        .map(|p| p.message.amount.as_decimal())
        .collect();
    let inserted = sqlx::query_file_scalar!(
        "sql/reserve.sql",
        &shops,
        &orders,
        &ids,
        &hashes,
        &occurred,
        &amounts,
        &users,
        UserStatus::Active.as_str()
    )
    .fetch_all(pool)
    .await?;
    Ok(inserted.into_iter().collect())
}
