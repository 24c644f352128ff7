//! Group reservation: the order ids of concurrent purchase requests are reserved in one
//! INSERT (one round trip and one WAL flush for the group, not one per request), each
//! request answered with whether its row was inserted. A row not inserted is a retry,
//! a conflicting body, or a user who cannot buy; the caller tells which.
use crate::group::Grouper;
use rust_decimal::Decimal;
use schemas::messages::PurchaseMessage;
use schemas::UserStatus;
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// One request's reservation: the message it will publish. The registry keeps what a
/// retry cannot repeat (the purchase id, the time the edge gave it); a retry's body is the
/// first one's (the body hash says so), so the message is rebuilt from the two.
pub struct Reservation {
    pub message: PurchaseMessage,
    pub body_hash: Vec<u8>,
}

/// Why a group's INSERT failed, shared by every request of the group.
#[derive(Clone, Debug)]
pub struct Failed {
    pub detail: String,
    /// Postgres could not be reached (`platform::db::is_unavailable`): retryable, a 503.
    pub database_unavailable: bool,
}

impl Failed {
    fn stopped(detail: &str) -> Failed {
        Failed {
            detail: detail.to_owned(),
            database_unavailable: false,
        }
    }
}

#[derive(Clone)]
pub struct Reserver {
    group: Grouper<Reservation, Result<bool, Failed>>,
}

pub use crate::group::Limits;

impl Reserver {
    /// `retries`: how often a group's INSERT runs again after losing a race (a deadlock or
    /// serialization failure) before its requests are answered 503.
    pub fn start(pool: PgPool, limits: Limits, retries: u32) -> Reserver {
        let group = Grouper::start(
            limits,
            |_| 1,
            move |rows: Vec<Reservation>| {
                let pool = pool.clone();
                async move {
                    let result = insert_retrying(&pool, &rows, retries)
                        .await
                        .map_err(|e| Failed {
                            // A race lost every time is as retryable as a database away.
                            database_unavailable: platform::db::is_conflict(&e)
                                || platform::db::sqlx_unavailable(&e),
                            detail: e.to_string(),
                        });
                    rows.iter()
                        .map(|r| match &result {
                            Ok(ids) => Ok(ids.contains(&r.message.purchase_id)),
                            Err(e) => Err(e.clone()),
                        })
                        .collect()
                }
            },
        );
        Reserver { group }
    }

    /// Reserves the order for an active buyer of the shop's; true when this call inserted the row.
    pub async fn reserve(&self, reservation: Reservation) -> Result<bool, Failed> {
        self.group
            .submit(reservation)
            .await
            .unwrap_or_else(|| Err(Failed::stopped("the reserver has stopped")))
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
