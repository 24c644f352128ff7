//! Limits and credentials: body size, rate per key, request deadline, unknown fields,
//! token checks, revoked shop keys, health and metrics.
use e2e::{eventually, TestApp};
use platform::auth::{Authenticator, Principal};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn problem(r: reqwest::Response) -> Value {
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    r.json().await.unwrap()
}

#[tokio::test]
async fn bodies_over_the_limit_and_unknown_fields_are_refused() {
    let app = TestApp::spawn_with(|c| c.http.body_limit_bytes = 1024).await;
    let big = json!({ "referrer_id": null, "external_ref": "x".repeat(2000) });
    let r = app.post("/v1/users", &app.shop_key, &big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem(r).await["code"], "body_too_large");

    let r = app
        .post(
            "/v1/users",
            &app.shop_key,
            &json!({ "referrer_id": null, "is_admin": true }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p = problem(r).await;
    assert_eq!(p["code"], "invalid_body");
    assert!(p["detail"].as_str().unwrap().contains("is_admin"));

    let u = app.signup(None).await;
    let r = app
        .post(
            "/v1/purchases",
            &app.shop_key,
            &json!({ "order_id": "f", "user_id": u, "amount": 2000.0 }),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "amounts are strings, never floats"
    );

    let r = app
        .http
        .post(format!("{}/v1/purchases", app.base))
        .bearer_auth(&app.shop_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem(r).await["code"], "malformed_json");
}

#[tokio::test]
async fn each_credential_is_rate_limited_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.http.rate_limit_per_sec = 1;
        c.http.rate_limit_burst = 3;
    })
    .await;
    let path = "/v1/admin/plan";
    for _ in 0..3 {
        assert_eq!(
            app.get(path, Some(&app.admin)).await.status(),
            StatusCode::OK
        );
    }
    let r = app.get(path, Some(&app.admin)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(problem(r).await["code"], "rate_limited");
    // Another credential has its own bucket.
    let user = app.token_for(schemas::UserId::new());
    assert_eq!(
        app.get("/v1/me", Some(&user)).await.status(),
        StatusCode::OK
    );
}

/// A shop's purchases are counted one by one, batch items too (the request rate counts
/// a batch of 500 as one): past `[ingest] purchases_per_sec_per_shop` a purchase or a
/// batch is refused whole, 429 with `Retry-After`, before anything is stored; another
/// shop has its own count.
#[tokio::test]
async fn purchases_are_counted_per_item_against_the_shops_rate() {
    let app = TestApp::spawn_with(|c| {
        c.ingest.purchases_per_sec_per_shop = 1;
        c.ingest.purchases_burst_per_shop = 4;
    })
    .await;
    let (_, _, c) = app.chain3().await;
    let item = |order: &str| json!({ "order_id": order, "user_id": c, "amount": "1000.00" });
    let batch =
        json!({ "purchases": [item("rate-1"), item("rate-2"), item("rate-3"), item("rate-4")] });
    let r = app.post("/v1/purchases/batch", &app.shop_key, &batch).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for path in ["/v1/purchases/batch", "/v1/purchases"] {
        let body = match path {
            "/v1/purchases" => item("rate-5"),
            _ => json!({ "purchases": [item("rate-5")] }),
        };
        let r = app.post(path, &app.shop_key, &body).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(r.headers().contains_key("retry-after"), "{path}");
        assert_eq!(problem(r).await["code"], "rate_limited", "{path}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM purchase_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 4, "the refused purchase was not reserved");
    let (_, other) = referral::shops::create(&app.pool, "other shop")
        .await
        .unwrap();
    let r = app.post("/v1/purchases", &other, &item("rate-6")).await;
    assert_ne!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the other shop's own count"
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_a_problem_and_writes_nothing() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout_ms = 300).await;
    // Hold the graph lock, so a signup waits on it past its deadline.
    let tx = app.hold_graph_writes().await;
    let r = app.try_signup(None).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem(r).await["code"], "request_timeout");
    // Its statement ends with it (statement_timeout), while the lock is still held: the
    // abandoned request no longer holds a pooled connection waiting on the lock.
    eventually(|| app.lock_waiters(), |n| *n == 0).await;
    tx.rollback().await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "the abandoned signup left nothing behind");
    assert_eq!(app.try_signup(None).await.status(), StatusCode::CREATED);
}

