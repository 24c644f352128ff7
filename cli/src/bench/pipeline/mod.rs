//! `referral bench pipeline`: end-to-end throughput of purchases (accepted = answered
//! 202, stored in the stream; settled = paid in Postgres and announced), single and
//! batched, as ratios against two baselines run in the same process: raw JetStream
//! publishes awaiting their PubAck at the same concurrency (what any ingest over this
//! stream is bounded by), and a naive app's one Postgres transaction per purchase.
mod direct;
mod load;
mod naive;
mod report;
pub(super) mod wrk;

use futures::StreamExt;
use load::{Load, LoadResult};
use platform::Config;
use report::{print_table, Report};
use schemas::UserId;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Purchases per measurement (at most, with `--duration`).
    #[arg(long, default_value_t = 20_000)]
    pub purchases: usize,
    /// Sustain each load for this many seconds instead of sending a fixed count
    /// (`--purchases` then only bounds it).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Users in the referral tree (a complete 8-ary tree; buyers are all but the root).
    /// Few users make every batch pay the same few beneficiaries, whose rows then
    /// serialize concurrent batches; many spread the payouts as a real shop's would.
    #[arg(long, default_value_t = 64)]
    pub users: usize,
    /// HTTP connections (requests in flight) for single purchases; batches use an eighth.
    #[arg(long, alias = "concurrency", default_value_t = 64)]
    pub connections: usize,
    /// Purchases per batch request in the batch measurement.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Who sends the single-purchase requests: this process (reqwest) or wrk in its own
    /// process (needs `wrk` installed and `--duration`).
    #[arg(long, value_enum, default_value_t = Generator::InProcess)]
    pub generator: Generator,
    /// Which loads to run (all by default), e.g. `--loads direct` to profile the
    /// processor alone; baselines run only when named.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = LoadKind::ALL)]
    pub loads: Vec<LoadKind>,
}

/// Who sends the single-purchase requests.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generator {
    InProcess,
    Wrk,
}

/// One measurement of `bench pipeline`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadKind {
    Raw,
    Naive,
    Single,
    Batch,
    Direct,
}

impl PipelineArgs {
    fn runs(&self, load: LoadKind) -> bool {
        self.loads.contains(&load)
    }
}

impl LoadKind {
    const ALL: [LoadKind; 5] = [
        LoadKind::Raw,
        LoadKind::Naive,
        LoadKind::Single,
        LoadKind::Batch,
        LoadKind::Direct,
    ];
}

impl std::fmt::Display for LoadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        let name = self.to_possible_value().map(|v| v.get_name().to_owned());
        f.write_str(&name.unwrap_or_default())
    }
}

pub(super) async fn measure(
    config: &Config,
    base: &str,
    args: &PipelineArgs,
) -> anyhow::Result<()> {
    let pool = platform::db::connect(&config.database).await?;
    let (shop, key) = crate::shops::create(&pool, "bench").await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let users = signups(&http, base, &key, args.users.max(2), args.connections).await?;
    let n = args.purchases;
    let duration = args.duration.map(Duration::from_secs);
    let buyers = users.len() - 1;
    let purchase = {
        let users = users.clone();
        move |i: usize, prefix: &str| json!({ "order_id": format!("{prefix}-{i}"), "user_id": users[1 + i % buyers], "amount": "1500.00", "profit": "300.00" })
    };

    let raw = |i| purchase(i, "raw");
    let raw_publish_per_sec = match args.runs(LoadKind::Raw) {
        true => Some(raw_publish(config, n, duration, args.connections, raw).await?),
        false => None,
    };
    let naive_per_sec = match args.runs(LoadKind::Naive) {
        true => Some(naive::measure(&pool, n, duration, args.connections).await?),
        false => None,
    };
    let (single, batch) = http_loads(&http, base, &key, args, &users, purchase).await?;
    let direct = match args.runs(LoadKind::Direct) {
        true => Some(direct_load(config, shop, &users, args).await?),
        false => None,
    };
    let stored = load::settled_count(&pool).await?;
    let sent = single.as_ref().map_or(0, |l| l.purchases)
        + batch.as_ref().map_or(0, |l| l.purchases)
        + direct.as_ref().map_or(0, |d| d.purchases);
    every_accepted_stored(args, usize::try_from(stored)?, sent)?;
    let verified = processor::verify::verify(&pool).await?;
    let report = Report {
        purchases: n,
        duration_secs: args.duration,
        users: users.len(),
        connections: args.connections,
        nats_url: platform::nats::redacted(&config.nats.url),
        raw_publish_per_sec,
        naive_per_sec,
        single,
        batch,
        direct,
        verify_differences: verified.differences.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
        println!("  verify: {}", verified.summary());
    }
    anyhow::ensure!(verified.differences.is_empty(), "verify found differences");
    Ok(())
}

