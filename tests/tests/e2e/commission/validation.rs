//! Refusals at the HTTP edge, and `referral verify` catching a tampered ledger.
use super::*;
use serde_json::json;

#[tokio::test]
async fn invalid_purchases_are_refused_at_the_edge_with_stable_codes() {
    let app = TestApp::spawn().await;
    let (_, _, c) = app.chain3().await;
    let body = |amount: &str, profit: &str| json!({ "order_id": "bad", "user_id": c, "amount": amount, "profit": profit });
    let mut usd = body("2000.00", "500.00");
    usd["currency"] = json!("USD");
    let mut stranger = body("2000.00", "500.00");
    stranger["user_id"] = json!(UserId::new());
    let cases = [
        (body("2000.00", "-1.00"), "invalid_profit"),
        (body("2000.00", "2000.01"), "invalid_profit"),
        (body("0.00", "0.00"), "invalid_amount"),
        (body("-5.00", "0.00"), "invalid_amount"),
        (usd, "unknown_currency"),
        (stranger, "unknown_user"),
        (body("1.001", "1.00"), "invalid_amount"),
    ];
    for (body, code) in cases {
        let got = problem(app.post("/v1/purchases", &app.shop_key, &body).await).await;
        assert_eq!(
            got,
            (StatusCode::UNPROCESSABLE_ENTITY, code.to_owned()),
            "{body}"
        );
    }
    let malformed = app
        .http
        .post(format!("{}/v1/purchases", app.base))
        .bearer_auth(&app.shop_key)
        .header("content-type", "application/json")
        .body("{\"order_id\": ")
        .send()
        .await
        .unwrap();
    let got = problem(malformed).await;
    assert_eq!(
        got,
        (StatusCode::UNPROCESSABLE_ENTITY, "malformed_json".into())
    );
    let zero = json!({ "refund_id": "r", "order_id": "bad", "amount": "0.00" });
    let got = problem(app.post("/v1/refunds", &app.shop_key, &zero).await).await;
    assert_eq!(
        got,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount".into())
    );
    // Nothing refused was reserved, so nothing reached the stream.
    let reserved: i64 = sqlx::query_scalar("SELECT count(*) FROM purchase_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(reserved, 0);
    app.assert_verified().await;
}

/// Corrupts one thing, expects verify to name it, then puts it back.
async fn tampering_is_reported(
    app: &TestApp,
    corrupt: &str,
    restore: &str,
    user: UserId,
    needle: &str,
) {
    let run = |sql: String| async move {
        let done = sqlx::query(&sql)
            .bind(user.as_uuid())
            .execute(&app.pool)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
    };
    run(corrupt.to_owned()).await;
    let report = processor::verify::verify(&app.pool).await.unwrap();
    assert!(
        report.differences.iter().any(|d| d.contains(needle)),
        "after `{corrupt}` verify should report {needle:?}, found {:#?}",
        report.differences
    );
    run(restore.to_owned()).await;
    app.assert_verified().await;
}

#[tokio::test]
async fn verify_reports_a_tampered_entry_balance_or_total() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let r = app.purchase("t", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        app.refund("t-r", "t", "500.00").await.status(),
        StatusCode::ACCEPTED
    );
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    assert_eq!(
        (app.total(b).await, app.total(a).await),
        ("18.75".into(), "3.75".into())
    );
    app.assert_verified().await;

    let earning = "FROM earnings WHERE beneficiary_id = $1 AND kind = 'earning')";
    let cases = [
        (
            format!("UPDATE earnings SET amount = 26.00 WHERE id = (SELECT id {earning}"),
            format!("UPDATE earnings SET amount = 25.00 WHERE id = (SELECT id {earning}"),
            "is 26.00",
        ),
        (
            format!("UPDATE earnings SET rate = 0.06 WHERE id = (SELECT id {earning}"),
            format!("UPDATE earnings SET rate = 0.05 WHERE id = (SELECT id {earning}"),
            "rate 0.06",
        ),
        (
            "UPDATE balances SET total = total + 1 WHERE user_id = $1".to_owned(),
            "UPDATE balances SET total = total - 1 WHERE user_id = $1".to_owned(),
            "balance of",
        ),
        (
            "UPDATE account_totals SET total = total + 1 WHERE user_id = $1".to_owned(),
            "UPDATE account_totals SET total = total - 1 WHERE user_id = $1".to_owned(),
            "total of",
        ),
    ];
    for (corrupt, restore, needle) in &cases {
        tampering_is_reported(&app, corrupt, restore, b, needle).await;
    }
    // A reversal's amount, and where its refund says the purchase stood before it.
    tampering_is_reported(
        &app,
        "UPDATE earnings SET amount = -6.00 WHERE beneficiary_id = $1 AND kind = 'reversal'",
        "UPDATE earnings SET amount = -6.25 WHERE beneficiary_id = $1 AND kind = 'reversal'",
        b,
        "is -6.00",
    )
    .await;
    tampering_is_reported(
        &app,
        "UPDATE refunds SET refunded_before = 100.00 WHERE refund_id = 't-r' AND $1::uuid IS NOT NULL",
        "UPDATE refunds SET refunded_before = 0.00 WHERE refund_id = 't-r' AND $1::uuid IS NOT NULL",
        b,
        "refund t-r",
    )
    .await;
    // The running balance, the counts, the positions; a refund left pending beside its
    // settled purchase.
    let refund = "WHERE refund_id = 't-r' AND $1::uuid IS NOT NULL";
    let cases = [
        (
            format!("UPDATE earnings SET balance_after = balance_after + 1 WHERE id = (SELECT id {earning}"),
            format!("UPDATE earnings SET balance_after = balance_after - 1 WHERE id = (SELECT id {earning}"),
            "balance after 26.00",
        ),
        (
            "UPDATE balances SET entries = entries + 1 WHERE user_id = $1 AND level = 1".to_owned(),
            "UPDATE balances SET entries = entries - 1 WHERE user_id = $1 AND level = 1".to_owned(),
            "in Some(3) entries",
        ),
        (
            "UPDATE account_totals SET entries = entries + 1 WHERE user_id = $1".to_owned(),
            "UPDATE account_totals SET entries = entries - 1 WHERE user_id = $1".to_owned(),
            "in Some(3) entries",
        ),
        (
            "UPDATE earnings SET user_seq = 12 WHERE beneficiary_id = $1 AND kind = 'reversal'".to_owned(),
            "UPDATE earnings SET user_seq = 2 WHERE beneficiary_id = $1 AND kind = 'reversal'".to_owned(),
            "entry 12 of",
        ),
        (
            format!("UPDATE refunds SET status = 'pending' {refund}"),
            format!("UPDATE refunds SET status = 'applied' {refund}"),
            "refund t-r is pending but purchase",
        ),
    ];
    for (corrupt, restore, needle) in &cases {
        tampering_is_reported(&app, corrupt, restore, b, needle).await;
    }
}

