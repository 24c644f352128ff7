//! One spelling per value on the wire: ids, numbers in queries and the body's media type.
//! A second spelling of the same request is a way past anything that compares text.
use e2e::TestApp;
use serde_json::{json, Value};

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

/// Ids are hyphenated 8-4-4-4-12 (either case), in paths and bodies alike.
#[tokio::test]
async fn ids_in_other_spellings_are_refused_in_paths_and_bodies() {
    let app = TestApp::spawn().await;
    let (a, _, c) = app.chain3().await;
    let admin = app.admin.clone();
    let plain = a.to_string();
    let upper = format!("/v1/users/{}/earnings", plain.to_uppercase());
    assert_eq!(
        app.get(&upper, Some(&admin)).await.status(),
        200,
        "either case"
    );
    let others = [
        format!("{{{plain}}}"),
        format!("urn:uuid:{plain}"),
        plain.replace('-', ""),
    ];
    for other in &others {
        let r = app
            .get(&format!("/v1/users/{other}/earnings"), Some(&admin))
            .await;
        assert_eq!(code(r).await, (422, "invalid_user_id".into()), "{other}");
    }
    let c_plain = c.to_string();
    for other in [format!("urn:uuid:{c_plain}"), c_plain.replace('-', "")] {
        let body = json!({ "order_id": "sp-1", "user_id": other, "amount": "1000.00" });
        let r = app.post("/v1/purchases", &app.shop_key, &body).await;
        assert_eq!(code(r).await, (422, "invalid_body".into()), "{other}");
    }
    let body = json!({ "referrer_id": format!("{{{plain}}}") });
    let r = app.post("/v1/users", &app.shop_key, &body).await;
    assert_eq!(code(r).await, (422, "invalid_body".into()));
}

/// `limit=05` and `depth=03` are refused, as `+5` is; `0` and `5` are one spelling each.
#[tokio::test]
async fn numbers_with_leading_zeros_are_refused_in_queries() {
    let app = TestApp::spawn().await;
    let (a, _, _) = app.chain3().await;
    let admin = app.admin.clone();
    for query in [
        "earnings/history?limit=05",
        "tree?depth=03",
        "earnings/history?level=-01",
    ] {
        let r = app
            .get(&format!("/v1/users/{a}/{query}"), Some(&admin))
            .await;
        assert_eq!(code(r).await, (422, "invalid_query".into()), "{query}");
    }
    let zero = format!("/v1/users/{a}/earnings/history?limit=0");
    let r = app.get(&zero, Some(&admin)).await;
    assert_eq!(code(r).await, (422, "invalid_limit".into()));
    let three = format!("/v1/users/{a}/tree?depth=3");
    assert_eq!(app.get(&three, Some(&admin)).await.status(), 200);
}

/// A body is `application/json`, UTF-8: another JSON-ish type or charset is a 415.
#[tokio::test]
async fn a_body_in_another_media_type_or_charset_is_refused_415() {
    let app = TestApp::spawn().await;
    let (_, _, c) = app.chain3().await;
    let send = |content_type: &'static str, order: &str| {
        let body = json!({ "order_id": order, "user_id": c, "amount": "1000.00" });
        app.http
            .post(format!("{}/v1/purchases", app.base))
            .bearer_auth(&app.shop_key)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
    };
    for refused in [
        "application/vnd.evil+json",
        "application/json; charset=utf-16",
        "application/json; boundary=x",
        "text/json",
    ] {
        let r = send(refused, "sp-2").await.unwrap();
        assert_eq!(
            code(r).await,
            (415, "unsupported_media_type".into()),
            "{refused}"
        );
    }
    let r = send("Application/JSON; charset=\"UTF-8\"", "sp-3")
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}
