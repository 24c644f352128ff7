//! Tenancy: a user belongs to the shop that signed them up. Another shop may refer new
//! users under them, but never send purchases for them: not through ingest (403
//! `foreign_user`, alone or in a batch), not straight to the stream (dead-lettered).
use super::*;
use serde_json::json;

#[tokio::test]
async fn a_shop_sends_purchases_only_for_users_it_signed_up() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let (other_shop, other_key) = referral::shops::create(&app.pool, "second shop")
        .await
        .unwrap();
    let body = json!({ "order_id": "t-1", "user_id": c, "amount": "2000.00", "profit": "500.00" });
    let r = app.post("/v1/purchases", &other_key, &body).await;
    assert_eq!(
        problem(r).await,
        (StatusCode::FORBIDDEN, "foreign_user".into())
    );
    let batch = json!({ "purchases": [body] });
    let r = app.post("/v1/purchases/batch", &other_key, &batch).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["results"][0]["problem"]["code"], "foreign_user");
    assert_eq!(answer["results"][0]["problem"]["status"], 403);
    // Nor can it refund the first shop's orders: they are not its orders.
    let bought = app.purchase("t-2", c, "2000.00", Some("500.00")).await;
    assert_eq!(bought.status(), StatusCode::ACCEPTED);
    let refund = json!({ "refund_id": "t-r", "order_id": "t-2", "amount": "1.00" });
    let r = app.post("/v1/refunds", &other_key, &refund).await;
    assert_eq!(
        problem(r).await,
        (StatusCode::NOT_FOUND, "order_not_found".into())
    );

    // Straight to the stream, on its own subject: dead-lettered, and the stream moves on.
    let mut foreign = purchase_message(&app, "t-3", c, "2000.00", "500.00");
    foreign.shop_id = other_shop;
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let subject = format!("{}.purchases.{other_shop}", app.config.nats.prefix);
    let payload = serde_json::to_vec(&foreign).unwrap();
    platform::nats::publish_stored(
        &async_nats::jetstream::new(client),
        subject,
        Some("t-3"),
        payload,
    )
    .await
    .unwrap();

    // A user the second shop signs up may be referred by the first shop's user: the
    // second shop's purchases for them pay up the tree as any purchase does.
    let d = app.signup_by(&other_key, Some(c)).await;
    let body = json!({ "order_id": "t-4", "user_id": d, "amount": "2000.00", "profit": "500.00" });
    let r = app.post("/v1/purchases", &other_key, &body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A user an admin signed up belongs to no shop; any shop may send their purchases.
    let e = app.signup_by(&app.admin, Some(c)).await;
    let body = json!({ "order_id": "t-5", "user_id": e, "amount": "2000.00", "profit": "500.00" });
    let r = app.post("/v1/purchases", &other_key, &body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    settled(&app, 3).await;
    let reasons = eventually(|| dead_letter_reasons(&app), |r| !r.is_empty()).await;
    assert_eq!(reasons, vec!["foreign_user"]);
    // t-2 (c) pays b 25.00 and a 5.00; t-4 (d) and t-5 (e) pay c 25.00 and b 5.00 each.
    assert_eq!(
        (app.total(a).await, app.total(b).await, app.total(c).await),
        ("5.00".into(), "35.00".into(), "50.00".into())
    );
    app.assert_verified().await;
}
