//! Prometheus metrics. Labels are few and bounded (role, outcome), never a user id.
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub rate_limited: IntCounterVec,
    pub purchases_accepted: IntCounterVec,
    pub messages_processed: IntCounterVec,
    /// New purchases settled, by status (paid, below_threshold, …): what benches poll.
    pub purchases_settled: IntCounterVec,
    pub earnings_written: IntCounterVec,
    pub batch_latency: HistogramVec,
    pub ingest_stage: HistogramVec,
    /// Requests waiting to join the edge's next group, by step (reserve, store).
    pub ingest_waiting: IntGaugeVec,
    pub live_connections: IntGauge,
    /// Open HTTP connections (all listeners), and connections refused at a bound.
    pub http_connections: IntGauge,
    /// Report reads waiting for a place (`reports.max_concurrent_reads`).
    pub report_reads_waiting: IntGauge,
    /// Users in the processor's referral graph, as of its last sync with `user_events`
    /// (0 until the processor has loaded it).
    pub graph_users: IntGauge,
    /// Analytics queries waiting for a place (`clickhouse.analytics_max_concurrent_queries`).
    pub analytics_queries_waiting: IntGauge,
    /// Signups and graph changes waiting for their caller's place or this process's turn
    /// (`db::GraphWrites`).
    pub graph_writes_waiting: IntGauge,
    /// Refunds waiting for their order's turn (ingest's `turns::RefundTurns`).
    pub refunds_waiting: IntGauge,
    /// Unknown credentials waiting for their address's turn to be looked up (`gate`).
    pub auth_lookups_waiting: IntGauge,
    pub http_connections_refused: IntCounterVec,
    pub warehouse_rows: IntCounterVec,
    /// Messages a consumer found the stream had dropped before it received them.
    pub messages_lost: IntCounterVec,
    pub consumer_lost: IntCounterVec,
}

/// A counter family registered in `registry`.
fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// A gauge registered in `registry`.
fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// Requests waiting to join the edge's next group, by step (`reserve`, `store`).
fn ingest_waiting(registry: &Registry) -> Result<IntGaugeVec, prometheus::Error> {
    let opts = Opts::new(
        "ingest_group_waiting",
        "purchase requests waiting to join the edge's next group, by step",
    );
    let g = IntGaugeVec::new(opts, &["step"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// A histogram family registered in `registry`, with these bucket bounds (seconds).
fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> Result<HistogramVec, prometheus::Error> {
    let opts = HistogramOpts::new(name, help);
    let opts = if buckets.is_empty() {
        opts
    } else {
        opts.buckets(buckets.to_vec())
    };
    let h = HistogramVec::new(opts, labels)?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

/// The histograms: HTTP latency, processor batch steps, edge steps.
fn histograms(
    r: &Registry,
) -> Result<(HistogramVec, HistogramVec, HistogramVec), prometheus::Error> {
    const BATCH: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    const STAGE: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    Ok((
        histogram(
            r,
            "http_request_seconds",
            "HTTP request latency",
            &[],
            &["route"],
        )?,
        histogram(
            r,
            "processor_batch_seconds",
            "time to apply one batch, and each of its steps",
            BATCH,
            &["stage"],
        )?,
        histogram(
            r,
            "ingest_stage_seconds",
            "time a purchase request spends in each step at the edge",
            STAGE,
            &["stage"],
        )?,
    ))
}

/// Every gauge, in the order `build` takes them apart.
fn gauges(r: &Registry) -> Result<[IntGauge; 8], prometheus::Error> {
    Ok([
        gauge(r, "live_connections", "open SSE and WebSocket clients")?,
        gauge(r, "http_connections", "open HTTP connections")?,
        gauge(
            r,
            "report_reads_waiting",
            "report reads waiting for a place (reports.max_concurrent_reads)",
        )?,
        gauge(
            r,
            "graph_users",
            "users in the processor's referral graph (0 until it is loaded)",
        )?,
        gauge(
            r,
            "analytics_queries_waiting",
            "analytics queries waiting for a place (clickhouse.analytics_max_concurrent_queries)",
        )?,
        gauge(
            r,
            "graph_writes_waiting",
            "signups and graph changes waiting for their caller's place or this process's turn to write the graph",
        )?,
        gauge(
            r,
            "refunds_waiting",
            "refunds waiting for their order's turn (ingest.refund_turns)",
        )?,
        gauge(
            r,
            "auth_lookups_waiting",
            "unknown credentials waiting for their address's turn to be looked up",
        )?,
    ])
}

/// Counters of connections refused, warehouse rows, consumers lost and messages lost.
fn counters(r: &Registry) -> Result<[IntCounterVec; 4], prometheus::Error> {
    Ok([
        counter(
            r,
            "http_connections_refused_total",
            "connections refused at http.max_connections (reason full) or \
             http.max_connections_per_address (reason address)",
            &["reason"],
        )?,
        counter(
            r,
            "warehouse_rows_total",
            "rows sent to ClickHouse",
            &["table"],
        )?,
        counter(
            r,
            "consumer_lost_total",
            "times a stream consumer was lost (missed heartbeats, errors) and reopened",
            &["consumer"],
        )?,
        counter(
            r,
            "messages_lost_total",
            "messages a consumer found its stream had dropped (its oldest, at its bound) \
             before they were delivered; for the warehouse, run `referral warehouse backfill`",
            &["consumer"],
        )?,
    ])
}

fn build() -> Result<Metrics, prometheus::Error> {
    let r = Registry::new_custom(Some("referral".into()), None)?;
    let [live_connections, http_connections, report_reads_waiting, graph_users, analytics_queries_waiting, graph_writes_waiting, refunds_waiting, auth_lookups_waiting] =
        gauges(&r)?;
    let (http_latency, batch_latency, ingest_stage) = histograms(&r)?;
    let [http_connections_refused, warehouse_rows, consumer_lost, messages_lost] = counters(&r)?;
    Ok(Metrics {
        http_requests: counter(
            &r,
            "http_requests_total",
            "HTTP requests",
            &["route", "status"],
        )?,
        http_latency,
        rate_limited: counter(
            &r,
            "rate_limited_total",
            "requests answered 429 by the rate limits",
            &["kind"],
        )?,
        purchases_accepted: counter(
            &r,
            "ingest_accepted_total",
            "purchases and refunds accepted",
            &["kind", "outcome"],
        )?,
        messages_processed: counter(
            &r,
            "processor_messages_total",
            "stream messages processed",
            &["kind", "outcome"],
        )?,
        purchases_settled: counter(
            &r,
            "processor_purchases_settled_total",
            "purchases committed in Postgres, announced and acknowledged (new ones only)",
            &["status"],
        )?,
        earnings_written: counter(&r, "earnings_written_total", "ledger entries", &["kind"])?,
        batch_latency,
        ingest_stage,
        ingest_waiting: ingest_waiting(&r)?,
        live_connections,
        http_connections,
        report_reads_waiting,
        analytics_queries_waiting,
        graph_writes_waiting,
        refunds_waiting,
        auth_lookups_waiting,
        graph_users,
        http_connections_refused,
        warehouse_rows,
        messages_lost,
        consumer_lost,
        registry: r,
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

/// Counts one caller on a `…_waiting` gauge until it has what it waits for or is dropped
/// waiting (its deadline passed, its client left).
pub struct Waiting<'a>(&'a IntGauge);

impl<'a> Waiting<'a> {
    pub fn start(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
