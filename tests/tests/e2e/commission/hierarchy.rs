//! Inactive users (skip and compress), a deactivated buyer, reactivation, and the
//! hierarchy changes that are refused.
use super::*;
use schemas::InactivePolicy;
use serde_json::json;

async fn set_status(app: &TestApp, user: UserId, action: &str) {
    let path = format!("/v1/admin/users/{user}/{action}");
    let r = app.post(&path, &app.admin, &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "{action} {user}");
}

async fn referrer_of(app: &TestApp, user: UserId) -> Option<uuid::Uuid> {
    sqlx::query_scalar("SELECT referrer_id FROM users WHERE id = $1")
        .bind(user.as_uuid())
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_inactive_beneficiary_earns_nothing_and_nobody_gets_its_share() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    set_status(&app, b, "deactivate").await;
    let r = app.purchase("skip", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    assert_eq!(app.total(b).await, "0.00");
    assert!(entries(&app, b).await.is_empty());
    assert_eq!(entries(&app, a).await, vec![e("earning", 2, "5.00")]);
    app.assert_verified().await;
}

#[tokio::test]
async fn compress_passes_an_inactive_share_up_to_the_next_active_ancestor() {
    let app = TestApp::spawn_with(|c| {
        c.plan = c
            .plan
            .clone()
            .with_inactive_policy(InactivePolicy::Compress)
    })
    .await;
    let root = app.signup(None).await;
    let a = app.signup(Some(root)).await;
    let b = app.signup(Some(a)).await;
    let c = app.signup(Some(b)).await;
    set_status(&app, b, "deactivate").await;
    let r = app.purchase("squeeze", c, "2000.00", Some("500.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // B is passed over: A is paid level 1 (5%), the root level 2 (1%).
    eventually(|| app.total(root), |t| t == "5.00").await;
    assert_eq!(app.total(a).await, "25.00");
    assert_eq!(app.total(b).await, "0.00");
    assert_eq!(entries(&app, a).await, vec![e("earning", 1, "25.00")]);
    // A's leg is still B, A's direct referral on the way down to the buyer.
    let leg: uuid::Uuid =
        sqlx::query_scalar("SELECT leg_user_id FROM earnings WHERE beneficiary_id = $1")
            .bind(a.as_uuid())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(leg, b.as_uuid());
    app.assert_verified().await;
}

#[tokio::test]
async fn a_deactivated_buyer_is_refused_and_reactivation_pays_nothing_retroactively() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    set_status(&app, c, "deactivate").await;
    let refused = problem(app.purchase("own", c, "2000.00", Some("500.00")).await).await;
    assert_eq!(
        refused,
        (StatusCode::UNPROCESSABLE_ENTITY, "user_inactive".into())
    );
    set_status(&app, c, "reactivate").await;

    set_status(&app, b, "deactivate").await;
    let r = app
        .purchase("while-off", c, "2000.00", Some("500.00"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    set_status(&app, b, "reactivate").await;
    // Back, B earns from the next purchase only: 5% of 100.00.
    let r = app.purchase("after", c, "1000.00", Some("100.00")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "6.00").await;
    assert_eq!(app.total(b).await, "5.00");
    assert_eq!(entries(&app, b).await, vec![e("earning", 1, "5.00")]);
    app.assert_verified().await;
}

#[tokio::test]
async fn invalid_hierarchy_changes_are_refused_with_distinct_codes_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let full = app.signup(None).await;
    for _ in 0..8 {
        app.signup(Some(full)).await;
    }
    let cases = [
        (
            b,
            Some(b),
            StatusCode::UNPROCESSABLE_ENTITY,
            "self_referral",
        ),
        (
            b,
            Some(UserId::new()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "referrer_not_found",
        ),
        (a, Some(c), StatusCode::CONFLICT, "cycle_detected"),
        (a, Some(b), StatusCode::CONFLICT, "cycle_detected"),
        (
            b,
            Some(full),
            StatusCode::CONFLICT,
            "referral_limit_reached",
        ),
    ];
    for (user, referrer, status, code) in cases {
        let got = problem(app.move_user(user, referrer).await).await;
        assert_eq!(
            got,
            (status, code.to_owned()),
            "moving {user} under {referrer:?}"
        );
    }
    // Postgres is unchanged, and so is the processor's graph: the chain still pays.
    assert_eq!(referrer_of(&app, a).await, None);
    assert_eq!(referrer_of(&app, b).await, Some(a.as_uuid()));
    assert_eq!(referrer_of(&app, c).await, Some(b.as_uuid()));
    let r = app
        .purchase("after-refusals", c, "2000.00", Some("500.00"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "5.00").await;
    assert_eq!(app.total(b).await, "25.00");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT ancestors FROM purchases")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let ancestors = processor::graph::Ancestor::decode_all(&stored).unwrap();
    let ids: Vec<UserId> = ancestors.iter().map(|x| x.user_id).collect();
    assert_eq!(ids, vec![b, a]);
    assert!(ancestors.iter().all(|x| x.active));

    // A valid move is seen by the next purchase: C under A pays A level 1, nobody level 2.
    let moved = app.move_user(c, Some(a)).await;
    assert_eq!(moved.status(), StatusCode::OK);
    let r = app
        .purchase("after-move", c, "2000.00", Some("500.00"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually(|| app.total(a), |t| t == "30.00").await;
    assert_eq!(app.total(b).await, "25.00");
    app.assert_verified().await;
}
