//! Settings every processor of one ledger must share (`ledger_settings`, migration 0013):
//! recorded by the first processor to start, checked by every later one.
use sqlx::PgPool;

const ORDER_LOCK_BUCKETS: &str = "order_lock_buckets";

/// Records `processor.order_lock_buckets`, or checks it against the recorded count: with
/// different counts two processors would lock different keys for one order.
pub async fn register_order_lock_buckets(pool: &PgPool, buckets: u32) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO ledger_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        ORDER_LOCK_BUCKETS,
        i64::from(buckets)
    )
    .execute(pool)
    .await?;
    let stored = sqlx::query_scalar!(
        "SELECT value FROM ledger_settings WHERE name = $1",
        ORDER_LOCK_BUCKETS
    )
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        stored == i64::from(buckets),
        "processor.order_lock_buckets is {buckets} but this ledger's processors lock orders on \
         {stored} buckets; every processor must use the same count (a purchase and its refund \
         on processors with different counts would not wait for each other). To change it, stop \
         every processor, run UPDATE ledger_settings SET value = {buckets} WHERE name = \
         'order_lock_buckets', and start them with the new count"
    );
    Ok(())
}