/// A signup answered 503 at its deadline whose statement then gets the graph's lock (let go
/// within the second its statement may outlive the deadline) is rolled back, not committed:
/// its caller may retry, and a signup without `external_ref` committed then was a second
/// user with a second of its referrer's slots.
#[tokio::test]
async fn a_signup_given_up_at_its_deadline_is_rolled_back_when_its_turn_comes() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout_ms = 500).await;
    let tx = app.hold_graph_writes().await;
    let r = app.try_signup(None).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Its statement still waits on the lock (for up to a second more): let it through.
    assert_eq!(app.lock_waiters().await, 1);
    tx.rollback().await.unwrap();
    // The next signup waits for the abandoned one's turn to end.
    assert_eq!(app.try_signup(None).await.status(), StatusCode::CREATED);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "only the answered signup wrote a user");
}

/// A report whose statement cannot run (its tables locked by an operator) is a 503 at
/// its deadline, and Postgres cancels the statement then too: the connection is free
/// again, not waiting on the lock for as long as it is held.
#[tokio::test]
async fn a_report_past_its_deadline_leaves_no_statement_behind() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout_ms = 500).await;
    let user = app.signup(None).await;
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE account_totals, balances, earnings IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let r = app
        .get(&format!("/v1/users/{user}/earnings"), Some(&app.admin))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The deadline answers; the statement is cancelled a moment later.
    assert_eq!(problem(r).await["code"], "request_timeout");
    eventually(|| app.lock_waiters(), |n| *n == 0).await;
    tx.rollback().await.unwrap();
    let r = app
        .get(&format!("/v1/users/{user}/earnings"), Some(&app.admin))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_checked_and_shop_keys_can_be_revoked() {
    let app = TestApp::spawn().await;
    let mut other = app.config.auth.clone();
    other.jwt_secret = "another-secret".into();
    let forged = Authenticator::new(&other, app.pool.clone())
        .issue(Principal::Admin)
        .unwrap();
    assert_eq!(
        app.get("/v1/admin/plan", Some(&forged)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Expiry is checked (with a few seconds' leeway): a token long past it is refused.
    let stale = jwt_with_exp(&app, 1_000_000_000);
    assert_eq!(
        app.get("/v1/admin/plan", Some(&stale)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v1/admin/plan", Some("rk_0000")).await.status(),
        StatusCode::UNAUTHORIZED,
        "unknown shop key"
    );
    // Two Authorization headers, even both valid: a proxy reading the other one would see
    // another caller than we do, so neither is used.
    let user = schemas::UserId::new();
    let twice = app
        .http
        .get(format!("{}/v1/me", app.base))
        .header("authorization", format!("Bearer {}", app.token_for(user)))
        .header("authorization", format!("Bearer {}", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(twice).await["code"], "unauthenticated");
    assert!(referral::shops::revoke(&app.pool, app.shop_id)
        .await
        .unwrap());
    let r = app.try_signup(None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(r).await["code"], "unauthenticated");
}

/// An admin token signed with the right secret but expired long ago.
fn jwt_with_exp(app: &TestApp, exp: u64) -> String {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        role: &'a str,
        iss: &'a str,
        iat: u64,
        exp: u64,
    }
    let claims = Claims {
        sub: "admin",
        role: "admin",
        iss: &app.config.auth.issuer,
        iat: exp - 60,
        exp,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(app.config.auth.jwt_secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["postgres"], true);
    assert_eq!(body["nats"], true);
    app.get("/v1/me", Some(&app.admin)).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("referral_http_requests_total"));
    assert!(
        !metrics.contains(&app.shop_id.to_string()),
        "no ids as labels"
    );
}

/// `/metrics` says how much business each route does: a stranger, a user or a shop is
/// refused; an admin and the bearer of `[auth] metrics_token` read it, and that token
/// opens nothing else.
#[tokio::test]
async fn metrics_are_read_by_an_admin_or_the_metrics_token_only() {
    let app = TestApp::spawn().await;
    let user = app.signup(None).await;
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(r).await["code"], "unauthenticated");
    for who in [app.token_for(user), app.shop_key.clone()] {
        let r = app.get("/metrics", Some(&who)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(problem(r).await["code"], "forbidden");
    }
    let token = &app.config.auth.metrics_token;
    let last = if token.ends_with('0') { "1" } else { "0" };
    let same_length = format!("{}{last}", &token[..token.len() - 1]);
    for wrong in [format!("{token}0"), same_length] {
        let r = app.get("/metrics", Some(&wrong)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.get("/metrics", Some(&app.admin)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app.metrics().await.contains("referral_http_requests_total"));

    let token = app.config.auth.metrics_token.clone();
    let me: Value = app.get_json("/v1/me", &token).await;
    assert_eq!(me["role"], "metrics");
    let r = app
        .get(&format!("/v1/users/{user}/earnings"), Some(&token))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.get("/v1/admin/plan", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post("/v1/users", &token, &json!({ "referrer_id": null }))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let signed_up: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(signed_up, 1, "the metrics token signed no one up");
}
