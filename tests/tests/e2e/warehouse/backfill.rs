//! A ClickHouse outage longer than EARNINGS holds: the stream drops its oldest messages
//! before the sink has them. The sink counts what it never received, and a backfill
//! from Postgres writes it, once; a second run writes nothing.
use super::assert_exactly_once;
use super::seed::{caught_up, drained, ledger_counts, with_warehouse};
use e2e::clickhouse::{self, PrivateClickhouse};
use e2e::{eventually, TestApp};
use platform::clickhouse::Clickhouse;
use reqwest::StatusCode;

const PURCHASES: usize = 40;

#[tokio::test]
async fn what_the_stream_dropped_during_an_outage_is_counted_and_backfilled_from_postgres() {
    let mut server = PrivateClickhouse::start().await;
    let url = server.url();
    let app = TestApp::spawn_with(|c| {
        with_warehouse(c);
        c.clickhouse.url = url.clone();
        // The sink holds at most a few messages (2 × batch_max_rows unacknowledged), and
        // EARNINGS keeps ~16 KiB: a few purchases' worth.
        c.clickhouse.batch_max_rows = 2;
        c.nats.stream_max_bytes = 16 * 1024;
        c.ingest.backlog_bytes_per_shop = 16 * 1024;
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let buy = |i: usize| {
        let app = &app;
        async move {
            let r = app
                .purchase(&format!("o-{i}"), c, "2000.00", Some("400.00"))
                .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            eventually(|| app.settled(), |n| *n > i as i64).await;
        }
    };
    buy(0).await;
    caught_up(&app).await;

    server.stop().await;
    for i in 1..PURCHASES {
        buy(i).await;
    }
    server.restart().await;
    let lost = || async {
        let series = "referral_messages_lost_total{consumer=\"warehouse\"}";
        e2e::metric_sample(&app.metrics().await, series).unwrap_or(0.0)
    };
    eventually(lost, |n| *n > 0.0).await;
    drained(&app).await;
    let db = &app.config.clickhouse.database;
    let stored = format!("SELECT uniqExact(purchase_id) FROM {db}.purchase_events");
    let before: usize = clickhouse::query(&url, &stored)
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(before < PURCHASES, "the stream dropped some: {before}");

    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    let range = warehouse::Range::default();
    let done = warehouse::backfill(&app.pool, &ch, range, 7, 50)
        .await
        .unwrap();
    assert_eq!(done.purchases, PURCHASES);
    let (entries, purchases, _) = ledger_counts(&app).await;
    assert_eq!(
        (done.written.inserted + done.written.already_stored) as i64,
        entries + purchases
    );
    assert!(done.written.inserted > 0);
    assert_exactly_once(&app).await;
    assert_eq!(app.total(b).await, format!("{}.00", PURCHASES * 20));

    let again = warehouse::backfill(&app.pool, &ch, range, 7, 50)
        .await
        .unwrap();
    assert_eq!(again.written.inserted, 0, "a second run writes nothing");
    assert_exactly_once(&app).await;
}
