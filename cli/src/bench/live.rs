//! `referral bench live`: N SSE clients, one entry published for each (in arrays of
//! 1,000 on `ledger.entries`, as the processor announces a batch); how long until every
//! client has its entry, vs one raw NATS subscriber receiving and parsing the same messages.
use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use platform::Config;
use schemas::UserId;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Concurrent SSE clients (each holds two file descriptors in this one process).
    #[arg(long, default_value_t = 2_000)]
    pub clients: usize,
}

pub(super) async fn measure(config: &Config, base: &str, args: &LiveArgs) -> anyhow::Result<()> {
    let n = args.clients;
    let pool = platform::db::connect(&config.database).await?;
    let auth = Authenticator::new(&config.auth, pool.clone());
    let nats = platform::nats::connect(&config.nats).await?;
    let users: Vec<UserId> = (0..n).map(|_| UserId::new()).collect();
    // Streams are opened only for users that exist.
    let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.as_uuid()).collect();
    sqlx::query("INSERT INTO users (id) SELECT * FROM UNNEST($1::uuid[])")
        .bind(&ids)
        .execute(&pool)
        .await?;
    let rss_before = rss_kib();

    let baseline = baseline(&nats, config, &users).await?;

    // N live clients, connected before anything is published.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut streams = Vec::with_capacity(n);
    for u in &users {
        let response = http
            .get(format!("{base}/v1/users/{u}/earnings/stream"))
            .bearer_auth(auth.issue(Principal::User(*u))?)
            .send()
            .await?
            .error_for_status()?;
        streams.push(response.bytes_stream());
    }
    let rss_connected = rss_kib();
    let started = Instant::now();
    let waits = streams.into_iter().map(|mut s| async move {
        while let Some(chunk) = s.next().await {
            if String::from_utf8_lossy(&chunk?).contains("event: earning") {
                return Ok::<_, anyhow::Error>(started.elapsed());
            }
        }
        anyhow::bail!("a stream ended before its entry arrived")
    });
    let waiting = tokio::spawn(futures::future::try_join_all(waits));
    publish_one_each(&nats, config, &users).await?;
    let mut latencies = tokio::time::timeout(Duration::from_secs(120), waiting).await???;
    let fan_out = started.elapsed();
    latencies.sort();
    let memory = rss_before
        .zip(rss_connected)
        .map(|(a, b)| b.saturating_sub(a));
    print_report(n, baseline, fan_out, &latencies, memory);
    Ok(())
}

/// One core subscriber receiving the arrays and parsing every entry: the baseline.
async fn baseline(
    nats: &async_nats::Client,
    config: &Config,
    users: &[UserId],
) -> anyhow::Result<Duration> {
    let n = users.len();
    let mut sub = nats
        .subscribe(format!("{}.ledger.entries", config.nats.prefix))
        .await?;
    let started = Instant::now();
    publish_one_each(nats, config, users).await?;
    let mut received = 0;
    while received < n {
        let m = tokio::time::timeout(Duration::from_secs(60), sub.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the baseline subscription ended"))?;
        received += serde_json::from_slice::<Vec<schemas::EarningEvent>>(&m.payload)?.len();
    }
    Ok(started.elapsed())
}

/// The table: fan-out vs the baseline, delivery percentiles (`latencies` sorted), memory.
fn print_report(
    n: usize,
    baseline: Duration,
    fan_out: Duration,
    latencies: &[Duration],
    memory: Option<u64>,
) {
    let pct = |p: f64| {
        let i = (latencies.len().saturating_sub(1) as f64 * p) as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    println!("referral bench live: {n} SSE clients, one entry each");
    println!(
        "  baseline  raw NATS subscriber, {n} messages   {:>8.1} ms   1.00",
        ms(baseline)
    );
    println!(
        "  live      every client has its entry          {:>8.1} ms   {:.2}",
        ms(fan_out),
        fan_out.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
    );
    println!(
        "  delivery latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    if let Some(kib) = memory {
        println!(
            "  memory: {kib} KiB for {n} connections (both ends in this process), {:.1} KiB each",
            kib as f64 / n as f64
        );
    }
}

async fn publish_one_each(
    nats: &async_nats::Client,
    config: &Config,
    users: &[UserId],
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    for chunk in users.chunks(1_000) {
        let entries: Vec<schemas::EarningEvent> = chunk
            .iter()
            .map(|u| schemas::EarningEvent {
                earning_id: uuid::Uuid::now_v7(),
                seq: 1,
                purchase_id: uuid::Uuid::now_v7(),
                shop_id: schemas::ShopId(uuid::Uuid::nil()),
                beneficiary_id: *u,
                source_user_id: *u,
                leg_user_id: *u,
                level: 1,
                direct: true,
                kind: schemas::EntryKind::Earning,
                amount: schemas::Money::ZERO,
                total: schemas::Money::ZERO,
                plan_version: 1,
                created_at: now,
            })
            .collect();
        let subject = format!("{}.ledger.entries", config.nats.prefix);
        nats.publish(subject, serde_json::to_vec(&entries)?.into())
            .await?;
    }
    nats.flush().await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident memory of this process, from /proc (Linux).
/// This process's resident memory, from /proc.
pub(super) fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
