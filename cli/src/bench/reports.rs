//! `referral bench reports`: each report's latency (p50/p99) under concurrent readers, for
//! the user with the most entries, on a seeded database (`referral bench seed`); and the
//! processor's start on it: how long the referral graph takes to load, and its memory.
use super::seed::{self, SeedArgs};
use super::served::Served;
use futures::{StreamExt, TryStreamExt};
use platform::Config;
use serde::Serialize;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(clap::Args, Debug)]
pub struct ReportsArgs {
    /// A database `referral bench seed` filled (kept). Without it, a scratch one is seeded
    /// with --users and --entries, and dropped after.
    #[arg(long)]
    pub database: Option<String>,
    #[arg(long, default_value_t = 2_000)]
    pub users: usize,
    #[arg(long, default_value_t = 20_000)]
    pub entries: usize,
    #[command(flatten)]
    pub load: Load,
    /// Measure only the reports whose name contains this (e.g. `tree`), to profile one.
    #[arg(long)]
    pub only: Option<String>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// How each report is read: by how many readers at once, how often, after how many
/// unmeasured requests.
#[derive(clap::Args, Debug)]
pub struct Load {
    /// Concurrent readers.
    #[arg(long, default_value_t = 32)]
    pub readers: usize,
    /// Requests per report.
    #[arg(long, default_value_t = 320)]
    pub requests: usize,
    /// Requests per report sent first and not measured: they open the server's database
    /// connections and prepare each report's statements on them, once per process (0
    /// measures that start-up cost into the percentiles).
    #[arg(long, default_value_t = 64)]
    pub warmup: usize,
    /// Who reads: this process (reqwest, `--requests` a report) or wrk in its own process
    /// (needs `wrk` installed; `--seconds` a report, after the warm-up from this process).
    #[arg(long, value_enum, default_value = "in-process")]
    pub generator: super::pipeline::Generator,
    /// Seconds per report with `--generator wrk`.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    database: String,
    users: i64,
    entries: i64,
    heaviest_user_entries: i64,
    graph_load_ms: f64,
    graph_rss_mib: f64,
    /// The same graph replayed from every `user_events` row (how start loaded it before
    /// the snapshot), in the same run: the baseline.
    graph_replay_ms: f64,
    readers: usize,
    warmup: usize,
    reports: Vec<Latency>,
}

#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub report: &'static str,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub async fn run(
    mut config: Config,
    args: &ReportsArgs,
    interrupt: &CancellationToken,
) -> anyhow::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let scratch = args.database.is_none();
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("referral_bench_{tag}"));
    let url = super::database_url(&config, &database)?;
    super::scratch_instance(&mut config, url, &tag);
    let work = async {
        if scratch {
            let seed_args = SeedArgs {
                users: args.users,
                entries: args.entries,
                database: database.clone(),
                json: false,
            };
            seed::seed(&config, &seed_args).await?;
        }
        measure(&config, &database, args).await
    };
    let result = super::until(interrupt, work).await;
    super::cleanup(&config, scratch.then_some(database.as_str())).await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn measure(config: &Config, database: &str, args: &ReportsArgs) -> anyhow::Result<Report> {
    let pool = platform::db::connect(&config.database).await?;
    let (graph_load_ms, graph_rss_mib, graph_replay_ms) = graph_load(&pool, config).await?;
    let (users, entries): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM earnings)")
            .fetch_one(&pool)
            .await?;
    let (heaviest, heaviest_entries, routes) = routes(&pool).await?;
    let served = Served::start(config, &pool, &args.load).await?;
    let mut reports = Vec::new();
    let wanted = |report: &str| args.only.as_deref().is_none_or(|o| report.contains(o));
    for (report, path) in routes.into_iter().filter(|(r, _)| wanted(r)) {
        let path = format!("/users/{heaviest}{path}");
        reports.push(served.latency(report, &path, &args.load).await?);
    }
    served.stop().await;
    Ok(Report {
        database: database.to_owned(),
        users,
        entries,
        heaviest_user_entries: heaviest_entries,
        graph_load_ms,
        graph_rss_mib,
        graph_replay_ms,
        readers: args.load.readers,
        warmup: args.load.warmup,
        reports,
    })
}

