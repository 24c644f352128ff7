//! Report reads take turns: at most `[reports] max_concurrent_reads` run at once in this
//! process, the rest wait in arrival order (tokio's semaphore is fair). With one place per
//! reader the database ran as many queries as there were readers on a few cores, and the
//! operating system's time slices set the slowest requests' latency: measured at 32
//! readers on two cores, the depth-3 tree's p99 went from 58–88 ms with the pool's 16
//! places to 32–35 ms with 4, the median unchanged (docs/performance.md). A waiting
//! request is bounded by the request deadline and the in-flight limits, like any other.
use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::metrics::metrics;

pub async fn in_turn(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let waiting = Waiting::start();
    let lane = state.read_lanes.acquire().await;
    drop(waiting);
    // The place is held until the handler has built its response, not while it is sent.
    let Ok(_lane) = lane else {
        // Only a closed semaphore fails, and this one is never closed.
        return ApiError::Internal(anyhow::anyhow!("report lanes closed")).into_response();
    };
    next.run(request).await
}

/// Counts a request in `report_reads_waiting` until it has its place or is dropped
/// waiting (its deadline passed, its client left).
struct Waiting;

impl Waiting {
    fn start() -> Self {
        metrics().report_reads_waiting.inc();
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics().report_reads_waiting.dec();
    }
}
