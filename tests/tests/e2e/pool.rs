//! The database pool: sqlx pinged every connection before handing it out, a round trip
//! before each statement; now only one idle past `[database] ping_idle_after_ms` is.
use e2e::{eventually, TestApp};
use sqlx::PgPool;

async fn pool_pinging_after(app: &TestApp, idle_ms: u64) -> PgPool {
    let mut database = app.config.database.clone();
    database.max_connections = 1;
    database.ping_idle_after_ms = idle_ms;
    platform::db::connect(&database).await.unwrap()
}

async fn backend(pool: &PgPool) -> sqlx::Result<i32> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
}

/// Ends the pool's one connection once it is back in the pool (sqlx's release of it has
/// finished), and waits until Postgres no longer lists it.
async fn end_idle_connection(app: &TestApp, pool: &PgPool, pid: i32) {
    eventually(|| async { pool.num_idle() }, |idle| *idle == 1).await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&app.pool)
        .await
        .unwrap();
    until_gone(app, &[pid]).await;
}

/// Waits until Postgres lists none of these backends.
async fn until_gone(app: &TestApp, pids: &[i32]) {
    eventually(
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1))",
            )
            .bind(pids)
            .fetch_one(&app.pool)
            .await
            .unwrap()
        },
        |listed| !listed,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_connection_idle_past_the_bound_is_pinged_before_use() {
    let app = TestApp::spawn().await;

    // Pinged (idle at least 0 ms): the ended connection is found dead and replaced.
    let pinged = pool_pinging_after(&app, 0).await;
    let first = backend(&pinged).await.unwrap();
    end_idle_connection(&app, &pinged, first).await;
    let second = backend(&pinged)
        .await
        .expect("a dead connection found by the ping is replaced");
    assert_ne!(first, second);

    // Used within the bound (an hour): handed out as it is, no round trip first, so the
    // statement itself meets the ended connection; the pool then opens a new one.
    let trusted = pool_pinging_after(&app, 3_600_000).await;
    let first = backend(&trusted).await.unwrap();
    end_idle_connection(&app, &trusted, first).await;
    assert!(
        backend(&trusted).await.is_err(),
        "a recently used connection is not pinged before use"
    );
    let next = backend(&trusted).await.expect("the pool recovers");
    assert_ne!(first, next);
}

/// A shop key not cached yet is looked up in Postgres; when that lookup meets a connection
/// Postgres ended (handed out unpinged: the bound is an hour here), the answer is a
/// retryable 503 `database_unavailable` (`Problem::internal` tells an unavailable database
/// from a fault), never a 500, and the retry authenticates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_lookup_on_an_ended_connection_is_a_503_and_the_retry_authenticates() {
    use reqwest::StatusCode;
    let app = TestApp::spawn_with(|c| c.database.ping_idle_after_ms = 3_600_000).await;
    let (_, key) = referral::shops::create(&app.pool, "second shop")
        .await
        .unwrap();
    // A signup leaves the edge's pool holding an idle, recently used connection.
    app.signup(None).await;
    let ended: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity, pg_terminate_backend(pid)
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(!ended.is_empty());
    until_gone(&app, &ended).await;
    let send = || async {
        let r = app
            .post("/v1/purchases", &key, &serde_json::json!({}))
            .await;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        (status, body["code"].as_str().unwrap_or("").to_owned())
    };
    let (status, code) = send().await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
    );
    // The failed connection left the pool; the retry authenticates (and reads the body).
    let (status, code) = eventually(send, |(s, _)| *s != StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
}
