//! The served OpenAPI document describes what the API really answers.
use e2e::openapi::{response_schema, validate};
use e2e::{eventually, TestApp};
use serde_json::{json, Value};

#[tokio::test]
async fn real_responses_match_the_served_openapi_document() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let (a, b, c) = app.chain3().await;
    let signup = app.try_signup(Some(a)).await;
    let mut checks: Vec<(&str, &str, u16, Value)> = Vec::new();
    checks.push(("/v1/users", "post", 201, signup.json().await.unwrap()));
    let bought = app.purchase("oa-1", c, "2000.00", Some("500.00")).await;
    checks.push(("/v1/purchases", "post", 202, bought.json().await.unwrap()));
    let batch = app
        .post(
            "/v1/purchases/batch",
            &app.shop_key,
            &json!({ "purchases": [{ "order_id": "oa-2", "user_id": c, "amount": "1500.00" }] }),
        )
        .await;
    checks.push((
        "/v1/purchases/batch",
        "post",
        202,
        batch.json().await.unwrap(),
    ));
    eventually(|| app.settled(), |n| *n == 2).await;
    let refund = app.refund("oa-r1", "oa-1", "100.00").await;
    checks.push(("/v1/refunds", "post", 202, refund.json().await.unwrap()));
    let conflict = app.purchase("oa-1", c, "2500.00", None).await;
    checks.push(("/v1/purchases", "post", 409, conflict.json().await.unwrap()));
    eventually(|| app.refunds_settled(), |n| *n == 1).await;

    let admin = app.admin.clone();
    for (template, path) in [
        ("/v1/users/{id}/earnings", format!("/v1/users/{b}/earnings")),
        (
            "/v1/users/{id}/earnings/by-referral",
            format!("/v1/users/{a}/earnings/by-referral"),
        ),
        (
            "/v1/users/{id}/earnings/by-leg",
            format!("/v1/users/{a}/earnings/by-leg"),
        ),
        (
            "/v1/users/{id}/earnings/history",
            format!("/v1/users/{b}/earnings/history?limit=1"),
        ),
        (
            "/v1/users/{id}/earnings/daily",
            format!("/v1/users/{b}/earnings/daily"),
        ),
        ("/v1/users/{id}/tree", format!("/v1/users/{a}/tree")),
        ("/v1/admin/plan", "/v1/admin/plan".to_owned()),
        (
            "/v1/admin/dead-letters",
            "/v1/admin/dead-letters".to_owned(),
        ),
        ("/v1/me", "/v1/me".to_owned()),
    ] {
        let body = app.get_json(&path, &admin).await;
        checks.push((template, "get", 200, body));
    }
    let forbidden = app
        .get(&format!("/v1/users/{a}/earnings"), Some(&app.token_for(b)))
        .await;
    checks.push((
        "/v1/users/{id}/earnings",
        "get",
        403,
        forbidden.json().await.unwrap(),
    ));

    for (path, method, status, body) in &checks {
        let schema = response_schema(&doc, path, method, *status)
            .unwrap_or_else(|| panic!("{method} {path} {status} is not documented"));
        let errors = validate(&doc, schema, body);
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: {errors:#?}\nbody: {body}"
        );
    }
}
