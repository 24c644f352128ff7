//! Faults of the services we depend on: a killed NATS loses no acknowledged purchase.
use e2e::nats_server::PrivateNats;
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use schemas::UserId;
use std::collections::HashSet;

/// One purchase of 1000.00 (profit 100.00) by `buyer` under `order`, as a shop sends it:
/// the order, the answer's status, its problem code ("" when none) and `Retry-After`.
pub(crate) async fn send_purchase(
    app: &TestApp,
    order: String,
    buyer: UserId,
) -> (
    String,
    StatusCode,
    String,
    Option<reqwest::header::HeaderValue>,
) {
    let r = app.purchase(&order, buyer, "1000.00", Some("100.00")).await;
    let retry_after = r.headers().get("retry-after").cloned();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let code = body["code"].as_str().unwrap_or("").to_owned();
    (order, status, code, retry_after)
}

/// A user's total once the API's pool has let go of the connections a fault ended: a
/// report meeting one is a 503 `database_unavailable` (a connection used within
/// `[database] ping_idle_after_ms` is not pinged before use), which a client retries.
pub(crate) async fn total_after_a_fault(app: &TestApp, user: UserId) -> String {
    let path = format!("/v1/users/{user}/earnings");
    let (status, body) = eventually(
        || async {
            let r = app.get(&path, Some(&app.admin)).await;
            let status = r.status();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        },
        |(status, body)| {
            assert!(
                *status == StatusCode::OK || body["code"] == "database_unavailable",
                "{status} {body}"
            );
            *status == StatusCode::OK
        },
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    body["total"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_purchase_survives_a_nats_kill() {
    let mut nats = PrivateNats::start().await;
    let url = nats.url();
    let app = TestApp::spawn_with(|c| {
        c.nats.url = url;
        c.processor.ack_wait_secs = 2;
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let mut accepted: HashSet<String> = HashSet::new();
    let send = |i: usize| {
        let order = format!("k-{i}");
        let app = &app;
        async move {
            let r = app.purchase(&order, c, "1000.00", Some("100.00")).await;
            (order, r.status())
        }
    };
    for i in 0..50 {
        let (order, status) = send(i).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.insert(order);
    }
    nats.kill();
    // While NATS is down nothing may be acknowledged: each answer is a retryable 503.
    for i in 50..60 {
        let (_, status) = send(i).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "no 202 without a stored message"
        );
    }
    nats.restart().await;
    // Shops retry what was refused; the clients reconnect on their own.
    for i in 50..100 {
        let (order, status) = eventually(|| send(i), |(_, s)| *s == StatusCode::ACCEPTED).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.insert(order);
    }
    eventually(|| app.settled(), |n| *n >= 100).await;
    let settled: Vec<String> = sqlx::query_scalar("SELECT order_id FROM purchases")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let settled: HashSet<String> = settled.into_iter().collect();
    assert_eq!(
        settled, accepted,
        "exactly the acknowledged purchases were settled"
    );
    assert_eq!(app.total(b).await, "500.00");
    app.assert_verified().await;
}

/// A private Postgres stopped with `pg_ctl stop -m immediate` while purchases arrive, then
/// started again: while it is away each purchase is a retryable 503 `database_unavailable`
/// (never a 500), the app reconnects by itself, and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_is_a_503_and_loses_nothing_acknowledged() {
    let pg = e2e::private_pg::PrivatePostgres::start();
    let server = pg.server_url();
    let app = TestApp::spawn_with(|c| {
        let db = c.database.url.rsplit_once('/').unwrap().1.to_owned();
        c.database.url = format!("{server}/{db}");
        c.database.acquire_timeout_ms = 1_000;
        c.processor.retry_backoff_max_ms = 500;
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let send = |i: usize| send_purchase(&app, format!("pg-{i}"), c);
    let mut accepted: HashSet<String> = HashSet::new();
    for i in 0..30 {
        let (order, status, ..) = send(i).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.insert(order);
    }
    pg.stop_immediate();
    for i in 30..35 {
        let (_, status, code, retry_after) = send(i).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{code}");
        assert_eq!(code, "database_unavailable");
        assert!(retry_after.is_some(), "Retry-After");
    }
    pg.restart();
    // Shops retry what was refused; the app's pool reconnects on its own.
    for i in 30..60 {
        let (order, status, ..) =
            eventually(|| send(i), |(_, s, ..)| *s == StatusCode::ACCEPTED).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.insert(order);
    }
    app.assert_settled_once(&accepted).await;
    app.assert_verified().await;
    assert_eq!(total_after_a_fault(&app, b).await, "300.00");
}

/// Every connection the app holds to its database is ended with `pg_terminate_backend`,
/// three times while purchases arrive (after the 10th, 30th and 50th answer): each answer
/// is a 202 or a retryable 503 `database_unavailable` (never a 500), the pools reconnect by
/// themselves, a processor batch cut off mid-transaction is retried, and exactly the
/// accepted purchases are paid, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_database_connections_lose_nothing_and_answer_503_at_worst() {
    use futures::StreamExt;
    use sqlx::Connection;
    let app = TestApp::spawn_with(|c| c.processor.retry_backoff_max_ms = 500).await;
    let (_, b, c) = app.chain3().await;
    let url = app.config.database.url.clone();
    let mut killer = sqlx::PgConnection::connect(&url).await.unwrap();
    let send = |i: usize| send_purchase(&app, format!("term-{i}"), c);
    let mut answers = futures::stream::iter(0..60).map(send).buffer_unordered(8);
    let (mut accepted, mut refused, mut terminated) = (HashSet::new(), Vec::new(), 0_i64);
    let mut seen = 0;
    while let Some((order, status, code, _)) = answers.next().await {
        seen += 1;
        match status {
            StatusCode::ACCEPTED => assert!(accepted.insert(order)),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(code, "database_unavailable");
                refused.push(order);
            }
            other => panic!("{order}: {other} {code}"),
        }
        if [10, 30, 50].contains(&seen) {
            let ended: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
            )
            .fetch_one(&mut killer)
            .await
            .unwrap();
            terminated += ended;
        }
    }
    drop(answers);
    killer.close().await.unwrap();
    println!(
        "ended {terminated} connections; {} answers were 503",
        refused.len()
    );
    assert!(terminated >= 3, "ended {terminated} connections");
    // Shops retry what was refused; the order id keeps a retry from paying twice.
    for order in refused {
        let i: usize = order.trim_start_matches("term-").parse().unwrap();
        let (order, ..) = eventually(|| send(i), |(_, s, ..)| *s == StatusCode::ACCEPTED).await;
        accepted.insert(order);
    }
    assert_eq!(accepted.len(), 60);
    app.assert_settled_once(&accepted).await;
    app.assert_verified().await;
    assert_eq!(total_after_a_fault(&app, b).await, "300.00");
}

/// Postgres refusing writes (read-only here; a full disk answers the same class of
/// error): signups and purchases get 503 `database_unavailable` with `Retry-After`, never
/// a 202 for something not stored, and the shops' retries are paid once when writes return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_refusing_writes_answers_503_and_stores_nothing() {
    use sqlx::Connection;
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let url = app.config.database.url.clone();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    // New sessions start read-only; ending the app's sessions makes its pools reconnect.
    let writes = |on: bool| {
        let setting = if on {
            "RESET default_transaction_read_only"
        } else {
            "SET default_transaction_read_only = on"
        };
        format!(
            "ALTER DATABASE \"{}\" {setting}",
            url.rsplit('/').next().unwrap()
        )
    };
    let reconnect = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()";
    sqlx::query(&writes(false))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(reconnect).execute(&mut admin).await.unwrap();
    let orders: Vec<String> = (0..10).map(|i| format!("ro-{i}")).collect();
    for order in &orders {
        let (_, status, code, retry_after) = send_purchase(&app, order.clone(), c).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            "{order}"
        );
        assert!(retry_after.is_some(), "{order}: a 503 says when to retry");
    }
    let signup = app.try_signup(Some(b)).await;
    assert_eq!(signup.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM purchase_requests WHERE order_id LIKE 'ro-%'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing refused was stored");

    sqlx::query(&writes(true))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(reconnect).execute(&mut admin).await.unwrap();
    let mut accepted = HashSet::new();
    for order in orders {
        let (order, ..) = eventually(
            || send_purchase(&app, order.clone(), c),
            |(_, s, ..)| *s == StatusCode::ACCEPTED,
        )
        .await;
        accepted.insert(order);
    }
    admin.close().await.unwrap();
    app.assert_settled_once(&accepted).await;
    app.assert_verified().await;
    assert_eq!(total_after_a_fault(&app, b).await, "50.00");
}

/// A batch slower than the ack wait (its order's lock held by another session for three ack
/// waits) is kept in progress: JetStream does not deliver it again to the other worker
/// meanwhile, and it pays once when the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_slower_than_the_ack_wait_is_kept_in_progress_not_redelivered() {
    let app = TestApp::spawn_with(|c| {
        // Two seconds, so a progress ack delayed by a busy CI machine still lands in time.
        c.processor.ack_wait_secs = 2;
        c.processor.order_lock_buckets = 1; // every order on lock (class "ordr", key 0)
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let held = e2e::order_lock::OrderLock::hold(&app.config.database.url).await;
    let r = app.purchase("slow", c, "1000.00", Some("100.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    eventually(waiting, |n| *n >= 1).await;
    // The fault itself lasts three ack waits (a duration, not a synchronisation).
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    held.release().await;
    eventually(|| app.settled(), |n| *n == 1).await;
    let js = async_nats::jetstream::new(async_nats::connect(app.nats_addrs()).await.unwrap());
    let stream = platform::nats::Subjects::new(&app.config.nats.prefix).purchases_stream();
    let stream = js.get_stream(stream).await.unwrap();
    let info = stream.consumer_info("processor").await.unwrap();
    // The consumer's sequence counts deliveries, redeliveries included: one message, once.
    assert_eq!(info.delivered.stream_sequence, 1, "{info:#?}");
    assert_eq!(
        info.delivered.consumer_sequence, 1,
        "delivered again: {info:#?}"
    );
    assert_eq!(app.total(b).await, "5.00");
    app.assert_verified().await;
}
