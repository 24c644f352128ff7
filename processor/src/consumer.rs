//! The processor role: start (migrate or not, record the plan, load the graph), then run
//! the stream stage's workers (`stage`) until shutdown.
use crate::graph::ReferralGraph;
use crate::{graph_sync, plans};
use async_nats::jetstream;
use platform::nats::Subjects;
use platform::Config;
use sqlx::PgPool;
use stage::Stage;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod stage;

pub const DURABLE_NAME: &str = platform::nats::PROCESSOR_CONSUMER;

/// The processor as a role of its own: it migrates the database first.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A config built in code (tests, benches) passes the checks a loaded one did.
    config.validate()?;
    let pool = platform::db::create_and_migrate(&config.database).await?;
    serve(config, pool, shutdown).await
}

/// The processor beside a role that has migrated the database (`referral all`): migrating
/// again only repeats the work, and a statement of it cut off (Postgres ending connections)
/// would fail the start, where the graph load after it waits for Postgres to come back.
pub async fn run_migrated(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate()?;
    let pool = platform::db::connect(&config.database).await?;
    serve(config, pool, shutdown).await
}

async fn serve(config: Config, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = platform::nats::connect(&config.nats).await?;
    let js = jetstream::new(nats);
    platform::nats::ensure_streams(&js, &config.nats).await?;
    let subjects = Subjects::new(&config.nats.prefix);
    let Some((graph, loaded)) = prepare(&pool, &config, &shutdown).await? else {
        return Ok(()); // told to stop while Postgres was away
    };
    tracing::info!(
        users = graph.len(),
        events_after_snapshot = loaded,
        "referral graph loaded"
    );

    let stage = Arc::new(Stage {
        pool,
        js,
        subjects,
        config,
        committed: AtomicU32::new(0),
    });
    let users = i64::try_from(graph.len()).unwrap_or(i64::MAX);
    let graphs = copies(graph, stage.config.processor.workers).await?;
    // Set once every worker has its copy: the start is over.
    platform::metrics::metrics().graph_users.set(users);
    // Workers share the durable consumer as N processors would: while one waits on
    // Postgres or the stream, another applies its batch (per-order locks and totals
    // locked in user-id order keep them apart; the live feed reorders per user).
    let mut running = tokio::task::JoinSet::new();
    for graph in graphs {
        let (stage, shutdown) = (stage.clone(), shutdown.clone());
        running.spawn(async move { stage.work(graph, shutdown).await });
    }
    let mut result = Ok(());
    while let Some(done) = running.join_next().await {
        let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
        if outcome.is_err() && result.is_ok() {
            // One worker failing stops the role (its batch is redelivered); the others
            // finish what they hold first.
            shutdown.cancel();
            result = outcome;
        }
    }
    tracing::info!("processor stopped");
    result
}

/// One graph per worker (each syncs its own before a batch): the loaded one goes to the last
/// worker rather than being kept beside the copies (which held a third copy for the life of
/// the process: ~95 MiB at 1M users, ~800 MiB at 10M), and the copies are made off the
/// runtime, where a 10M-user clone would hold a worker the API shares in `referral all`.
async fn copies(graph: ReferralGraph, workers: usize) -> anyhow::Result<Vec<ReferralGraph>> {
    let copy = move || {
        let mut all: Vec<ReferralGraph> = (1..workers).map(|_| graph.clone()).collect();
        all.push(graph);
        all
    };
    Ok(tokio::task::spawn_blocking(copy).await?)
}

/// Records the plan, checks the settings every processor must share, and loads the
/// referral graph, waiting out a Postgres that is away or
/// refuses writes (with the batch retry backoff) instead of failing the role: in `all`, a
/// failed role stops ingest and the API with it. `None`: told to stop first.
async fn prepare(
    pool: &PgPool,
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<(ReferralGraph, usize)>> {
    let limits = &config.processor;
    let mut backoff = Duration::from_millis(limits.retry_backoff_first_ms);
    loop {
        let attempt = async {
            plans::register(pool, &config.plan).await?;
            crate::settings::register_order_lock_buckets(pool, limits.order_lock_buckets).await?;
            graph_sync::load(pool, limits.graph_sync_page).await
        };
        match attempt.await {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(e) if platform::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "Postgres unavailable at start; retrying");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_millis(limits.retry_backoff_max_ms));
    }
}
