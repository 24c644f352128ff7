//! How long a live connection lives: not past its token, and not after its client has
//! gone without closing (WebSocket pings).
use e2e::sse::SseClient;
use e2e::ws::Ws;
use e2e::{eventually, TestApp};
use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use schemas::UserId;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// A user token that expires `ttl_secs` from now (accepted 5 s past that, the clock skew
/// every check allows).
fn short_token(app: &TestApp, user: UserId, ttl_secs: u64) -> String {
    let mut auth = app.config.auth.clone();
    auth.token_ttl_secs = ttl_secs;
    Authenticator::new(&auth, app.pool.clone())
        .issue(Principal::User(user))
        .unwrap()
}

async fn open_ws(app: &TestApp, user: UserId, token: &str) -> Ws {
    try_open_ws(app, user, token)
        .await
        .expect("the WebSocket was refused")
}

async fn try_open_ws(app: &TestApp, user: UserId, token: &str) -> Option<Ws> {
    e2e::ws::try_open(&app.base, user, token).await
}

/// A stream authorized at its start ends when its token stops being accepted (SSE and
/// WebSocket alike); the token is then refused, so the client reconnects with a new one.
#[tokio::test]
async fn a_live_stream_ends_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let issued = Instant::now();
    // Three seconds (eight with the leeway) leave the earning below time to arrive on a
    // machine busy with the whole suite.
    let token = short_token(&app, b, 3);
    let path = format!("/v1/users/{b}/earnings/stream");
    let response = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut sse = SseClient::new(response);
    let mut ws = open_ws(&app, b, &token).await;
    app.purchase("life-1", c, "1000.00", Some("100.00")).await;
    let first = sse
        .next(WAIT)
        .await
        .expect("an earning while the token lives");
    let data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(data["amount"], "5.00");

    assert!(sse.ended(WAIT).await, "the SSE stream outlived its token");
    assert!(
        issued.elapsed() >= Duration::from_secs(3),
        "ended before the token expired"
    );
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the WebSocket outlived its token");
    assert_eq!(app.get(&path, Some(&token)).await.status(), 401);
}

/// A WebSocket client that stops answering pings (gone without closing) is closed after
/// two keep-alive intervals, which frees its place under `max_connections_per_user`; one
/// that answers stays open and is still delivered to after several pings.
#[tokio::test]
async fn a_websocket_that_leaves_pings_unanswered_is_closed_and_frees_its_place() {
    let app = TestApp::spawn_with(|c| {
        c.live.keepalive_secs = 1;
        c.live.max_connections_per_user = 1;
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let token = app.token_for(b);
    let silent = open_ws(&app, b, &token).await; // never read, so never answers
    let path = format!("/v1/users/{b}/earnings/stream");
    assert_eq!(app.get(&path, Some(&token)).await.status(), 429);
    eventually(
        || async { app.get(&path, Some(&token)).await.status() },
        |s| *s == 200,
    )
    .await;
    drop(silent);

    // The SSE stream just opened frees its place once it is dropped (the server notices
    // at its next keep-alive): then an answering WebSocket takes it.
    let mut ws = eventually(|| try_open_ws(&app, b, &token), Option::is_some)
        .await
        .unwrap();
    let mut pings = 0;
    while pings < 3 {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            other => panic!("expected pings on an answering socket, got {other:?}"),
        }
    }
    app.purchase("ping-1", c, "1000.00", Some("100.00")).await;
    let delivered = loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => break text,
            Ok(Some(Ok(Message::Ping(_)))) => continue,
            other => panic!("expected the earning, got {other:?}"),
        }
    };
    let data: Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(data["data"]["amount"], "5.00");
}
