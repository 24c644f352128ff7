//! One HTTP load: requests at a fixed concurrency, each latency kept; a sampler records
//! accepted vs settled purchases over time until every accepted purchase is settled.
use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one load measured.
#[derive(Debug, Serialize)]
pub struct LoadResult {
    pub purchases: usize,
    pub accepted_per_sec: f64,
    pub settled_per_sec: f64,
    pub http_p50_ms: f64,
    pub http_p99_ms: f64,
    pub http_max_ms: f64,
    /// (seconds since start, purchases accepted, purchases settled), every sample period.
    pub backlog: Vec<(f64, usize, i64)>,
    /// Mean time a single-purchase request spent reserving its order and being stored in
    /// the stream (the server's own measure; zero for batch requests).
    pub reserve_mean_ms: f64,
    pub store_mean_ms: f64,
    /// Processor batches during this load, and the mean milliseconds per batch of each
    /// step (`processor_batch_seconds{stage}`).
    pub batches: u64,
    pub batch_steps_ms: BTreeMap<String, f64>,
}

/// Builds the body of request `i`.
pub type Body = Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>;

pub struct Load {
    pub url: String,
    pub key: String,
    /// Body of request i, carrying `per_request` purchases.
    pub body: Body,
    /// Requests to send at most.
    pub requests: usize,
    /// Stop sending new requests after this long (a sustained load), if set.
    pub duration: Option<Duration>,
    pub per_request: usize,
    pub connections: usize,
    /// Send from wrk in its own process (single purchases only) instead of this process.
    pub wrk: Option<WrkRun>,
}

/// What wrk needs besides the load: the server's address and the script to run.
pub struct WrkRun {
    pub base: String,
    pub script: std::path::PathBuf,
}

/// HTTP latency percentiles of one load, in milliseconds.
struct Percentiles {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut latencies: Vec<Duration>) -> Percentiles {
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len().saturating_sub(1)) as f64 * p) as usize;
            latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Percentiles {
            p50: pct(0.5),
            p99: pct(0.99),
            max: pct(1.0),
        }
    }
}

const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const SETTLE_DEADLINE: Duration = Duration::from_secs(600);

impl Load {
    pub async fn run(self, http: &reqwest::Client) -> anyhow::Result<LoadResult> {
        let stages_before = [stage("reserve"), stage("store")];
        let steps_before = batch_steps();
        let accepted = Arc::new(AtomicUsize::new(0));
        let sending = Arc::new(AtomicBool::new(true));
        let started = Instant::now();
        let sampler = tokio::spawn(sample(
            accepted.clone(),
            sending.clone(),
            started,
            settled_now(),
        ));
        let latencies = match &self.wrk {
            None => self
                .send(http, &accepted, started)
                .await
                .map(Percentiles::of),
            Some(w) => self.send_from_wrk(w, &accepted).await,
        };
        let accepted_in = started.elapsed();
        sending.store(false, Ordering::Release);
        let latencies = latencies?;
        let (backlog, settled_in) = sampler.await??;
        let [reserve_mean_ms, store_mean_ms] =
            [("reserve", stages_before[0]), ("store", stages_before[1])].map(|(name, (sum, n))| {
                let (sum2, n2) = stage(name);
                (sum2 - sum) * 1000.0 / ((n2 - n).max(1) as f64)
            });
        let purchases = accepted.load(Ordering::Acquire);
        let (batches, batch_steps_ms) = steps_since(&steps_before);
        Ok(LoadResult {
            batches,
            batch_steps_ms,
            reserve_mean_ms,
            store_mean_ms,
            purchases,
            accepted_per_sec: rate(purchases, accepted_in),
            settled_per_sec: rate(purchases, settled_in),
            http_p50_ms: latencies.p50,
            http_p99_ms: latencies.p99,
            http_max_ms: latencies.max,
            backlog,
        })
    }

    /// Sends the requests at the load's concurrency, until all are sent or the duration
    /// is over; returns each request's latency.
    async fn send(
        &self,
        http: &reqwest::Client,
        accepted: &Arc<AtomicUsize>,
        started: Instant,
    ) -> anyhow::Result<Vec<Duration>> {
        let per_request = self.per_request;
        let mut sends = futures::stream::iter(0..self.requests)
            .take_while(within(started, self.duration))
            .map(|i| {
                let (http, url, key, accepted) = (
                    http.clone(),
                    self.url.clone(),
                    self.key.clone(),
                    accepted.clone(),
                );
                let body = (self.body)(i);
                async move {
                    let sent = Instant::now();
                    http.post(url)
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await?
                        .error_for_status()?;
                    accepted.fetch_add(per_request, Ordering::AcqRel);
                    Ok::<_, anyhow::Error>(sent.elapsed())
                }
            })
            .buffer_unordered(self.connections.max(1));
        let mut latencies = Vec::with_capacity(self.requests.min(1 << 20));
        while let Some(r) = sends.next().await {
            latencies.push(r?);
        }
        Ok(latencies)
    }

