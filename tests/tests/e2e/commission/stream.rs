//! What arrives on the stream without passing ingest: malformed or impossible messages go
//! to the dead letters and the consumer moves on; conflicts and duplicates change nothing.
use super::*;

#[tokio::test]
async fn malformed_and_impossible_messages_are_dead_lettered_and_the_consumer_moves_on() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    app.publish_raw("purchases", "bad-json", b"{\"order_id\": ".to_vec())
        .await;
    app.publish_raw("refunds", "bad-refund", b"[]".to_vec())
        .await;
    let greedy = purchase_message(&app, "greedy", c, "1000.00", "1000.01");
    publish_purchase(&app, &greedy).await;
    // Over the largest single amount: a sum may be that large, a purchase may not.
    let huge = purchase_message(&app, "huge", c, "1000000000000.01", "1.00");
    publish_purchase(&app, &huge).await;
    let ghost = purchase_message(&app, "ghost", UserId::new(), "2000.00", "500.00");
    publish_purchase(&app, &ghost).await;
    let mut dollars = purchase_message(&app, "dollars", c, "2000.00", "500.00");
    dollars.currency = "USD".into();
    publish_purchase(&app, &dollars).await;

    // A valid purchase after them is paid as usual.
    let r = app.purchase("valid", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    assert_eq!(app.total(b).await, "25.00");
    assert_eq!(app.settled().await, 1);

    let mut reasons = dead_letter_reasons(&app).await;
    reasons.sort();
    let want = [
        "invalid_amounts",
        "invalid_amounts",
        "malformed",
        "malformed",
        "unknown_currency",
        "unknown_user",
    ];
    assert_eq!(reasons, want);
    let mut subjects = eventually(|| dead_letter_subjects(&app), |s| s.len() >= 6).await;
    subjects.sort();
    let want: Vec<String> = want.iter().map(|r| format!("deadletter.{r}")).collect();
    assert_eq!(subjects, want);
    app.assert_verified().await;
}

