//! The naive baseline: what an app with no stream does per purchase — one Postgres
//! transaction inserting the purchase, its two earnings and moving two balances — at the
//! same concurrency, in the same process, on the same database server.
use super::load::{rate, within};
use futures::StreamExt;
use rust_decimal::Decimal;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Purchases per second over `n` purchases, or as many as `duration` allows.
pub async fn measure(
    pool: &sqlx::PgPool,
    n: usize,
    duration: Option<Duration>,
    connections: usize,
) -> anyhow::Result<f64> {
    sqlx::raw_sql(
        "CREATE TABLE naive_purchases (id uuid PRIMARY KEY, order_id text UNIQUE, user_id uuid,
                                       amount numeric(18,2), profit numeric(18,2));
         CREATE TABLE naive_earnings (purchase_id uuid, beneficiary_id uuid, level smallint,
                                      amount numeric(18,2), PRIMARY KEY (purchase_id, level));
         CREATE TABLE naive_balances (user_id uuid PRIMARY KEY, total numeric(18,2));",
    )
    .execute(pool)
    .await?;
    let parents: Vec<Uuid> = (0..64).map(|_| Uuid::now_v7()).collect();
    let started = Instant::now();
    let mut work = futures::stream::iter(0..n)
        .take_while(within(started, duration))
        .map(|i| {
            let pool = pool.clone();
            let (l1, l2) = (parents[i % 64], parents[(i / 8) % 64]);
            async move { one(&pool, i, l1, l2).await }
        })
        .buffer_unordered(connections.max(1));
    let mut done = 0;
    while let Some(r) = work.next().await {
        r?;
        done += 1;
    }
    Ok(rate(done, started.elapsed()))
}

async fn one(pool: &sqlx::PgPool, i: usize, l1: Uuid, l2: Uuid) -> anyhow::Result<()> {
    let id = Uuid::now_v7();
    let profit = Decimal::new(30_000, 2);
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO naive_purchases VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(format!("naive-{i}"))
        .bind(Uuid::now_v7())
        .bind(Decimal::new(150_000, 2))
        .bind(profit)
        .execute(&mut *tx)
        .await?;
    // Balances in user-id order, as any app must to avoid deadlocks between purchases.
    let mut shares = [(1i16, l1, Decimal::new(5, 2)), (2, l2, Decimal::new(1, 2))];
    shares.sort_by_key(|(_, user, _)| *user);
    for (level, user, rate) in shares {
        let amount = (profit * rate).round_dp(2);
        sqlx::query("INSERT INTO naive_earnings VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(user)
            .bind(level)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO naive_balances VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET total = naive_balances.total + EXCLUDED.total",
        )
        .bind(user)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
