//! The ClickHouse warehouse sink (filled in by the analytics work).
use platform::config::ClickhouseConfig;
use platform::Config;
use tokio_util::sync::CancellationToken;

pub async fn run(_config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    shutdown.cancelled().await;
    Ok(())
}

pub async fn migrate(_config: &ClickhouseConfig) -> anyhow::Result<()> {
    Ok(())
}
