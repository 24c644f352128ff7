//! Sums outgrow the largest single amount: a beneficiary paid by many of the largest
//! purchases has a total over it, and that total must read back everywhere. (Once it was
//! checked against the single-amount bound: every later batch paying that beneficiary
//! failed and was retried for ever, and with both workers on such batches nothing settled.)
use super::*;

const LARGEST: &str = "1000000000000.00";

#[tokio::test]
async fn totals_past_the_largest_single_amount_are_paid_reported_and_verified() {
    let app = TestApp::spawn().await;
    let (g, v, m) = app.chain3().await;
    let items: Vec<Value> = (0..21)
        .map(|i| serde_json::json!({ "order_id": format!("max-{i}"), "user_id": m, "amount": LARGEST }))
        .collect();
    let r = app
        .post(
            "/v1/purchases/batch",
            &app.shop_key.clone(),
            &serde_json::json!({ "purchases": items }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    settled(&app, 21).await;
    // 21 × 5% of 10^12 = 1,050,000,000,000.00: past the largest single amount.
    assert_eq!(app.total(v).await, "1050000000000.00");

    // Later purchases paying the same beneficiaries, and someone else's, all settle.
    let (_, y, z) = app.chain3().await;
    for (order, user) in [("after-v", m), ("after-y", z)] {
        let r = app.purchase(order, user, "1000.00", Some("100.00")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    settled(&app, 23).await;
    assert_eq!(app.total(v).await, "1050000000005.00");
    assert_eq!(app.total(g).await, "210000000001.00");
    assert_eq!(app.total(y).await, "5.00");

    // Every report of the beneficiary answers, with the exact sums.
    let admin = app.admin.clone();
    let summary = app
        .get_json(&format!("/v1/users/{v}/earnings"), &admin)
        .await;
    assert_eq!(
        summary["by_level"][0]["total"], "1050000000005.00",
        "{summary}"
    );
    for path in ["by-referral", "by-leg", "history", "daily"] {
        let r = app
            .get(&format!("/v1/users/{v}/earnings/{path}"), Some(&admin))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let tree = app.get_json(&format!("/v1/users/{g}/tree"), &admin).await;
    assert!(tree.to_string().contains("210000000001.00"), "{tree}");
    app.assert_verified().await;
}

/// The running sums hold as much as `Money` does (10^26 rupees), not the 10^16 of a
/// single amount's column: at 10^16 one shop's ~200,000 largest purchases for one buyer
/// stopped every later payment to that buyer's upline (each refused by Postgres, failing
/// its batch and set aside). Sending those purchases would take minutes, so the sums are
/// raised to where they would then stand; the ledger's entries are left as they were,
/// which is why this test does not run `verify`.
#[tokio::test]
async fn totals_past_ten_to_the_sixteen_rupees_are_still_paid() {
    let app = TestApp::spawn().await;
    let (g, v, m) = app.chain3().await;
    let r = app.purchase("first", m, LARGEST, None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    settled(&app, 1).await;
    let raise = "9999900000000000.00";
    for (table, user) in [
        ("account_totals", "user_id"),
        ("balances", "user_id"),
        ("earnings_by_source", "beneficiary_id"),
        ("earnings_daily", "beneficiary_id"),
    ] {
        let sql = format!("UPDATE {table} SET total = total + $1::numeric WHERE {user} = $2");
        let raised = sqlx::query(&sql)
            .bind(raise)
            .bind(v.as_uuid())
            .execute(&app.pool)
            .await
            .unwrap();
        assert_eq!(raised.rows_affected(), 1, "{table}");
    }
    // 5 % of 10^12 more takes v past 10^16; g's 1 % is paid alongside.
    let r = app.purchase("second", m, LARGEST, None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    settled(&app, 2).await;
    assert_eq!(app.total(v).await, "10000000000000000.00");
    assert_eq!(app.total(g).await, "20000000000.00");
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(dead, 0);
    let admin = app.admin.clone();
    let history = format!("/v1/users/{v}/earnings/history");
    assert_eq!(
        app.get(&history, Some(&admin)).await.status(),
        StatusCode::OK
    );
    for path in ["by-referral", "by-leg", "daily"] {
        let r = app
            .get(&format!("/v1/users/{v}/earnings/{path}"), Some(&admin))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("10000000000000000.00"), "{path}: {body}");
    }
}
