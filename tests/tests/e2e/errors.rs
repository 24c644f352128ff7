//! Every error is problem+json, and every route judges a parameter by the same rule.
use e2e::TestApp;
use reqwest::{Method, Response, StatusCode};
use schemas::UserId;
use serde_json::Value;

/// A problem's status and code, after checking it is problem+json with a detail.
async fn problem(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers().get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/problem+json"),
        "status {status}"
    );
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], status);
    assert!(!p["detail"].as_str().unwrap().is_empty(), "{p}");
    (status, p["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_undecodable_paths_answer_problems() {
    let app = TestApp::spawn().await;
    let send = |method: Method, path: &str| {
        app.http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&app.admin)
            .send()
    };
    let r = send(Method::OPTIONS, "/v1/purchases").await.unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(problem(r).await, (405, "method_not_allowed".into()));
    let r = send(Method::DELETE, "/v1/admin/plan").await.unwrap();
    assert_eq!(problem(r).await, (405, "method_not_allowed".into()));
    let r = send(Method::GET, "/v1/users/%FF%FE/earnings")
        .await
        .unwrap();
    assert_eq!(problem(r).await, (422, "invalid_user_id".into()));
    let r = send(Method::POST, "/v1/admin/users/%FF%FE/deactivate")
        .await
        .unwrap();
    assert_eq!(problem(r).await, (422, "invalid_user_id".into()));
    let r = send(Method::GET, "/v1/nothing-here").await.unwrap();
    assert_eq!(problem(r).await, (404, "not_found".into()));
    // A plain GET of the WebSocket route (no upgrade asked for).
    let a = app.signup(None).await;
    let r = send(Method::GET, &format!("/v1/users/{a}/earnings/ws"))
        .await
        .unwrap();
    let (status, code) = problem(r).await;
    assert!((400..500).contains(&status));
    assert_eq!(code, "websocket_upgrade_required");
}

/// Each `(path, status, code)` asked as an admin answers that problem.
async fn refused(app: &TestApp, cases: &[(String, u16, &str)]) {
    for (path, status, code) in cases {
        let r = app.get(path, Some(&app.admin)).await;
        assert_eq!(problem(r).await, (*status, code.to_string()), "{path}");
    }
}

