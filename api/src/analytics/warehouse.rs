//! Analytics reads through the one ClickHouse client (`platform::clickhouse`), with the
//! warehouse's states as problems: disabled, unreachable, or without schema yet (503).
//! Every query waits for one of the warehouse's places first
//! (`[clickhouse] analytics_max_concurrent_queries`, `crate::lanes`).
use crate::{ApiError, ApiState};
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::clickhouse::{read_json_rows, Clickhouse, ClickhouseError};
use platform::Problem;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn unavailable(code: &str, detail: &str) -> ApiError {
    let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
    p.retry_after_secs = Some(5);
    ApiError::Problem(p)
}

/// Runs `sql(database)` on ClickHouse and reads each JSONEachRow line as a `T`.
pub(super) async fn query<T: DeserializeOwned>(
    state: &ApiState,
    sql: impl FnOnce(&str) -> String,
) -> Result<Vec<T>, ApiError> {
    let ch = client(state)?;
    let sql = sql(ch.database());
    // A user's own read is a few granules: one thread each lets concurrent readers share
    // the cores instead of each taking them all.
    let body = in_turn(state, ch.json_lines_with(&sql, &[("max_threads", "1")])).await;
    body.and_then(|b| read_json_rows(&b)).map_err(problem)
}

/// A program-wide answer: `respond(rows)` as a JSON body, shared for
/// `clickhouse.analytics_cache_ms` by everyone asking the same `sql`. Only the asker that
/// runs the query takes a place; those waiting for its answer would hold places idle.
pub(super) async fn shared_answer<T: DeserializeOwned, R: Serialize>(
    state: &ApiState,
    sql: impl FnOnce(&str) -> String,
    respond: impl FnOnce(Vec<T>) -> R,
) -> Result<Response, ApiError> {
    let ch = client(state)?;
    let sql = sql(ch.database());
    let ask = || async {
        let body = in_turn(state, ch.json_lines(&sql)).await;
        let rows = body.and_then(|b| read_json_rows(&b)).map_err(problem)?;
        let json = serde_json::to_vec(&respond(rows)).map_err(|e| ApiError::Internal(e.into()))?;
        Ok::<_, ApiError>(Bytes::from(json))
    };
    let json = state.analytics_answers.answer(&sql, ask).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

fn client(state: &ApiState) -> Result<&Clickhouse, ApiError> {
    state.clickhouse.as_ref().ok_or_else(|| {
        ApiError::Problem(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "analytics_disabled",
            "the analytics warehouse is not enabled on this deployment",
        ))
    })
}

fn problem(e: ClickhouseError) -> ApiError {
    match e {
        e if e.is_missing_schema() => unavailable(
            "analytics_unavailable",
            "the analytics warehouse has no schema yet",
        ),
        ClickhouseError::Unreachable(e) => {
            tracing::warn!(error = %e, "analytics: ClickHouse did not answer");
            unavailable(
                "analytics_unavailable",
                "the analytics warehouse does not answer",
            )
        }
        e => ApiError::Internal(e.into()),
    }
}

/// Runs `ask` once it has one of the warehouse's places.
async fn in_turn(
    state: &ApiState,
    ask: impl std::future::Future<Output = Result<String, ClickhouseError>>,
) -> Result<String, ClickhouseError> {
    let _place = state
        .warehouse_lanes
        .take()
        .await
        .map_err(|_| ClickhouseError::Unexpected("analytics lanes closed".into()))?;
    ask.await
}
