//! All roles in one process: ingest and api routes on one listener, the processor
//! (and the warehouse sink when ClickHouse is enabled) as tasks. Stands in for N
//! instances of each behind a load balancer (see README "Scaling out").
use anyhow::Context;
use platform::Config;
use std::net::SocketAddr;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct Application {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Application {
    /// Migrates, connects, binds, and starts every role; returns once the listener is
    /// serving (the processor and the sink finish their own start in their tasks).
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        // A config built in code (tests, benches) passes the checks a loaded one did.
        config.validate()?;
        config.auth.check_secrets(&[config.http.api_addr])?;
        let migrated = platform::db::create_and_migrate(&config.database).await?;
        processor::plans::register(&migrated, &config.plan).await?;
        migrated.close().await;
        let pool =
            platform::db::connect_for_requests(&config.database, config.http.request_timeout_ms)
                .await?;
        let nats = platform::nats::connect(&config.nats).await?;
        platform::nats::ensure_streams(&async_nats::jetstream::new(nats.clone()), &config.nats)
            .await?;

        let ingest_state = ingest::IngestState::new(&config, pool.clone(), nats.clone())?;
        let api_state = api::ApiState::new(&config, pool, nats, shutdown.clone()).await?;
        let routes = ingest::router(ingest_state).merge(api::router(api_state.clone()));
        let doc = api::openapi::document(vec![<ingest::IngestDoc as utoipa::OpenApi>::openapi()]);
        let gate = platform::gate::Gate::new(&config.http, api_state.auth.clone());
        let open = api::streaming_router(api_state).merge(api::openapi::route(doc));
        let app = platform::http::with_limits(routes, &config.http, &gate)
            .merge(platform::http::with_stream_limits(open, &gate));
        let listener = platform::http::bind(config.http.api_addr).await?;
        let addr = listener.local_addr()?;

        let mut tasks = JoinSet::new();
        let (http, token) = (config.http.clone(), shutdown.clone());
        tasks.spawn(async move {
            let served = platform::http::serve(listener, app, &http, token).await;
            ("http", served)
        });
        let (c, token) = (config.clone(), shutdown.clone());
        tasks.spawn(async move { ("processor", processor::run_migrated(c, token).await) });
        if config.clickhouse.enabled {
            let (c, token) = (config.clone(), shutdown.clone());
            tasks.spawn(async move { ("warehouse", warehouse::run(c, token).await) });
        }
        tracing::info!(%addr, "referral all: serving ingest, api and dashboard");
        Ok(Application {
            addr,
            shutdown,
            tasks,
        })
    }

    /// Runs until shutdown or until a role fails; a failing role stops the others.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (role, result) = joined.context("a role panicked")?;
            if let Err(e) = result {
                tracing::error!(role, error = ?e, "role failed; stopping");
                first_error.get_or_insert(e.context(role));
            }
            self.shutdown.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }
}
