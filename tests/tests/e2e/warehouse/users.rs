//! The user-scoped analytics routes answer the ledger's numbers to an admin and to the
//! user, and refuse everyone else; without a warehouse every analytics route says so.
use super::money;
use super::seed::Workload;
use chrono::{Duration, Utc};
use e2e::TestApp;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;

const OVER_TIME: &str = "/v1/users/{id}/analytics/earnings-over-time";
const LEVELS: &str = "/v1/users/{id}/analytics/levels";
const LEGS: &str = "/v1/users/{id}/analytics/legs";
const ADMIN_ROUTES: [&str; 3] = [
    "/v1/analytics/top-earners",
    "/v1/analytics/purchases-per-shop",
    "/v1/analytics/conversion",
];

fn lines(items: &Value, fields: &[&str]) -> BTreeSet<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    i[*f]
                        .as_str()
                        .map_or_else(|| i[*f].to_string(), str::to_owned)
                })
                .collect();
            parts.join(" ")
        })
        .collect()
}

async fn problem(app: &TestApp, path: &str, bearer: &str, status: StatusCode) -> Value {
    let r = app.get(path, Some(bearer)).await;
    assert_eq!(r.status(), status, "GET {path}");
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(kind, "application/problem+json", "GET {path}");
    r.json().await.unwrap()
}

pub async fn check(app: &TestApp, w: &Workload, documented: &dyn Fn(&str, u16, &Value)) {
    let admin = app.admin.clone();
    let today = Utc::now().date_naive();
    let from = today - Duration::days(10);
    let (root, a1, b3) = (w.tree[0], w.tree[1], w.tree[6]);
    for user in [root, a1, b3, w.loner] {
        let id = user.as_uuid();
        let path = format!("/v1/users/{user}/analytics/earnings-over-time?from={from}&to={today}");
        let body = app.get_json(&path, &admin).await;
        documented(OVER_TIME, 200, &body);
        let want: BTreeSet<String> = sqlx::query!(
            r#"SELECT (created_at AT TIME ZONE 'UTC')::date AS "day!", level, sum(amount) AS "total!", count(*) AS "entries!"
               FROM earnings WHERE beneficiary_id = $1 AND (created_at AT TIME ZONE 'UTC')::date BETWEEN $2 AND $3
               GROUP BY 1, 2"#,
            id, from, today
        )
        .fetch_all(&app.pool).await.unwrap().into_iter()
        .map(|r| format!("{} {} {} {}", r.day, r.level, money(r.total), r.entries))
        .collect();
        assert_eq!(
            lines(&body["points"], &["day", "level", "total", "entries"]),
            want
        );

        let body = app
            .get_json(&format!("/v1/users/{user}/analytics/levels"), &admin)
            .await;
        documented(LEVELS, 200, &body);
        let want: BTreeSet<String> = sqlx::query!(
            r#"SELECT level, sum(amount) AS "total!", count(*) AS "entries!" FROM earnings WHERE beneficiary_id = $1 GROUP BY 1"#,
            id
        )
        .fetch_all(&app.pool).await.unwrap().into_iter()
        .map(|r| format!("{} {} {}", r.level, money(r.total), r.entries))
        .collect();
        assert_eq!(lines(&body["levels"], &["level", "total", "entries"]), want);
        assert_eq!(
            body,
            app.get_json(
                &format!("/v1/users/{user}/analytics/levels"),
                &app.token_for(user)
            )
            .await
        );

        let body = app
            .get_json(&format!("/v1/users/{user}/analytics/legs"), &admin)
            .await;
        documented(LEGS, 200, &body);
        let want: BTreeSet<String> = sqlx::query!(
            r#"SELECT leg_user_id, sum(amount) AS "total!", count(*) AS "entries!" FROM earnings WHERE beneficiary_id = $1 GROUP BY 1"#,
            id
        )
        .fetch_all(&app.pool).await.unwrap().into_iter()
        .map(|r| format!("{} {} {}", r.leg_user_id, money(r.total), r.entries))
        .collect();
        assert_eq!(
            lines(&body["legs"], &["leg_user_id", "total", "entries"]),
            want
        );
        assert_eq!(
            want.is_empty(),
            user == w.loner,
            "only the loner earns nothing"
        );
    }

    // Another user's analytics, and the admin views, are closed to a user.
    let other = app.token_for(w.tree[7]);
    for template in [OVER_TIME, LEVELS, LEGS] {
        let body = problem(
            app,
            &template.replace("{id}", &root.to_string()),
            &other,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(body["code"], "forbidden");
        documented(template, 403, &body);
    }
    for path in ADMIN_ROUTES {
        let body = problem(app, path, &other, StatusCode::FORBIDDEN).await;
        assert_eq!(body["code"], "forbidden");
    }
    let stranger = uuid::Uuid::now_v7();
    let body = problem(
        app,
        &format!("/v1/users/{stranger}/analytics/levels"),
        &admin,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["code"], "not_found");
    let backwards = format!("/v1/users/{root}/analytics/earnings-over-time?from={today}&to={from}");
    let body = problem(app, &backwards, &admin, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["code"], "invalid_range");
    let body = problem(
        app,
        "/v1/analytics/purchases-per-shop?from=yesterday",
        &admin,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["code"], "invalid_query");
    let body = problem(
        app,
        "/v1/analytics/top-earners?limit=0",
        &admin,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["code"], "invalid_limit");
}

#[tokio::test]
async fn without_a_warehouse_every_analytics_route_answers_503_analytics_disabled() {
    let app = TestApp::spawn().await;
    let user = app.signup(None).await;
    let mut paths: Vec<String> = ADMIN_ROUTES.iter().map(|p| p.to_string()).collect();
    for template in [OVER_TIME, LEVELS, LEGS] {
        paths.push(template.replace("{id}", &user.to_string()));
    }
    for path in paths {
        let body = problem(&app, &path, &app.admin, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(body["code"], "analytics_disabled", "GET {path}");
    }
}
