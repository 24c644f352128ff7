//! Faults of the services we depend on: a killed NATS loses no acknowledged purchase.
use e2e::nats_server::PrivateNats;
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use std::collections::HashSet;

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
