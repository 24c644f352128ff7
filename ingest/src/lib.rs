//! Ingest: the HTTP edge for shops and signups. A purchase is answered 202 only after
//! JetStream has stored it; a signup only after Postgres has committed it.
#![forbid(unsafe_code)]

mod backlog;
mod committer;
mod error;
mod group;
mod purchases;
mod refunds;
mod requests;
mod reserver;
mod signup;
mod turns;

/// The ingest half of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        signup::create_user,
        purchases::create_purchase,
        purchases::create_purchase_batch,
        refunds::create_refund
    ),
    components(schemas(platform::Problem)),
    modifiers(&CommonResponses)
)]
pub struct IngestDoc;

pub use error::IngestError;
/// The reservation statement, for tests that read its plan.
pub const RESERVE_SQL: &str = include_str!("../sql/reserve.sql");
use platform::openapi::CommonResponses;

use axum::extract::FromRef;
use axum::Router;
use platform::auth::Authenticator;
use platform::nats::Subjects;
use platform::Config;
use schemas::Plan;
use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the ingest handlers share, behind one `Arc`: axum clones the state for every
/// request (the handler service and the `State` extractor), and cloning these fields one
/// by one (a NATS client's sender allocates) was ~4 % of the edge's CPU (stop 32 profile).
#[derive(Clone)]
pub struct IngestState(Arc<Shared>);

impl std::ops::Deref for IngestState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<IngestState> for Authenticator {
    fn from_ref(state: &IngestState) -> Authenticator {
        state.auth.clone()
    }
}

pub struct Shared {
    pub pool: PgPool,
    pub js: async_nats::jetstream::Context,
    pub committer: committer::Committer,
    pub reserver: reserver::Reserver,
    pub subjects: Arc<Subjects>,
    pub auth: Authenticator,
    pub plan: Arc<Plan>,
    pub max_batch: usize,
    /// `[ingest] batch_items_in_flight`.
    pub batch_items_in_flight: std::num::NonZeroUsize,
    pub pseudonym_key: Arc<str>,
    /// `[ingest] purchases_per_sec_per_shop`: every purchase counted, batch items too.
    pub purchase_rate: platform::ratelimit::RateLimiter,
    pub refund_turns: turns::RefundTurns,
    /// Signups in turn (`platform::db::GraphWrites`).
    pub graph_writes: platform::db::GraphWrites,
    /// `[ingest] referrals_per_shop_under_others`.
    pub referrals_per_shop_under_others: u8,
    /// Each shop's share of the PURCHASES stream (`[ingest] backlog_bytes_per_shop`).
    pub backlog: Arc<backlog::Backlog>,
}

impl IngestState {
    pub fn new(config: &Config, pool: PgPool, nats: async_nats::Client) -> anyhow::Result<Self> {
        // Reservations commit without waiting for their WAL flush: one lost in a Postgres
        // crash is restored by the processor from the stored purchase, and the stream and
        // the ledger's unique keys, not the reservation, keep an order from paying twice
        // (docs/architecture.md).
        let reserve_pool = platform::db::lazy_without_flush_wait(
            &config.database,
            reserve_connections(config),
            config.http.request_timeout_ms,
        )?;
        let js = async_nats::jetstream::new(nats);
        let subjects = Arc::new(Subjects::new(&config.nats.prefix));
        let share = config.shop_share_bytes();
        if u64::try_from(config.nats.stream_max_bytes).is_ok_and(|s| s > 0 && share >= s) {
            tracing::warn!(
                share,
                "a shop's share of PURCHASES is the whole stream: one shop \
                can fill it and make every shop wait (ingest.backlog_bytes_per_shop)"
            );
        }
        let backlog = backlog::Backlog::new(share);
        backlog.follow(
            js.clone(),
            subjects.purchases_stream(),
            std::time::Duration::from_millis(config.ingest.backlog_refresh_ms),
        );
        let committer = committer::Committer::start(
            js.clone(),
            committer::Limits {
                queue: config.ingest.group_commit_queue,
                max_group: config.ingest.group_commit_max_purchases,
                in_flight: config.ingest.group_commit_in_flight,
            },
            backlog.clone(),
        );
        Ok(IngestState(Arc::new(Shared {
            auth: Authenticator::new(&config.auth, pool.clone()),
            reserver: reserver::Reserver::start(
                reserve_pool,
                reserver::Limits {
                    queue: config.ingest.group_commit_queue,
                    max_group: config.ingest.reserve_max_group,
                    in_flight: config.ingest.reserve_in_flight,
                },
                config.ingest.reserve_retries,
                committer.clone(),
            ),
            pool,
            committer,
            js,
            subjects,
            plan: Arc::new(config.plan.clone()),
            max_batch: config.http.max_batch_purchases,
            batch_items_in_flight: std::num::NonZeroUsize::new(config.ingest.batch_items_in_flight)
                .ok_or_else(|| {
                    anyhow::anyhow!("ingest.batch_items_in_flight must be at least 1")
                })?,
            pseudonym_key: Arc::from(config.auth.pseudonym_key.as_str()),
            purchase_rate: platform::ratelimit::RateLimiter::new(
                config.ingest.purchases_per_sec_per_shop,
                config.ingest.purchases_burst_per_shop,
            ),
            refund_turns: turns::RefundTurns::new(config.ingest.refund_turns),
            graph_writes: platform::db::GraphWrites::new(config.http.graph_writes_per_caller),
            backlog,
            referrals_per_shop_under_others: config.ingest.referrals_per_shop_under_others,
        })))
    }
}

/// One connection per reservation INSERT under way.
fn reserve_connections(config: &Config) -> u32 {
    u32::try_from(config.ingest.reserve_in_flight).unwrap_or(u32::MAX)
}

/// The ingest routes, without limits (the caller layers them once for the whole app).
pub fn router(state: IngestState) -> Router {
    Router::new()
        .merge(signup::routes())
        .merge(purchases::routes())
        .merge(refunds::routes())
        .with_state(state)
}

/// Runs ingest as its own role until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A config built in code (tests, benches) passes the checks a loaded one did.
    config.validate()?;
    config.auth.check_secrets(&[config.http.ingest_addr])?;
    let pool =
        platform::db::migrated_for_requests(&config.database, config.http.request_timeout_ms)
            .await?;
    let nats = platform::nats::connect(&config.nats).await?;
    let js = async_nats::jetstream::new(nats.clone());
    platform::nats::ensure_streams(&js, &config.nats).await?;
    let state = IngestState::new(&config, pool, nats)?;
    let gate = platform::gate::Gate::new(&config.http, state.auth.clone());
    let open = Router::new()
        .route(
            "/metrics",
            axum::routing::get(platform::http::metrics_handler),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(api_doc_route());
    let app = platform::http::with_limits(router(state), &config.http, &gate)
        .merge(platform::http::with_stream_limits(open, &gate));
    let listener = platform::http::bind(config.http.ingest_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "ingest listening");
    platform::http::serve(listener, app, &config.http, shutdown).await
}

fn api_doc_route() -> Router {
    let json = <IngestDoc as utoipa::OpenApi>::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".into());
    Router::new().route(
        "/openapi.json",
        axum::routing::get(move || {
            let json = json.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    json,
                )
            }
        }),
    )
}
