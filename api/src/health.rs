use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when Postgres answers, NATS is connected, and ClickHouse (if enabled) pings.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let postgres = sqlx::query_scalar!("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let clickhouse = if state.clickhouse.enabled {
        let url = format!("{}/ping", state.clickhouse.url.trim_end_matches('/'));
        Some(matches!(reqwest::get(url).await, Ok(r) if r.status().is_success()))
    } else {
        None
    };
    let ok = postgres && nats && clickhouse.unwrap_or(true);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "postgres": postgres, "nats": nats, "clickhouse": clickhouse })),
    )
}
