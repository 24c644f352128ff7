//! Rollup sums outgrow Decimal(18,2): merging parts of `purchases_daily_by_shop` once
//! summed a shop's day past 9.2e16 into a negative amount, silently. New installs keep the
//! sums as Decimal(38,2); the DDL widens an install from before at start.
use super::seed::with_warehouse;
use chrono::Utc;
use e2e::TestApp;
use platform::clickhouse::Clickhouse;
use schemas::messages::ProcessedPurchase;
use schemas::{Money, PurchaseStatus, ShopId, UserId};
use uuid::Uuid;

const SHOP_ROLLUP: [&str; 3] = [
    include_str!("../../../../schemas/clickhouse/0002_purchase_events.sql"),
    include_str!("../../../../schemas/clickhouse/0008_purchases_daily_by_shop.sql"),
    include_str!("../../../../schemas/clickhouse/0009_purchases_daily_by_shop_mv.sql"),
];

/// Twelve inserts (twelve parts) of one purchase of 9e15 each, for one shop and day, then
/// merged: 1.08e17 in all, past what a Decimal(18,2) sum holds.
async fn twelve_parts_merged(ch: &Clickhouse, shop: ShopId) {
    for _ in 0..12 {
        let p = ProcessedPurchase {
            purchase_id: Uuid::now_v7(),
            shop_id: shop,
            user_id: UserId::new(),
            amount: Money::parse("9000000000000000.00").unwrap(),
            profit: Money::ZERO,
            qualifying: true,
            plan_version: 1,
            status: PurchaseStatus::Paid,
            occurred_at: Utc::now(),
            processed_at: Utc::now(),
        };
        ch.insert("purchase_events", &[&warehouse::rows::purchase(&p)])
            .await
            .unwrap();
    }
    let db = ch.database();
    ch.execute(&format!(
        "OPTIMIZE TABLE {db}.purchases_daily_by_shop FINAL"
    ))
    .await
    .unwrap();
}

async fn stored_sum(ch: &Clickhouse) -> String {
    let db = ch.database();
    let sql =
        format!("SELECT toString(amount), toTypeName(amount) FROM {db}.purchases_daily_by_shop");
    ch.execute(&sql).await.unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_shop_day_past_decimal64_sums_exactly_on_new_and_widened_installs() {
    let app = TestApp::spawn_with(with_warehouse).await;
    let shop = ShopId(Uuid::now_v7());

    // An install from before, in a database of its own: the shop rollup at Decimal(18,2).
    let mut old = app.config.clickhouse.clone();
    old.database = format!("{}_old", old.database);
    let ch_old = Clickhouse::new(&old).unwrap();
    ch_old
        .execute(&format!("CREATE DATABASE IF NOT EXISTS {}", old.database))
        .await
        .unwrap();
    for ddl in SHOP_ROLLUP {
        let narrow = ddl
            .replace("Decimal(38, 2)", "Decimal(18, 2)")
            .replace("_wide_mv", "_mv");
        ch_old
            .execute(&narrow.replace("{db}", &old.database))
            .await
            .unwrap();
    }
    warehouse::migrate(&old).await.unwrap();
    twelve_parts_merged(&ch_old, shop).await;
    assert_eq!(
        stored_sum(&ch_old).await,
        "108000000000000000.00\tDecimal(38, 2)"
    );
    ch_old
        .execute(&format!("DROP DATABASE {}", old.database))
        .await
        .unwrap();

    // The application's own install, read through the analytics API.
    warehouse::migrate(&app.config.clickhouse).await.unwrap();
    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    twelve_parts_merged(&ch, shop).await;
    assert_eq!(
        stored_sum(&ch).await,
        "108000000000000000.00\tDecimal(38, 2)"
    );
    let today = Utc::now().date_naive();
    let path = format!("/v1/analytics/purchases-per-shop?from={today}&to={today}");
    let body = app.get_json(&path, &app.admin.clone()).await;
    assert_eq!(body["days"][0]["amount"], "108000000000000000.00", "{body}");
    assert_eq!(body["days"][0]["purchases"], 12, "{body}");
}