/// The user with the most entries, their entry count, and each report's path for them.
async fn routes(pool: &sqlx::PgPool) -> anyhow::Result<(Uuid, i64, Vec<(&'static str, String)>)> {
    let (heaviest, heaviest_entries): (Uuid, i64) =
        sqlx::query_as("SELECT user_id, entries FROM account_totals ORDER BY entries DESC LIMIT 1")
            .fetch_one(pool)
            .await?;
    // A cursor halfway down the heaviest user's history: a deep page.
    let middle: i64 = sqlx::query_scalar(
        "SELECT user_seq FROM earnings WHERE beneficiary_id = $1 ORDER BY user_seq DESC OFFSET $2 LIMIT 1",
    )
    .bind(heaviest)
    .bind(heaviest_entries / 2)
    .fetch_one(pool)
    .await?;
    // The first week of the heaviest user's ledger: a time range far from the newest entry.
    let oldest: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT created_at FROM earnings WHERE beneficiary_id = $1 AND user_seq = 1",
    )
    .bind(heaviest)
    .fetch_one(pool)
    .await?;
    let week =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let first_week = format!(
        "/earnings/history?limit=50&from={}&to={}",
        week(oldest),
        week(oldest + chrono::Duration::days(7))
    );
    let today = chrono::Utc::now().date_naive();
    let year_ago = today - chrono::Duration::days(365);
    let routes = vec![
        ("totals", "/earnings".to_owned()),
        (
            "history, first page of 50",
            "/earnings/history?limit=50".to_owned(),
        ),
        (
            "history, page of 50 halfway down",
            format!("/earnings/history?limit=50&cursor={middle}"),
        ),
        ("history, the ledger's first week", first_week),
        ("by-referral", "/earnings/by-referral".to_owned()),
        ("by-leg", "/earnings/by-leg".to_owned()),
        ("tree, depth 3", "/tree?depth=3".to_owned()),
        ("tree, depth 8 (node cap)", "/tree?depth=8".to_owned()),
        (
            "daily, 366 days",
            format!("/earnings/daily?from={year_ago}&to={today}"),
        ),
    ];
    Ok((heaviest, heaviest_entries, routes))
}

/// Loads the referral graph as the processor does at start (its time and resident
/// memory), then replays it from every event (time), and checks both agree.
async fn graph_load(pool: &sqlx::PgPool, config: &Config) -> anyhow::Result<(f64, f64, f64)> {
    let page = config.processor.graph_sync_page;
    let before = super::live::rss_kib().unwrap_or_default();
    let started = Instant::now();
    let (graph, _) = processor::graph_sync::load(pool, page).await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let after = super::live::rss_kib().unwrap_or_default();
    let started = Instant::now();
    let mut replayed = processor::graph::ReferralGraph::default();
    processor::graph_sync::catch_up(pool, &mut replayed, page).await?;
    let replay_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        (graph.len(), graph.seq) == (replayed.len(), replayed.seq),
        "the snapshot and the replay disagree"
    );
    Ok((ms, after.saturating_sub(before) as f64 / 1024.0, replay_ms))
}

/// `args.warmup` unmeasured GETs of `url`, `args.readers` at a time.
pub(super) async fn warm_up(
    http: &reqwest::Client,
    token: &str,
    report: &'static str,
    url: &str,
    args: &Load,
) -> anyhow::Result<()> {
    let warmup = futures::stream::iter(0..args.warmup)
        .map(|_| async {
            let r = http.get(url).bearer_auth(token).send().await?;
            anyhow::ensure!(r.status().is_success(), "{report}: {}", r.status());
            r.bytes().await?;
            Ok(())
        })
        .buffer_unordered(args.readers.max(1));
    warmup.try_collect::<Vec<()>>().await?;
    Ok(())
}

/// `args.requests` GETs of `url`, `args.readers` at a time; every one must answer 200.
pub(super) async fn latency(
    http: &reqwest::Client,
    token: &str,
    report: &'static str,
    url: &str,
    args: &Load,
) -> anyhow::Result<Latency> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    warm_up(http, token, report, url, args).await?;
    let mut times = Vec::with_capacity(args.requests);
    let mut answers = futures::stream::iter(0..args.requests)
        .map(|_| async {
            let started = Instant::now();
            let r = http.get(url).bearer_auth(token).send().await?;
            let status = r.status();
            r.bytes().await?;
            anyhow::ensure!(status.is_success(), "{report}: {status}");
            Ok(started.elapsed().as_secs_f64() * 1e3)
        })
        .buffer_unordered(args.readers.max(1));
    while let Some(t) = answers.next().await {
        times.push(t?);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Ok(Latency {
        report,
        requests: times.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

fn print_table(r: &Report) {
    println!(
        "referral bench reports: {} ({} users, {} entries; heaviest user {} entries), {} readers, \
         {} warm-up requests per report",
        r.database, r.users, r.entries, r.heaviest_user_entries, r.readers, r.warmup
    );
    println!(
        "  graph load: {:.0} ms, {:.1} MiB resident (replaying every event: {:.0} ms)",
        r.graph_load_ms, r.graph_rss_mib, r.graph_replay_ms
    );
    println!(
        "  {:<36} {:>9} {:>9} {:>9}",
        "report", "p50 ms", "p99 ms", "max ms"
    );
    for l in &r.reports {
        println!(
            "  {:<36} {:>9.1} {:>9.1} {:>9.1}",
            l.report, l.p50_ms, l.p99_ms, l.max_ms
        );
    }
}
