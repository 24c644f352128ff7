//! Report reads take turns past `[reports] max_concurrent_reads`: a read that would be one
//! too many waits for a place (counted in `report_reads_waiting`) and runs once one frees.
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use schemas::UserId;

/// A totals read held in Postgres behind a lock on `balances` (it keeps its place while it
/// waits there), and a tree read sent after it, which does not touch `balances`.
struct Held {
    lock: sqlx::Transaction<'static, sqlx::Postgres>,
    totals: tokio::task::JoinHandle<StatusCode>,
    tree: tokio::task::JoinHandle<StatusCode>,
}

async fn get(app: &TestApp, path: String) -> tokio::task::JoinHandle<StatusCode> {
    let (http, url, token) = (
        app.http.clone(),
        format!("{}{path}", app.base),
        app.admin.clone(),
    );
    tokio::spawn(async move {
        http.get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    })
}

/// Reads blocked on the lock, as Postgres shows them.
async fn blocked_reads(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%balances%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn waiting(app: &TestApp) -> String {
    app.metric_line("referral_report_reads_waiting").await
}

async fn hold_totals_then_read_tree(app: &TestApp, a: UserId, b: UserId) -> Held {
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let totals = get(app, format!("/v1/users/{a}/earnings")).await;
    eventually(|| blocked_reads(app), |n| *n == 1).await;
    let tree = get(app, format!("/v1/users/{b}/tree")).await;
    Held { lock, totals, tree }
}

#[tokio::test]
async fn a_read_past_the_bound_waits_its_turn_and_runs_when_a_place_frees() {
    let app = TestApp::spawn_with(|c| c.reports.max_concurrent_reads = 1).await;
    let (a, b, _) = app.chain3().await;
    let held = hold_totals_then_read_tree(&app, a, b).await;
    // The tree needs no lock, so only its turn keeps it from answering.
    eventually(|| waiting(&app), |l| l == "referral_report_reads_waiting 1").await;
    assert!(!held.tree.is_finished());
    // Who the bearer is reads no database, so it does not wait for a place.
    let me = app.get("/v1/me", Some(&app.admin)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert!(!held.tree.is_finished());
    held.lock.rollback().await.unwrap();
    assert_eq!(held.totals.await.unwrap(), StatusCode::OK);
    assert_eq!(held.tree.await.unwrap(), StatusCode::OK);
    assert_eq!(waiting(&app).await, "referral_report_reads_waiting 0");
}

#[tokio::test]
async fn a_read_within_the_bound_runs_beside_a_held_one() {
    let app = TestApp::spawn_with(|c| c.reports.max_concurrent_reads = 2).await;
    let (a, b, _) = app.chain3().await;
    let held = hold_totals_then_read_tree(&app, a, b).await;
    assert_eq!(held.tree.await.unwrap(), StatusCode::OK);
    assert!(!held.totals.is_finished());
    held.lock.rollback().await.unwrap();
    assert_eq!(held.totals.await.unwrap(), StatusCode::OK);
}

/// A live stream's replay (a resume from `Last-Event-ID`) reads each page in a report
/// place too: clients resuming from 0 and reading as fast as they could were ledger scans
/// beside the bounded reports, more of them than the bound.
#[tokio::test]
async fn a_live_replay_reads_its_pages_in_turn() {
    let app = TestApp::spawn_with(|c| c.reports.max_concurrent_reads = 1).await;
    let (a, b, c) = app.chain3().await;
    app.purchase("replayed", c, "2000.00", Some("500.00")).await;
    eventually(|| app.settled(), |n| *n == 1).await;
    let held = hold_totals_then_read_tree(&app, a, b).await;
    eventually(|| waiting(&app), |l| l == "referral_report_reads_waiting 1").await;
    // The replay reads `earnings`, which nothing locks: only its turn holds it.
    let stream = app
        .http
        .get(format!("{}/v1/users/{b}/earnings/stream", app.base))
        .bearer_auth(app.token_for(b))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let mut sse = e2e::sse::SseClient::new(stream);
    eventually(|| waiting(&app), |l| l == "referral_report_reads_waiting 2").await;
    held.lock.rollback().await.unwrap();
    let frame = sse.next(std::time::Duration::from_secs(20)).await;
    assert_eq!(frame.and_then(|f| f.id), Some("1".to_owned()));
    assert_eq!(held.totals.await.unwrap(), StatusCode::OK);
    assert_eq!(held.tree.await.unwrap(), StatusCode::OK);
}

/// A report request that is refused (no credential, another user's data, a bad parameter)
/// is answered at once while every place is taken: it never queues behind slow reads.
#[tokio::test]
async fn a_refused_read_is_answered_without_waiting_for_a_place() {
    let app = TestApp::spawn_with(|c| c.reports.max_concurrent_reads = 1).await;
    let (a, b, c) = app.chain3().await;
    let held = hold_totals_then_read_tree(&app, a, b).await;
    eventually(|| waiting(&app), |l| l == "referral_report_reads_waiting 1").await;
    let refused = [
        (
            format!("/v1/users/{b}/tree"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/v1/users/{b}/earnings/by-leg"),
            Some(app.token_for(c)),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/v1/users/{b}/earnings/history?limit=0"),
            Some(app.admin.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/v1/users/{b}/tree?depth=99"),
            Some(app.admin.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/v1/users/{b}/earnings/daily?from=2026-02-01&to=2026-01-01"),
            Some(app.admin.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, bearer, status) in refused {
        let r = app.get(&path, bearer.as_deref()).await;
        assert_eq!(r.status(), status, "{path}");
    }
    assert_eq!(waiting(&app).await, "referral_report_reads_waiting 1");
    assert!(!held.tree.is_finished(), "the place was held throughout");
    held.lock.rollback().await.unwrap();
    assert_eq!(held.totals.await.unwrap(), StatusCode::OK);
    assert_eq!(held.tree.await.unwrap(), StatusCode::OK);
}

/// The reads of one user's data take at most `max_concurrent_reads_per_user` places: a
/// user's second read waits for the first although a place is free, and another user's
/// read takes that place meanwhile.
#[tokio::test]
async fn one_users_reads_take_only_their_share_of_the_places() {
    let app = TestApp::spawn_with(|c| {
        c.reports.max_concurrent_reads = 2;
        c.reports.max_concurrent_reads_per_user = 1;
    })
    .await;
    let (a, b, _) = app.chain3().await;
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let held = get(&app, format!("/v1/users/{a}/earnings")).await;
    eventually(|| blocked_reads(&app), |n| *n == 1).await;
    // a's tree needs no lock: only a's share keeps it waiting.
    let second = get(&app, format!("/v1/users/{a}/tree")).await;
    eventually(|| waiting(&app), |l| l == "referral_report_reads_waiting 1").await;
    let other = app
        .get(&format!("/v1/users/{b}/tree"), Some(&app.admin))
        .await;
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another user's read takes the free place"
    );
    assert!(!second.is_finished());
    lock.rollback().await.unwrap();
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    assert_eq!(second.await.unwrap(), StatusCode::OK);
}