#[tokio::test]
async fn verify_checks_one_user_or_a_time_range() {
    use processor::verify::{verify_scope, Scope};
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let x = app.signup(None).await;
    let y = app.signup(Some(x)).await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    app.purchase("v-c", c, "2000.00", Some("500.00")).await; // B 25.00, A 5.00
    app.purchase("v-y", y, "2000.00", Some("500.00")).await; // X 25.00
    eventually(|| app.settled(), |n| *n == 2).await;
    sqlx::query("UPDATE earnings SET amount = 26.00 WHERE beneficiary_id = $1")
        .bind(x.as_uuid())
        .execute(&app.pool)
        .await
        .unwrap();

    let of_a = verify_scope(
        &app.pool,
        Scope {
            user: Some(a),
            ..Scope::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (of_a.purchases, of_a.entries),
        (1, 2),
        "only the purchase that paid A"
    );
    assert!(of_a.differences.is_empty(), "{:#?}", of_a.differences);
    let of_x = verify_scope(
        &app.pool,
        Scope {
            user: Some(x),
            ..Scope::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(of_x.purchases, 1);
    assert!(
        of_x.differences.iter().any(|d| d.contains("is 26.00")),
        "{:#?}",
        of_x.differences
    );
    assert!(
        of_x.differences.iter().any(|d| d.contains("total of")),
        "{:#?}",
        of_x.differences
    );
    assert!(of_x.differences.iter().all(|d| !d.contains(&b.to_string())));

    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    let range = Scope {
        from: Some(started),
        to: Some(later),
        ..Scope::default()
    };
    let in_range = verify_scope(&app.pool, range).await.unwrap();
    assert_eq!((in_range.purchases, in_range.entries), (2, 3));
    assert!(in_range.differences.iter().any(|d| d.contains("is 26.00")));
    let after = Scope {
        from: Some(later),
        ..Scope::default()
    };
    let none = verify_scope(&app.pool, after).await.unwrap();
    assert_eq!((none.purchases, none.entries), (0, 0));
    assert!(none.differences.is_empty(), "{:#?}", none.differences);
}

/// `verify --user` finds a payment the user was owed and never got (it has no entry of
/// theirs to be found by), and `verify` finds an order settled twice or settled other than
/// its registry reserved it.
#[tokio::test]
async fn verify_finds_a_missing_payment_of_one_user_and_orders_settled_off_the_registry() {
    use processor::verify::{verify, verify_scope, Scope};
    let app = TestApp::spawn().await;
    let (a, _, c) = app.chain3().await;
    app.purchase("owed", c, "2000.00", Some("500.00")).await; // B 25.00, A 5.00
    eventually(|| app.settled(), |n| *n == 1).await;
    // A's payment goes with every sum of it, so A's own figures agree with each other.
    for (table, column) in [
        ("earnings", "beneficiary_id"),
        ("balances", "user_id"),
        ("account_totals", "user_id"),
        ("earnings_by_source", "beneficiary_id"),
        ("earnings_daily", "beneficiary_id"),
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(a.as_uuid())
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let of_a = Scope {
        user: Some(a),
        ..Scope::default()
    };
    let of_a = verify_scope(&app.pool, of_a).await.unwrap();
    assert_eq!(of_a.purchases, 1, "the purchase that should have paid A");
    let missing = format!("missing entry ({}, 2", a.as_uuid());
    assert!(
        of_a.differences.iter().any(|d| d.contains(&missing)),
        "{:#?}",
        of_a.differences
    );

    // The order settled a second time (another purchase id), and reserved at another amount.
    sqlx::query(
        "INSERT INTO purchases SELECT (jsonb_populate_record(NULL::purchases,
             to_jsonb(p) || jsonb_build_object('id', gen_random_uuid()))).*
         FROM purchases p WHERE order_id = 'owed'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE purchase_requests SET amount = 2001.00 WHERE order_id = 'owed'")
        .execute(&app.pool)
        .await
        .unwrap();
    let all = verify(&app.pool).await.unwrap().differences;
    for expected in [
        "is settled 2 times",
        "but its order was reserved at 2001.00",
        "but its order's registry names purchase",
    ] {
        assert!(
            all.iter().any(|d| d.contains(expected)),
            "{expected}: {all:#?}"
        );
    }
}

/// Every read of a `verify` run sees one snapshot: a change committed while it runs (here a
/// change to entries it had already read, committed while it waits for a table a later
/// check reads) is seen by none of its reads, so it reports no difference it would not
/// report for either state alone. (Read statement by statement, the later sums saw the
/// change that the earlier entry checks had not, and reported it.)
#[tokio::test]
async fn verify_reads_one_snapshot_while_the_ledger_changes() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    app.purchase("snap", c, "2000.00", Some("500.00")).await;
    eventually(|| app.settled(), |n| *n == 1).await;
    let mut writer = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE earnings SET amount = amount + 1, balance_after = balance_after + 1 WHERE beneficiary_id = $1")
        .bind(b.as_uuid())
        .execute(&mut *writer)
        .await
        .unwrap();
    sqlx::query("LOCK TABLE account_totals IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *writer)
        .await
        .unwrap();
    let pool = app.pool.clone();
    let run = tokio::spawn(async move { processor::verify::verify(&pool).await.unwrap() });
    // It has read the entries and waits for the totals.
    eventually(|| app.lock_waiters(), |n| *n == 1).await;
    writer.commit().await.unwrap();
    let during = run.await.unwrap();
    assert!(during.differences.is_empty(), "{:#?}", during.differences);
    let after = processor::verify::verify(&app.pool).await.unwrap();
    assert!(
        !after.differences.is_empty(),
        "the change itself is seen by a later run"
    );
}

/// A refused refund is checked too: one refused for asking more than remained is right
/// only while more than it asked does not remain (what remains only shrinks).
#[tokio::test]
async fn verify_rejudges_a_refused_refund() {
    let app = TestApp::spawn().await;
    let (_, _, c) = app.chain3().await;
    app.purchase("refused", c, "1000.00", Some("400.00")).await;
    assert_eq!(app.refund("first", "refused", "600.00").await.status(), 202);
    eventually(|| app.refunds_settled(), |n| *n == 1).await;
    // Straight to the stream, as the edge would refuse it: 500.00 of the 400.00 left.
    publish_refund(&app, &refund_message(&app, "too-much", "refused", "500.00")).await;
    eventually(|| app.refunds_settled(), |n| *n == 2).await;
    app.assert_verified().await;
    sqlx::query("UPDATE refunds SET amount = 400.00 WHERE refund_id = 'too-much'")
        .execute(&app.pool)
        .await
        .unwrap();
    let differences = processor::verify::verify(&app.pool)
        .await
        .unwrap()
        .differences;
    assert!(
        differences
            .iter()
            .any(|d| d.contains("refund too-much of 400.00 was refused")),
        "{differences:#?}"
    );
}
