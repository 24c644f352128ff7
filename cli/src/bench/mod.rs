//! `referral bench …`: measurements on this machine, each reported as a ratio against a
//! baseline run in the same process on the same services. Each run builds the whole
//! application on a scratch database and stream prefix, and removes both after.
mod latency;
mod live;
mod pipeline;

use crate::Application;
use anyhow::Context;
use platform::Config;
use tokio_util::sync::CancellationToken;

#[derive(clap::Subcommand, Debug)]
pub enum Bench {
    /// Purchases through ingest and the processor vs raw JetStream publishes.
    Pipeline(pipeline::PipelineArgs),
    /// Fan-out of live entries to many SSE clients vs a raw NATS subscriber.
    Live(live::LiveArgs),
    /// Purchase → SSE latency, idle and under a background load.
    Latency(latency::LatencyArgs),
}

pub async fn run(mut config: Config, bench: Bench) -> anyhow::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let server = config
        .database
        .url
        .rsplit_once('/')
        .map(|(s, _)| s.to_owned())
        .context("database url")?;
    let db = format!("referral_bench_{tag}");
    config.database.url = format!("{server}/{db}");
    config.nats.prefix = format!("bench{tag}");
    config.nats.stream_max_bytes = 512 * 1024 * 1024;
    config.http.api_addr = "127.0.0.1:0".parse()?;
    config.http.rate_limit_per_sec = u32::MAX / 2;
    config.http.rate_limit_burst = u32::MAX / 2;
    config.clickhouse.enabled = false;
    // A scratch instance in this process: its own secrets, whatever the config says.
    config.auth.jwt_secret = platform::auth::random_secret();
    config.auth.pseudonym_key = platform::auth::random_secret();
    if let Bench::Live(args) = &bench {
        config.live.max_connections_total = args.clients + 1;
    }
    let shutdown = CancellationToken::new();
    let app = Application::build(config.clone(), shutdown.clone()).await?;
    let base = format!("http://{}", app.addr);
    let running = tokio::spawn(app.wait());
    let result = match &bench {
        Bench::Pipeline(args) => pipeline::measure(&config, &base, args).await,
        Bench::Live(args) => live::measure(&config, &base, args).await,
        Bench::Latency(args) => latency::measure(&config, &base, args).await,
    };
    shutdown.cancel();
    let _ = running.await;
    cleanup(&config, &server, &db).await;
    result
}

async fn cleanup(config: &Config, server: &str, db: &str) {
    if let Ok(client) = platform::nats::connect(&config.nats).await {
        let js = async_nats::jetstream::new(client);
        platform::nats::delete_streams(&js, &config.nats.prefix).await;
        let _ = js
            .delete_stream(format!("{}_RAW", config.nats.prefix.to_uppercase()))
            .await;
    }
    if let Ok(admin) = sqlx::PgPool::connect(&format!("{server}/postgres")).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}
