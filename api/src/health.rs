use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Liveness and readiness (open), and metrics (an admin or the metrics token).
pub fn routes() -> axum::Router<ApiState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(platform::http::metrics_handler))
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// The last readiness result, reused for `[http] readiness_cache_ms`: however often
/// `/readyz` is asked, Postgres, NATS and ClickHouse are probed at most once per period
/// (concurrent askers wait for the one probe in flight).
#[derive(Clone)]
pub struct Readiness {
    last: Arc<Mutex<Option<(Instant, bool, Value)>>>,
    cache_for: Duration,
    probe_timeout: Duration,
}

impl Readiness {
    pub fn new(config: &platform::config::HttpConfig) -> Self {
        Readiness {
            last: Arc::new(Mutex::new(None)),
            cache_for: Duration::from_millis(config.readiness_cache_ms),
            probe_timeout: Duration::from_millis(config.readiness_probe_timeout_ms),
        }
    }
}

/// Ready when Postgres answers, NATS is connected, and ClickHouse (if enabled) pings;
/// `checked_at` says when that was probed.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let readiness = state.readiness.clone();
    let mut last = readiness.last.lock().await;
    let fresh = last
        .as_ref()
        .filter(|(at, _, _)| at.elapsed() < readiness.cache_for);
    let (ok, body) = match fresh {
        Some((_, ok, body)) => (*ok, body.clone()),
        None => {
            let (ok, body) = probe(&state, readiness.probe_timeout).await;
            *last = Some((Instant::now(), ok, body.clone()));
            (ok, body)
        }
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn probe(state: &ApiState, timeout: Duration) -> (bool, Value) {
    let postgres = within(timeout, async {
        sqlx::query_scalar!("SELECT 1")
            .fetch_one(&state.pool)
            .await
            .is_ok()
    })
    .await;
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let clickhouse = match &state.clickhouse {
        Some(ch) => Some(within(timeout, ch.ping()).await),
        None => None,
    };
    let ok = postgres && nats && clickhouse.unwrap_or(true);
    let body = json!({
        "postgres": postgres,
        "nats": nats,
        "clickhouse": clickhouse,
        "checked_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    (ok, body)
}

/// A probe that does not answer in time counts as down.
async fn within(timeout: Duration, probe: impl Future<Output = bool>) -> bool {
    tokio::time::timeout(timeout, probe).await.unwrap_or(false)
}
