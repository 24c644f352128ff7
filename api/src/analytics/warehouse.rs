//! Reads from ClickHouse over HTTP (SQL as the POST body, JSONEachRow back), with the
//! warehouse's states as problems: disabled, unreachable, or without schema yet (503).
use crate::ApiError;
use axum::http::StatusCode;
use platform::config::ClickhouseConfig;
use platform::Problem;
use serde::de::DeserializeOwned;
use std::sync::OnceLock;
use std::time::Duration;

/// Longest ClickHouse error text kept in the (logged, never shown) internal error.
const ERROR_TEXT_MAX_CHARS: usize = 500;

fn unavailable(code: &str, detail: &str) -> ApiError {
    let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
    p.retry_after_secs = Some(5);
    ApiError::Problem(p)
}

/// Runs `sql(database)` on ClickHouse and reads each JSONEachRow line as a `T`.
pub(super) async fn query<T: DeserializeOwned>(
    config: &ClickhouseConfig,
    sql: impl FnOnce(&str) -> String,
) -> Result<Vec<T>, ApiError> {
    if !config.enabled {
        return Err(ApiError::Problem(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "analytics_disabled",
            "the analytics warehouse is not enabled on this deployment",
        )));
    }
    let db = &config.database;
    if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(anyhow::anyhow!("clickhouse.database is not a plain identifier").into());
    }
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    let response = HTTP
        .get_or_init(reqwest::Client::new)
        .post(format!("{}/", config.url.trim_end_matches('/')))
        .query(&[
            ("wait_end_of_query", "1"),
            ("output_format_json_quote_64bit_integers", "0"),
        ])
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .body(format!("{} FORMAT JSONEachRow", sql(db)))
        .send()
        .await;
    let warehouse_down = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "analytics: ClickHouse did not answer");
        unavailable(
            "analytics_unavailable",
            "the analytics warehouse does not answer",
        )
    };
    let response = response.map_err(|e| warehouse_down(&e))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| warehouse_down(&e))?;
    if !status.is_success() {
        // 81 unknown database, 60 unknown table: the sink has not created the schema yet.
        if matches!(error_code(&body), Some(81 | 60)) {
            return Err(unavailable(
                "analytics_unavailable",
                "the analytics warehouse has no schema yet",
            ));
        }
        let text: String = body.chars().take(ERROR_TEXT_MAX_CHARS).collect();
        return Err(anyhow::anyhow!("ClickHouse answered {status}: {text}").into());
    }
    body.lines()
        .map(|line| serde_json::from_str(line).map_err(|e| anyhow::Error::from(e).into()))
        .collect()
}

/// The error code ClickHouse starts its error text with: `Code: 81, e.displayText() …`
/// on 18.16, `Code: 81. DB::Exception: …` on current versions.
fn error_code(body: &str) -> Option<u32> {
    let rest = body.strip_prefix("Code: ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

#[cfg(test)]
#[path = "warehouse_test.rs"]
mod tests;
