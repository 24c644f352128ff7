//! API: reports from Postgres, the live relay of `ledger.entries`, admin actions, and
//! the web dashboard.
#![forbid(unsafe_code)]

mod admin;
mod analytics;
mod error;
mod health;
pub mod live;
pub mod openapi;
mod params;
mod reports;
mod tree;
mod web;

pub use error::ApiError;

use axum::extract::FromRef;
use axum::routing::{get, post, put};
use axum::Router;
use platform::auth::{Authenticator, Principal};
use platform::config::{LiveConfig, ReportsConfig};
use platform::Config;
use schemas::{Plan, UserId};
use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone, FromRef)]
pub struct ApiState {
    pub pool: PgPool,
    pub auth: Authenticator,
    pub relay: live::Relay,
    pub reports: Arc<ReportsConfig>,
    pub live: Arc<LiveConfig>,
    pub plan: Arc<Plan>,
    pub nats: async_nats::Client,
    /// The warehouse client, when analytics are enabled.
    pub clickhouse: Option<platform::clickhouse::Clickhouse>,
    pub readiness: health::Readiness,
    pub shutdown: CancellationToken,
}

impl ApiState {
    /// Connects the relay's stream subscription; it runs until `shutdown`.
    pub async fn new(
        config: &Config,
        pool: PgPool,
        nats: async_nats::Client,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let relay = live::Relay::start(config, nats.clone(), shutdown.clone()).await?;
        Ok(ApiState {
            auth: Authenticator::new(&config.auth, pool.clone()),
            pool,
            relay,
            reports: Arc::new(config.reports.clone()),
            live: Arc::new(config.live.clone()),
            plan: Arc::new(config.plan.clone()),
            nats,
            clickhouse: match config.clickhouse.enabled {
                true => Some(platform::clickhouse::Clickhouse::new(&config.clickhouse)?),
                false => None,
            },
            readiness: health::Readiness::new(&config.http),
            shutdown,
        })
    }
}

/// Only admins and the user themself may read a user's data.
pub(crate) fn authorize(who: &Principal, user: UserId) -> Result<(), ApiError> {
    if who.may_read_user(user) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Request/response routes (these get the shared limits, including the timeout).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/me", get(reports::me))
        .route("/v1/users/{id}/earnings", get(reports::summary))
        .route(
            "/v1/users/{id}/earnings/by-referral",
            get(reports::by_referral),
        )
        .route("/v1/users/{id}/earnings/by-leg", get(reports::by_leg))
        .route("/v1/users/{id}/earnings/history", get(reports::history))
        .route("/v1/users/{id}/earnings/daily", get(reports::daily))
        .route("/v1/users/{id}/tree", get(tree::tree))
        .route("/v1/admin/users/{id}/deactivate", post(admin::deactivate))
        .route("/v1/admin/users/{id}/reactivate", post(admin::reactivate))
        .route("/v1/admin/users/{id}/referrer", put(admin::move_user))
        .route("/v1/admin/plan", get(admin::plan))
        .route("/v1/admin/dead-letters", get(admin::dead_letters))
        .route("/v1/analytics/top-earners", get(analytics::top_earners))
        .route(
            "/v1/analytics/purchases-per-shop",
            get(analytics::purchases_per_shop),
        )
        .route("/v1/analytics/conversion", get(analytics::conversion))
        .route(
            "/v1/users/{id}/analytics/earnings-over-time",
            get(analytics::earnings_over_time),
        )
        .route("/v1/users/{id}/analytics/levels", get(analytics::levels))
        .route("/v1/users/{id}/analytics/legs", get(analytics::legs))
        .with_state(state)
}

/// Long-lived routes: live streams (no request timeout) and unauthenticated basics.
pub fn streaming_router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/users/{id}/earnings/stream", get(live::sse::stream))
        .route("/v1/users/{id}/earnings/ws", get(live::ws::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(platform::http::metrics_handler))
        .merge(web::router())
        .with_state(state)
}

/// Runs the API as its own role until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.auth.check_secrets(&[config.http.api_addr])?;
    let pool = platform::db::create_and_migrate(&config.database).await?;
    let nats = platform::nats::connect(&config.nats).await?;
    platform::nats::ensure_streams(&async_nats::jetstream::new(nats.clone()), &config.nats).await?;
    let state = ApiState::new(&config, pool, nats, shutdown.clone()).await?;
    let gate = platform::gate::Gate::new(&config.http, state.auth.clone());
    let open = streaming_router(state.clone()).merge(openapi::route(openapi::document(Vec::new())));
    let app = platform::http::with_limits(router(state), &config.http, &gate)
        .merge(platform::http::with_stream_limits(open, &gate));
    let listener = platform::http::bind(config.http.api_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    platform::http::serve(listener, app, shutdown).await
}
