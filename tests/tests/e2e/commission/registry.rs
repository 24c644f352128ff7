//! The stream beside the edge's order registry: an order the edge reserved is paid by its
//! reserved purchase (id and body), a copy refused for its id hides nothing, and refunds
//! published straight to the stream count where the edge judges refunds.
use super::*;

#[tokio::test]
async fn an_order_the_edge_registered_is_paid_by_its_own_purchase_id_only() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    // The edge reserved the order and stopped before storing it in the stream (a crash
    // between the two): the order is registered to its purchase, which has not settled
    // (the hash as the edge keeps it: the SHA-256's bytes).
    let reserved = purchase_message(&app, "held", c, "2000.00", "500.00");
    sqlx::query(
        "INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, occurred_at, amount)
         VALUES ($1, $2, $3, decode($4, 'hex'), $5, 2000.00)",
    )
    .bind(app.shop_id.as_uuid())
    .bind("held")
    .bind(reserved.purchase_id)
    .bind(&reserved.body_hash)
    .bind(reserved.occurred_at)
    .execute(&app.pool)
    .await
    .unwrap();
    // The shop then publishes the same order straight to the stream under another
    // purchase id, same body: refused, it is not the order's purchase.
    let mut other = reserved.clone();
    other.purchase_id = uuid::Uuid::now_v7();
    let bytes = serde_json::to_vec(&other).unwrap();
    app.publish_raw("purchases", "held-other-id", bytes).await;
    let reasons = eventually(|| dead_letter_reasons(&app), |r| !r.is_empty()).await;
    assert_eq!(reasons, vec!["order_conflict"]);
    assert_eq!(app.settled().await, 0);
    // The registered purchase, when it comes, pays once; again, it is a replay.
    for id in ["held-reserved", "held-reserved-again"] {
        let bytes = serde_json::to_vec(&reserved).unwrap();
        app.publish_raw("purchases", id, bytes).await;
    }
    eventually(|| app.total(b), |t| t == "25.00").await;
    let r = app.purchase("after", c, "1000.00", Some("100.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "6.00").await;
    assert_eq!(app.total(b).await, "30.00");
    assert_eq!(app.settled().await, 2);
    assert_eq!(dead_letter_reasons(&app).await, vec!["order_conflict"]);
    app.assert_verified().await;
}

/// A refund published straight to the stream counts against the order at the edge once it
/// is applied: a later refund through the edge of more than remains is refused (409) at
/// once, where before it was accepted (202) and then refused by the processor. The same
/// refund sent both ways counts once.
#[tokio::test]
async fn a_refund_published_to_the_stream_counts_at_the_edge() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let r = app.purchase("mixed", c, "1000.00", Some("400.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "20.00").await;
    publish_refund(&app, &refund_message(&app, "straight", "mixed", "600.00")).await;
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    // The same refund sent through the edge too is its retry (counted once), and another
    // amount under its id a conflict.
    assert_eq!(
        app.refund("straight", "mixed", "600.00").await.status(),
        StatusCode::ACCEPTED
    );
    let r = app.refund("straight", "mixed", "60.00").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.refund("through-edge", "mixed", "500.00").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "refund_exceeds_remaining", "{problem}");
    let r = app.refund("the-rest", "mixed", "400.00").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "0.00").await;
    assert!(dead_letter_reasons(&app).await.is_empty());
    app.assert_verified().await;
}

/// A message under the purchase id the edge reserved for an order, with another body than
/// the one reserved, is a conflict: the reserved body is the one that pays. (Before, the
/// first of the two to be applied paid, and the registry's amount then disagreed with it.)
#[tokio::test]
async fn another_body_under_a_reserved_purchase_id_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let reserved = purchase_message(&app, "reserved", c, "2000.00", "500.00");
    // The edge has reserved the order and its message is still on its way.
    sqlx::query(
        "INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, occurred_at, amount)
         VALUES ($1, 'reserved', $2, $3, $4, 2000.00)",
    )
    .bind(app.shop_id.as_uuid())
    .bind(reserved.purchase_id)
    .bind(hex::decode(&reserved.body_hash).unwrap())
    .bind(reserved.occurred_at)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut changed = purchase_message(&app, "reserved", c, "20000.00", "5000.00");
    changed.purchase_id = reserved.purchase_id;
    app.publish_raw(
        "purchases",
        "changed",
        serde_json::to_vec(&changed).unwrap(),
    )
    .await;
    eventually(|| dead_letter_reasons(&app), |r| !r.is_empty()).await;
    assert_eq!(dead_letter_reasons(&app).await, vec!["order_conflict"]);
    app.publish_raw(
        "purchases",
        "reserved",
        serde_json::to_vec(&reserved).unwrap(),
    )
    .await;
    eventually(|| app.total(b), |t| t == "25.00").await;
    app.assert_verified().await;
}

/// Two copies of one order in one stored message, the first under a purchase id another
/// order's purchase holds: the first is a conflict and the second, under a free id, pays.
/// (Before, the refused copy was noted as the order's first body, the second taken for its
/// duplicate, and the order was neither paid nor dead-lettered.)
#[tokio::test]
async fn a_copy_refused_for_its_id_does_not_hide_the_next_copy_of_its_order() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let holder = purchase_message(&app, "holder", c, "2000.00", "500.00");
    publish_purchase(&app, &holder).await;
    eventually(|| app.total(b), |t| t == "25.00").await;
    let mut refused = purchase_message(&app, "copied", c, "1000.00", "200.00");
    let mut paid = refused.clone();
    refused.purchase_id = holder.purchase_id;
    paid.purchase_id = uuid::Uuid::now_v7();
    let both = serde_json::to_vec(&[&refused, &paid]).unwrap();
    app.publish_raw("purchases", "copies", both).await;
    eventually(|| app.total(b), |t| t == "35.00").await;
    assert_eq!(dead_letter_reasons(&app).await, vec!["order_conflict"]);
    app.assert_verified().await;
}
