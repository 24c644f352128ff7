//! Refunds: pro rata at the frozen rate, negative entries, idempotent ids, conflicts,
//! over-refunds, and refunds that arrive before their purchase.
use super::*;

async fn refunds_with_status(app: &TestApp, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status = $1")
        .bind(status)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_refund_reverses_every_earning_with_negative_entries() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let r = app.purchase("full", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    assert_eq!(app.total(b).await, "25.00");
    let r = app.refund("full-r", "full", "2000.00").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(b), |t| t == "0.00").await;
    assert_eq!(app.total(a).await, "0.00");
    let b_entries = vec![e("earning", 1, "25.00"), e("reversal", 1, "-25.00")];
    assert_eq!(entries(&app, b).await, b_entries);
    let a_entries = vec![e("earning", 2, "5.00"), e("reversal", 2, "-5.00")];
    assert_eq!(entries(&app, a).await, a_entries);
    app.assert_verified().await;
}

#[tokio::test]
async fn partial_refunds_reverse_pro_rata_and_add_up_exactly() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    // 5% of 333.33 = 16.6665 → 16.67; 1% = 3.3333 → 3.33.
    let r = app.purchase("thirds", c, "1000.00", Some("333.33")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "3.33").await;
    assert_eq!(app.total(b).await, "16.67");

    // A third: 16.67 × 333.33 / 1000 = 5.5566… → 5.56; 3.33 × 0.33333 = 1.10999 → 1.11.
    let r = app.refund("t1", "thirds", "333.33").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    assert_eq!(
        (app.total(b).await, app.total(a).await),
        ("11.11".into(), "2.22".into())
    );

    // The same refund again is the same refund; another body under its id is a conflict.
    assert_eq!(
        app.refund("t1", "thirds", "333.33").await.status(),
        StatusCode::ACCEPTED
    );
    let conflict = problem(app.refund("t1", "thirds", "100.00").await).await;
    assert_eq!(conflict, (StatusCode::CONFLICT, "refund_conflict".into()));

    // Two thirds cumulatively: 16.67 × 0.66666 = 11.1132… → 11.11, so 5.55 more.
    let r = app.refund("t2", "thirds", "333.33").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.refunds_settled(), |n| *n == 2).await;
    assert_eq!(
        (app.total(b).await, app.total(a).await),
        ("5.56".into(), "1.11".into())
    );

    // More than the 333.34 that remains is refused; exactly the rest reverses the rest.
    let too_much = problem(app.refund("t-big", "thirds", "333.35").await).await;
    assert_eq!(
        too_much,
        (StatusCode::CONFLICT, "refund_exceeds_remaining".into())
    );
    let r = app.refund("t3", "thirds", "333.34").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.refunds_settled(), |n| *n == 3).await;
    assert_eq!(
        (app.total(b).await, app.total(a).await),
        ("0.00".into(), "0.00".into())
    );
    let want = ["16.67", "-5.56", "-5.55", "-5.56"];
    let got: Vec<String> = entries(&app, b).await.into_iter().map(|e| e.2).collect();
    assert_eq!(got, want);
    let refused = problem(app.refund("t4", "thirds", "0.01").await).await;
    assert_eq!(
        refused,
        (StatusCode::CONFLICT, "refund_exceeds_remaining".into())
    );
    let unknown = problem(app.refund("t5", "no-such-order", "1.00").await).await;
    assert_eq!(unknown, (StatusCode::NOT_FOUND, "order_not_found".into()));
    assert_eq!(refunds_with_status(&app, "applied").await, 3);
    app.assert_verified().await;
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_purchase_applies_when_the_purchase_lands() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    // The shop publishes the refund straight to the stream before the purchase exists.
    publish_refund(&app, &refund_message(&app, "early-r", "early", "1000.00")).await;
    eventually(|| refunds_with_status(&app, "pending"), |n| *n == 1).await;
    assert_eq!(app.settled().await, 0);

    let r = app.purchase("early", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Half the purchase was refunded before it landed: half of each earning is reversed.
    eventually(|| app.total(b), |t| t == "12.50").await;
    assert_eq!(app.total(a).await, "2.50");
    assert_eq!(refunds_with_status(&app, "applied").await, 1);
    let b_entries = vec![e("earning", 1, "25.00"), e("reversal", 1, "-12.50")];
    assert_eq!(entries(&app, b).await, b_entries);
    app.assert_verified().await;
}

