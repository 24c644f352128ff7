//! An insert whose client gave up (past `clickhouse.request_timeout_ms`) may still be
//! running on the server. A retry of the same rows is refused while it runs (its query id
//! names the rows), so the rows are not inserted twice; once it has ended, they are.
use super::seed::with_warehouse;
use chrono::Utc;
use e2e::{clickhouse, eventually, TestApp};
use platform::clickhouse::{insert_query_id, Clickhouse};
use schemas::messages::ProcessedPurchase;
use schemas::{Money, PurchaseStatus, ShopId, UserId};
use uuid::Uuid;

#[tokio::test]
async fn a_retried_insert_is_refused_while_the_first_attempt_still_runs() {
    let app = TestApp::spawn_with(with_warehouse).await;
    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    let url = app.config.clickhouse.url.clone();
    let db = ch.database().to_owned();
    let exists = format!("EXISTS TABLE {db}.purchase_events");
    eventually(
        || clickhouse::try_query(&url, &exists),
        |r| r.as_deref() == Some("1"),
    )
    .await;
    let p = ProcessedPurchase {
        purchase_id: Uuid::now_v7(),
        shop_id: ShopId::new(),
        user_id: UserId::new(),
        amount: Money::parse("2000.00").unwrap(),
        profit: Money::parse("500.00").unwrap(),
        qualifying: true,
        plan_version: 1,
        status: PurchaseStatus::Paid,
        occurred_at: Utc::now(),
        processed_at: Utc::now(),
    };
    let row = warehouse::rows::purchase(&p);
    let rows = [row.as_str()];

    // The first attempt, still running on the server: a query under the insert's id.
    let id = insert_query_id("purchase_events", &rows);
    let first = {
        let (url, id) = (url.clone(), id.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/"))
                .query(&[("query_id", id.as_str())])
                .body("SELECT sleep(3)")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let running = format!("SELECT count() FROM system.processes WHERE query_id = '{id}'");
    eventually(|| clickhouse::query(&url, &running), |n| n.trim() == "1").await;

    let retry = ch.insert("purchase_events", &rows).await;
    assert_eq!(
        retry.as_ref().err().and_then(|e| e.code()),
        Some(216),
        "{retry:?}"
    );
    assert!(first.await.unwrap().is_success());
    ch.insert("purchase_events", &rows).await.unwrap();
    let stored = format!(
        "SELECT count() FROM {db}.purchase_events WHERE purchase_id = '{}'",
        p.purchase_id
    );
    assert_eq!(clickhouse::query(&url, &stored).await.trim(), "1");
}
