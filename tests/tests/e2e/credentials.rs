//! Credentials and the headers around them: no service on public secrets, tokens checked
//! for `nbf` and lifetime, revoked shop keys refused within the cache's bound, and the
//! headers that keep a token out of caches and frames.
use e2e::{test_config, TestApp};
use platform::config::{DEV_JWT_SECRET, DEV_PSEUDONYM_KEY};
use referral::Application;
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_service_refuses_public_secrets_unless_developing_on_loopback() {
    let (mut config, _) = test_config();
    config.auth.jwt_secret = DEV_JWT_SECRET.into();
    config.auth.pseudonym_key = DEV_PSEUDONYM_KEY.into();
    let refused = Application::build(config.clone(), CancellationToken::new()).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("REFERRAL_AUTH__JWT_SECRET"), "{message}");

    config.auth.jwt_secret = e2e_secret();
    config.auth.pseudonym_key = "short".into();
    let refused = Application::build(config.clone(), CancellationToken::new()).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(
        message.contains("REFERRAL_AUTH__PSEUDONYM_KEY"),
        "{message}"
    );

    config.auth.allow_dev_secrets = true;
    config.http.api_addr = "0.0.0.0:0".parse().unwrap();
    let refused = Application::build(config.clone(), CancellationToken::new()).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("loopback only"), "{message}");

    let app = TestApp::spawn_with(|c| {
        c.auth.jwt_secret = DEV_JWT_SECRET.into();
        c.auth.allow_dev_secrets = true;
    })
    .await;
    assert_eq!(
        app.get("/v1/admin/plan", Some(&app.admin)).await.status(),
        StatusCode::OK,
        "development on loopback"
    );
}

fn e2e_secret() -> String {
    platform::auth::random_secret()
}

#[tokio::test]
async fn tokens_not_yet_valid_or_living_too_long_are_refused() {
    let app = TestApp::spawn_with(|c| {
        c.auth.max_token_lifetime_secs = 3_600;
        c.auth.token_ttl_secs = 3_600; // at most the lifetime, or the app refuses to start
    })
    .await;
    let now = chrono::Utc::now().timestamp() as u64;
    let ok = sign(&app, now, now, now + 3_600);
    assert_eq!(app.get("/v1/me", Some(&ok)).await.status(), StatusCode::OK);
    let early = sign(&app, now, now + 600, now + 1_200);
    let r = app.get("/v1/me", Some(&early)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "nbf in the future");
    let long = sign(&app, now, now, now + 3_601);
    let r = app.get("/v1/me", Some(&long)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "lifetime over the max"
    );
    let future = sign(&app, now + 600, now, now + 1_200);
    let r = app.get("/v1/me", Some(&future)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "issued in the future");
}

/// An admin token signed with the app's secret and the given times.
fn sign(app: &TestApp, iat: u64, nbf: u64, exp: u64) -> String {
    let claims = serde_json::json!({
        "sub": "admin", "role": "admin", "iss": app.config.auth.issuer,
        "iat": iat, "nbf": nbf, "exp": exp,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(app.config.auth.jwt_secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_revoked_shop_key_is_refused_within_the_cache_ttl() {
    let ttl = Duration::from_millis(1_500);
    let app = TestApp::spawn_with(|c| c.auth.shop_key_cache_ttl_ms = 1_500).await;
    assert_eq!(app.try_signup(None).await.status(), StatusCode::CREATED);
    // `referral shop revoke` runs this.
    assert!(referral::shops::revoke(&app.pool, app.shop_id)
        .await
        .unwrap());
    let revoked = Instant::now();
    let status = e2e::eventually(
        || async { app.get("/v1/me", Some(&app.shop_key)).await.status() },
        |s| *s == StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let took = revoked.elapsed();
    assert!(
        took < ttl + Duration::from_secs(1),
        "refused after {took:?}, the bound is {ttl:?}"
    );
}

#[tokio::test]
async fn headers_keep_tokens_out_of_caches_and_frames() {
    let app = TestApp::spawn().await;
    let page = app.get("/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    let me = app.get("/v1/me", Some(&app.admin)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["cache-control"], "no-store");
    let user = app.signup(None).await;
    let summary = app
        .get(
            &format!("/v1/users/{user}/earnings"),
            Some(&app.token_for(user)),
        )
        .await;
    assert_eq!(summary.headers()["cache-control"], "no-store");

    for bearer in [None, Some("not-a-token")] {
        let r = app.get("/v1/me", bearer).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
}
