//! The first path of money: signup, purchase, payout, reports, live, auth.
use e2e::sse::SseClient;
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn chain_of_three_pays_parent_five_percent_and_grandparent_one() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let r = app.purchase("order-1", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    let b_report = app
        .get_json(&format!("/v1/users/{b}/earnings"), &app.admin)
        .await;
    assert_eq!(b_report["total"], "25.00");
    assert_eq!(b_report["currency"], "INR");
    assert_eq!(b_report["by_level"][0]["level"], 1);
    assert_eq!(b_report["by_level"][0]["total"], "25.00");
    let a_report = app
        .get_json(&format!("/v1/users/{a}/earnings"), &app.token_for(a))
        .await;
    assert_eq!(a_report["by_level"].as_array().unwrap().len(), 1);
    assert_eq!(a_report["by_level"][0]["level"], 2);
    assert_eq!(a_report["by_level"][0]["total"], "5.00");
    assert_eq!(app.total(c).await, "0.00");
    app.assert_verified().await;
}

#[tokio::test]
async fn threshold_is_inclusive_at_one_thousand_rupees() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    assert_eq!(
        app.purchase("under", c, "999.99", None).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.purchase("exact", c, "1000.00", None).await.status(),
        StatusCode::ACCEPTED
    );
    eventually(|| app.settled(), |n| *n == 2).await;
    // Only the ₹1000.00 purchase pays: 5% of a profit defaulting to the amount.
    assert_eq!(app.total(b).await, "50.00");
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM purchases ORDER BY order_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(statuses, vec!["paid", "below_threshold"]);
    app.assert_verified().await;
}

#[tokio::test]
async fn the_same_order_sent_twice_pays_once() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let first: Value = app
        .purchase("dup", c, "2000.00", Some("500.00"))
        .await
        .json()
        .await
        .unwrap();
    let again = app.purchase("dup", c, "2000.00", Some("500.00")).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        first["purchase_id"], again["purchase_id"],
        "a retry names the same purchase"
    );
    // A later, different purchase proves the processor has passed both copies.
    assert_eq!(
        app.purchase("after", c, "1000.00", Some("100.00"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    eventually(|| app.total(b), |t| t == "30.00").await;
    assert_eq!(app.total(a).await, "6.00");
    assert_eq!(app.settled().await, 2);
    app.assert_verified().await;
}

#[tokio::test]
async fn twenty_concurrent_signups_under_one_referrer_admit_exactly_eight() {
    let app = TestApp::spawn().await;
    let referrer = app.signup(None).await;
    let attempts = (0..20).map(|_| app.try_signup(Some(referrer)));
    let responses = futures::future::join_all(attempts).await;
    let mut created = 0;
    let mut limited = 0;
    for r in responses {
        match r.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(r.headers()["content-type"], "application/problem+json");
                let p: Value = r.json().await.unwrap();
                assert_eq!(p["code"], "referral_limit_reached");
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, limited), (8, 12));
    let children: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE referrer_id = $1")
        .bind(referrer.as_uuid())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(children, 8);
}

#[tokio::test]
async fn signup_refuses_unknown_referrers_with_problem_details() {
    let app = TestApp::spawn().await;
    let r = app.try_signup(Some(schemas::UserId::new())).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "referrer_not_found");
    assert_eq!(p["status"], 422);
    assert!(p["type"].as_str().unwrap().contains("referrer_not_found"));
}