#[tokio::test]
async fn the_same_order_with_another_body_is_a_conflict_never_a_second_purchase() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let first = app.purchase("o-1", c, "2000.00", Some("500.00")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let conflict = problem(app.purchase("o-1", c, "2000.00", Some("400.00")).await).await;
    assert_eq!(conflict, (StatusCode::CONFLICT, "order_conflict".into()));
    // The same values written differently are the same body: a retry, not a conflict.
    let retry = app.purchase("o-1", c, "2000", Some("500.0")).await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["purchase_id"], first["purchase_id"]);
    eventually(|| app.total(b), |t| t == "25.00").await;

    // On the stream: another body under the order id is dead-lettered; the stored
    // message again under a fresh msg-id (a duplicate delivery) is a replay.
    let other = purchase_message(&app, "o-1", c, "3000.00", "900.00");
    let bytes = serde_json::to_vec(&other).unwrap();
    app.publish_raw("purchases", "conflicting-copy", bytes)
        .await;
    let stored: Value = sqlx::query_scalar(
        "SELECT jsonb_build_object('purchase_id', p.id, 'shop_id', p.shop_id, 'order_id', p.order_id,
                    'user_id', p.user_id, 'amount', p.amount::text, 'profit', p.profit::text,
                    'currency', p.currency, 'occurred_at', p.occurred_at, 'body_hash', p.body_hash)
         FROM purchases p WHERE p.order_id = 'o-1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let bytes = serde_json::to_vec(&stored).unwrap();
    app.publish_raw("purchases", "duplicate-copy", bytes).await;
    let r = app.purchase("o-2", c, "1000.00", Some("100.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "30.00").await;
    assert_eq!(app.total(a).await, "6.00");
    assert_eq!(app.settled().await, 2);
    assert_eq!(dead_letter_reasons(&app).await, vec!["order_conflict"]);
    app.assert_verified().await;
}

#[tokio::test]
async fn a_refund_id_reused_with_another_body_on_the_stream_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let r = app.purchase("o", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        app.refund("r-1", "o", "400.00").await.status(),
        StatusCode::ACCEPTED
    );
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    assert_eq!(app.total(b).await, "20.00");
    // The stored refund again under a fresh msg-id is a replay; another amount is refused.
    let stored: Value = sqlx::query_scalar("SELECT message FROM refund_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let bytes = serde_json::to_vec(&stored).unwrap();
    app.publish_raw("refunds", "duplicate-copy", bytes).await;
    let other = refund_message(&app, "r-1", "o", "1000.00");
    let bytes = serde_json::to_vec(&other).unwrap();
    app.publish_raw("refunds", "conflicting-copy", bytes).await;
    eventually(|| dead_letter_reasons(&app), |r| !r.is_empty()).await;
    assert_eq!(dead_letter_reasons(&app).await, vec!["refund_conflict"]);
    assert_eq!(app.total(b).await, "20.00");
    let reversals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM earnings WHERE kind = 'reversal'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(reversals, 2);
    app.assert_verified().await;
}

#[tokio::test]
async fn a_refund_delivered_again_republishes_exactly_its_reversals() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    for order in ["o", "other"] {
        let r = app.purchase(order, c, "2000.00", Some("500.00")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    for (refund, order) in [("r-1", "o"), ("r-2", "other")] {
        let r = app.refund(refund, order, "100.00").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    eventually(|| app.refunds_settled(), |n| *n == 2).await;
    assert_eq!(app.total(b).await, "47.50");
    let ours: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM earnings WHERE refund_id = 'r-1' ORDER BY beneficiary_id, user_seq",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(ours.len(), 2);
    // The announcement may be dropped by the stream's duplicate window; a subscriber of
    // the subject still sees it published.
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let subject = platform::nats::Subjects::new(&app.config.nats.prefix).ledger("entries");
    let mut announced = client.subscribe(subject).await.unwrap();
    client.flush().await.unwrap();
    let stored: Value = sqlx::query_scalar(
        "SELECT message FROM refund_requests WHERE message->>'refund_id' = 'r-1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    app.publish_raw("refunds", "again", serde_json::to_vec(&stored).unwrap())
        .await;
    let message = tokio::time::timeout(e2e::EVENTUALLY, futures::StreamExt::next(&mut announced))
        .await
        .expect("the replayed refund's reversals were announced")
        .unwrap();
    let entries: Vec<schemas::EarningEvent> = serde_json::from_slice(&message.payload).unwrap();
    let ids: Vec<uuid::Uuid> = entries.iter().map(|e| e.earning_id).collect();
    assert_eq!(
        ids, ours,
        "exactly the first refund's reversals, in ledger order"
    );
    assert_eq!(app.total(b).await, "47.50");
    app.assert_verified().await;
}

/// The request as ingest hashes it: its fields in declaration order, amounts at two places.
#[derive(serde::Serialize)]
struct CanonicalRequest<'a> {
    order_id: &'a str,
    user_id: UserId,
    amount: Money,
    profit: Option<Money>,
    currency: Option<String>,
    occurred_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[tokio::test]
async fn an_order_published_straight_to_the_stream_is_the_same_order_through_ingest() {
    use sha2::Digest;
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let request = CanonicalRequest {
        order_id: "direct",
        user_id: c,
        amount: Money::parse("2000.00").unwrap(),
        profit: Some(Money::parse("500.00").unwrap()),
        currency: None,
        occurred_at: None,
    };
    let mut m = purchase_message(&app, "direct", c, "2000.00", "500.00");
    m.body_hash = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&request).unwrap()));
    publish_purchase(&app, &m).await;
    eventually(|| app.total(b), |t| t == "25.00").await;

    // Sent again through ingest, it is a retry of that purchase; another body is a conflict.
    let retry = app.purchase("direct", c, "2000.00", Some("500.00")).await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["purchase_id"], m.purchase_id.to_string());
    let conflict = problem(app.purchase("direct", c, "2000.00", Some("400.00")).await).await;
    assert_eq!(conflict, (StatusCode::CONFLICT, "order_conflict".into()));
    // And ingest refunds it like any order.
    assert_eq!(
        app.refund("direct-r", "direct", "2000.00").await.status(),
        StatusCode::ACCEPTED
    );
    eventually(|| app.total(b), |t| t == "0.00").await;
    assert_eq!(app.settled().await, 1);
    assert!(dead_letter_reasons(&app).await.is_empty());
    app.assert_verified().await;
}

#[tokio::test]
async fn a_purchase_id_reused_for_another_order_is_dead_lettered_not_a_stalled_consumer() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let first = purchase_message(&app, "first", c, "2000.00", "500.00");
    publish_purchase(&app, &first).await;
    let mut second = purchase_message(&app, "second", c, "1000.00", "100.00");
    second.purchase_id = first.purchase_id;
    publish_purchase(&app, &second).await;
    let r = app.purchase("third", c, "1000.00", Some("200.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Whichever of the two is settled first keeps the id (two processor workers may hold
    // them at once; the loser's batch meets the id on insert, is retried and
    // dead-letters it); the other order is refused, and the stage moves on.
    let reasons = eventually(|| dead_letter_reasons(&app), |r| !r.is_empty()).await;
    assert_eq!(reasons, vec!["order_conflict"]);
    eventually(|| app.settled(), |n| *n == 2).await;
    let total = app.total(b).await;
    assert!(
        total == "35.00" || total == "15.00",
        "first or second, and third: {total}"
    );
    app.assert_verified().await;
}

/// A shop publishes on its own subject; a body naming another shop there (here: the shop
/// that signed the buyer up, so the tenancy check alone would pass it) is dead-lettered.
#[tokio::test]
async fn a_message_naming_another_shop_than_its_subject_is_dead_lettered() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let impostor = purchase_message(&app, "impostor", c, "2000.00", "500.00");
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let other_shop = uuid::Uuid::now_v7();
    let subject = format!("{}.purchases.{other_shop}", app.config.nats.prefix);
    platform::nats::publish_stored(&js, subject, None, serde_json::to_vec(&impostor).unwrap())
        .await
        .unwrap();
    let r = app.purchase("own", c, "1000.00", Some("200.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "10.00").await;
    assert_eq!(app.settled().await, 1);
    assert_eq!(dead_letter_reasons(&app).await, vec!["shop_mismatch"]);
    app.assert_verified().await;
}
