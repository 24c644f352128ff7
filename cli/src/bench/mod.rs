//! `referral bench …`: measurements on this machine, each reported as a ratio against a
//! baseline run in the same process on the same services. Each run builds the whole
//! application on a scratch database and stream prefix, and removes both after.
mod analytics;
mod latency;
mod live;
mod live_load;
mod pipeline;
mod reads_wrk;
mod reports;
mod seed;
mod served;
mod soak;
mod warehouse;
mod warehouse_rowbinary;

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
    /// The client side of `live`, in its own process (started by `live`).
    #[command(hide = true)]
    LiveLoad(live_load::LiveLoadArgs),
    /// Purchase → SSE latency, idle and under a background load.
    Latency(latency::LatencyArgs),
    /// Build a large, skewed ledger in bulk (COPY) on a named database, kept for `reports`.
    Seed(seed::SeedArgs),
    /// Report latencies (p50/p99) under concurrent readers for the heaviest user, and the
    /// processor's graph load time and memory, on a seeded database.
    Reports(reports::ReportsArgs),
    /// The ClickHouse analytics routes' latency on a warehouse the server fills itself.
    Analytics(analytics::AnalyticsArgs),
    /// Minutes of mixed traffic (signups, purchases, retries, refunds, deactivations,
    /// re-parenting) with database connections cut on a schedule; then every accepted
    /// order paid once, verify clean, memory over time.
    Soak(soak::SoakArgs),
    /// The ClickHouse sink catching up on a backlog of entries on the stream, vs the
    /// same rows inserted straight into ClickHouse.
    Warehouse(warehouse::WarehouseArgs),
}

/// Runs one bench; Ctrl-C (`interrupt`) stops its measurement and still removes the
/// scratch state it made (a seeded database, named by the caller, is left as it is).
pub async fn run(
    mut config: Config,
    bench: Bench,
    interrupt: CancellationToken,
) -> anyhow::Result<()> {
    match &bench {
        Bench::Seed(args) => return until(&interrupt, seed::run(&config, args)).await,
        Bench::Reports(args) => return reports::run(config, args, &interrupt).await,
        Bench::Analytics(args) => return analytics::run(config, args, &interrupt).await,
        Bench::LiveLoad(args) => return until(&interrupt, live_load::run(args)).await,
        Bench::Warehouse(args) => return warehouse::run(config, args, &interrupt).await,
        Bench::Pipeline(_) | Bench::Live(_) | Bench::Latency(_) | Bench::Soak(_) => {}
    }
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let server = config
        .database
        .url
        .rsplit_once('/')
        .map(|(s, _)| s.to_owned())
        .context("database url")?;
    let db = format!("referral_bench_{tag}");
    tracing::info!(database = %db, "bench scratch instance");
    scratch_instance(&mut config, format!("{server}/{db}"), &tag);
    if let Bench::Live(args) = &bench {
        config.live.max_connections_total = args.clients + 1;
        raise_fd_limit(args.clients)?;
    }
    let shutdown = CancellationToken::new();
    let app = Application::build(config.clone(), shutdown.clone()).await?;
    let base = format!("http://{}", app.addr);
    let running = tokio::spawn(app.wait());
    let measured = async {
        match &bench {
            Bench::Pipeline(args) => pipeline::measure(&config, &base, args).await,
            Bench::Live(args) => live::measure(&config, &base, args).await,
            Bench::Latency(args) => latency::measure(&config, &base, args).await,
            Bench::Soak(args) => soak::measure(&config, &base, args).await,
            Bench::Seed(_)
            | Bench::Reports(_)
            | Bench::Analytics(_)
            | Bench::LiveLoad(_)
            | Bench::Warehouse(_) => Ok(()), // run on their own database above
        }
    };
    let result = until(&interrupt, measured).await;
    shutdown.cancel();
    let _ = running.await;
    cleanup(&config, Some(&db)).await;
    result
}

