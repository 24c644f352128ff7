//! Holding the processor back: with `processor.order_lock_buckets = 1` every order of every
//! batch hashes to one advisory lock (class "ordr", key 0); a session of the test holding it
//! keeps every batch waiting until it lets go.
use sqlx::Connection;

const CLASS: i32 = 0x6f72_6472; // "ordr"

pub struct OrderLock(sqlx::PgConnection);

impl OrderLock {
    /// Takes the lock on the app's database.
    pub async fn hold(database_url: &str) -> OrderLock {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1, 0)")
            .bind(CLASS)
            .execute(&mut conn)
            .await
            .unwrap();
        OrderLock(conn)
    }

    /// Lets the waiting batches go.
    pub async fn release(mut self) {
        sqlx::query("SELECT pg_advisory_unlock($1, 0)")
            .bind(CLASS)
            .execute(&mut self.0)
            .await
            .unwrap();
        self.0.close().await.unwrap();
    }
}
