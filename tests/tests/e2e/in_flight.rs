//! Requests in flight: a credential cannot hold the places other callers need, however
//! slowly it sends its bodies (`platform::in_flight`, the role extractors), however many
//! signups (`platform::db::GraphWrites`) or refunds of one order (ingest's refund
//! turns) it sends at once.
use e2e::{eventually, TestApp};
use schemas::UserId;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a connection and sends a purchase's head and half its body, then nothing more:
/// the request stays in flight until the connection closes.
async fn hold(app: &TestApp, bearer: &str, path: &str) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: referral\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"order_id\": "
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status line and body of the answer on `stream` (it is answered, then closed).
async fn answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = stream.read_to_end(&mut got);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("no answer before the body was sent")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

/// An empty purchase: answered 422 once admitted, so retries while waiting write nothing.
async fn code_of(app: &TestApp, bearer: &str) -> (u16, Value) {
    let r = app.post("/v1/purchases", bearer, &json!({})).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A user's token (or none) on a shop's route is refused from the request head: the
/// answer comes while the body is still unsent, so such a request holds nothing.
#[tokio::test]
async fn a_credential_of_another_role_is_refused_before_its_body_arrives() {
    let app = TestApp::spawn().await;
    let user = app.signup(None).await;
    let token = app.token_for(user);
    for path in [
        "/v1/purchases",
        "/v1/purchases/batch",
        "/v1/refunds",
        "/v1/users",
    ] {
        let mut held = hold(&app, &token, path).await;
        let got = answer(&mut held).await;
        assert!(got.starts_with("HTTP/1.1 403"), "{path}: {got}");
        assert!(got.contains("\"code\":\"forbidden\""), "{path}: {got}");
        let mut held = hold(&app, "not-a-credential", path).await;
        let got = answer(&mut held).await;
        assert!(got.starts_with("HTTP/1.1 401"), "{path}: {got}");
    }
}

/// A shop holding as many requests open as `max_in_flight_per_caller` allows is answered
/// 429 `too_many_in_flight` for one more, while another shop is still served; a place
/// frees when a held request ends.
#[tokio::test]
async fn a_shop_holding_its_places_is_refused_429_and_other_shops_are_served() {
    let app = TestApp::spawn_with(|c| {
        c.http.max_in_flight_per_caller = 2;
        c.http.max_concurrent_requests = 100;
    })
    .await;
    let (_, other) = referral::shops::create(&app.pool, "other shop")
        .await
        .unwrap();
    let mut held = vec![
        hold(&app, &app.shop_key, "/v1/purchases").await,
        hold(&app, &app.shop_key, "/v1/purchases").await,
    ];
    let (status, problem) = eventually(|| code_of(&app, &app.shop_key), |(s, _)| *s == 429).await;
    assert_eq!(status, 429);
    assert_eq!(problem["code"], "too_many_in_flight", "{problem}");
    assert_eq!(
        code_of(&app, &other).await.0,
        422,
        "the other shop is served"
    );

    held.pop();
    let (status, _) = eventually(|| code_of(&app, &app.shop_key), |(s, _)| *s != 429).await;
    assert_eq!(status, 422);
}

/// Past `max_concurrent_requests` in flight on the listener every caller is answered 503
/// `overloaded` at once (not queued behind the held requests), until a place frees.
#[tokio::test]
async fn past_the_listeners_bound_requests_are_answered_503_at_once() {
    let app = TestApp::spawn_with(|c| {
        c.http.max_in_flight_per_caller = 10;
        c.http.max_concurrent_requests = 2;
    })
    .await;
    let (_, other) = referral::shops::create(&app.pool, "other shop")
        .await
        .unwrap();
    let mut held = vec![
        hold(&app, &app.shop_key, "/v1/purchases").await,
        hold(&app, &other, "/v1/purchases").await,
    ];
    let (_, problem) = eventually(|| code_of(&app, &other), |(s, _)| *s == 503).await;
    assert_eq!(problem["code"], "overloaded", "{problem}");
    let started = std::time::Instant::now();
    let admin = app.admin.clone();
    let r = app.get("/v1/admin/plan", Some(&admin)).await;
    assert_eq!(r.status(), 503, "every route shares the bound");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    held.clear();
    let (status, _) = eventually(|| code_of(&app, &other), |(s, _)| *s != 503).await;
    assert_eq!(status, 422);
}

/// While a flood of `flood` requests waits behind `lock`: all but one wait for their turn
/// in memory (`gauge`), one on the lock with a connection, and a report for `user` is
/// still served (the pool has connections left); then the lock is let go.
async fn while_the_flood_waits(
    app: &TestApp,
    gauge: &str,
    flood: usize,
    user: UserId,
    lock: sqlx::Transaction<'static, sqlx::Postgres>,
) {
    let all_but_one = format!("{gauge} {}", flood - 1);
    eventually(|| app.metric_line(gauge), |l| *l == all_but_one).await;
    // The one whose turn it is may still be taking its connection.
    eventually(|| app.lock_waiters(), |n| *n >= 1).await;
    assert_eq!(
        app.lock_waiters().await,
        1,
        "one connection waits on the lock"
    );
    let report = app
        .get(&format!("/v1/users/{user}/earnings"), Some(&app.admin))
        .await;
    assert_eq!(
        report.status(),
        200,
        "another caller still gets a connection"
    );
    lock.rollback().await.unwrap();
}

/// Signups run one at a time on the graph's lock. A flood of them from one shop waits
/// for its turn in memory, one on a pooled connection, so the pool's connections stay
/// free for everyone else's statements (before, each waiting signup held one: more than
/// the pool's size at once and other callers were answered 503).
#[tokio::test]
async fn a_flood_of_signups_waits_its_turn_without_holding_the_pool() {
    // The tests' pool has 8 connections; a statement waits at most 1 s for one.
    let app = TestApp::spawn_with(|c| c.database.acquire_timeout_ms = 1_000).await;
    assert_eq!(app.config.database.max_connections, 8);
    let user = app.signup(None).await;
    let lock = app.hold_graph_writes().await;
    const SIGNUPS: usize = 12;
    let flood = futures::future::join_all((0..SIGNUPS).map(|_| app.try_signup(None)));
    let meanwhile =
        while_the_flood_waits(&app, "referral_graph_writes_waiting", SIGNUPS, user, lock);
    let (answers, ()) = tokio::join!(flood, meanwhile);
    for r in answers {
        assert_eq!(r.status(), 201);
    }
    assert_eq!(
        app.metric_line("referral_graph_writes_waiting").await,
        "referral_graph_writes_waiting 0"
    );
}

/// One caller's graph writes hold at most `http.graph_writes_per_caller` (2) places in the
/// queue for the process's turn: an admin's deactivation sent after a shop's flood of
/// signups waits for two of them, not for the whole flood (first come, first served, it
/// waited behind every one; with a few hundred, past its deadline).
#[tokio::test]
async fn an_admins_graph_write_waits_for_a_few_of_a_shops_flood_not_all_of_it() {
    let app = TestApp::spawn().await;
    assert_eq!(app.config.http.graph_writes_per_caller, 2);
    let target = app.signup(None).await;
    let lock = app.hold_graph_writes().await;
    const SIGNUPS: usize = 12;
    let flood = futures::future::join_all((0..SIGNUPS).map(|_| app.try_signup(None)));
    let gauge = "referral_graph_writes_waiting";
    let admin = async {
        // Every signup is in: one holds the turn (waiting on the lock), the rest wait.
        let all_but_one = format!("{gauge} {}", SIGNUPS - 1);
        eventually(|| app.metric_line(gauge), |l| *l == all_but_one).await;
        eventually(|| app.lock_waiters(), |n| *n == 1).await;
        let path = format!("/v1/admin/users/{target}/deactivate");
        let (admin, body) = (app.admin.clone(), json!({}));
        let deactivate = app.post(&path, &admin, &body);
        let release = async {
            let all = format!("{gauge} {SIGNUPS}");
            eventually(|| app.metric_line(gauge), |l| *l == all).await;
            lock.rollback().await.unwrap();
        };
        let (r, ()) = tokio::join!(deactivate, release);
        assert_eq!(r.status(), 200);
    };
    let (answers, ()) = tokio::join!(flood, admin);
    assert!(answers.iter().all(|r| r.status() == 201));
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM user_events ORDER BY seq DESC LIMIT $1")
            .bind(SIGNUPS as i64 + 1)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let after = kinds.iter().rev().position(|k| k == "deactivated");
    assert_eq!(
        after,
        Some(2),
        "after the turn's holder and the shop's second place: {kinds:?}"
    );
}

/// Refunds of one order run one at a time on the order's row. A flood of them waits for
/// the order's turn in memory, one on a pooled connection, so the pool stays free for
/// everyone else (before, each waiting refund held a connection: more than the pool's
/// size at once and other callers' statements failed waiting for one).
#[tokio::test]
async fn a_flood_of_refunds_of_one_order_waits_its_turn_without_holding_the_pool() {
    let app = TestApp::spawn_with(|c| c.database.acquire_timeout_ms = 1_000).await;
    assert_eq!(app.config.database.max_connections, 8);
    let (_, b, c) = app.chain3().await;
    assert_eq!(
        app.purchase("flood", c, "2000.00", None).await.status(),
        202
    );
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM purchase_requests WHERE order_id = 'flood' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    const REFUNDS: usize = 12;
    let ids: Vec<String> = (0..REFUNDS).map(|i| format!("r{i}")).collect();
    let flood = futures::future::join_all(ids.iter().map(|id| app.refund(id, "flood", "1.00")));
    let meanwhile = while_the_flood_waits(&app, "referral_refunds_waiting", REFUNDS, b, lock);
    let (answers, ()) = tokio::join!(flood, meanwhile);
    for r in answers {
        assert_eq!(r.status(), 202);
    }
    let refunded: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT refunded FROM purchase_requests WHERE order_id = 'flood'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(refunded.to_string(), "12.00");
    assert_eq!(
        app.metric_line("referral_refunds_waiting").await,
        "referral_refunds_waiting 0"
    );
}
