//! The edge's reservation retries a deadlock it loses (`ingest.reserve_retries`): another
//! session holds order `d-b` and then asks for `d-a` while the edge's group holds `d-a`
//! and waits for `d-b`. Postgres aborts the edge's statement (its deadlock check runs
//! first: the other session's `deadlock_timeout` is 30 s), the edge runs the group again,
//! and once the other session rolls back both purchases are accepted and paid once.
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

/// Inserts a registry row for `order` of the app's shop (uncommitted in `tx`).
pub(crate) async fn hold(tx: &mut sqlx::PgConnection, app: &TestApp, order: &str) {
    sqlx::query(
        "INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, occurred_at, amount)
         VALUES ($1, $2, gen_random_uuid(), '\\x00', now(), 1000)",
    )
    .bind(app.shop_id.as_uuid())
    .bind(order)
    .execute(tx)
    .await
    .unwrap();
}

/// A session of its own, in a transaction, and its backend's pid.
pub(crate) async fn other_session(app: &TestApp) -> (sqlx::PgConnection, i32) {
    let mut other = sqlx::PgConnection::connect(app.config.database.url.as_str())
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut other)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    (other, pid)
}

/// Backends of this database, other than `mine`, waiting on a lock in the registry.
pub(crate) async fn edge_waiting(app: &TestApp, mine: i32) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> $1 AND wait_event_type = 'Lock'
           AND query LIKE '%INSERT INTO purchase_requests%'",
    )
    .bind(mine)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_reservation_that_loses_a_deadlock_is_retried_and_accepted() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let (mut other, pid) = other_session(&app).await;
    sqlx::query("SET LOCAL deadlock_timeout = '30s'")
        .execute(&mut other)
        .await
        .unwrap();
    hold(&mut other, &app, "d-b").await;

    let items: Vec<Value> = ["d-a", "d-b"]
        .iter()
        .map(|o| json!({ "order_id": o, "user_id": c, "amount": "1000.00", "profit": "100.00" }))
        .collect();
    let body = json!({ "purchases": items });
    let batch = app.post("/v1/purchases/batch", &app.shop_key, &body);
    let other_side = async {
        // The edge holds d-a and waits for d-b; now this session asks for d-a.
        eventually(|| edge_waiting(&app, pid), |n| *n == 1).await;
        hold(&mut other, &app, "d-a").await;
        // It got d-a: the edge's statement was the one aborted. Let the retry through.
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    };
    let (r, ()) = tokio::join!(batch, other_side);
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let answer: Value = r.json().await.unwrap();
    let results = answer["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .all(|r| r["accepted"]["status"] == "accepted"),
        "{answer}"
    );
    eventually(|| app.settled(), |n| *n == 2).await;
    assert_eq!(app.total(b).await, "10.00");
    assert_eq!(app.total(a).await, "2.00");
    app.assert_verified().await;
}

mod totals;