    async fn send_from_wrk(
        &self,
        w: &WrkRun,
        accepted: &Arc<AtomicUsize>,
    ) -> anyhow::Result<Percentiles> {
        let duration = self
            .duration
            .context("--generator wrk sends for a time: give --duration")?;
        let s = super::wrk::send(
            &w.base,
            &self.key,
            &w.script,
            self.connections,
            duration,
            accepted,
        )
        .await?;
        Ok(Percentiles {
            p50: s.p50_ms,
            p99: s.p99_ms,
            max: s.max_ms,
        })
    }
}

/// Samples (accepted, settled) until sending is over and every accepted purchase is
/// settled; returns the samples and when the last one settled. Settled is the
/// processor's own counter in this process, so sampling costs Postgres nothing.
async fn sample(
    accepted: Arc<AtomicUsize>,
    sending: Arc<AtomicBool>,
    started: Instant,
    before: u64,
) -> anyhow::Result<(Vec<(f64, usize, i64)>, Duration)> {
    let mut samples = Vec::new();
    let mut next_sample = Instant::now();
    loop {
        let done_sending = !sending.load(Ordering::Acquire);
        let target = accepted.load(Ordering::Acquire);
        let settled = i64::try_from(settled_now() - before)?;
        let all = done_sending && settled >= i64::try_from(target)?;
        let now = Instant::now();
        if now >= next_sample || all {
            samples.push((started.elapsed().as_secs_f64(), target, settled));
            next_sample = now + SAMPLE_EVERY;
        }
        if all {
            return Ok((samples, started.elapsed()));
        }
        anyhow::ensure!(
            started.elapsed() < SETTLE_DEADLINE,
            "only {settled} of {target} purchases settled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// (sum of seconds, count) of each processor batch step so far in this process.
pub fn batch_steps() -> BTreeMap<String, (f64, u64)> {
    use prometheus::core::Collector;
    let mut steps = BTreeMap::new();
    for family in platform::metrics::metrics().batch_latency.collect() {
        for m in family.get_metric() {
            let name = m.get_label().first().map(|l| l.value().to_owned());
            let h = m.get_histogram();
            steps.insert(
                name.unwrap_or_default(),
                (h.get_sample_sum(), h.get_sample_count()),
            );
        }
    }
    steps
}

/// Batches (of the `total` step) since `before`, and the mean milliseconds of each step.
pub fn steps_since(before: &BTreeMap<String, (f64, u64)>) -> (u64, BTreeMap<String, f64>) {
    let now = batch_steps();
    let delta = |name: &str| {
        let (s0, n0) = before.get(name).copied().unwrap_or_default();
        let (s1, n1) = now.get(name).copied().unwrap_or_default();
        (s1 - s0, n1.saturating_sub(n0))
    };
    let batches = delta("total").1;
    let means = now
        .keys()
        .map(|name| {
            let (sum, _) = delta(name);
            (name.clone(), sum * 1000.0 / batches.max(1) as f64)
        })
        .collect();
    (batches, means)
}

/// Purchases settled so far by the processor in this process (committed, announced,
/// acknowledged; replays not counted).
pub fn settled_now() -> u64 {
    use prometheus::core::Collector;
    platform::metrics::metrics()
        .purchases_settled
        .collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// (sum of seconds, count) of one ingest stage so far in this process.
fn stage(name: &str) -> (f64, u64) {
    let h = platform::metrics::metrics()
        .ingest_stage
        .with_label_values(&[name]);
    (h.get_sample_sum(), h.get_sample_count())
}

pub async fn settled_count(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM purchases")
        .fetch_one(pool)
        .await
        .context("counting settled purchases")
}

/// A `take_while` predicate: true until `duration` after `started` (always, without one).
pub fn within(
    started: Instant,
    duration: Option<Duration>,
) -> impl FnMut(&usize) -> std::future::Ready<bool> {
    let deadline = duration.map(|d| started + d);
    move |_| std::future::ready(deadline.is_none_or(|d| Instant::now() < d))
}

pub fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}
