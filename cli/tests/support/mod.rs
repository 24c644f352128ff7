//! What the real-process tests share: a scratch database and stream prefix, spawning a
//! role of the `referral` binary on them, and polling.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const JWT_SECRET: &str = "5f0c1e9a7b3d28e64c0a91f7d2b58e3c6a4f09d1";

/// One deployment's shared state: a database, a stream prefix, and the addresses.
pub struct Roles {
    pub server: String,
    pub tag: String,
    pub database_url: String,
    pub nats_url: String,
    pub prefix: String,
    pub ingest_addr: String,
}

impl Roles {
    /// A fresh database (migrated) and prefix; the pool is for the test's own checks.
    pub async fn new(name: &str) -> (Roles, sqlx::PgPool) {
        let server = std::env::var("TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let config = platform::config::DatabaseConfig {
            url: format!("{server}/referral_{name}_{tag}"),
            ..Default::default()
        };
        let pool = platform::db::create_and_migrate(&config).await.unwrap();
        let roles = Roles {
            server,
            database_url: config.url.clone(),
            nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            prefix: format!("{name}{tag}"),
            ingest_addr: format!("127.0.0.1:{}", free_port()),
            tag,
        };
        (roles, pool)
    }

    /// Starts `referral <role>`; an `api` role listens on `api_port`.
    pub fn spawn(&self, role: &str, api_port: Option<u16>) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_referral"));
        command
            .arg(role)
            .env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", &self.nats_url)
            .env("REFERRAL_NATS__PREFIX", &self.prefix)
            .env("REFERRAL_HTTP__INGEST_ADDR", &self.ingest_addr)
            .env("REFERRAL_HTTP__RATE_LIMIT_PER_SEC", "100000")
            .env("REFERRAL_HTTP__RATE_LIMIT_BURST", "100000")
            .env("REFERRAL_AUTH__JWT_SECRET", JWT_SECRET)
            .env(
                "REFERRAL_AUTH__PSEUDONYM_KEY",
                "e27a90c4d1f36b58a0e9c2d47f1b3865",
            )
            .env("REFERRAL_PROCESSOR__RETRY_BACKOFF_MAX_MS", "500")
            // What a killed processor had pulled and not acknowledged is redelivered
            // after this (10 s by default), to the other processor or the restarted one.
            .env("REFERRAL_PROCESSOR__ACK_WAIT_SECS", "5")
            .env("REFERRAL_LOG__FILTER", "warn")
            .stdout(Stdio::null());
        if let Some(port) = api_port {
            command.env("REFERRAL_HTTP__API_ADDR", format!("127.0.0.1:{port}"));
        }
        Process(command.spawn().unwrap())
    }

    pub fn ingest_base(&self) -> String {
        format!("http://{}", self.ingest_addr)
    }

    /// Drops the database and the streams.
    pub async fn clean_up(self, pool: sqlx::PgPool, name: &str) {
        pool.close().await;
        if let Ok(client) = async_nats::connect(self.nats_url.as_str()).await {
            platform::nats::delete_streams(&async_nats::jetstream::new(client), &self.prefix).await;
        }
        let admin = sqlx::PgPool::connect(&format!("{}/postgres", self.server))
            .await
            .unwrap();
        let drop = format!(
            "DROP DATABASE IF EXISTS \"referral_{name}_{}\" WITH (FORCE)",
            self.tag
        );
        sqlx::query(&drop).execute(&admin).await.unwrap();
    }
}

/// A running role, SIGKILLed when dropped (a failing test leaves no process behind).
pub struct Process(Child);

impl Process {
    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

// The e2e crate's port claims (outside the ephemeral range, one lock file a port), shared
// as source: this test crate cannot depend on `e2e`, which depends on it. A port taken with
// `bind :0` and released could be handed to another test before the child process binds it.
#[path = "../../../tests/src/ports.rs"]
mod ports;
pub use ports::free_port;

/// Polls `check` every 20 ms until it holds, for at most `limit`.
pub async fn until<F: std::future::Future<Output = bool>>(limit: Duration, check: impl Fn() -> F) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `url` answers at all (the process is listening).
pub async fn listening(http: &reqwest::Client, url: &str) {
    until(Duration::from_secs(30), || async {
        http.get(url).send().await.is_ok()
    })
    .await;
}

pub async fn signup(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    referrer: Option<&str>,
) -> String {
    let r = http
        .post(format!("{base}/v1/users"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "referrer_id": referrer }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// One purchase of ₹1000 with ₹100 profit (pays the parent 5.00, the grandparent 1.00).
pub async fn purchase(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    user: &str,
    order: String,
) -> reqwest::StatusCode {
    let body = serde_json::json!({ "order_id": order, "user_id": user,
                                   "amount": "1000.00", "profit": "100.00" });
    http.post(format!("{base}/v1/purchases"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}