/// Every accepted purchase is in Postgres, and no other. wrk stops at its deadline with a
/// request in flight on each connection: the edge may still store those (the purchase is
/// kept, the 202 goes unread), so up to one a connection more than were answered.
fn every_accepted_stored(args: &PipelineArgs, stored: usize, sent: usize) -> anyhow::Result<()> {
    let unanswered = match (args.generator, args.runs(LoadKind::Single)) {
        (Generator::Wrk, true) => args.connections,
        _ => 0,
    };
    anyhow::ensure!(
        (sent..=sent + unanswered).contains(&stored),
        "{stored} purchases in Postgres, {sent} accepted"
    );
    Ok(())
}

/// Groups of `batch` purchases published straight to the stream, an eighth of
/// `connections` in flight.
async fn direct_load(
    config: &Config,
    shop: schemas::ShopId,
    users: &[UserId],
    args: &PipelineArgs,
) -> anyhow::Result<direct::DirectResult> {
    direct::Direct {
        config,
        shop,
        users,
        purchases: args.purchases,
        duration: args.duration.map(Duration::from_secs),
        per_message: args.batch.max(1),
        in_flight: (args.connections / 8).max(1),
    }
    .run()
    .await
}

/// The two HTTP loads (each if asked for): single-purchase requests at `connections`,
/// then batch requests of `batch` purchases at an eighth of them.
async fn http_loads(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    args: &PipelineArgs,
    users: &[UserId],
    purchase: impl Fn(usize, &str) -> serde_json::Value + Clone + Send + Sync + 'static,
) -> anyhow::Result<(Option<LoadResult>, Option<LoadResult>)> {
    let duration = args.duration.map(Duration::from_secs);
    let wrk = match (args.generator, args.runs(LoadKind::Single)) {
        (Generator::InProcess, _) | (_, false) => None,
        (Generator::Wrk, true) => {
            let script = wrk::script_path();
            let run = uuid::Uuid::now_v7().simple().to_string();
            std::fs::write(&script, wrk::script(users.get(1..).unwrap_or(users), &run))?;
            Some(load::WrkRun {
                base: base.to_owned(),
                script,
            })
        }
    };
    let script = wrk.as_ref().map(|w| w.script.clone());
    let single = Load {
        url: format!("{base}/v1/purchases"),
        key: key.to_owned(),
        body: Arc::new({
            let purchase = purchase.clone();
            move |i| purchase(i, "single")
        }),
        requests: args.purchases,
        duration,
        per_request: 1,
        connections: args.connections,
        wrk,
    };
    let per = args.batch.max(1);
    let batch = Load {
        url: format!("{base}/v1/purchases/batch"),
        key: key.to_owned(),
        body: Arc::new(
            move |b| json!({ "purchases": (b * per..(b + 1) * per).map(|i| purchase(i, "batch")).collect::<Vec<_>>() }),
        ),
        requests: args.purchases / per,
        duration,
        per_request: per,
        connections: (args.connections / 8).max(1),
        wrk: None,
    };
    let single = match args.runs(LoadKind::Single) {
        true => Some(single.run(http).await),
        false => None,
    };
    if let Some(script) = script {
        let _ = std::fs::remove_file(script);
    }
    let single = single.transpose()?;
    let batch = match args.runs(LoadKind::Batch) {
        true => Some(batch.run(http).await?),
        false => None,
    };
    Ok((single, batch))
}

/// A complete 8-ary referral tree of `n` users, signed up through the API level by
/// level, `connections` signups at a time.
async fn signups(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    connections: usize,
) -> anyhow::Result<Vec<UserId>> {
    let mut users: Vec<UserId> = vec![super::signup(http, base, key, None).await?];
    while users.len() < n {
        let level = users.len()..(users.len() * 8 + 1).min(n);
        let referrers: Vec<UserId> = level.map(|i| users[(i - 1) / 8]).collect();
        let signed: Vec<UserId> = futures::stream::iter(referrers)
            .map(|r| super::signup(http, base, key, Some(r)))
            .buffered(connections.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        users.extend(signed);
    }
    Ok(users)
}

/// The same payloads straight to JetStream, one message each, PubAck awaited.
async fn raw_publish(
    config: &Config,
    n: usize,
    duration: Option<Duration>,
    connections: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> anyhow::Result<f64> {
    let js = async_nats::jetstream::new(platform::nats::connect(&config.nats).await?);
    let subject = format!("{}.bench.raw", config.nats.prefix);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: format!("{}_RAW", config.nats.prefix.to_uppercase()),
        subjects: vec![subject.clone()],
        max_bytes: 256 * 1024 * 1024,
        ..Default::default()
    })
    .await?;
    let started = Instant::now();
    let mut raw = futures::stream::iter(0..n)
        .take_while(load::within(started, duration))
        .map(|i| {
            let (js, subject) = (js.clone(), subject.clone());
            let payload = serde_json::to_vec(&body(i));
            async move {
                let id = format!("raw-{i}");
                platform::nats::publish_stored(&js, subject, Some(&id), payload?).await
            }
        })
        .buffer_unordered(connections.max(1));
    let mut done = 0;
    while let Some(r) = raw.next().await {
        r?;
        done += 1;
    }
    Ok(load::rate(done, started.elapsed()))
}
