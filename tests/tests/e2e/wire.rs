//! Money and bodies on the wire: amounts in one spelling only, each refused with its
//! field's code; retries compared by meaning; a batch answers each item on its own.
use e2e::{eventually, TestApp};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// A problem's status and code, after checking it is problem+json.
async fn problem(r: Response) -> (StatusCode, String) {
    let status = r.status();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert!(!p["detail"].as_str().unwrap().is_empty());
    (status, p["code"].as_str().unwrap().to_owned())
}

const NOT_THE_WIRE_FORM: [&str; 9] = [
    "1_000", "+10.00", ".5", "10.", "00010.00", " 10.00", "10.00 ", "NaN", "1e3",
];

#[tokio::test]
async fn amounts_in_any_other_spelling_are_refused_with_their_fields_code() {
    let app = TestApp::spawn().await;
    let (_, _, c) = app.chain3().await;
    let unprocessable = |code: &str| (StatusCode::UNPROCESSABLE_ENTITY, code.to_owned());
    for bad in NOT_THE_WIRE_FORM.iter().chain(&["-0.00", "1.001"]) {
        let body = json!({ "order_id": "w-1", "user_id": c, "amount": bad });
        let got = problem(app.post("/v1/purchases", &app.shop_key, &body).await).await;
        assert_eq!(got, unprocessable("invalid_amount"), "amount {bad:?}");
        let body = json!({ "order_id": "w-1", "user_id": c, "amount": "2000.00", "profit": bad });
        let got = problem(app.post("/v1/purchases", &app.shop_key, &body).await).await;
        assert_eq!(got, unprocessable("invalid_profit"), "profit {bad:?}");
    }
    // A JSON number is an amount in the wrong form too.
    let body = json!({ "order_id": "w-1", "user_id": c, "amount": 1000 });
    let got = problem(app.post("/v1/purchases", &app.shop_key, &body).await).await;
    assert_eq!(got, unprocessable("invalid_amount"));
    // Refunds read amounts the same way (of an order that exists, so only the amount is wrong).
    let r = app.purchase("w-2", c, "2000.00", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for bad in NOT_THE_WIRE_FORM {
        let body = json!({ "refund_id": "w-r", "order_id": "w-2", "amount": bad });
        let got = problem(app.post("/v1/refunds", &app.shop_key, &body).await).await;
        assert_eq!(got, unprocessable("invalid_amount"), "refund {bad:?}");
    }
    let reserved: Vec<String> = sqlx::query_scalar("SELECT order_id FROM purchase_requests")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(reserved, vec!["w-2"], "nothing refused was reserved");
    let refunds: i64 = sqlx::query_scalar("SELECT count(*) FROM refund_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(refunds, 0);
}

#[tokio::test]
async fn a_retry_is_compared_by_meaning_not_spelling() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let app = &app;
    let send = |body: Value| async move {
        let r = app.post("/v1/purchases", &app.shop_key, &body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        (status, v)
    };
    let (status, first) =
        send(json!({ "order_id": "m-1", "user_id": c, "amount": "1000.0" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The same order spelled otherwise: the default profit and currency written out,
    // the amount at two places.
    for same in [
        json!({ "order_id": "m-1", "user_id": c, "amount": "1000.00" }),
        json!({ "order_id": "m-1", "user_id": c, "amount": "1000", "profit": "1000.00" }),
        json!({ "order_id": "m-1", "user_id": c, "amount": "1000.00", "profit": "1000.0", "currency": "INR" }),
    ] {
        let (status, again) = send(same.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{same}: {again}");
        assert_eq!(again["purchase_id"], first["purchase_id"], "{same}");
    }
    let (status, conflict) =
        send(json!({ "order_id": "m-1", "user_id": c, "amount": "1000.00", "profit": "999.99" }))
            .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["code"], "order_conflict");
    eventually(|| app.total(b), |t| t == "50.00").await;
    assert_eq!(app.settled().await, 1, "paid once");
    app.assert_verified().await;
}

#[tokio::test]
async fn a_batch_answers_a_bad_item_on_its_own_and_stores_the_rest() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let items = json!([
        { "order_id": "bi-0", "user_id": c, "amount": "1000.00", "profit": "100.00" },
        { "order_id": "bi-1", "user_id": c, "amount": "NaN" },
        { "order_id": "bi-2", "user_id": c, "amount": "1000.00", "profit": "1_00" },
        { "order_id": "bi-3", "amount": "1000.00" },
        { "order_id": "bi-4", "user_id": c, "amount": 1000 },
        "not a purchase",
        { "order_id": "bi-6", "user_id": c, "amount": "1000.00", "profit": "100.0" },
    ]);
    let r = app
        .post(
            "/v1/purchases/batch",
            &app.shop_key,
            &json!({ "purchases": items }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    let outcome: Vec<(u64, String)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let answer = match &item["problem"] {
                Value::Null => item["accepted"]["status"].as_str().unwrap().to_owned(),
                p => p["code"].as_str().unwrap().to_owned(),
            };
            (item["index"].as_u64().unwrap(), answer)
        })
        .collect();
    let want = [
        "accepted",
        "invalid_amount",
        "invalid_profit",
        "invalid_body",
        "invalid_amount",
        "invalid_body",
        "accepted",
    ];
    let want: Vec<(u64, String)> = want
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u64, a.to_string()))
        .collect();
    assert_eq!(outcome, want);
    eventually(|| app.total(b), |t| t == "10.00").await;
    assert_eq!(app.settled().await, 2);
    app.assert_verified().await;
}

/// A body that cannot be read to its end (chunked framing broken part way) is a 400
/// `unreadable_body`, not a 413 `body_too_large`: it was never too large.
#[tokio::test]
async fn a_body_broken_on_the_wire_is_unreadable_not_too_large() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/purchases HTTP/1.1\r\nHost: referral\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\n{{\"or\r\nzz\r\n",
        app.shop_key
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"unreadable_body\""), "{answer}");
}
