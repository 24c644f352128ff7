//! The application started on a bench's database and read as an admin over `/v1`: what
//! `bench reports` and `bench analytics` measure their routes against.
use super::reports::{latency, Latency, Load};
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
        latency(&self.http, &self.token, report, &url, load).await
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
