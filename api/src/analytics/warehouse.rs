//! Analytics reads through the one ClickHouse client (`platform::clickhouse`), with the
//! warehouse's states as problems: disabled, unreachable, or without schema yet (503).
use super::SharedAnswers;
use crate::{ApiError, ApiState};
use axum::http::StatusCode;
use platform::clickhouse::{read_json_rows, Clickhouse, ClickhouseError};
use platform::Problem;
use serde::de::DeserializeOwned;

fn unavailable(code: &str, detail: &str) -> ApiError {
    let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
    p.retry_after_secs = Some(5);
    ApiError::Problem(p)
}

/// Runs `sql(database)` on ClickHouse and reads each JSONEachRow line as a `T`.
pub(super) async fn query<T: DeserializeOwned>(
    clickhouse: Option<&Clickhouse>,
    sql: impl FnOnce(&str) -> String,
) -> Result<Vec<T>, ApiError> {
    ask(clickhouse, None, sql).await
}

/// `query` for a program-wide answer, shared for `clickhouse.analytics_cache_ms`.
pub(super) async fn shared_query<T: DeserializeOwned>(
    state: &ApiState,
    sql: impl FnOnce(&str) -> String,
) -> Result<Vec<T>, ApiError> {
    ask(
        state.clickhouse.as_ref(),
        Some(&state.analytics_answers),
        sql,
    )
    .await
}

async fn ask<T: DeserializeOwned>(
    clickhouse: Option<&Clickhouse>,
    shared: Option<&SharedAnswers>,
    sql: impl FnOnce(&str) -> String,
) -> Result<Vec<T>, ApiError> {
    let Some(ch) = clickhouse else {
        return Err(ApiError::Problem(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "analytics_disabled",
            "the analytics warehouse is not enabled on this deployment",
        )));
    };
    let sql = sql(ch.database());
    let body = match shared {
        Some(shared) => shared.answer(&sql, || ch.json_lines(&sql)).await,
        // A user's own read is a few granules: one thread each lets concurrent readers
        // share the cores instead of each taking them all.
        None => ch.json_lines_with(&sql, &[("max_threads", "1")]).await,
    };
    body.and_then(|b| read_json_rows(&b)).map_err(|e| match e {
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
    })
}
