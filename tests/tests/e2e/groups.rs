//! Grouping. The edge's group commit for single purchases: the requests reserved by one
//! INSERT are stored as one message, straight from the reservation
//! (ingest/src/reserver.rs), and each is answered once that message is stored. (Before
//! stop 36 each request submitted its own store after its reservation's answer; in a
//! quiet test those five usually met in one message too, so this pins the grouping, not
//! the saved wake-up.) The processor's batches: without a wait for more, a batch still
//! takes every message that has already arrived.
use crate::deadlock::{edge_waiting, hold, other_session};
use e2e::{eventually, TestApp};
use reqwest::StatusCode;

/// Messages the app's PURCHASES stream has stored so far (its last sequence).
async fn stored(app: &TestApp) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(app.nats_addrs()).await.unwrap());
    let subjects = platform::nats::Subjects::new(&app.config.nats.prefix);
    let mut stream = js.get_stream(subjects.purchases_stream()).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// Requests waiting to join the next reservation group.
async fn waiting_to_reserve(app: &TestApp) -> String {
    app.metric_line(r#"referral_ingest_group_waiting{step="reserve"}"#)
        .await
}

/// A session of its own holding `order` uncommitted, and its backend's pid.
async fn holding(app: &TestApp, order: &str) -> (sqlx::PgConnection, i32) {
    let (mut other, pid) = other_session(app).await;
    hold(&mut other, app, order).await;
    (other, pid)
}

#[tokio::test]
async fn the_purchases_of_one_reservation_group_are_stored_as_one_message() {
    let app = TestApp::spawn_with(|c| c.ingest.reserve_in_flight = 1).await;
    let (a, b, c) = app.chain3().await;
    let before = stored(&app).await;
    // Two other sessions hold orders g-0 and g-3: the first group (g-0 alone) waits for
    // one, the second (g-1..g-5, queued meanwhile) for the other.
    let (mut x, x_pid) = holding(&app, "g-0").await;
    let (mut y, _) = holding(&app, "g-3").await;
    let app = &app;
    let buy = move |o: String| async move { app.purchase(&o, c, "1000.00", Some("100.00")).await };
    let first = buy("g-0".to_owned());
    let rest = async {
        eventually(|| edge_waiting(app, x_pid), |n| *n >= 1).await;
        let sent = futures::future::join_all((1..=5).map(|i| buy(format!("g-{i}"))));
        let release = async {
            eventually(|| waiting_to_reserve(app), |l| l.ends_with(" 5")).await;
            sqlx::query("ROLLBACK").execute(&mut x).await.unwrap();
            // g-0 is stored before the second group can finish: the stream is idle when
            // the five are stored.
            eventually(|| stored(app), |n| *n - before == 1).await;
            sqlx::query("ROLLBACK").execute(&mut y).await.unwrap();
        };
        tokio::join!(sent, release).0
    };
    let (first, rest) = tokio::join!(first, rest);
    for r in std::iter::once(first).chain(rest) {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(
        stored(app).await - before,
        2,
        "the five purchases in one message"
    );
    assert!(waiting_to_reserve(app).await.ends_with(" 0"));
    eventually(|| app.settled(), |n| *n == 6).await;
    assert_eq!(app.total(b).await, "30.00");
    assert_eq!(app.total(a).await, "6.00");
    app.assert_verified().await;
}

/// Batches the processor has applied so far (counted once acked, after their commit:
/// none until the first batch is).
async fn batches(app: &TestApp) -> u64 {
    let series = r#"referral_processor_batch_seconds_count{stage="total"}"#;
    e2e::metric_sample(&app.metrics().await, series).map_or(0, |n| n as u64)
}

#[tokio::test]
async fn messages_waiting_for_the_processor_are_applied_together_without_a_wait_for_more() {
    let mut app = TestApp::spawn().await;
    assert_eq!(app.config.processor.batch_max_wait_ms, 0, "the default");
    let (a, b, c) = app.chain3().await;
    app.purchase("first", c, "1000.00", Some("100.00")).await;
    eventually(|| app.settled(), |n| *n == 1).await;
    let before = eventually(|| batches(&app), |n| *n >= 1).await;
    // Stored while no processor runs: all of them are waiting when it starts.
    app.stop().await;
    const WAITING: u64 = 40;
    for i in 0..WAITING {
        let m = e2e::messages::purchase(app.shop_id, &format!("w-{i}"), c, "1000.00", "100.00");
        let id = format!("{}:{}", m.shop_id, m.order_id);
        app.publish_raw("purchases", &id, serde_json::to_vec(&m).unwrap())
            .await;
    }
    app.restart().await.unwrap();
    eventually(|| app.settled(), |n| *n == 1 + WAITING as i64).await;
    let applied_in = batches(&app).await - before;
    // One batch a message would mean each was applied on its own (two workers share the
    // pull, so two or a few batches are expected).
    assert!(
        applied_in <= WAITING / 4,
        "{WAITING} waiting messages took {applied_in} batches"
    );
    assert_eq!(app.total(b).await, "205.00");
    assert_eq!(app.total(a).await, "41.00");
    app.assert_verified().await;
}