/// `work` unless `interrupt` fires first: then an "interrupted" error, and `work` is
/// dropped where it stood.
async fn until<T>(
    interrupt: &CancellationToken,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        done = work => done,
        () = interrupt.cancelled() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// An instance in this process on database `url` and stream prefix `bench<tag>`, its
/// own listener and secrets, no rate limits or bounds per address or caller (the load is
/// one host, and one credential sends all of it), no ClickHouse.
fn scratch_instance(config: &mut Config, url: String, tag: &str) {
    config.database.url = url;
    config.nats.prefix = format!("bench{tag}");
    // Room for a sustained load's backlog: a full PURCHASES stream answers 503 (as it
    // should), which would end the load instead of measuring how far settling falls behind.
    config.nats.stream_max_bytes = 4 * 1024 * 1024 * 1024;
    // One shop sends the whole load: its share is the whole stream.
    config.ingest.backlog_bytes_per_shop = 4 * 1024 * 1024 * 1024;
    config.http.api_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.rate_limit_per_sec = u32::MAX / 2;
    config.http.rate_limit_burst = u32::MAX / 2;
    config.http.max_connections_per_address = 0;
    config.http.max_in_flight_per_caller = config.http.max_concurrent_requests;
    config.http.max_in_flight_per_user = config.http.max_concurrent_requests;
    // The report bench reads one heavy user with every reader: all places are that user's.
    config.reports.max_concurrent_reads_per_user = config.reports.max_concurrent_reads;
    config.ingest.purchases_per_sec_per_shop = u32::MAX / 2;
    config.ingest.purchases_burst_per_shop = u32::MAX / 2;
    config.clickhouse.enabled = false;
    config.auth.jwt_secret = platform::auth::random_secret();
    config.auth.pseudonym_key = platform::auth::random_secret();
}

/// Room for `connections` sockets beside this process's other files: the soft limit
/// and, where the process may (root), the hard limit too, for this process only.
fn raise_fd_limit(connections: usize) -> anyhow::Result<()> {
    use rlimit::Resource;
    let want = u64::try_from(connections)?.saturating_add(1_024);
    let (soft, hard) = Resource::NOFILE.get()?;
    if soft >= want {
        return Ok(());
    }
    if Resource::NOFILE.set(want, hard.max(want)).is_err() {
        let got = rlimit::increase_nofile_limit(want)?;
        anyhow::ensure!(
            got >= want,
            "{connections} connections need {want} open files; this process may open {got}"
        );
    }
    Ok(())
}

/// The configured server's URL with `database` in place of its database.
fn database_url(config: &Config, database: &str) -> anyhow::Result<String> {
    let (server, _) = config
        .database
        .url
        .rsplit_once('/')
        .context("database url")?;
    Ok(format!("{server}/{database}"))
}

async fn drop_database(config: &Config, database: &str) -> anyhow::Result<()> {
    let admin = sqlx::PgPool::connect(&database_url(config, "postgres")?).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    ))
    .execute(&admin)
    .await?;
    Ok(())
}

/// Removes the instance's streams, and its database when it was a scratch one.
async fn cleanup(config: &Config, scratch_db: Option<&str>) {
    if let Ok(client) = platform::nats::connect(&config.nats).await {
        let js = async_nats::jetstream::new(client);
        platform::nats::delete_streams(&js, &config.nats.prefix).await;
        let _ = js
            .delete_stream(format!("{}_RAW", config.nats.prefix.to_uppercase()))
            .await;
    }
    if let Some(db) = scratch_db {
        let _ = drop_database(config, db).await;
    }
}

/// An entry of 0.00 as the processor announces it on `ledger.entries`, at position `seq`
/// of `user`'s ledger (fresh ids; the user is its own source and leg).
fn announced_entry(
    user: schemas::UserId,
    seq: u64,
    created_at: chrono::DateTime<chrono::Utc>,
) -> schemas::EarningEvent {
    schemas::EarningEvent {
        earning_id: uuid::Uuid::now_v7(),
        seq,
        purchase_id: uuid::Uuid::now_v7(),
        shop_id: schemas::ShopId(uuid::Uuid::nil()),
        beneficiary_id: user,
        source_user_id: user,
        leg_user_id: user,
        level: 1,
        direct: true,
        kind: schemas::EntryKind::Earning,
        amount: schemas::Money::ZERO,
        total: schemas::Money::ZERO,
        plan_version: 1,
        created_at,
    }
}

/// Signs a user up through the API, as a shop would.
async fn signup(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    referrer: Option<schemas::UserId>,
) -> anyhow::Result<schemas::UserId> {
    let r: serde_json::Value = http
        .post(format!("{base}/v1/users"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "referrer_id": referrer }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(r["id"].as_str().context("signup id")?.parse()?)
}