#[tokio::test]
async fn each_query_parameter_is_refused_alike_on_every_route_that_takes_it() {
    let app = TestApp::spawn().await;
    let a = app.signup(None).await;
    let history = format!("/v1/users/{a}/earnings/history");
    let letters = "/v1/admin/dead-letters";
    let top = "/v1/analytics/top-earners";
    let cases = [
        (
            format!("{history}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            422,
            "invalid_range",
        ),
        (
            format!("/v1/users/{a}/earnings/daily?from=2026-02-01&to=2026-01-01"),
            422,
            "invalid_range",
        ),
        (
            format!("{top}?from=2026-02-01&to=2026-01-01"),
            422,
            "invalid_range",
        ),
        // One spelling of a day and of an instant (chrono alone takes these too).
        (
            format!("/v1/users/{a}/earnings/daily?from=2026-1-1"),
            422,
            "invalid_query",
        ),
        (format!("{top}?to=2026-01-1"), 422, "invalid_query"),
        (
            format!("{history}?from=2026-1-01T00:00:00Z"),
            422,
            "invalid_query",
        ),
        (
            format!("{history}?to=2026-01-01%2000:00:00Z"),
            422,
            "invalid_query",
        ),
        (format!("{history}?level=-1"), 422, "invalid_level"),
        (format!("{history}?level=0"), 422, "invalid_level"),
        (format!("{history}?cursor=-1"), 422, "invalid_cursor"),
        (format!("{letters}?cursor=-1"), 422, "invalid_cursor"),
        (format!("{letters}?cursor=abc"), 422, "invalid_cursor"),
        (format!("{history}?limit=-1"), 422, "invalid_limit"),
        (format!("{letters}?limit=-1"), 422, "invalid_limit"),
        (format!("{letters}?limit=100000"), 422, "invalid_limit"),
        (format!("{top}?limit=-1"), 422, "invalid_limit"),
    ];
    refused(&app, &cases).await;
    // Values within the rules are answered.
    for path in [
        format!("{history}?level=1&cursor=1&limit=1"),
        format!("{history}?from=2026-01-01T05:30:00%2B05:30&to=2026-01-02t00:00:00z"),
        format!("/v1/users/{a}/earnings/daily?from=2026-01-01&to=2026-01-31"),
        format!("{letters}?limit=1&cursor=1"),
    ] {
        let r = app.get(&path, Some(&app.admin)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

/// A query string on a route that reads none is refused before anything is written.
#[tokio::test]
async fn writes_refuse_a_query_string_and_store_nothing() {
    let app = TestApp::spawn().await;
    let a = app.signup(None).await;
    let shop = app.shop_key.clone();
    let purchase = serde_json::json!({
        "user_id": a, "order_id": "q-1", "amount": "1500.00", "profit": "300.00"
    });
    let cases = [
        ("/v1/users?referrer_id=x", &shop, serde_json::json!({})),
        ("/v1/purchases?dry_run=1", &shop, purchase.clone()),
        (
            "/v1/purchases/batch?x=1",
            &shop,
            serde_json::json!({ "purchases": [purchase.clone()] }),
        ),
        (
            "/v1/refunds?x=1",
            &shop,
            serde_json::json!({ "refund_id": "r-1", "order_id": "q-1", "amount": "1.00" }),
        ),
    ];
    for (path, bearer, body) in cases {
        let r = app.post(path, bearer, &body).await;
        assert_eq!(problem(r).await, (422, "invalid_query".into()), "{path}");
    }
    let r = app
        .http
        .post(format!("{}/v1/admin/users/{a}/deactivate?x=1", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await, (422, "invalid_query".into()));
    // Nothing was stored: no order reserved, the user still active.
    let reserved: i64 = sqlx::query_scalar("SELECT count(*) FROM purchase_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(reserved, 0);
    let status: String = sqlx::query_scalar("SELECT status::text FROM users WHERE id = $1")
        .bind(a.as_uuid())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "active");
    let r = app.post("/v1/purchases", &shop, &purchase).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn live_streams_judge_the_user_and_the_last_event_id_like_every_route() {
    let app = TestApp::spawn().await;
    let a = app.signup(None).await;
    let nil = UserId(uuid::Uuid::nil());
    let cases = [
        (
            format!("/v1/users/{a}/earnings/ws?last_event_id=abc"),
            422,
            "invalid_last_event_id",
        ),
        (
            format!("/v1/users/{a}/earnings/ws?last_event_id=-1"),
            422,
            "invalid_last_event_id",
        ),
        (format!("/v1/users/{nil}/earnings"), 404, "not_found"),
        (format!("/v1/users/{nil}/earnings/stream"), 404, "not_found"),
        (format!("/v1/users/{nil}/earnings/ws"), 404, "not_found"),
        (format!("/v1/users/{nil}/tree"), 404, "not_found"),
        (
            "/v1/users/not-a-uuid/earnings/stream".into(),
            422,
            "invalid_user_id",
        ),
    ];
    refused(&app, &cases).await;
    // The SSE header is read by the same rule as the WebSocket parameter.
    for bad in ["abc", "-1", "+41", "041", "4.1"] {
        let r = app
            .http
            .get(format!("{}/v1/users/{a}/earnings/stream", app.base))
            .bearer_auth(&app.admin)
            .header("Last-Event-ID", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(r).await,
            (422, "invalid_last_event_id".into()),
            "Last-Event-ID {bad:?}"
        );
    }
}

/// Rows of every table a write adds to.
async fn stored(app: &TestApp) -> Vec<i64> {
    let tables = [
        "users",
        "user_events",
        "purchase_requests",
        "refund_requests",
    ];
    futures::future::join_all(tables.map(|table| async move {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.pool)
            .await
            .unwrap()
    }))
    .await
}

/// A write with a raw body: as the admin for PUT, else as the shop.
async fn write(app: &TestApp, method: Method, path: &str, body: &Value) -> Response {
    let bearer = if method == Method::PUT {
        &app.admin
    } else {
        &app.shop_key
    };
    app.http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// serde reads a struct from an array too, field by field in order: every write takes an
/// object only (a batch's items too), and stores nothing when given anything else.
#[tokio::test]
async fn writes_refuse_a_body_that_is_not_an_object_and_store_nothing() {
    use serde_json::json;
    let app = TestApp::spawn().await;
    let (a, b) = (app.signup(None).await, app.signup(None).await);
    let r = app.purchase("o-1", a, "100.00", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let before = stored(&app).await;
    let item = json!(["arr-2", a, "10.00"]);
    let cases = [
        (Method::POST, "/v1/users".to_owned(), json!([a])),
        (
            Method::POST,
            "/v1/purchases".into(),
            json!(["arr-1", a, "10.00"]),
        ),
        (
            Method::POST,
            "/v1/refunds".into(),
            json!(["arr-r1", "o-1", "1.00"]),
        ),
        (Method::POST, "/v1/purchases/batch".into(), json!([[item]])),
        (
            Method::PUT,
            format!("/v1/admin/users/{b}/referrer"),
            json!([a]),
        ),
    ];
    for (method, path, body) in cases {
        let r = write(&app, method, &path, &body).await;
        assert_eq!(
            problem(r).await,
            (422, "invalid_body".into()),
            "{path} {body}"
        );
    }
    // In a batch, an item that is an array is refused on its own.
    let batch = json!({ "purchases": [item] });
    let r = write(&app, Method::POST, "/v1/purchases/batch", &batch).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let result: Value = r.json().await.unwrap();
    let code = &result["results"][0]["problem"]["code"];
    assert_eq!(code, "invalid_body", "{result}");
    assert_eq!(stored(&app).await, before);
    let referrer: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT referrer_id FROM users WHERE id = $1")
            .bind(b.as_uuid())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(referrer, None);
}
