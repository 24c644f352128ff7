//! Test support: each `TestApp` owns a fresh Postgres database, its own stream prefix
//! and a random port, runs the same `Application` the binary runs, and removes its
//! database and streams when dropped. Waits are bounded polls of a condition.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod calls;
pub mod clickhouse;
mod eventually;
pub mod messages;
pub mod nats_cluster;
pub mod nats_server;
pub mod openapi;
pub mod order_lock;
pub mod ports;
pub mod private_pg;
pub mod sse;
pub mod ws;

use platform::auth::{Authenticator, Principal};
use platform::Config;
use referral::Application;
use schemas::{ShopId, UserId};
use tokio_util::sync::CancellationToken;

pub use eventually::{eventually, EVENTUALLY};

/// The value of one sample in Prometheus text (`/metrics`), named as it is written there
/// (`name`, or `name{label="x"}`); `None` when the series is not there (yet).
pub fn metric_sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

pub struct TestApp {
    pub base: String,
    pub config: Config,
    pub admin: String,
    pub shop_key: String,
    pub shop_id: ShopId,
    pub pool: sqlx::PgPool,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    db_name: String,
}

/// A config pointing at the local services (or `DATABASE_URL`, `NATS_URL`,
/// `CLICKHOUSE_URL`), with a unique database, prefix and port.
pub fn test_config() -> (Config, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("referral_test_{}", &id[..16]);
    let mut config = Config::default();
    let server = std::env::var("TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    config.database.url = format!("{server}/{db_name}");
    config.database.max_connections = 8;
    if let Ok(url) = std::env::var("NATS_URL") {
        config.nats.url = url;
    }
    if let Ok(url) = std::env::var("CLICKHOUSE_URL") {
        config.clickhouse.url = url;
    }
    config.clickhouse.database = db_name.clone();
    config.nats.prefix = format!("t{}", &id[..12]);
    // JetStream reserves a stream's max_bytes up front; tests need little.
    config.nats.stream_max_bytes = 64 * 1024 * 1024;
    config.ingest.backlog_bytes_per_shop = 8 * 1024 * 1024;
    config.http.api_addr = "127.0.0.1:0".parse().unwrap();
    config.log.filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into());
    // Services refuse the public development secrets: each test app has its own.
    config.auth.jwt_secret = platform::auth::random_secret();
    config.auth.pseudonym_key = platform::auth::random_secret();
    config.auth.metrics_token = platform::auth::random_secret();
    (config, db_name)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let (mut config, db_name) = test_config();
        adjust(&mut config);
        Self::start(config, db_name).await
    }

    pub async fn start(config: Config, db_name: String) -> TestApp {
        platform::telemetry::init(&config.log);
        let shutdown = CancellationToken::new();
        let app = Application::build(config.clone(), shutdown.clone())
            .await
            .map_err(|e| format!("{e:#}"))
            .expect("app starts");
        let base = format!("http://{}", app.addr);
        let handle = tokio::spawn(app.wait());
        // The test's own pool checks every connection before use (as sqlx does by default):
        // fault tests end every connection to the database, the observer's too.
        let observer = platform::config::DatabaseConfig {
            ping_idle_after_ms: 0,
            ..config.database.clone()
        };
        let pool = platform::db::connect(&observer).await.unwrap();
        let (shop_id, shop_key) = referral::shops::create(&pool, "test shop").await.unwrap();
        let admin = Authenticator::new(&config.auth, pool.clone())
            .issue(Principal::Admin)
            .unwrap();
        TestApp {
            base,
            config,
            admin,
            shop_key,
            shop_id,
            pool,
            http: reqwest::Client::new(),
            shutdown,
            handle: Some(handle),
            db_name,
        }
    }

    /// Stops every role and waits for them (a test of restarts builds a new app after).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Builds a new `Application` on the same config, database, prefix and shop, after
    /// `stop` or after a role stopped on its own (a crash, such as the chaos knob
    /// `processor.crash_after_commit_every`). Returns how the previous run ended.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.restart_with(|_| {}).await
    }

    /// Like `restart`, with the config adjusted first (e.g. a new plan version).
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let ended = match self.handle.take() {
            Some(h) => h.await.unwrap(),
            None => Ok(()),
        };
        adjust(&mut self.config);
        let shutdown = CancellationToken::new();
        let app = Application::build(self.config.clone(), shutdown.clone())
            .await
            .map_err(|e| format!("{e:#}"))
            .expect("app restarts");
        self.base = format!("http://{}", app.addr);
        self.handle = Some(tokio::spawn(app.wait()));
        self.shutdown = shutdown;
        ended
    }

    /// False once every role has stopped (after `stop`, or a crash).
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Publishes straight to this app's PURCHASES stream, as a shop may, bypassing ingest:
    /// `kind` is `purchases` or `refunds`. Returns once JetStream has stored it.
    pub async fn publish_raw(&self, kind: &str, msg_id: &str, payload: Vec<u8>) {
        let client = async_nats::connect(self.nats_addrs()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let subject = format!("{}.{kind}.{}", self.config.nats.prefix, self.shop_id);
        platform::nats::publish_stored(&js, subject, Some(msg_id), payload)
            .await
            .unwrap();
    }

    /// The NATS servers this app uses (one, or a cluster's).
    pub fn nats_addrs(&self) -> Vec<async_nats::ServerAddr> {
        platform::nats::server_addrs(&self.config.nats.url).unwrap()
    }

    /// `/metrics` as the configured scraper reads it.
    pub async fn metrics(&self) -> String {
        let r = self
            .get("/metrics", Some(&self.config.auth.metrics_token))
            .await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.text().await.unwrap()
    }

    /// The line of `/metrics` for the series `name` (`"<name> <value>"`; a labelled one
    /// named with its labels, as `/metrics` writes them).
    pub async fn metric_line(&self, name: &str) -> String {
        let metrics = self.metrics().await;
        let prefix = format!("{name} ");
        let line = metrics.lines().find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .to_owned()
    }

    /// A transaction of the test's own holding the graph writers' lock until it ends: every
    /// signup and graph change waits meanwhile.
    pub async fn hold_graph_writes(&self) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(platform::db::USER_EVENTS_LOCK)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    }

    /// Statements of this test's database waiting for a lock (a row, a table, an
    /// advisory lock) that another transaction holds.
    pub async fn lock_waiters(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE NOT l.granted AND a.datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub fn token_for(&self, user: UserId) -> String {
        Authenticator::new(&self.config.auth, self.pool.clone())
            .issue(Principal::User(user))
            .unwrap()
    }

    /// A user's total as the API reports it (read as admin).
    pub async fn total(&self, user: UserId) -> String {
        let v = self
            .get_json(&format!("/v1/users/{user}/earnings"), &self.admin.clone())
            .await;
        v["total"].as_str().unwrap().to_owned()
    }

    /// Purchases settled by the processor so far (all statuses).
    pub async fn settled(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM purchases")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn refunds_settled(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status <> 'pending'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until exactly the `accepted` orders are settled, each once.
    pub async fn assert_settled_once(&self, accepted: &std::collections::HashSet<String>) {
        let n = accepted.len();
        eventually(|| self.settled(), |settled| *settled >= n as i64).await;
        let settled: Vec<String> = sqlx::query_scalar("SELECT order_id FROM purchases")
            .fetch_all(&self.pool)
            .await
            .unwrap();
        assert_eq!(settled.len(), n, "each accepted purchase settled once");
        assert_eq!(
            settled
                .into_iter()
                .collect::<std::collections::HashSet<_>>(),
            *accepted
        );
    }

    /// Runs `referral verify` over this app's ledger and fails on any difference.
    pub async fn assert_verified(&self) {
        let report = processor::verify::verify(&self.pool).await.unwrap();
        assert!(
            report.differences.is_empty(),
            "verify found: {:#?}",
            report.differences
        );
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let (db, prefix, nats_url) = (
            self.db_name.clone(),
            self.config.nats.prefix.clone(),
            self.config.nats.url.clone(),
        );
        let ch = &self.config.clickhouse;
        let warehouse = ch.enabled.then(|| (ch.url.clone(), ch.database.clone()));
        let server = self
            .config
            .database
            .url
            .rsplit_once('/')
            .map(|(s, _)| s.to_owned())
            .unwrap_or_default();
        // Clean up on a thread of its own: Drop cannot await on the test's runtime (and
        // must not wait for anything that runtime drives, like the app's pool).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let addrs = platform::nats::server_addrs(&nats_url).unwrap_or_default();
                if let Ok(client) = async_nats::connect(addrs).await {
                    platform::nats::delete_streams(&async_nats::jetstream::new(client), &prefix)
                        .await;
                }
                if let Some((url, database)) = warehouse {
                    let _ = reqwest::Client::new()
                        .post(url)
                        .body(format!("DROP DATABASE IF EXISTS {database}"))
                        .send()
                        .await;
                }
                if let Ok(admin) = sqlx::PgPool::connect(&format!("{server}/postgres")).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                        .execute(&admin)
                        .await;
                }
            });
        })
        .join();
    }
}
