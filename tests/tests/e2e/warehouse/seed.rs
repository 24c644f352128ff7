//! A seeded workload for the warehouse tests, and waits on the sink: a referral tree
//! with a moved user and a loner, two shops, purchases over several days above and
//! below the threshold, a partial and a full refund.
use async_nats::jetstream;
use chrono::{Duration, Utc};
use e2e::clickhouse;
use e2e::{eventually, TestApp};
use platform::nats::Subjects;
use reqwest::StatusCode;
use schemas::UserId;
use serde_json::json;

/// The warehouse on, with short batches so tests see several of them.
pub fn with_warehouse(c: &mut platform::Config) {
    c.clickhouse.enabled = true;
    c.clickhouse.batch_max_wait_ms = 20;
    c.clickhouse.retry_backoff_max_ms = 200;
}

pub struct Workload {
    /// root → a1, a2, a3; a1 → b1, b2; a2 → b3; b1 → c1; b3 → c2; c3 moved b3 → a3
    /// (and, not listed, c2 → quiet who never buys, c1 → thrifty who buys below threshold).
    pub tree: Vec<UserId>,
    pub loner: UserId,
}

/// Days before today on which seeded purchases happened (the warehouse days by them).
pub const PURCHASE_DAYS_AGO: [i64; 4] = [0, 1, 2, 9];

pub async fn seed(app: &TestApp) -> Workload {
    // The second shop signs up a3, b2, c3 and the loner (under the first shop's users:
    // referrals cross shops) and sends their purchases; a shop buys only for its own.
    let (_, second_shop) = referral::shops::create(&app.pool, "second shop")
        .await
        .unwrap();
    let root = app.signup(None).await;
    let (a1, a2, a3) = (
        app.signup(Some(root)).await,
        app.signup(Some(root)).await,
        app.signup_by(&second_shop, Some(root)).await,
    );
    let (b1, b2, b3) = (
        app.signup(Some(a1)).await,
        app.signup_by(&second_shop, Some(a1)).await,
        app.signup(Some(a2)).await,
    );
    let (c1, c2, c3) = (
        app.signup(Some(b1)).await,
        app.signup(Some(b3)).await,
        app.signup_by(&second_shop, Some(b3)).await,
    );
    let loner = app.signup_by(&second_shop, None).await;
    let of_second_shop = [a3, b2, c3, loner];
    // Referred, but never a qualifying purchase: one never buys, one buys below the threshold.
    let _quiet = app.signup(Some(c2)).await;
    let thrifty = app.signup(Some(c1)).await;
    assert_eq!(app.move_user(c3, Some(a3)).await.status(), StatusCode::OK);

    let buyers = [c1, c2, c3, b1, b2, b3, a1, a2, a3, root, loner];
    let amounts = [
        ("1500.00", Some("333.33")),
        ("999.99", None),
        ("2500.50", Some("1250.25")),
        ("1000.00", Some("0.00")),
        ("4321.09", Some("987.65")),
        ("120.00", None),
    ];
    let mut purchases = 0;
    for i in 0..24 {
        let (amount, profit) = amounts[i % amounts.len()];
        let occurred_at = Utc::now() - Duration::days(PURCHASE_DAYS_AGO[i % 4]);
        let mut body = json!({
            "order_id": format!("w-{i}"), "user_id": buyers[i % buyers.len()],
            "amount": amount, "occurred_at": occurred_at,
        });
        if let Some(p) = profit {
            body["profit"] = json!(p);
        }
        let key = if of_second_shop.contains(&buyers[i % buyers.len()]) {
            &second_shop
        } else {
            &app.shop_key
        };
        let r = app.post("/v1/purchases", key, &body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "purchase w-{i}");
        purchases += 1;
    }
    let r = app.purchase("w-thrifty", thrifty, "500.00", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    purchases += 1;
    eventually(|| app.settled(), |n| *n == purchases).await;
    // w-0 (c1, 1500.00) partly, w-4 (b2, 4321.09) fully: reversals at every level paid.
    let refunds = [
        ("wr-1", "w-0", "500.00", &app.shop_key),
        ("wr-2", "w-4", "4321.09", &second_shop),
    ];
    for (refund, order, amount, key) in refunds {
        let body = json!({ "refund_id": refund, "order_id": order, "amount": amount });
        let r = app.post("/v1/refunds", key, &body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    eventually(|| app.refunds_settled(), |n| *n == 2).await;
    Workload {
        tree: vec![root, a1, a2, a3, b1, b2, b3, c1, c2, c3],
        loner,
    }
}

/// Waits until ClickHouse holds every ledger entry, purchase and user event Postgres
/// has, and the sink has acknowledged everything the EARNINGS stream holds.
pub async fn caught_up(app: &TestApp) {
    let want = ledger_counts(app).await;
    let url = &app.config.clickhouse.url;
    let db = &app.config.clickhouse.database;
    eventually(
        || async {
            let v = clickhouse::rows(
                url,
                &format!(
                    "SELECT (SELECT uniqExact(event_id) FROM {db}.earning_events) AS e,
                        (SELECT uniqExact(purchase_id) FROM {db}.purchase_events) AS p,
                        (SELECT max(seq) FROM {db}.user_events) AS u"
                ),
            )
            .await;
            let n = |k: &str| v[0][k].as_i64().unwrap();
            (n("e"), n("p"), n("u"))
        },
        |got| *got == want,
    )
    .await;
    drained(app).await;
}

/// (earnings, purchases, last user event) in Postgres.
pub async fn ledger_counts(app: &TestApp) -> (i64, i64, i64) {
    let r = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM earnings) AS "earnings!",
                  (SELECT count(*) FROM purchases) AS "purchases!",
                  (SELECT COALESCE(max(seq), 0) FROM user_events) AS "user_events!""#
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (r.earnings, r.purchases, r.user_events)
}

/// Waits until the warehouse consumer has nothing pending and nothing unacknowledged.
pub async fn drained(app: &TestApp) {
    let (pending, unacked) = eventually(|| warehouse_backlog(app), |b| *b == Some((0, 0)))
        .await
        .unwrap();
    assert_eq!((pending, unacked), (0, 0));
}

/// (messages not yet delivered, delivered but not acknowledged) of the sink's consumer.
pub async fn warehouse_backlog(app: &TestApp) -> Option<(u64, usize)> {
    let js = jetstream::new(async_nats::connect(&app.config.nats.url).await.ok()?);
    let name = Subjects::new(&app.config.nats.prefix).earnings_stream();
    let stream = js.get_stream(&name).await.ok()?;
    let info = stream.consumer_info(warehouse::DURABLE_NAME).await.ok()?;
    Some((info.num_pending, info.num_ack_pending))
}

/// Publishes every message the EARNINGS stream holds again under new message ids, so
/// the sink receives each earning and purchase a second time. Returns how many.
pub async fn republish_everything(app: &TestApp, round: &str) -> u64 {
    let js = jetstream::new(async_nats::connect(&app.config.nats.url).await.unwrap());
    let name = Subjects::new(&app.config.nats.prefix).earnings_stream();
    let mut stream = js.get_stream(&name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        let id = format!("{round}:{seq}");
        platform::nats::publish_stored(&js, m.subject.to_string(), Some(&id), m.payload.to_vec())
            .await
            .unwrap();
    }
    last
}
