//! Purchase times the ledger cannot believe are refused at the edge and dead-lettered
//! on the stream, and the consumer moves on; a purchase has one processed time wherever it
//! is read.
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn implausible_purchase_times_are_refused_and_dead_lettered() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    for at in ["1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z"] {
        let r = app
            .post(
                "/v1/purchases",
                &app.shop_key,
                &json!({ "order_id": "t-1", "user_id": c, "amount": "1000.00", "occurred_at": at }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{at}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "invalid_occurred_at");
    }
    // One spelling of an instant: chrono alone takes these second spellings too.
    for at in ["2026-1-05T10:00:00Z", "2026-01-05 10:00:00Z"] {
        let body =
            json!({ "order_id": "t-0", "user_id": c, "amount": "1000.00", "occurred_at": at });
        let r = app.post("/v1/purchases", &app.shop_key, &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{at}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "invalid_body", "{at}");
    }
    // The same purchase published straight to the stream, as a shop may.
    let message = json!({
        "purchase_id": uuid::Uuid::now_v7(), "shop_id": app.shop_id, "order_id": "t-2", "user_id": c,
        "amount": "1000.00", "profit": "1000.00", "currency": "INR",
        "occurred_at": "-9999-01-01T00:00:00Z", "body_hash": "0".repeat(64),
    });
    app.publish_raw("purchases", "t-2", serde_json::to_vec(&message).unwrap())
        .await;
    assert_eq!(
        app.purchase("t-3", c, "1000.00", None).await.status(),
        StatusCode::ACCEPTED
    );
    eventually(|| app.total(b), |t| t == "50.00").await;
    let letters = app.get_json("/v1/admin/dead-letters", &app.admin).await;
    let reasons: Vec<&str> = letters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["invalid_time"]);
    app.assert_verified().await;
}

#[tokio::test]
async fn a_message_the_database_refuses_is_isolated_and_the_rest_of_its_batch_pays() {
    let app = TestApp::spawn_with(|c| c.processor.batch_max_wait_ms = 200).await;
    let (_, b, c) = app.chain3().await;
    // Stands in for a message no code path foresaw: the database refuses this one order.
    sqlx::query("ALTER TABLE purchases ADD CONSTRAINT test_poison CHECK (order_id <> 'poison')")
        .execute(&app.pool)
        .await
        .unwrap();
    let (poison, good) = futures::join!(
        app.purchase("poison", c, "1000.00", None),
        app.purchase("good", c, "2000.00", Some("500.00")),
    );
    assert_eq!(poison.status(), StatusCode::ACCEPTED);
    assert_eq!(good.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "25.00").await;
    let letters = eventually(
        || app.get_json("/v1/admin/dead-letters", &app.admin),
        |v| !v["items"].as_array().unwrap().is_empty(),
    )
    .await;
    let item = &letters["items"][0];
    assert_eq!(item["reason"], "processing_failed");
    assert!(item["detail"].as_str().unwrap().contains("test_poison"));
    // The stream moved on: a later purchase pays too.
    app.purchase("after", c, "1000.00", Some("100.00")).await;
    eventually(|| app.total(b), |t| t == "30.00").await;
}

#[tokio::test]
async fn a_big_batch_publishes_its_facts_in_bounded_messages() {
    // One processor batch of thousands of purchases: its processed-purchase facts must be
    // split below NATS's max payload, or the batch could never be published and acked.
    let app = TestApp::spawn_with(|c| {
        c.processor.batch_max_bytes = 16 * 1024 * 1024;
        c.processor.batch_max_wait_ms = 500;
    })
    .await;
    let (_, _, c) = app.chain3().await;
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let mut facts = client
        .subscribe(format!("{}.ledger.purchases", app.config.nats.prefix))
        .await
        .unwrap();
    let bodies: Vec<Value> = (0..8)
        .map(|r| {
            let items: Vec<Value> = (0..500)
                .map(|i| json!({ "order_id": format!("big-{r}-{i}"), "user_id": c, "amount": "1000.00" }))
                .collect();
            json!({ "purchases": items })
        })
        .collect();
    let requests = bodies
        .iter()
        .map(|body| app.post("/v1/purchases/batch", &app.shop_key, body));
    for r in futures::future::join_all(requests).await {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let mut seen = 0;
    while seen < 4000 {
        let m = tokio::time::timeout(e2e::EVENTUALLY, futures::StreamExt::next(&mut facts))
            .await
            .expect("facts keep arriving")
            .unwrap();
        let batch: Vec<Value> = serde_json::from_slice(&m.payload).unwrap();
        assert!(
            batch.len() <= 1_000,
            "a fact message carries at most 1,000 purchases"
        );
        seen += batch.len();
    }
    assert_eq!(seen, 4000);
    assert_eq!(app.settled().await, 4000);
    app.assert_verified().await;
}

/// The next purchase fact on `facts` about `id`, and its processed time.
async fn processed_at_announced(
    facts: &mut async_nats::Subscriber,
    id: &str,
) -> chrono::DateTime<chrono::Utc> {
    loop {
        let m = tokio::time::timeout(e2e::EVENTUALLY, futures::StreamExt::next(facts))
            .await
            .expect("the purchase is announced")
            .unwrap();
        let batch: Vec<Value> = serde_json::from_slice(&m.payload).unwrap();
        if let Some(p) = batch.iter().find(|p| p["purchase_id"] == id) {
            return p["processed_at"].as_str().unwrap().parse().unwrap();
        }
    }
}

/// A purchase has one processed time: the one stored in Postgres, announced when it
/// settles and announced again by a replay. (The warehouse knows a purchase it holds by
/// that second and its id; the row stored with the transaction's start instead, a replay
/// could name another second and be counted twice in the warehouse's daily rollup.)
#[tokio::test]
async fn a_purchase_is_announced_with_the_processed_time_it_is_stored_with() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let client = async_nats::connect(app.nats_addrs()).await.unwrap();
    let subject = format!("{}.ledger.purchases", app.config.nats.prefix);
    let mut facts = client.subscribe(subject).await.unwrap();
    client.flush().await.unwrap();
    let r = app.purchase("when", c, "1000.00", Some("100.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["purchase_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let announced = processed_at_announced(&mut facts, &id).await;
    let stored: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT processed_at FROM purchases WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(announced, stored);
    // The retry of a settled order is replayed: announced again, with the same time.
    let retry = app.purchase("when", c, "1000.00", Some("100.00")).await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    assert_eq!(processed_at_announced(&mut facts, &id).await, stored);
    assert_eq!(app.total(b).await, "5.00");
    app.assert_verified().await;
}