#[tokio::test]
async fn early_refunds_beyond_the_purchase_are_each_dead_lettered() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    // Two orders, each with two early refunds adding up to more than its amount.
    for order in ["over-a", "over-b"] {
        let first = refund_message(&app, &format!("{order}-1"), order, "1500.00");
        publish_refund(&app, &first).await;
        let mut second = refund_message(&app, &format!("{order}-2"), order, "1000.00");
        second.received_at = first.received_at + chrono::Duration::seconds(1);
        publish_refund(&app, &second).await;
    }
    eventually(|| refunds_with_status(&app, "pending"), |n| *n == 4).await;
    for order in ["over-a", "over-b"] {
        let r = app.purchase(order, c, "2000.00", Some("500.00")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    settled(&app, 2).await;
    // The earlier refund (75%) of each applies; the later one would exceed and is refused.
    assert_eq!(
        (app.total(b).await, app.total(a).await),
        ("12.50".into(), "2.50".into())
    );
    assert_eq!(refunds_with_status(&app, "rejected").await, 2);
    let exceeded = |r: &Vec<String>| r.iter().filter(|r| *r == "refund_exceeds_purchase").count();
    eventually(|| dead_letter_reasons(&app), |r| exceeded(r) == 2).await;
    let on_stream = eventually(|| dead_letter_subjects(&app), |s| s.len() >= 2).await;
    assert_eq!(on_stream, vec!["deadletter.refund_exceeds_purchase"; 2]);
    app.assert_verified().await;
}

#[tokio::test]
async fn concurrent_refunds_never_add_up_to_more_than_the_purchase() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let r = app.purchase("busy", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ids: Vec<String> = (0..10).map(|i| format!("busy-{i}")).collect();
    let attempts = ids.iter().map(|id| app.refund(id, "busy", "300.00"));
    let mut accepted = 0;
    for r in futures::future::join_all(attempts).await {
        match r.status() {
            StatusCode::ACCEPTED => accepted += 1,
            _ => assert_eq!(problem(r).await.1, "refund_exceeds_remaining"),
        }
    }
    // Six of 300.00 fit in 2000.00; 90% of 25.00 is reversed.
    assert_eq!(accepted, 6);
    eventually(|| app.refunds_settled(), |n| *n == 6).await;
    assert_eq!(app.total(b).await, "2.50");
    assert_eq!(refunds_with_status(&app, "applied").await, 6);
    app.assert_verified().await;
}

#[tokio::test]
async fn purchases_and_refunds_sharing_one_order_lock_bucket_settle_exactly() {
    // One bucket: every order of every batch hashes to the same advisory lock, so two
    // workers' purchase batches share it and every refund batch waits for them all.
    let app = TestApp::spawn_with(|c| {
        c.processor.order_lock_buckets = 1;
        c.processor.workers = 2;
    })
    .await;
    let (a, b, c) = app.chain3().await;
    for i in 0..40 {
        let order = format!("bucket-{i}");
        let purchase = purchase_message(&app, &order, c, "2000.00", "500.00");
        let refund = refund_message(&app, &format!("{order}-r"), &order, "1000.00");
        // Half the refunds arrive before their purchase, half after.
        if i % 2 == 0 {
            publish_refund(&app, &refund).await;
            publish_purchase(&app, &purchase).await;
        } else {
            publish_purchase(&app, &purchase).await;
            publish_refund(&app, &refund).await;
        }
    }
    eventually(|| refunds_with_status(&app, "applied"), |n| *n == 40).await;
    assert_eq!(app.settled().await, 40);
    assert_eq!(app.total(b).await, "500.00", "40 × (25.00 − 12.50)");
    assert_eq!(app.total(a).await, "100.00", "40 × (5.00 − 2.50)");
    assert!(dead_letter_reasons(&app).await.is_empty());
    app.assert_verified().await;
}
