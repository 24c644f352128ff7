//! Serving a router with the shared limits and graceful shutdown.
use crate::config::HttpConfig;
use crate::gate::Gate;
use crate::metrics::metrics;
use crate::problem::Problem;
use anyhow::Context;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds first (so callers learn the real port, e.g. port 0 in tests), serves later.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// Wraps a router with the limits every boundary shares: body size, timeout, the gate
/// (authentication and rate per caller, see `crate::gate`), a concurrency cap, request
/// metrics (outermost, so refusals are counted too). Long-lived routes (SSE/WS) take
/// `with_stream_limits` instead, so the timeout does not cut them.
pub fn with_limits(router: Router, config: &HttpConfig, gate: &Gate) -> Router {
    let timeout = Duration::from_millis(config.request_timeout_ms);
    router
        .layer(axum::extract::DefaultBodyLimit::max(
            config.body_limit_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            crate::gate::admit,
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| deadline(timeout, req, next),
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            config.max_concurrent_requests,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
}

/// The gate and metrics without the timeout or the concurrency cap: for live streams
/// (which count against their caller's rate when opened) and the unauthenticated basics
/// (health, readiness, metrics, dashboard, which count against the client address).
pub fn with_stream_limits(router: Router, gate: &Gate) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            crate::gate::admit,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
}

/// Answers a problem (not an empty 408) when a request outlives its deadline.
async fn deadline(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "the request did not finish in time; it may be retried",
        )
        .into_response(),
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let m = metrics();
    m.http_latency
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    response
}

pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = router
        .fallback(|| async { Problem::not_found("route") })
        .method_not_allowed_fallback(method_not_allowed);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
    .context("serving HTTP")
}

/// A route asked with a method it does not answer (axum keeps the `Allow` header).
async fn method_not_allowed(method: axum::http::Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route does not answer {method}; the Allow header lists what it does"),
    )
}

pub async fn metrics_handler() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}
