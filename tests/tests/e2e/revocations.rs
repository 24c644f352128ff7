//! Tokens revoked before they expire: within `[auth] revocations_refresh_ms` a revoked
//! token is refused on every route and a live stream opened with it ends; a token issued
//! after the revocation passes.
use e2e::sse::SseClient;
use e2e::{eventually, TestApp};
use platform::auth::{Authenticator, Principal};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

async fn status(app: &TestApp, path: &str, token: &str) -> StatusCode {
    app.get(path, Some(token)).await.status()
}

#[tokio::test]
async fn a_users_revoked_tokens_are_refused_and_their_live_stream_ends() {
    let app = TestApp::spawn_with(|c| c.auth.revocations_refresh_ms = 50).await;
    let (a, b, _) = app.chain3().await;
    let (token, other) = (app.token_for(b), app.token_for(a));
    let totals = format!("/v1/users/{b}/earnings");
    assert_eq!(status(&app, &totals, &token).await, StatusCode::OK);
    let stream = app
        .http
        .get(format!("{}/v1/users/{b}/earnings/stream", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut sse = SseClient::new(stream);

    let revoke = format!("{}/v1/admin/users/{b}/tokens/revoke", app.base);
    let forbidden = app
        .http
        .post(&revoke)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN, "admins only");
    let r = app
        .http
        .post(&revoke)
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user_id"], b.to_string());

    eventually(
        || status(&app, &totals, &token),
        |s| *s == StatusCode::UNAUTHORIZED,
    )
    .await;
    let p: Value = app.get(&totals, Some(&token)).await.json().await.unwrap();
    assert_eq!(p["code"], "unauthenticated");
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    assert!(
        sse.ended(Duration::from_secs(20)).await,
        "the stream outlived its revoked token"
    );
    // Another user's token, and the admin's, still pass.
    assert_eq!(
        status(&app, &format!("/v1/users/{a}/earnings"), &other).await,
        StatusCode::OK
    );
    assert_eq!(status(&app, &totals, &app.admin).await, StatusCode::OK);
    // A token issued after the revocation was answered passes (the answer waits out the
    // revocation's second: tokens carry whole seconds).
    assert_eq!(
        status(&app, &totals, &app.token_for(b)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoked_admin_tokens_are_refused_and_a_new_one_passes() {
    let app = TestApp::spawn_with(|c| c.auth.revocations_refresh_ms = 50).await;
    assert_eq!(
        status(&app, "/v1/admin/plan", &app.admin).await,
        StatusCode::OK
    );
    platform::auth::revocations::revoke(&app.pool, &Principal::Admin.key())
        .await
        .unwrap();
    eventually(
        || status(&app, "/v1/admin/plan", &app.admin),
        |s| *s == StatusCode::UNAUTHORIZED,
    )
    .await;
    let issuer = Authenticator::new(&app.config.auth, app.pool.clone());
    let fresh = issuer.issue(Principal::Admin).unwrap();
    assert_eq!(status(&app, "/v1/admin/plan", &fresh).await, StatusCode::OK);
}
