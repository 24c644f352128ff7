//! The application started on a bench's database and read as an admin over `/v1`: what
//! `bench reports` and `bench analytics` measure their routes against.
use super::pipeline::Generator;
use super::reads_wrk;
use super::reports::{latency, warm_up, Latency, Load};
use crate::Application;
use platform::auth::{Authenticator, Principal};
use platform::Config;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(super) struct Served {
    /// `http://<addr>/v1`.
    base: String,
    http: reqwest::Client,
    token: String,
    shutdown: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

impl Served {
    /// Starts every role on `config`, with a client keeping `load.readers` connections.
    pub(super) async fn start(config: &Config, pool: &PgPool, load: &Load) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let app = Application::build(config.clone(), shutdown.clone()).await?;
        let base = format!("http://{}/v1", app.addr);
        let running = tokio::spawn(app.wait());
        graph_loaded(pool).await?;
        let token = Authenticator::new(&config.auth, pool.clone()).issue(Principal::Admin)?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(load.readers)
            .build()?;
        Ok(Served {
            base,
            http,
            token,
            shutdown,
            running,
        })
    }

    /// `load`'s requests of `path` (under `/v1`), as `report`.
    pub(super) async fn latency(
        &self,
        report: &'static str,
        path: &str,
        load: &Load,
    ) -> anyhow::Result<Latency> {
        let url = format!("{}{path}", self.base);
        match load.generator {
            Generator::InProcess => latency(&self.http, &self.token, report, &url, load).await,
            Generator::Wrk => {
                warm_up(&self.http, &self.token, report, &url, load).await?;
                let script = reads_wrk::script()?;
                let shape = (load.readers, load.seconds);
                let measured = reads_wrk::latency(&script, &self.token, report, &url, shape).await;
                let _ = std::fs::remove_file(&script);
                measured
            }
        }
    }

    /// One GET of `path` (under `/v1`), its JSON body.
    pub(super) async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub(super) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.running.await;
    }
}

/// Waits until the processor has loaded the referral graph: at 1M users that takes a core
/// for over a second, and reads measured meanwhile measured the start as much as the
/// reports (totals, measured first, had its p99 at ~1 s in one run of four; stop 35).
/// The load itself is measured on its own (`bench reports`' graph load line).
async fn graph_loaded(pool: &PgPool) -> anyhow::Result<()> {
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(pool)
        .await?;
    if !any {
        return Ok(()); // an empty graph reads as 0 users, loaded or not
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while platform::metrics::metrics().graph_users.get() == 0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the processor did not load the referral graph within 600 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}
