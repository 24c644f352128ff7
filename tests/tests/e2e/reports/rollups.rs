//! The report rollups: moved with the entries (refund reversals too), rebuilt from the
//! entries already there by migration 0004, and held to the entries by `referral verify`.
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use schemas::UserId;
use serde_json::Value;

/// Every report the rollups serve, for each of `users`, as the API answers them.
async fn rollup_reports(app: &TestApp, users: &[UserId]) -> Vec<Value> {
    let mut out = Vec::new();
    for u in users {
        for route in [
            "earnings/by-referral",
            "earnings/by-leg",
            "earnings/daily",
            "tree?depth=3",
        ] {
            let path = format!("/v1/users/{u}/{route}");
            out.push(app.get_json(&path, &app.admin).await);
        }
    }
    out
}

#[tokio::test]
async fn rollups_follow_entries_and_reversals_and_migration_0004_rebuilds_them() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    app.purchase("r-1", c, "2000.00", Some("500.00")).await; // B 25.00 L1, A 5.00 L2
    app.purchase("r-2", b, "1000.00", Some("1000.00")).await; // A 50.00 L1
    eventually(|| app.settled(), |n| *n == 2).await;
    let refund = app.refund("r-1-back", "r-1", "500.00").await;
    assert_eq!(refund.status(), StatusCode::ACCEPTED);
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    app.assert_verified().await;

    let reports = rollup_reports(&app, &[a, b]).await;
    let by_leg_of_a = &reports[1]["legs"];
    assert_eq!(by_leg_of_a[0]["leg_user_id"], b.to_string());
    assert_eq!(by_leg_of_a[0]["total"], "53.75", "50 + 5 - 1.25 reversed");
    assert_eq!(by_leg_of_a[0]["entries"], 3);
    let daily_of_b = &reports[6]["points"];
    assert_eq!(daily_of_b[0]["total"], "18.75", "25 - 6.25 reversed");
    assert_eq!(daily_of_b[0]["entries"], 2);

    // As on a database from before 0004: no rollups, entries already there. Migrating
    // again must rebuild them from the entries, to the same answers.
    sqlx::raw_sql(
        "DROP TABLE earnings_by_source, earnings_by_leg, earnings_daily;
         DROP INDEX refunds_purchase_idx;
         DELETE FROM _sqlx_migrations WHERE version = 4;",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    platform::db::MIGRATOR.run(&app.pool).await.unwrap();
    assert_eq!(rollup_reports(&app, &[a, b]).await, reports);
    app.assert_verified().await;

    for (corrupt, needle) in [
        (
            "UPDATE earnings_by_leg SET total = total + 1 WHERE beneficiary_id = $1",
            "earnings_by_leg",
        ),
        (
            "DELETE FROM earnings_daily WHERE beneficiary_id = $1",
            "earnings_daily",
        ),
        (
            "UPDATE earnings_by_source SET entries = entries + 1 WHERE beneficiary_id = $1",
            "earnings_by_source",
        ),
    ] {
        let done = sqlx::query(corrupt)
            .bind(b.as_uuid())
            .execute(&app.pool)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "{corrupt}");
        let report = processor::verify::verify(&app.pool).await.unwrap();
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.contains(needle) && d.contains(&b.to_string())),
            "after `{corrupt}` verify should name {needle} of {b}: {:#?}",
            report.differences
        );
    }
}
