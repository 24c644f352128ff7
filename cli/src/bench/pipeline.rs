//! `referral bench pipeline`: end-to-end throughput, as ratios against raw JetStream
//! publishes awaiting their PubAck at the same concurrency (what any ingest over this
//! stream is bounded by).
use anyhow::Context;
use futures::StreamExt;
use platform::Config;
use schemas::UserId;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Purchases per measurement.
    #[arg(long, default_value_t = 5_000)]
    pub purchases: usize,
    /// Requests (or publishes) in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Purchases per batch request in the batch measurement.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
}

pub(super) async fn measure(
    config: &Config,
    base: &str,
    args: &PipelineArgs,
) -> anyhow::Result<()> {
    let pool = platform::db::connect(&config.database).await?;
    let (_, key) = crate::shops::create(&pool, "bench").await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let mut users: Vec<UserId> = Vec::new();
    for i in 0..64usize {
        let referrer = if i == 0 {
            None
        } else {
            Some(users[(i - 1) / 8])
        };
        let r: serde_json::Value = http
            .post(format!("{base}/v1/users"))
            .bearer_auth(&key)
            .json(&json!({ "referrer_id": referrer }))
            .send()
            .await?
            .json()
            .await?;
        users.push(r["id"].as_str().context("signup id")?.parse()?);
    }
    let n = args.purchases;
    let body = |i: usize, prefix: &str| json!({ "order_id": format!("{prefix}-{i}"), "user_id": users[1 + i % 63], "amount": "1500.00", "profit": "300.00" });

    // Baseline: the same payloads straight to JetStream, PubAck awaited, same concurrency.
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
    let mut raw = futures::stream::iter((0..n).map(|i| {
        let (js, subject, payload) = (
            js.clone(),
            subject.clone(),
            serde_json::to_vec(&body(i, "raw")),
        );
        async move {
            let payload = payload?;
            platform::nats::publish_stored(&js, subject, Some(&format!("raw-{i}")), payload).await
        }
    }))
    .buffer_unordered(args.concurrency);
    while let Some(r) = raw.next().await {
        r?;
    }
    let baseline = rate(n, started.elapsed());

    // Ingest over HTTP, one purchase per request; then until the processor settled all.
    let started = Instant::now();
    let mut sends = futures::stream::iter((0..n).map(|i| {
        let (http, url, key, b) = (
            http.clone(),
            format!("{base}/v1/purchases"),
            key.clone(),
            body(i, "single"),
        );
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&b)
                .send()
                .await?
                .error_for_status()
        }
    }))
    .buffer_unordered(args.concurrency);
    while let Some(r) = sends.next().await {
        r?;
    }
    let accepted = rate(n, started.elapsed());
    settled(&pool, n as i64).await?;
    let end_to_end = rate(n, started.elapsed());

    // The batch endpoint: many purchases per request and per round of acks.
    let started = Instant::now();
    let chunks: Vec<Vec<serde_json::Value>> = (0..n)
        .map(|i| body(i, "batch"))
        .collect::<Vec<_>>()
        .chunks(args.batch.max(1))
        .map(<[_]>::to_vec)
        .collect();
    let mut batches = futures::stream::iter(chunks.into_iter().map(|chunk| {
        let (http, url, key) = (
            http.clone(),
            format!("{base}/v1/purchases/batch"),
            key.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({ "purchases": chunk }))
                .send()
                .await?
                .error_for_status()
        }
    }))
    .buffer_unordered((args.concurrency / 8).max(1));
    while let Some(r) = batches.next().await {
        r?;
    }
    let batch_accepted = rate(n, started.elapsed());
    settled(&pool, 2 * n as i64).await?;
    let batch_end_to_end = rate(n, started.elapsed());

    let report = processor::verify::verify(&pool).await?;
    println!(
        "referral bench: {n} purchases, {} in flight, NATS at {}",
        args.concurrency, config.nats.url
    );
    println!("  baseline  raw JetStream publish+PubAck   {baseline:>9.0}/s   1.00");
    for (name, value) in [
        ("single    accepted (202)                ", accepted),
        ("single    settled end to end            ", end_to_end),
        ("batch     accepted (202)                ", batch_accepted),
        ("batch     settled end to end            ", batch_end_to_end),
    ] {
        println!("  {name} {value:>9.0}/s   {:.2}", value / baseline);
    }
    println!("  verify: {}", report.summary());
    anyhow::ensure!(report.differences.is_empty(), "verify found differences");
    Ok(())
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Waits (bounded) until the processor has settled `n` purchases.
async fn settled(pool: &sqlx::PgPool, n: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let count: i64 = sqlx::query_scalar!("SELECT count(*) AS \"n!\" FROM purchases")
            .fetch_one(pool)
            .await?;
        if count >= n {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {count} of {n} purchases settled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
