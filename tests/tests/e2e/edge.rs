//! The front door: rate limits by authenticated caller (not by how the header is
//! spelled), failed authentication limited per client address without Postgres lookups,
//! live streams and the unauthenticated basics inside the limits, readiness cached,
//! refusals counted in metrics.
use e2e::{metric_sample, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

/// GET `path` with a raw Authorization header value.
async fn get_with(app: &TestApp, path: &str, authorization: &str) -> reqwest::Response {
    app.http
        .get(format!("{}{path}", app.base))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_caller_has_one_bucket_however_the_header_is_spelled_and_429s_are_counted() {
    let app = TestApp::spawn_with(|c| {
        c.http.rate_limit_per_sec = 1;
        c.http.rate_limit_burst = 3;
    })
    .await;
    let token = app.admin.clone();
    for spelling in [
        format!("Bearer {token}"),
        format!("Bearer  {token}"),
        format!("bearer {token} "),
    ] {
        let r = get_with(&app, "/v1/admin/plan", &spelling).await;
        assert_eq!(r.status(), StatusCode::OK, "{spelling:?}");
    }
    let r = get_with(&app, "/v1/admin/plan", &format!("Bearer   {token}")).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "same admin, same bucket"
    );
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");

    // Unauthenticated callers are limited by address: a bucket of their own.
    let metrics = app.metrics().await;
    assert_eq!(
        metric_sample(&metrics, r#"referral_rate_limited_total{kind="admin"}"#),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_sample(
            &metrics,
            r#"referral_http_requests_total{route="/v1/admin/plan",status="429"}"#
        ),
        Some(1.0)
    );
}

/// An app whose client addresses may fail authentication three times, then once a
/// second; `also` adjusts the rest.
async fn three_failures(also: impl FnOnce(&mut platform::Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.http.auth_failures_per_sec = 1;
        c.http.auth_failures_burst = 3;
        also(c);
    })
    .await
}

