//! Serving a router with the shared limits and graceful shutdown.
use crate::auth::Principal;
use crate::config::HttpConfig;
use crate::connections::ConnectionCap;
use crate::gate::Gate;
use crate::in_flight::InFlight;
use crate::metrics::metrics;
use crate::problem::Problem;
use crate::stall::StallGuard;
use anyhow::Context;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Binds first (so callers learn the real port, e.g. port 0 in tests), serves later.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// Wraps a router with the limits every boundary shares: body size, requests in flight
/// for the listener and per caller (`crate::in_flight`; one count for every route, where
/// a tower concurrency layer on a `Router` counts each route on its own), the gate
/// (authentication and rate per caller, see `crate::gate`), the timeout, request metrics
/// (outermost, so refusals are counted too). Long-lived routes (SSE/WS) take
/// `with_stream_limits` instead, so the timeout does not cut them.
pub fn with_limits(router: Router, config: &HttpConfig, gate: &Gate) -> Router {
    let timeout = Duration::from_millis(config.request_timeout_ms);
    router
        .layer(axum::extract::DefaultBodyLimit::max(
            config.body_limit_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            InFlight::new(config),
            crate::in_flight::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            crate::gate::admit,
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| deadline(timeout, req, next),
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

/// Serves until `shutdown`, then stops accepting, lets every connection finish its
/// request in flight, and returns once all have closed. hyper's builder rather than
/// `axum::serve`, which sets no timer and so no deadline on reading a request head.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = router
        .fallback(|| async { Problem::not_found("route") })
        .method_not_allowed_fallback(method_not_allowed);
    // hyper's HTTP/1 builder, not hyper-util's auto one: that one reads a connection's
    // first bytes to pick a protocol with no timer running, so a client that connects and
    // sends nothing would hold its socket for ever.
    let mut builder = Builder::new();
    builder
        .max_buf_size(config.max_header_bytes)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms));
    let builder = Arc::new(builder);
    let cap = ConnectionCap::new(
        config.max_connections,
        config.reserved_files,
        config.max_connections_per_address,
    );
    let stall = Duration::from_millis(config.write_stall_timeout_ms);
    let connections = TaskTracker::new();
    loop {
        // axum's accept retries (after a pause) when out of file descriptors.
        let (io, client) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = shutdown.cancelled() => break,
        };
        let held = match cap.admit(client.ip()) {
            Ok(held) => held,
            Err(why) => {
                cap.refuse(io, why);
                continue;
            }
        };
        let io = StallGuard::new(io, stall);
        let task = connection(
            builder.clone(),
            io,
            client,
            router.clone(),
            shutdown.clone(),
        );
        connections.spawn(async move {
            task.await;
            drop(held);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// One connection, with the client's address for the gate (as `ConnectInfo`) and
/// upgrades (WebSocket); asked to close after its request in flight on `shutdown`.
async fn connection(
    builder: Arc<Builder>,
    io: StallGuard<TcpStream>,
    client: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(client));
        router.clone().oneshot(request)
    });
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    // A client that hangs up or times out is routine, not an error of ours.
    if let Err(e) = ended {
        tracing::debug!(%client, error = %e, "connection ended");
    }
}

/// A route asked with a method it does not answer (axum keeps the `Allow` header).
async fn method_not_allowed(method: axum::http::Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route does not answer {method}; the Allow header lists what it does"),
    )
}

/// `/metrics` for an admin or the bearer of `[auth] metrics_token`: the counts say how
/// much business each shop-facing route does, which is no stranger's to read. The gate
/// in front authenticated the caller (a bad credential never gets here); without it no
/// one would be let in.
pub async fn metrics_handler(
    who: Option<axum::Extension<Principal>>,
) -> Result<impl IntoResponse, Problem> {
    match who.map(|axum::Extension(who)| who) {
        Some(who) if who.may_read_metrics() => {}
        Some(_) => return Err(Problem::forbidden()),
        None => {
            return Err(Problem::unauthenticated(
                "send Authorization: Bearer <metrics token or admin token>",
            ))
        }
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    ))
}
