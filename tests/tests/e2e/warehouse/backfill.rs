//! A ClickHouse outage longer than EARNINGS holds: the stream drops its oldest messages
//! before the sink has them. The sink counts what it never received, and a backfill from
//! Postgres, run beside the sink, loads it: the purchases settled meanwhile and the
//! reversals of a refund of an earlier purchase, each once; a second run writes nothing.
use super::assert_exactly_once;
use super::seed::{caught_up, drained, with_warehouse};
use e2e::clickhouse::{self, PrivateClickhouse};
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
    let outage = chrono::Utc::now();
    for i in 1..10 {
        buy(i).await;
    }
    // A refund of the purchase settled before the outage: its reversals are made now.
    let r = app.refund("r-0", "o-0", "500.00").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    for i in 10..PURCHASES {
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

    // From the outage on, beside the running sink.
    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    let writer = warehouse::Writer {
        ch: &ch,
        pool: &app.pool,
        months: 50,
    };
    let range = warehouse::Range {
        from: Some(outage),
        to: None,
    };
    let done = warehouse::backfill(&writer, range, 7).await.unwrap();
    assert!(done.written.inserted > 0);
    assert_exactly_once(&app).await;
    assert_eq!(app.total(b).await, format!("{}.00", PURCHASES * 20 - 5));

    let again = warehouse::backfill(&writer, range, 7).await.unwrap();
    assert_eq!(again.written.inserted, 0, "a second run writes nothing");
    assert_exactly_once(&app).await;
}

/// Every write to the warehouse takes the writers' lock: while another writer (here a
/// session of the test) holds it, the sink's write waits in Postgres, and ClickHouse
/// receives nothing; released, the sink writes its batch.
#[tokio::test]
async fn the_sink_writes_only_while_no_other_writer_does() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(with_warehouse).await;
    let (_, _, c) = app.chain3().await;
    let mut other = sqlx::PgConnection::connect(&app.config.database.url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1, 0)")
        .bind(0x7768_7365_i32)
        .execute(&mut other)
        .await
        .unwrap();
    let r = app.purchase("w-1", c, "2000.00", Some("400.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    eventually(waiting, |n| *n == 1).await;
    let db = &app.config.clickhouse.database;
    let url = &app.config.clickhouse.url;
    let stored = format!("SELECT count() FROM {db}.purchase_events");
    assert_eq!(clickhouse::query(url, &stored).await.trim(), "0");
    sqlx::query("SELECT pg_advisory_unlock($1, 0)")
        .bind(0x7768_7365_i32)
        .execute(&mut other)
        .await
        .unwrap();
    caught_up(&app).await;
    assert_exactly_once(&app).await;
}
