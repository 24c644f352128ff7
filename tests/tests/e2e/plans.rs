//! Statements on the purchase path, `referral verify`'s reads and the tree report's levels
//! find their rows by key whatever Postgres knows about the tables: a database never
//! analyzed (a fresh install, autovacuum off or behind, as on the machine the benches run
//! on) must not turn a lookup into a scan of every user or entry. Each statement is planned
//! as its cached generic plan is, from the same SQL file the code runs.
use e2e::TestApp;
use sqlx::Connection;

/// The generic plan of `sql` (every parameter unknown), as `EXPLAIN` prints it.
async fn generic_plan(app: &TestApp, sql: &str) -> String {
    let params = (1..=9)
        .rev()
        .find(|n| sql.contains(&format!("${n}")))
        .unwrap_or(0);
    let mut conn = sqlx::PgConnection::connect(&app.config.database.url)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE probe AS {sql}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let nulls = vec!["NULL"; params].join(", ");
    let lines: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE probe({nulls})"))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    lines.join("\n")
}

/// `users` users, their totals and four entries each (the first user by id 5,000 more),
/// written behind the API's back, with no statistics about any of the tables.
async fn ledger_never_analyzed(app: &TestApp, users: u32) {
    sqlx::raw_sql(&format!(
        "INSERT INTO users (id) SELECT gen_random_uuid() FROM generate_series(1, {users});
         INSERT INTO account_totals (user_id) SELECT id FROM users;
         INSERT INTO earnings (id, purchase_id, beneficiary_id, level, leg_user_id, source_user_id, base,
                               rate, amount, kind, plan_version, balance_after, user_seq)
         SELECT gen_random_uuid(), gen_random_uuid(), u.id, 1, u.id, u.id, 100, 0.05, 5, 'earning', 1, 5 * n, n
         FROM users u CROSS JOIN generate_series(1, 4) AS n;
         INSERT INTO earnings (id, purchase_id, beneficiary_id, level, leg_user_id, source_user_id, base,
                               rate, amount, kind, plan_version, balance_after, user_seq)
         SELECT gen_random_uuid(), gen_random_uuid(), u.id, 1, u.id, u.id, 100, 0.05, 5, 'earning', 1, 5 * n, n
         FROM (SELECT id FROM users ORDER BY id LIMIT 1) u CROSS JOIN generate_series(5, 5004) AS n;
         DELETE FROM pg_statistic
         WHERE starelid IN ('users'::regclass, 'account_totals'::regclass, 'earnings'::regclass);"
    ))
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_purchase_path_verify_and_the_tree_find_rows_by_key_without_statistics() {
    let app = TestApp::spawn().await;
    ledger_never_analyzed(&app, 5_000).await;

    // Each statement, the path its plan must take, and why.
    let expected = [
        (
            ingest::RESERVE_SQL,
            "Index Scan using users_pkey on users",
            "the edge's reservation reads each buyer by key",
        ),
        (
            processor::MOVE_TOTALS_SQL,
            "Conflict Arbiter Indexes: account_totals_pkey",
            "a batch's totals are found through their key",
        ),
        (
            platform::entries::OF_PURCHASES_SQL,
            "Index Cond: (purchase_id = k.id)",
            "a purchase's entries are read through the ledger's key",
        ),
        (
            processor::VERIFY_CHUNK_ENTRIES_SQL,
            "Index Cond: (purchase_id = k.id)",
            "a purchase's entries are read through the ledger's key",
        ),
        (
            platform::entries::OF_REFUND_SQL,
            "Index Cond: ((purchase_id = r.purchase_id)",
            "a refund's reversals are read through its purchase",
        ),
        (
            processor::REFUND_BENEFICIARIES_SQL,
            "Index Cond: ((purchase_id = r.purchase_id)",
            "a refunded purchase's beneficiaries are read through the ledger's key",
        ),
        (
            api::TREE_LEVEL_SQL,
            "Index Cond: (referrer_id = k.id)",
            "a tree level reads each parent's children through the referrer index",
        ),
    ];
    for (sql, path, why) in expected {
        let plan = generic_plan(&app, sql).await;
        assert!(plan.contains(path), "{why}:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "no table is scanned:\n{plan}");
    }
}

#[tokio::test]
async fn a_history_page_walks_back_from_the_cursor_without_statistics() {
    let app = TestApp::spawn().await;
    // At 200,000 entries the old equality bounds were estimated at a few rows and read by
    // a bitmap scan and a sort (below that size both plans cost the same to the planner).
    ledger_never_analyzed(&app, 50_000).await;
    let heavy: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users ORDER BY id LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Planned with its values, as the report runs it (an unnamed statement).
    let explain = format!("EXPLAIN {}", api::HISTORY_PAGE_SQL);
    let lines: Vec<String> = sqlx::query_scalar(&explain)
        .bind(heavy)
        .bind(i64::MAX)
        .bind(None::<chrono::DateTime<chrono::Utc>>)
        .bind(None::<chrono::DateTime<chrono::Utc>>)
        .bind(None::<i16>)
        .bind(51_i64)
        .bind(1_i64)
        .persistent(false)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let plan = lines.join("\n");
    assert!(
        plan.contains("Index Scan Backward using earnings_pkey"),
        "the newest page is the end of the user's index range:\n{plan}"
    );
    assert!(!plan.contains("Sort"), "no entries are sorted:\n{plan}");
}
