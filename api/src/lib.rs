//! API: reports from Postgres, the live relay of `ledger.entries`, admin actions, and
//! the web dashboard.
#![forbid(unsafe_code)]

mod admin;
mod analytics;
mod error;
mod health;
pub mod known_users;
mod lanes;
pub mod live;
pub mod openapi;
mod params;
mod reports;
mod tree;
mod web;

pub use error::ApiError;

/// One level of the tree report, for tests that read its plan.
pub const TREE_LEVEL_SQL: &str = include_str!("../sql/tree_level.sql");
/// One page of the history report (planned with its values each time, so not a macro).
pub const HISTORY_PAGE_SQL: &str = include_str!("../sql/history_page.sql");

use axum::extract::FromRef;
use axum::Router;
use platform::auth::{Authenticator, Principal};
use platform::config::{LiveConfig, ReportsConfig};
use platform::metrics::metrics;
use platform::Config;
use schemas::{Plan, UserId};
use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the report and live handlers share, behind one `Arc`: axum clones the state for
/// every request, and cloning these fields one by one (a NATS client's sender allocates)
/// is work a report does not need (as on the edge, stop 32).
#[derive(Clone)]
pub struct ApiState(Arc<Shared>);

impl std::ops::Deref for ApiState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<ApiState> for Authenticator {
    fn from_ref(state: &ApiState) -> Authenticator {
        state.auth.clone()
    }
}

pub struct Shared {
    pub pool: PgPool,
    pub auth: Authenticator,
    pub relay: live::Relay,
    pub reports: Arc<ReportsConfig>,
    pub live: Arc<LiveConfig>,
    pub plan: Arc<Plan>,
    pub nats: async_nats::Client,
    /// The warehouse client, when analytics are enabled.
    pub clickhouse: Option<platform::clickhouse::Clickhouse>,
    /// Program-wide analytics answers, shared for a short window.
    pub analytics_answers: Arc<analytics::SharedAnswers>,
    pub readiness: health::Readiness,
    pub known_users: Arc<known_users::KnownUsers>,
    /// Places for report reads under way at once (`[reports] max_concurrent_reads`).
    pub read_lanes: Arc<lanes::Lanes>,
    /// Places for analytics queries under way at once
    /// (`[clickhouse] analytics_max_concurrent_queries`).
    pub warehouse_lanes: Arc<lanes::Lanes>,
    /// Admins' graph writes in turn (`platform::db::GraphWrites`).
    pub graph_writes: platform::db::GraphWrites,
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
        Ok(ApiState(Arc::new(Shared {
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
            analytics_answers: Arc::new(analytics::SharedAnswers::new(&config.clickhouse)),
            readiness: health::Readiness::new(&config.http),
            known_users: Arc::new(known_users::KnownUsers::new(
                config.reports.known_users_cache,
            )),
            read_lanes: Arc::new(lanes::Lanes::new(
                config.reports.max_concurrent_reads,
                config.reports.max_concurrent_reads_per_user,
                metrics().report_reads_waiting.clone(),
            )),
            warehouse_lanes: Arc::new(lanes::Lanes::new(
                config.clickhouse.analytics_max_concurrent_queries,
                config.clickhouse.analytics_max_concurrent_queries,
                metrics().analytics_queries_waiting.clone(),
            )),
            graph_writes: platform::db::GraphWrites::new(config.http.graph_writes_per_caller),
            shutdown,
        })))
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

/// Request/response routes (these get the shared limits, including the timeout); each
/// module mounts its own.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(reports::routes())
        .merge(tree::routes())
        .merge(reports::me_route())
        .merge(admin::routes())
        .merge(analytics::routes())
        .with_state(state)
}

/// Long-lived routes: live streams (no request timeout) and unauthenticated basics.
pub fn streaming_router(state: ApiState) -> Router {
    Router::new()
        .merge(live::routes())
        .merge(health::routes())
        .merge(web::router())
        .with_state(state)
}

/// Runs the API as its own role until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A config built in code (tests, benches) passes the checks a loaded one did.
    config.validate()?;
    config.auth.check_secrets(&[config.http.api_addr])?;
    let pool =
        platform::db::migrated_for_requests(&config.database, config.http.request_timeout_ms)
            .await?;
    let nats = platform::nats::connect(&config.nats).await?;
    platform::nats::ensure_streams(&async_nats::jetstream::new(nats.clone()), &config.nats).await?;
    let state = ApiState::new(&config, pool, nats, shutdown.clone()).await?;
    let gate = platform::gate::Gate::new(&config.http, state.auth.clone());
    let open = streaming_router(state.clone()).merge(openapi::route(openapi::document(Vec::new())));
    let app = platform::http::with_limits(router(state), &config.http, &gate)
        .merge(platform::http::with_stream_limits(open, &gate));
    let listener = platform::http::bind(config.http.api_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    platform::http::serve(listener, app, &config.http, shutdown).await
}