#[tokio::test]
async fn a_live_client_receives_its_earning_without_polling() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let stream = app
        .http
        .get(format!("{}/v1/users/{b}/earnings/stream", app.base))
        .bearer_auth(app.token_for(b))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut sse = SseClient::new(stream);
    assert_eq!(
        app.purchase("live-1", c, "2000.00", Some("500.00"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let frame = sse
        .next(Duration::from_secs(20))
        .await
        .expect("an earning arrives");
    assert_eq!(frame.event, "earning");
    assert!(frame.id.is_some());
    let data: Value = serde_json::from_str(&frame.data).unwrap();
    assert_eq!(data["beneficiary_id"], b.to_string());
    assert_eq!(data["source_user_id"], c.to_string());
    assert_eq!(data["level"], 1);
    assert_eq!(data["amount"], "25.00");
    assert_eq!(data["total"], "25.00");
    assert_eq!(data["direct"], true);
    for field in ["earning_id", "purchase_id", "created_at", "leg_user_id"] {
        assert!(data.get(field).is_some(), "{field} present");
    }
}

#[tokio::test]
async fn a_users_token_reaches_only_that_users_data() {
    let app = TestApp::spawn().await;
    let (a, b, _) = app.chain3().await;
    let token_a = app.token_for(a);
    for path in [
        format!("/v1/users/{b}/earnings"),
        format!("/v1/users/{b}/earnings/stream"),
    ] {
        let r = app.get(&path, Some(&token_a)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "forbidden");
        assert_eq!(
            app.get(&path, None).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        app.get(&format!("/v1/users/{a}/earnings"), Some(&token_a))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/v1/users/{a}/earnings"), Some("not-a-token"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_retried_signup_with_the_same_external_ref_returns_the_same_user() {
    let app = TestApp::spawn().await;
    let a = app.signup(None).await;
    let body = serde_json::json!({ "referrer_id": a, "external_ref": "cust-42@example.test" });
    let first = app.post("/v1/users", &app.shop_key, &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = app.post("/v1/users", &app.shop_key, &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    // The same reference under another referrer is a conflict, not a second user.
    let other = serde_json::json!({ "referrer_id": null, "external_ref": "cust-42@example.test" });
    let r = app.post("/v1/users", &app.shop_key, &other).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "external_ref_conflict");
    // Another shop's customer with the same reference is someone else.
    let (_, other_key) = referral::shops::create(&app.pool, "second shop")
        .await
        .unwrap();
    let r = app.post("/v1/users", &other_key, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The reference itself is not stored anywhere in the users table.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE row_to_json(users)::text LIKE '%cust-42%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_batch_larger_than_a_group_is_stored_whole_and_each_item_answered() {
    let app = TestApp::spawn_with(|c| c.ingest.group_commit_max_purchases = 3).await;
    let (_, b, c) = app.chain3().await;
    let mut items: Vec<Value> = (0..10)
        .map(|i| serde_json::json!({ "order_id": format!("g-{i}"), "user_id": c, "amount": "1000.00", "profit": "100.00" }))
        .collect();
    items.push(serde_json::json!({ "order_id": "g-bad", "user_id": schemas::UserId::new(), "amount": "1000.00" }));
    let r = app
        .post(
            "/v1/purchases/batch",
            &app.shop_key,
            &serde_json::json!({ "purchases": items }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 11);
    assert!(results[..10]
        .iter()
        .all(|r| r["accepted"]["status"] == "accepted"));
    assert_eq!(results[10]["problem"]["code"], "unknown_user");
    eventually(|| app.total(b), |t| t == "50.00").await;
    assert_eq!(app.settled().await, 10);
    app.assert_verified().await;
}

/// Referrals cross shops, but one shop fills at most `referrals_per_shop_under_others` of
/// another shop's user's places, however many it sends at once: the rest stay for the
/// user's own shop (and others), and an admin is not held to it.
#[tokio::test]
async fn a_shop_fills_only_its_share_of_another_shops_users_referral_places() {
    let app = TestApp::spawn().await;
    let (_, hostile) = referral::shops::create(&app.pool, "hostile shop")
        .await
        .unwrap();
    let victim = app.signup(None).await;
    let body = json!({ "referrer_id": victim });
    let attempts = (0..8).map(|_| app.post("/v1/users", &hostile, &body));
    let mut codes = Vec::new();
    for r in futures::future::join_all(attempts).await {
        let status = r.status();
        let p: Value = r.json().await.unwrap();
        codes.push((status, p["code"].as_str().map(str::to_owned)));
    }
    let created = codes
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2, "{codes:?}");
    for (status, code) in codes.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT);
        assert_eq!(code.as_deref(), Some("shop_referral_limit_reached"));
    }
    // The user's own shop fills the rest, and an admin is not held to a shop's share.
    for _ in 0..5 {
        app.signup(Some(victim)).await;
    }
    app.signup_by(&app.admin, Some(victim)).await;
    let r = app.try_signup(Some(victim)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "referral_limit_reached");
    // Under its own users the hostile shop is held only by the plan's limit.
    let own = app.signup_by(&hostile, None).await;
    for _ in 0..8 {
        app.signup_by(&hostile, Some(own)).await;
    }
}
