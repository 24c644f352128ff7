//! Program-wide analytics answers are shared for `clickhouse.analytics_cache_ms`: within the
//! window every admin asking the same question gets the same answer, while another
//! question (another range or limit) is asked of ClickHouse.
use super::lookups::{entry, store};
use super::seed::{caught_up, seed, with_warehouse};
use chrono::Utc;
use e2e::TestApp;
use platform::clickhouse::Clickhouse;
use schemas::Money;

#[tokio::test]
async fn a_program_wide_answer_is_shared_within_its_window_and_another_question_is_asked() {
    let app = TestApp::spawn_with(|c| {
        with_warehouse(c);
        c.clickhouse.analytics_cache_ms = 600_000;
    })
    .await;
    seed(&app).await;
    caught_up(&app).await;
    let top = "/v1/analytics/top-earners?limit=500";
    let first = app.get_json(top, &app.admin).await;

    // An earner ClickHouse gets behind the API's back, larger than any seeded one.
    let mut big = entry(0, Utc::now());
    big.amount = Money::parse("1000000.00").unwrap();
    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    store(&ch, &[big.clone()]).await;
    let big_id = big.beneficiary_id.to_string();

    assert_eq!(
        app.get_json(top, &app.admin).await,
        first,
        "shared within the window"
    );
    let other = app
        .get_json("/v1/analytics/top-earners?limit=499", &app.admin)
        .await;
    assert_eq!(other["earners"][0]["user_id"], big_id.as_str(), "{other}");
    assert_ne!(first["earners"][0]["user_id"], big_id.as_str());
}
