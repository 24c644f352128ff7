//! Prometheus metrics. Labels are few and bounded (role, outcome), never a user id.
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub rate_limited: IntCounterVec,
    pub purchases_accepted: IntCounterVec,
    pub messages_processed: IntCounterVec,
    pub earnings_written: IntCounterVec,
    pub batch_latency: HistogramVec,
    pub ingest_stage: HistogramVec,
    pub live_connections: IntGauge,
    pub warehouse_rows: IntCounterVec,
    pub consumer_lost: IntCounterVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("referral".into()), None)?;
    let http_requests = IntCounterVec::new(
        Opts::new("http_requests_total", "HTTP requests"),
        &["route", "status"],
    )?;
    let http_latency = HistogramVec::new(
        HistogramOpts::new("http_request_seconds", "HTTP request latency"),
        &["route"],
    )?;
    let rate_limited = IntCounterVec::new(
        Opts::new(
            "rate_limited_total",
            "requests answered 429 by the rate limits",
        ),
        &["kind"],
    )?;
    let purchases_accepted = IntCounterVec::new(
        Opts::new("ingest_accepted_total", "purchases and refunds accepted"),
        &["kind", "outcome"],
    )?;
    let messages_processed = IntCounterVec::new(
        Opts::new("processor_messages_total", "stream messages processed"),
        &["kind", "outcome"],
    )?;
    let earnings_written = IntCounterVec::new(
        Opts::new("earnings_written_total", "ledger entries"),
        &["kind"],
    )?;
    let batch_latency = HistogramVec::new(
        HistogramOpts::new("processor_batch_seconds", "time to apply one batch").buckets(vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
        &["stage"],
    )?;
    let ingest_stage = HistogramVec::new(
        HistogramOpts::new(
            "ingest_stage_seconds",
            "time a purchase request spends in each step at the edge",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]),
        &["stage"],
    )?;
    let live_connections = IntGauge::new("live_connections", "open SSE and WebSocket clients")?;
    let warehouse_rows = IntCounterVec::new(
        Opts::new("warehouse_rows_total", "rows sent to ClickHouse"),
        &["table"],
    )?;
    let consumer_lost = IntCounterVec::new(
        Opts::new(
            "consumer_lost_total",
            "times a stream consumer was lost (missed heartbeats, errors) and reopened",
        ),
        &["consumer"],
    )?;
    registry.register(Box::new(http_requests.clone()))?;
    registry.register(Box::new(http_latency.clone()))?;
    registry.register(Box::new(rate_limited.clone()))?;
    registry.register(Box::new(purchases_accepted.clone()))?;
    registry.register(Box::new(messages_processed.clone()))?;
    registry.register(Box::new(earnings_written.clone()))?;
    registry.register(Box::new(batch_latency.clone()))?;
    registry.register(Box::new(ingest_stage.clone()))?;
    registry.register(Box::new(live_connections.clone()))?;
    registry.register(Box::new(warehouse_rows.clone()))?;
    registry.register(Box::new(consumer_lost.clone()))?;
    Ok(Metrics {
        registry,
        http_requests,
        http_latency,
        rate_limited,
        purchases_accepted,
        messages_processed,
        earnings_written,
        batch_latency,
        ingest_stage,
        live_connections,
        warehouse_rows,
        consumer_lost,
    })
}

/// The process-wide metrics. Registration of these fixed names cannot fail; if it
/// somehow did, the process is misbuilt and stopping at startup is right.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    #[allow(clippy::expect_used)]
    METRICS.get_or_init(|| build().expect("metric names are valid and unique"))
}

pub fn render() -> String {
    let mut buf = Vec::new();
    let families = metrics().registry.gather();
    if TextEncoder::new().encode(&families, &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}
