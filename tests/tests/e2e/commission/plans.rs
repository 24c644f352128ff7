//! Plan versions: each purchase records its version; a new version pays new purchases at
//! its rates and never touches past earnings; refunds reverse at the frozen rate.
use super::*;
use rust_decimal::Decimal;
use schemas::{Plan, Rate};

fn rate(percent: i64) -> Rate {
    Rate::new(Decimal::new(percent, 2)).unwrap()
}

#[tokio::test]
async fn a_new_plan_version_pays_new_purchases_and_never_touches_past_ones() {
    let mut app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let r = app.purchase("under-v1", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;

    let v1 = Plan::default();
    let v2 = Plan::new(
        2,
        vec![rate(10), rate(2)],
        v1.qualifying_threshold(),
        v1.max_direct_referrals(),
        v1.inactive_policy(),
    )
    .unwrap();
    app.restart_with(|c| c.plan = v2).await.unwrap();
    let r = app.purchase("under-v2", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "15.00").await;
    assert_eq!(app.total(b).await, "75.00");
    let versions: Vec<(String, i32)> =
        sqlx::query_as("SELECT order_id, plan_version FROM purchases ORDER BY order_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        versions,
        vec![("under-v1".into(), 1), ("under-v2".into(), 2)]
    );
    let paid = vec![e("earning", 1, "25.00"), e("earning", 1, "50.00")];
    assert_eq!(entries(&app, b).await, paid);

    // Refunding the old purchase reverses what it paid, at 5% and 1%.
    let r = app.refund("v1-back", "under-v1", "2000.00").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "50.00").await;
    assert_eq!(app.total(a).await, "10.00");
    assert_eq!(entries(&app, b).await[2], e("reversal", 1, "-25.00"));
    let plans = app.get_json("/v1/admin/plan", &app.admin).await;
    assert_eq!(plans["current"]["version"], 2);
    let known: Vec<&Value> = plans["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["version"])
        .collect();
    assert_eq!(known, [1, 2]);
    app.assert_verified().await;
}

#[tokio::test]
async fn a_changed_plan_under_a_recorded_version_is_refused_at_startup() {
    let app = TestApp::spawn().await;
    let mut changed = app.config.clone();
    let p = &changed.plan;
    changed.plan = Plan::new(
        p.version(),
        vec![rate(7), rate(1)],
        p.qualifying_threshold(),
        p.max_direct_referrals(),
        p.inactive_policy(),
    )
    .unwrap();
    let refused = referral::Application::build(changed, tokio_util::sync::CancellationToken::new())
        .await
        .err()
        .expect("the same version with other rules is refused");
    let why = format!("{refused:#}");
    assert!(why.contains("plan version 1 is already recorded"), "{why}");
    // What was recorded stands, and the running app still pays at it.
    let (a, _, c) = app.chain3().await;
    let r = app.purchase("still-v1", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    app.assert_verified().await;
}

#[tokio::test]
async fn the_threshold_and_the_referral_limit_come_from_the_plan() {
    let app = TestApp::spawn_with(|c| {
        let p = &c.plan;
        let threshold = Money::parse("500.00").unwrap();
        let rates = p.level_rates().to_vec();
        c.plan = Plan::new(p.version(), rates, threshold, 2, p.inactive_policy()).unwrap();
    })
    .await;
    let (a, b, c) = app.chain3().await;
    app.signup(Some(b)).await;
    let third = problem(app.try_signup(Some(b)).await).await;
    assert_eq!(
        third,
        (StatusCode::CONFLICT, "referral_limit_reached".into())
    );
    let r = app.purchase("under", c, "499.99", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app.purchase("at", c, "500.00", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    settled(&app, 2).await;
    assert_eq!(
        (app.total(b).await, app.total(a).await),
        ("25.00".into(), "5.00".into())
    );
    app.assert_verified().await;
}

/// Every processor of a ledger locks orders on the same number of buckets: the first to
/// start records its count (`ledger_settings`), and one configured with another count
/// refuses to start, where it would have locked other keys for the same orders and let a
/// purchase and its early refund run at once on two processors.
#[tokio::test]
async fn a_processor_with_another_order_lock_bucket_count_refuses_to_start() {
    let mut app = TestApp::spawn().await;
    let recorded = app.config.processor.order_lock_buckets;
    app.restart_with(|c| c.processor.order_lock_buckets = recorded + 1)
        .await
        .unwrap();
    eventually(|| async { app.is_running() }, |running| !running).await;
    let refused = app
        .restart_with(|c| c.processor.order_lock_buckets = recorded)
        .await
        .expect_err("the processor refused to start");
    assert!(
        format!("{refused:#}").contains("order_lock_buckets"),
        "{refused:#}"
    );
    let (a, _, c) = app.chain3().await;
    let r = app.purchase("after", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
}
