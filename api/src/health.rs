use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
/// `checked_at` says when that was probed. Not ready is a problem (`not_ready`, 503) that
/// carries the same fields.
pub async fn readyz(State(state): State<ApiState>) -> Response {
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
    if ok {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        not_ready(body)
    }
}

fn not_ready(probes: Value) -> Response {
    let mut problem = platform::Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "a service this API needs did not answer; the fields say which",
    );
    problem.retry_after_secs = Some(1);
    let mut response = problem.clone().into_response();
    let mut body = serde_json::to_value(&problem).unwrap_or_default();
    if let (Some(body), Value::Object(probes)) = (body.as_object_mut(), probes) {
        body.extend(probes);
    }
    *response.body_mut() = axum::body::Body::from(body.to_string());
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_ready_is_a_problem_that_says_which_service_did_not_answer() {
        let response = not_ready(json!({ "postgres": false, "nats": true, "clickhouse": null }));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(headers["retry-after"], "1");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "not_ready");
        assert_eq!(body["status"], 503);
        assert_eq!(
            (body["postgres"].clone(), body["nats"].clone()),
            (json!(false), json!(true))
        );
    }
}
