//! `referral bench analytics`: the ClickHouse analytics routes' latency (p50/p99) under
//! concurrent readers, on a warehouse of `--entries` earnings written by the server itself
//! (through the sink's schema, so every rollup view is fed as in production): a year of
//! entries for `--users` beneficiaries, one of them (the one measured) with 2 % of all.
use super::reports::{Latency, Load};
use super::served::Served;
use platform::clickhouse::Clickhouse;
use platform::Config;
use serde::Serialize;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(clap::Args, Debug)]
pub struct AnalyticsArgs {
    /// Earning rows in the warehouse (half as many purchase rows).
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
    /// Beneficiaries the entries are spread over (and users in `user_events`).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    #[command(flatten)]
    pub load: Load,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Rows per server-side insert (one block each).
const ROWS_PER_INSERT: usize = 1_000_000;
/// One entry in this many belongs to the measured user.
const HEAVY_EVERY: usize = 50;
const SHOPS: usize = 200;
const FILL_STATEMENT_TIMEOUT_MS: u64 = 600_000;
/// The tables the analytics routes read.
const READ_TABLES: [&str; 5] = [
    "earnings_daily_by_level",
    "earnings_daily_by_leg",
    "purchases_daily_by_shop",
    "purchase_events",
    "user_events",
];

#[derive(Debug, Serialize)]
struct Report {
    entries: usize,
    users: usize,
    heavy_user_entries: usize,
    fill_secs: f64,
    merge_secs: f64,
    readers: usize,
    reports: Vec<Latency>,
}

pub async fn run(
    mut config: Config,
    args: &AnalyticsArgs,
    interrupt: &CancellationToken,
) -> anyhow::Result<()> {
    let tag = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let db = format!("referral_bench_{tag}");
    let url = super::database_url(&config, &db)?;
    super::scratch_instance(&mut config, url, &tag);
    config.clickhouse.enabled = true;
    config.clickhouse.database = format!("bench_{tag}");
    let result = super::until(interrupt, measure(&config, args)).await;
    if let Ok(ch) = Clickhouse::new(&config.clickhouse) {
        let _ = ch
            .execute(&format!("DROP DATABASE IF EXISTS {}", ch.database()))
            .await;
    }
    super::cleanup(&config, Some(&db)).await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "referral bench analytics: {} entries over {} users (the measured one has {}), \
             filled in {:.1} s, merged in {:.1} s, {} readers",
            report.entries,
            report.users,
            report.heavy_user_entries,
            report.fill_secs,
            report.merge_secs,
            report.readers
        );
        println!(
            "  {:<28} {:>9} {:>9} {:>9}",
            "route", "p50 ms", "p99 ms", "max ms"
        );
        for r in &report.reports {
            println!(
                "  {:<28} {:>9.1} {:>9.1} {:>9.1}",
                r.report, r.p50_ms, r.p99_ms, r.max_ms
            );
        }
    }
    Ok(())
}

async fn measure(config: &Config, args: &AnalyticsArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.users > 0, "--users must be at least 1");
    let pool = platform::db::create_and_migrate(&config.database).await?;
    let heavy = Uuid::now_v7();
    // The measured user exists in Postgres (the routes answer 404 for a stranger).
    sqlx::query("INSERT INTO users (id) VALUES ($1)")
        .bind(heavy)
        .execute(&pool)
        .await?;
    let (fill_secs, merge_secs) = build_warehouse(config, args, heavy).await?;

    let served = Served::start(config, &pool, &args.load).await?;
    let routes = [
        ("top earners", "/analytics/top-earners".to_owned()),
        (
            "purchases per shop",
            "/analytics/purchases-per-shop".to_owned(),
        ),
        ("conversion", "/analytics/conversion".to_owned()),
        (
            "user: earnings over time",
            format!("/users/{heavy}/analytics/earnings-over-time"),
        ),
        ("user: levels", format!("/users/{heavy}/analytics/levels")),
        ("user: legs", format!("/users/{heavy}/analytics/legs")),
    ];
    let mut reports = Vec::new();
    for (name, path) in routes {
        reports.push(served.latency(name, &path, &args.load).await?);
    }
    let levels = served
        .get_json(&format!("/users/{heavy}/analytics/levels"))
        .await;
    served.stop().await;
    let heavy_entries = args.entries.div_ceil(HEAVY_EVERY);
    anyhow::ensure!(
        entries_in(&levels?)? == heavy_entries,
        "the levels route counts other entries than the {heavy_entries} written"
    );
    Ok(Report {
        entries: args.entries,
        users: args.users,
        heavy_user_entries: heavy_entries,
        fill_secs,
        merge_secs,
        readers: args.load.readers,
        reports,
    })
}