#[tokio::test]
async fn failed_authentication_is_limited_per_address_and_cached_keys_need_no_lookup() {
    let app = three_failures(|c| c.http.request_timeout_ms = 3_000).await;
    // The shop's key is verified once, then served from memory; a made-up key costs a
    // lookup and one of the address's three failures.
    assert_eq!(app.get("/v1/me", Some(&app.shop_key)).await.status(), 200);
    let r = app.get("/v1/me", Some("rk_made_up")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Nothing may read `shops` now: a request that looked a key up would hang.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE shops IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    for forged in ["not-a-token", "still.not.one"] {
        let r = app.get("/v1/me", Some(forged)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{forged}");
    }
    let r = app.get("/v1/me", Some("rk_made_up_again")).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "refused before any lookup"
    );
    assert!(r.headers().contains_key("retry-after"));
    let me: Value = app.get_json("/v1/me", &app.shop_key).await;
    assert_eq!(me["role"], "shop", "a cached key needs no Postgres");
    let me: Value = app.get_json("/v1/me", &app.admin).await;
    assert_eq!(
        me["role"], "admin",
        "valid tokens from the address still pass"
    );
    tx.rollback().await.unwrap();
}

/// Concurrent made-up keys from one address are looked up one at a time, each failure
/// counted before the next looks: checked before and counted after their lookups, a flood
/// of them all passed the check while the first still waited for Postgres.
#[tokio::test]
async fn a_flood_of_made_up_keys_costs_only_the_lookups_its_failures_allow() {
    let app = three_failures(|c| c.http.request_timeout_ms = 20_000).await;
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE shops IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let (http, url) = (app.http.clone(), format!("{}/v1/me", app.base));
            tokio::spawn(async move {
                let key = format!("rk_made_up_{i}");
                http.get(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    // One lookup waits for the table; the other 39 wait for their address's turn.
    let waiting = || async {
        let waiting = metric_sample(&app.metrics().await, "referral_auth_lookups_waiting");
        (app.lock_waiters().await, waiting)
    };
    e2e::eventually(waiting, |w| *w == (1, Some(39.0))).await;
    tx.rollback().await.unwrap();
    let mut answers = std::collections::BTreeMap::new();
    for request in flood {
        *answers.entry(request.await.unwrap().as_u16()).or_insert(0) += 1;
    }
    let refused = answers.get(&401).copied().unwrap_or(0);
    let limited = answers.get(&429).copied().unwrap_or(0);
    assert_eq!(refused + limited, 40, "{answers:?}");
    // Three failures, and at most a few more refilled while the flood ran.
    assert!((3..=6).contains(&refused), "{answers:?}");
}

/// Sends made-up shop keys from this address until it is answered 429 (out of failures).
async fn lock_out(app: &TestApp) {
    for i in 0..10 {
        let r = app.get("/v1/me", Some(&format!("rk_made_up_{i}"))).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    panic!("ten made-up keys and the address is not out of failures");
}

#[tokio::test]
async fn made_up_keys_from_an_address_do_not_lock_out_a_shop_it_confirmed_before() {
    let ttl = std::time::Duration::from_millis(200);
    let app = three_failures(|c| c.auth.shop_key_cache_ttl_ms = 200).await;
    assert_eq!(app.get("/v1/me", Some(&app.shop_key)).await.status(), 200);
    let (_, unseen) = referral::shops::create(&app.pool, "never called")
        .await
        .unwrap();
    lock_out(&app).await;
    // Past the cache's lifetime (a duration under test, not a synchronisation) the shop's
    // key needs Postgres again; it was confirmed before, so it is looked up and passes.
    tokio::time::sleep(ttl * 2).await;
    lock_out(&app).await;
    let me: Value = app.get_json("/v1/me", &app.shop_key).await;
    assert_eq!(me["role"], "shop");
    // A valid key this address never used is not looked up while it is out of failures.
    lock_out(&app).await;
    let r = app.get("/v1/me", Some(&unseen)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Revoked, the key is refused when next looked up, and is not known after.
    assert!(referral::shops::revoke(&app.pool, app.shop_id)
        .await
        .unwrap());
    tokio::time::sleep(ttl * 2).await;
    let r = app.get("/v1/me", Some(&app.shop_key)).await;
    assert_ne!(r.status(), StatusCode::OK, "a revoked key");
    lock_out(&app).await;
    let r = app.get("/v1/me", Some(&app.shop_key)).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "not looked up again"
    );
}

#[tokio::test]
async fn opening_a_live_stream_counts_against_its_caller() {
    let app = TestApp::spawn_with(|c| {
        c.http.rate_limit_per_sec = 1;
        c.http.rate_limit_burst = 3;
    })
    .await;
    let user = app.signup(None).await;
    let token = app.token_for(user);
    let path = format!("/v1/users/{user}/earnings/stream");
    let mut open = Vec::new();
    for _ in 0..3 {
        let r = app.get(&path, Some(&token)).await;
        assert_eq!(r.status(), StatusCode::OK);
        open.push(r);
    }
    let r = app.get(&path, Some(&token)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    let ws = format!("/v1/users/{user}/earnings/ws");
    assert_eq!(
        app.get(&ws, Some(&token)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn readiness_is_cached_and_the_basics_are_limited_per_address() {
    let app = TestApp::spawn_with(|c| {
        c.http.rate_limit_per_sec = 1;
        c.http.rate_limit_burst = 5;
        c.http.readiness_cache_ms = 60_000;
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let r = app.get("/readyz", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["postgres"], true);
        seen.push(body["checked_at"].as_str().unwrap().to_owned());
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "one probe: {seen:?}");
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/healthz", None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.get("/readyz", None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_readiness_result_is_probed_again_once_it_is_older_than_the_cache() {
    let app = TestApp::spawn_with(|c| c.http.readiness_cache_ms = 200).await;
    let checked_at = || async {
        let body: Value = app.get("/readyz", None).await.json().await.unwrap();
        body["checked_at"].as_str().unwrap().to_owned()
    };
    let first = checked_at().await;
    let later = e2e::eventually(checked_at, |at| *at != first).await;
    assert!(later > first, "{later} after {first}");
}
