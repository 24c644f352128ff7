//! A ClickHouse outage longer than EARNINGS holds: the stream drops its oldest messages
//! before the sink has them. The sink counts what it never received and loads it from
//! Postgres itself; a backfill beside the running sink is refused for what the sink may
//! still write; and a backfill into a warehouse no sink writes loads everything, once.
use super::assert_exactly_once;
use super::seed::{caught_up, ledger_counts, with_warehouse};
use e2e::clickhouse::PrivateClickhouse;
use e2e::{eventually, TestApp};
use platform::clickhouse::Clickhouse;
use reqwest::StatusCode;

const PURCHASES: usize = 40;

#[tokio::test]
async fn what_the_stream_dropped_during_an_outage_is_counted_and_loaded_from_postgres() {
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
    // The sink loaded what was dropped from Postgres: everything, each once.
    caught_up(&app).await;
    assert_exactly_once(&app).await;
    assert_eq!(app.total(b).await, format!("{}.00", PURCHASES * 20));

    // Beside the running sink, only what it can no longer be given may be loaded.
    let everything = warehouse::Range::default();
    let refused = warehouse::beside::check(&app.config, everything).await;
    let message = refused
        .expect_err("a backfill of all time beside the sink")
        .to_string();
    assert!(message.contains("--to"), "{message}");
    let long_ago = warehouse::Range {
        from: None,
        to: Some(chrono::Utc::now() - chrono::Duration::days(1)),
    };
    warehouse::beside::check(&app.config, long_ago)
        .await
        .unwrap();

    // A warehouse no sink writes (a new one) is loaded from Postgres, once.
    let mut fresh = app.config.clickhouse.clone();
    fresh.database = format!("{}_fresh", fresh.database);
    warehouse::migrate(&fresh).await.unwrap();
    let ch = Clickhouse::new(&fresh).unwrap();
    let done = warehouse::backfill(&app.pool, &ch, everything, 7, 50)
        .await
        .unwrap();
    let (entries, purchases, _) = ledger_counts(&app).await;
    assert_eq!(done.purchases as i64, purchases);
    assert_eq!(done.written.inserted as i64, entries + purchases);
    let again = warehouse::backfill(&app.pool, &ch, everything, 7, 50)
        .await
        .unwrap();
    assert_eq!(again.written.inserted, 0, "a second run writes nothing");
    assert_eq!(again.written.already_stored as i64, entries + purchases);
    ch.execute(&format!("DROP DATABASE {}", fresh.database))
        .await
        .unwrap();
}