/// Fills the warehouse (`fill`) and merges the tables the routes read, as a warehouse at
/// rest is (otherwise the fill's background merges take the CPU from the first routes
/// measured). Returns the seconds each took.
async fn build_warehouse(
    config: &Config,
    args: &AnalyticsArgs,
    heavy: Uuid,
) -> anyhow::Result<(f64, f64)> {
    // A million rows a statement, each through every view: far longer than a request.
    let mut filling = config.clickhouse.clone();
    filling.request_timeout_ms = FILL_STATEMENT_TIMEOUT_MS;
    let ch = Clickhouse::new(&filling)?;
    warehouse::migrate(&config.clickhouse).await?;
    let started = Instant::now();
    fill(&ch, args, heavy).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for table in READ_TABLES {
        ch.execute(&format!("OPTIMIZE TABLE {} FINAL", ch.table(table)))
            .await?;
    }
    Ok((fill_secs, started.elapsed().as_secs_f64()))
}

/// The entries a levels answer counts, all levels together.
fn entries_in(levels: &serde_json::Value) -> anyhow::Result<usize> {
    let levels = levels["levels"].as_array().cloned().unwrap_or_default();
    Ok(levels
        .iter()
        .filter_map(|l| l["entries"].as_u64())
        .sum::<u64>()
        .try_into()?)
}

/// The warehouse rows, written by ClickHouse from `numbers()`: entries over the last year
/// (levels 1 and 2, eight legs for the measured user), purchases over `SHOPS` shops, and
/// one graph event per user (every other one referred).
async fn fill(ch: &Clickhouse, args: &AnalyticsArgs, heavy: Uuid) -> anyhow::Result<()> {
    let user = |n: &str| {
        format!("toUUID(concat('00000000-0000-4000-8000-', substring(hex(intHash64({n})), 1, 12)))")
    };
    let (users, year) = (args.users, 365 * 86_400);
    let beneficiary = format!(
        "if(number % {HEAVY_EVERY} = 0, toUUID('{heavy}'), {})",
        user(&format!("number % {users}"))
    );
    let leg = user("1000000000 + number % 8");
    let buyer = user(&format!("number % {users}"));
    let shop = user(&format!("2000000000 + number % {SHOPS}"));
    let mut done = 0;
    while done < args.entries {
        let n = (args.entries - done).min(ROWS_PER_INSERT);
        ch.execute(&format!(
            "INSERT INTO {} SELECT generateUUIDv4(), generateUUIDv4(), {shop}, {beneficiary}, \
             {buyer}, {leg}, 1 + number % 2, 'earning', toDecimal64(number % 1000, 2), 1, \
             now() - intHash32(number) % {year} FROM numbers({done}, {n})",
            ch.table("earning_events")
        ))
        .await?;
        ch.execute(&format!(
            "INSERT INTO {} SELECT generateUUIDv4(), {shop}, {buyer}, toDecimal64(2000, 2), \
             toDecimal64(200, 2), number % 3 != 0, 1, 'settled', now() - intHash32(number) % {year}, \
             now() - intHash32(number) % {year} FROM numbers({done}, {half})",
            ch.table("purchase_events"),
            half = n / 2
        ))
        .await?;
        done += n;
    }
    let referrer = user("intDiv(number, 2)");
    ch.execute(&format!(
        "INSERT INTO {} SELECT {}, if(number % 2 = 0, NULL, {referrer}), 'signup', number + 1, \
         now() - {year} FROM numbers({users})",
        ch.table("user_events"),
        user("number")
    ))
    .await?;
    Ok(())
}
