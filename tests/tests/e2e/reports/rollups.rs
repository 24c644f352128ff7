//! The report rollups: moved with the entries (refund reversals too), rebuilt from the
//! entries already there by migrations 0004 and 0008, kept per leg an entry was paid
//! through, and held to the entries by `referral verify`;
//! and the tree, which reads them, cut at its node cap.
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
    // again must rebuild them from the entries (0004, then 0008 with the legs, then 0010
    // with each day's positions, which verify checks, then 0012's wider sums, which the
    // running API's prepared statements were described with), to the same answers.
    sqlx::raw_sql(
        "DROP TABLE earnings_by_source, earnings_daily;
         DROP INDEX refunds_purchase_idx;
         DELETE FROM _sqlx_migrations WHERE version IN (4, 8, 10, 12);",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    platform::db::MIGRATOR.run(&app.pool).await.unwrap();
    assert_eq!(rollup_reports(&app, &[a, b]).await, reports);
    app.assert_verified().await;

    for (corrupt, needle) in [
        (
            "UPDATE earnings_by_source SET leg_user_id = beneficiary_id WHERE beneficiary_id = $1",
            "earnings_by_source",
        ),
        (
            // A day's positions narrow history's time ranges (0010): a wrong one must show.
            "UPDATE earnings_daily SET first_seq = first_seq + 1 WHERE beneficiary_id = $1",
            "earnings_daily",
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

/// A source's entries stay under the leg they were paid through (one rollup keyed by
/// source, level and leg, migration 0008): after C moves from P1's leg to P2's, G's by-leg
/// report splits C's level-2 earnings between both legs, and by-referral still shows C
/// once, with both.
#[tokio::test]
async fn a_moved_source_keeps_its_old_entries_under_the_old_leg() {
    let app = TestApp::spawn().await;
    let g = app.signup(None).await;
    let (p1, p2) = (app.signup(Some(g)).await, app.signup(Some(g)).await);
    let c = app.signup(Some(p1)).await;
    app.purchase("before", c, "1000.00", Some("1000.00")).await; // P1 50 L1, G 10 L2 via P1
    eventually(|| app.settled(), |n| *n == 1).await;
    assert_eq!(app.move_user(c, Some(p2)).await.status(), StatusCode::OK);
    app.purchase("after", c, "2000.00", Some("2000.00")).await; // P2 100 L1, G 20 L2 via P2
    eventually(|| app.settled(), |n| *n == 2).await;
    app.assert_verified().await;

    let legs = app
        .get_json(&format!("/v1/users/{g}/earnings/by-leg"), &app.admin)
        .await;
    let leg = |u: UserId| {
        let legs = legs["legs"].as_array().unwrap();
        let l = legs.iter().find(|l| l["leg_user_id"] == u.to_string());
        l.map(|l| (l["total"].clone(), l["entries"].clone()))
    };
    assert_eq!(leg(p2), Some(("20.00".into(), 1.into())), "{legs:#}");
    assert_eq!(leg(p1), Some(("10.00".into(), 1.into())), "{legs:#}");
    let referrals = app
        .get_json(&format!("/v1/users/{g}/earnings/by-referral"), &app.admin)
        .await;
    let rows = referrals["referrals"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{referrals:#}");
    assert_eq!(rows[0]["user_id"], c.to_string());
    assert_eq!(rows[0]["level"], 2);
    assert_eq!(rows[0]["total"], "30.00");
    assert_eq!(rows[0]["entries"], 2);
}

/// The tree stops at the node cap: nodes by depth, then id, and `truncated` says so; a
/// deeper request costs no more than the cap.
#[tokio::test]
async fn the_tree_is_cut_at_the_node_cap_by_depth_then_id() {
    let app = TestApp::spawn_with(|c| c.reports.max_tree_nodes = 6).await;
    let a = app.signup(None).await;
    let mut kids = Vec::new();
    for _ in 0..3 {
        kids.push(app.signup(Some(a)).await);
    }
    let mut grandkids = Vec::new();
    for k in &kids {
        for _ in 0..2 {
            grandkids.push((app.signup(Some(*k)).await, *k));
        }
    }
    let deep = app.signup(Some(grandkids[0].0)).await;
    let full = app
        .get_json(&format!("/v1/users/{a}/tree?depth=1"), &app.admin)
        .await;
    assert_eq!(full["truncated"], false);
    assert_eq!(full["root"]["children"].as_array().unwrap().len(), 3);

    let cut = app
        .get_json(&format!("/v1/users/{a}/tree?depth=8"), &app.admin)
        .await;
    assert_eq!(cut["truncated"], true);
    // Root, its 3 children, then the 2 grandchildren with the lowest ids.
    grandkids.sort();
    let mut shown: Vec<String> = Vec::new();
    for child in cut["root"]["children"].as_array().unwrap() {
        for g in child["children"].as_array().unwrap() {
            assert!(g["children"].as_array().unwrap().is_empty());
            shown.push(g["user_id"].as_str().unwrap().to_owned());
        }
    }
    shown.sort();
    let lowest: Vec<String> = grandkids[..2].iter().map(|(g, _)| g.to_string()).collect();
    assert_eq!(shown, lowest);
    assert!(!cut.to_string().contains(&deep.to_string()));
}
