//! The processor's start loads the referral graph from a snapshot of `users` and the
//! outbox position it reflects; it must be the graph that replaying every event builds.
use e2e::TestApp;
use processor::graph::ReferralGraph;
use reqwest::StatusCode;
use schemas::UserId;

#[tokio::test]
async fn a_snapshot_of_users_loads_the_graph_that_replaying_the_events_builds() {
    let app = TestApp::spawn().await;
    // Signups, then changes that make the table's order differ from the events' order: a
    // user moved under someone who signed up after them, a move to the top, statuses.
    let (a, b, c) = app.chain3().await;
    let d = app.signup(Some(a)).await;
    let e = app.signup(None).await;
    let f = app.signup(Some(e)).await;
    assert_eq!(app.move_user(a, Some(f)).await.status(), StatusCode::OK);
    assert_eq!(app.move_user(d, None).await.status(), StatusCode::OK);
    for (user, action) in [
        (c, "deactivate"),
        (e, "deactivate"),
        (e, "reactivate"),
        (b, "deactivate"),
    ] {
        let path = format!("/v1/admin/users/{user}/{action}");
        assert_eq!(
            app.post(&path, &app.admin, &serde_json::json!({}))
                .await
                .status(),
            StatusCode::OK
        );
    }

    let page = app.config.processor.graph_sync_page;
    let (loaded, after) = processor::graph_sync::load(&app.pool, page).await.unwrap();
    let mut replayed = ReferralGraph::default();
    let events = processor::graph_sync::catch_up(&app.pool, &mut replayed, page)
        .await
        .unwrap();
    assert_eq!(after, 0, "nothing changed after the snapshot");
    assert_eq!(
        events,
        6 + 2 + 4,
        "six signups, two moves, four status changes"
    );
    assert_eq!((loaded.len(), loaded.seq), (replayed.len(), replayed.seq));
    for u in [a, b, c, d, e, f] {
        assert_eq!(loaded.referrer(u), replayed.referrer(u), "referrer of {u}");
        assert_eq!(loaded.is_active(u), replayed.is_active(u), "status of {u}");
    }
    let up =
        |u: UserId| -> Vec<UserId> { loaded.ancestors(u, 9).iter().map(|x| x.user_id).collect() };
    assert_eq!(up(c), vec![b, a, f, e]);
    assert_eq!(loaded.referrer(d), None);
    assert_eq!(loaded.is_active(b), Some(false));
    assert_eq!(loaded.is_active(e), Some(true));
}

async fn graph_users(app: &TestApp) -> String {
    app.metric_line("referral_graph_users").await
}

/// `referral_graph_users` is the processor's graph as of its last sync: what `bench reports`
/// waits on before it measures, and what an operator reads to see the start is over.
#[tokio::test]
async fn the_graph_users_gauge_follows_the_processors_graph() {
    let app = TestApp::spawn().await;
    let (_, _, c) = app.chain3().await;
    // A fourth user, signed up after the processor's start: in its graph only once synced.
    app.signup(None).await;
    let r = app
        .purchase("graph-gauge-1", c, "1500.00", Some("300.00"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The batch paying the purchase syncs the graph first: all four users are in it.
    e2e::eventually(|| app.settled(), |n| *n == 1).await;
    assert_eq!(graph_users(&app).await, "referral_graph_users 4");
}
