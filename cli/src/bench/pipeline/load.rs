//! One HTTP load: requests at a fixed concurrency, each latency kept; a sampler records
//! accepted vs settled purchases over time until every accepted purchase is settled.
use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
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
}

pub struct Load {
    pub url: String,
    pub key: String,
    /// Request bodies, each carrying `per_request` purchases.
    pub bodies: Vec<serde_json::Value>,
    pub per_request: usize,
    pub connections: usize,
    /// Purchases settled before this load started (the settled count is cumulative).
    pub settled_before: i64,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const SETTLE_DEADLINE: Duration = Duration::from_secs(600);

impl Load {
    pub async fn run(
        self,
        http: &reqwest::Client,
        pool: &sqlx::PgPool,
    ) -> anyhow::Result<LoadResult> {
        let purchases = self.bodies.len() * self.per_request;
        let stages_before = [stage("reserve"), stage("store")];
        let accepted = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let sampler = tokio::spawn(sample(
            pool.clone(),
            accepted.clone(),
            started,
            self.settled_before,
            purchases,
        ));
        let per_request = self.per_request;
        let mut sends = futures::stream::iter(self.bodies.into_iter().map(|body| {
            let (http, url, key, accepted) = (
                http.clone(),
                self.url.clone(),
                self.key.clone(),
                accepted.clone(),
            );
            async move {
                let sent = Instant::now();
                http.post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?;
                accepted.fetch_add(per_request, Ordering::Relaxed);
                Ok::<_, anyhow::Error>(sent.elapsed())
            }
        }))
        .buffer_unordered(self.connections.max(1));
        let mut latencies = Vec::with_capacity(purchases / per_request.max(1));
        while let Some(r) = sends.next().await {
            latencies.push(r?);
        }
        let accepted_in = started.elapsed();
        let (backlog, settled_in) = sampler.await??;
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len().saturating_sub(1)) as f64 * p) as usize;
            latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let [reserve_mean_ms, store_mean_ms] =
            [("reserve", stages_before[0]), ("store", stages_before[1])].map(|(name, (sum, n))| {
                let (sum2, n2) = stage(name);
                (sum2 - sum) * 1000.0 / ((n2 - n).max(1) as f64)
            });
        Ok(LoadResult {
            reserve_mean_ms,
            store_mean_ms,
            purchases,
            accepted_per_sec: rate(purchases, accepted_in),
            settled_per_sec: rate(purchases, settled_in),
            http_p50_ms: pct(0.5),
            http_p99_ms: pct(0.99),
            http_max_ms: pct(1.0),
            backlog,
        })
    }
}

/// Samples until `target` purchases beyond `before` are settled; returns the samples and
/// when the last one settled.
async fn sample(
    pool: sqlx::PgPool,
    accepted: Arc<AtomicUsize>,
    started: Instant,
    before: i64,
    target: usize,
) -> anyhow::Result<(Vec<(f64, usize, i64)>, Duration)> {
    let target = i64::try_from(target)?;
    let mut samples = Vec::new();
    let mut next_sample = Instant::now();
    loop {
        let settled = settled_count(&pool).await? - before;
        let now = Instant::now();
        if now >= next_sample || settled >= target {
            let at = started.elapsed().as_secs_f64();
            samples.push((at, accepted.load(Ordering::Relaxed), settled));
            next_sample = now + SAMPLE_EVERY;
        }
        if settled >= target {
            return Ok((samples, started.elapsed()));
        }
        anyhow::ensure!(
            started.elapsed() < SETTLE_DEADLINE,
            "only {settled} of {target} purchases settled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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

pub fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}
