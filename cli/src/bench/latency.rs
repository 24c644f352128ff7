//! `referral bench latency`: how long from sending a purchase to its parent reading the
//! earning on SSE, one probe at a time, first on an idle system, then under a steady
//! background load of batch purchases for other users. Baseline: the same probes' HTTP
//! round trip alone (202 received), measured in the same run.
use anyhow::Context;
use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use platform::Config;
use schemas::UserId;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// Probe purchases per phase, sent one after another.
    #[arg(long, default_value_t = 100)]
    pub probes: usize,
    /// Background purchases per second during the loaded phase (batches of 100).
    #[arg(long, default_value_t = 5_000)]
    pub background_rate: u64,
}

type Events = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

pub(super) async fn measure(config: &Config, base: &str, args: &LatencyArgs) -> anyhow::Result<()> {
    let pool = platform::db::connect(&config.database).await?;
    let (_, key) = crate::shops::create(&pool, "bench").await?;
    let http = reqwest::Client::new();
    let signup = |referrer: Option<UserId>| super::signup(&http, base, &key, referrer);
    let parent = signup(None).await?;
    let buyer = signup(Some(parent)).await?;
    // Background buyers spread over eight parents, so the load is not one hot account.
    let mut others = Vec::new();
    for _ in 0..8 {
        let p = signup(None).await?;
        for _ in 0..8 {
            others.push(signup(Some(p)).await?);
        }
    }
    let token = Authenticator::new(&config.auth, pool.clone()).issue(Principal::User(parent))?;
    let mut events: Events = Box::pin(
        http.get(format!("{base}/v1/users/{parent}/earnings/stream"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .bytes_stream(),
    );
    let probe = Probe {
        http: &http,
        base,
        key: &key,
        buyer,
    };
    let idle = probe.run(&mut events, "idle", args.probes).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let background = tokio::spawn(background(
        http.clone(),
        format!("{base}/v1/purchases/batch"),
        key.clone(),
        others,
        args.background_rate,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await; // let the load reach its rate
    let loaded = probe.run(&mut events, "loaded", args.probes).await?;
    stop.cancel();
    let (sent, secs) = background.await??;
    println!(
        "referral bench latency: purchase sent → earning read on SSE, {} probes a phase",
        args.probes
    );
    println!(
        "  {:<40} {:>9} {:>9} {:>9}",
        "", "p50 ms", "p99 ms", "max ms"
    );
    for (name, l) in [("idle", &idle), ("under load", &loaded)] {
        l.print(name);
    }
    println!(
        "  background: {sent} purchases in {secs:.1} s = {:.0}/s (asked {}/s)",
        sent as f64 / secs,
        args.background_rate
    );
    Ok(())
}

struct Probe<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    key: &'a str,
    buyer: UserId,
}

struct Latencies {
    accepted: Vec<Duration>,
    delivered: Vec<Duration>,
}

impl Probe<'_> {
    async fn run(&self, events: &mut Events, tag: &str, n: usize) -> anyhow::Result<Latencies> {
        let mut l = Latencies {
            accepted: Vec::new(),
            delivered: Vec::new(),
        };
        for i in 0..n {
            let started = Instant::now();
            self.http
                .post(format!("{}/v1/purchases", self.base))
                .bearer_auth(self.key)
                .json(&json!({"order_id": format!("probe-{tag}-{i}"), "user_id": self.buyer, "amount": "1000.00", "profit": "100.00"}))
                .send()
                .await?
                .error_for_status()?;
            l.accepted.push(started.elapsed());
            next_earning(events).await?;
            l.delivered.push(started.elapsed());
        }
        Ok(l)
    }
}

impl Latencies {
    fn print(&self, phase: &str) {
        for (what, v) in [
            ("HTTP 202 (baseline)", &self.accepted),
            ("earning on SSE", &self.delivered),
        ] {
            let mut v = v.clone();
            v.sort();
            let pct = |p: f64| {
                v.get(((v.len().saturating_sub(1)) as f64 * p) as usize)
                    .map_or(0.0, |d| d.as_secs_f64() * 1e3)
            };
            println!(
                "  {:<40} {:>9.1} {:>9.1} {:>9.1}",
                format!("{phase}: {what}"),
                pct(0.5),
                pct(0.99),
                pct(1.0)
            );
        }
    }
}

/// Reads the SSE stream until the next `event: earning` (bounded wait).
async fn next_earning(events: &mut Events) -> anyhow::Result<()> {
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .context("no earning within 10 s")?
            .context("the stream ended")??;
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: earning") && text.contains("\n\n") {
            return Ok(());
        }
    }
}

/// Batches of 100 purchases at `rate` a second until `stop`; returns (purchases, seconds).
async fn background(
    http: reqwest::Client,
    url: String,
    key: String,
    buyers: Vec<UserId>,
    rate: u64,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<(u64, f64)> {
    let every = Duration::from_secs_f64(100.0 / rate.max(1) as f64);
    let mut tick = tokio::time::interval(every);
    let (started, mut sent, mut inflight) = (
        Instant::now(),
        0u64,
        futures::stream::FuturesUnordered::new(),
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let body = json!({"purchases": (0..100).map(|i| json!({"order_id": format!("bg-{sent}-{i}"), "user_id": buyers[i % buyers.len()], "amount": "1500.00", "profit": "300.00"})).collect::<Vec<_>>()});
                inflight.push(http.post(&url).bearer_auth(&key).json(&body).send());
                sent += 100;
            }
            Some(r) = inflight.next(), if !inflight.is_empty() => { r?.error_for_status()?; }
        }
    }
    while let Some(r) = inflight.next().await {
        r?.error_for_status()?;
    }
    Ok((sent, started.elapsed().as_secs_f64()))
}
