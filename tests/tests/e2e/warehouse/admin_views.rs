//! The admin analytics routes (top earners, purchases per shop, conversion) answer what
//! the ledger says, in the shape the OpenAPI document describes; then the user routes.
use super::money;
use super::seed::{caught_up, seed, with_warehouse};
use super::users;
use chrono::{Duration, Utc};
use e2e::openapi::{response_schema, validate};
use e2e::TestApp;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeSet;

#[tokio::test]
async fn analytics_endpoints_answer_what_the_ledger_says_and_guard_each_user() {
    let app = TestApp::spawn_with(with_warehouse).await;
    let w = seed(&app).await;
    caught_up(&app).await;
    let admin = app.admin.clone();
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let documented = |template: &str, status: u16, body: &Value| {
        let schema = response_schema(&doc, template, "get", status)
            .unwrap_or_else(|| panic!("GET {template} {status} is not documented"));
        let errors = validate(&doc, schema, body);
        assert!(errors.is_empty(), "GET {template} {status}: {errors:?}");
    };
    let today = Utc::now().date_naive();
    let from = today - Duration::days(10);

    let top = app
        .get_json("/v1/analytics/top-earners?limit=500", &admin)
        .await;
    documented("/v1/analytics/top-earners", 200, &top);
    let want: BTreeSet<String> = sqlx::query!(
        r#"SELECT beneficiary_id, sum(amount) AS "total!", count(*) AS "entries!" FROM earnings GROUP BY 1"#
    )
    .fetch_all(&app.pool).await.unwrap().into_iter()
    .map(|r| format!("{} {} {}", r.beneficiary_id, money(r.total), r.entries))
    .collect();
    let earners = top["earners"].as_array().unwrap();
    let got: BTreeSet<String> = earners
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["user_id"].as_str().unwrap(),
                e["total"].as_str().unwrap(),
                e["entries"]
            )
        })
        .collect();
    assert_eq!(got, want);
    let totals: Vec<Decimal> = earners
        .iter()
        .map(|e| e["total"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        totals.windows(2).all(|p| p[0] >= p[1]),
        "largest first: {totals:?}"
    );
    let top2 = app
        .get_json("/v1/analytics/top-earners?limit=2", &admin)
        .await;
    let top2: Vec<&str> = top2["earners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["total"].as_str().unwrap())
        .collect();
    assert_eq!(
        top2,
        earners[..2]
            .iter()
            .map(|e| e["total"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    let future = app
        .get_json(
            &format!(
                "/v1/analytics/top-earners?from={}",
                today + Duration::days(1)
            ),
            &admin,
        )
        .await;
    assert_eq!(future["earners"], serde_json::json!([]));

    let shops = app
        .get_json(
            &format!("/v1/analytics/purchases-per-shop?from={from}&to={today}"),
            &admin,
        )
        .await;
    documented("/v1/analytics/purchases-per-shop", 200, &shops);
    let threshold = app.config.plan.qualifying_threshold().as_decimal();
    let want: BTreeSet<String> = sqlx::query!(
        r#"SELECT (occurred_at AT TIME ZONE 'UTC')::date AS "day!", shop_id, count(*) AS "purchases!",
                  count(*) FILTER (WHERE amount >= $1) AS "qualifying!", sum(amount) AS "amount!"
           FROM purchases WHERE (occurred_at AT TIME ZONE 'UTC')::date BETWEEN $2 AND $3 GROUP BY 1, 2"#,
        threshold, from, today
    )
    .fetch_all(&app.pool).await.unwrap().into_iter()
    .map(|r| format!("{} {} {} {} {}", r.day, r.shop_id, r.purchases, r.qualifying, money(r.amount)))
    .collect();
    let got: BTreeSet<String> = shops["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {}",
                d["day"].as_str().unwrap(),
                d["shop_id"].as_str().unwrap(),
                d["purchases"],
                d["qualifying"],
                d["amount"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(shops["truncated"], false);

    let conversion = app.get_json("/v1/analytics/conversion", &admin).await;
    documented("/v1/analytics/conversion", 200, &conversion);
    let c = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM users WHERE referrer_id IS NOT NULL) AS "referred!",
                  (SELECT count(DISTINCT p.user_id) FROM purchases p JOIN users u ON u.id = p.user_id
                   WHERE u.referrer_id IS NOT NULL AND p.amount >= $1) AS "converted!""#,
        threshold
    )
    .fetch_one(&app.pool).await.unwrap();
    assert_eq!(conversion["referred_users"], c.referred);
    assert_eq!(conversion["converted_users"], c.converted);
    let rate = (Decimal::from(c.converted) / Decimal::from(c.referred)).round_dp(4);
    assert_eq!(conversion["rate"], format!("{rate:.4}"));
    assert!(
        c.converted > 0 && c.converted < c.referred,
        "the seed converts some, not all"
    );

    users::check(&app, &w, &documented).await;
}
