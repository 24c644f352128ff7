use crate::config::DatabaseConfig;
use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../schemas/migrations");

/// A pool without a statement timeout, whatever the database's or role's default:
/// migrations, the processor (its graph load reads every user) and the tools.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    connect_with(config, &[("statement_timeout", "0")]).await
}

/// The pool of a role that serves requests (ingest, the API): a statement that runs
/// past the request deadline (`deadline_ms`, and `STATEMENT_SLACK_MS`) is cancelled by
/// Postgres. When a
/// request's deadline passes, its answer is a 503 and its future is dropped, but the
/// statement it had sent went on running (a report waiting on a lock, a slow read) and
/// its connection stayed busy until the statement ended: a caller's slow requests could
/// hold the pool long after their answers. Migrations and the processor's long reads (the
/// graph load) use `connect`, without it.
pub async fn connect_for_requests(
    config: &DatabaseConfig,
    deadline_ms: u64,
) -> anyhow::Result<PgPool> {
    let timeout = statement_timeout(deadline_ms);
    connect_with(config, &[("statement_timeout", timeout.as_str())]).await
}

/// How much longer than the request deadline a statement may run. The deadline answers
/// first (a 503 `request_timeout`, always the same answer for the same wait), and the
/// statement it gave up is cancelled a moment later.
pub const STATEMENT_SLACK_MS: u64 = 1_000;

fn statement_timeout(deadline_ms: u64) -> String {
    format!("{}ms", deadline_ms.saturating_add(STATEMENT_SLACK_MS))
}

/// A pool of `max_connections` whose sessions start with `settings`.
async fn connect_with(
    config: &DatabaseConfig,
    settings: &[(&str, &str)],
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(&config.url)
        .context("parsing database url")?
        .options(settings.iter().copied());
    let hint = unreachable(&options);
    pool_options(config, config.max_connections)
        .connect_with(options)
        .await
        .context(hint)
}

/// `create_and_migrate`, then the request pool (`connect_for_requests`) in place of the
/// migrating one.
pub async fn migrated_for_requests(
    config: &DatabaseConfig,
    deadline_ms: u64,
) -> anyhow::Result<PgPool> {
    create_and_migrate(config).await?.close().await;
    connect_for_requests(config, deadline_ms).await
}

/// A small pool whose transactions do not wait for their WAL flush
/// (`synchronous_commit = off`): for writes whose loss in a Postgres crash is
/// harmless because another durable record restores them (see ingest's reservations).
/// Connects on first use. Its statements are cancelled past the request deadline
/// (`deadline_ms`), as the request pool's are (`connect_for_requests`).
pub fn lazy_without_flush_wait(
    config: &DatabaseConfig,
    max: u32,
    deadline_ms: u64,
) -> anyhow::Result<PgPool> {
    let timeout = statement_timeout(deadline_ms);
    let options = PgConnectOptions::from_str(&config.url)
        .context("parsing database url")?
        .options([
            ("synchronous_commit", "off"),
            ("statement_timeout", timeout.as_str()),
        ]);
    Ok(pool_options(config, max).connect_lazy_with(options))
}

/// sqlx pings a connection before handing it out (`test_before_acquire`): a round trip
/// before every statement or transaction, on the request's path, while the load is highest.
/// A connection that was in use a moment ago is alive; one idle for `ping_idle_after_ms`
/// may have been ended by Postgres meanwhile, so it is still pinged (and replaced if dead).
/// One ended while busy fails its statement, which every caller already treats as
/// Postgres being unavailable (a 503, a batch retried).
fn pool_options(config: &DatabaseConfig, max: u32) -> PgPoolOptions {
    let ping_after = Duration::from_millis(config.ping_idle_after_ms);
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .test_before_acquire(false)
        .before_acquire(move |connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_after {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// What to do when Postgres does not answer (no password: the options print none).
fn unreachable(options: &PgConnectOptions) -> String {
    format!(
        "cannot connect to Postgres at {}:{}: is it running? (scripts/services.sh up starts it; \
         DATABASE_URL says where it is)",
        options.get_host(),
        options.get_port()
    )
}

/// Creates the database named in the URL when it does not exist yet, then migrates.
/// Every role does this at startup; concurrent starters are safe (sqlx takes an advisory
/// lock around migrations, and a lost CREATE DATABASE race is ignored).
pub async fn create_and_migrate(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(&config.url).context("parsing database url")?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone().database("postgres"))
        .await
        .with_context(|| unreachable(&options))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it the way Postgres does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&admin)
            .await
        {
            // A concurrent creator won the race; that is fine.
            let duplicate = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42P04");
            if !duplicate {
                return Err(e).context("creating database");
            }
        }
    }
    admin.close().await;
    let pool = connect(config).await?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    Ok(pool)
}

/// True when `error` (anywhere in its chain) says Postgres could not be reached or
/// cannot take writes now, rather than refused a statement: the pool could not hand out a
/// connection in time, the socket failed, the server is shutting down or starting
/// (SQLSTATE class 08, 57P01..57P03), it is out of resources (class 53: disk full, out of
/// memory, too many connections) or read-only (25006: a standby, or writes turned off).
/// A statement cancelled (57014: its `statement_timeout`, or an operator's
/// `pg_cancel_backend`) is the same: nothing was written, a retry may succeed.
/// Nothing was written; the pool reconnects by itself; the caller may retry (a 503).
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<sqlx::Error>())
        .any(sqlx_unavailable)
}

/// `is_unavailable` for one error.
pub fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08")
                || c.starts_with("53")
                || matches!(&*c, "57014" | "57P01" | "57P02" | "57P03" | "25006")
        }),
        _ => false,
    }
}

/// True when the statement lost a race with another transaction and may simply run
/// again: a serialization failure (40001) or a deadlock (40P01). Nothing was written.
pub fn is_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(d)
        if d.code().is_some_and(|c| matches!(&*c, "40001" | "40P01")))
}

/// Key of the advisory lock every writer of `user_events` (the graph outbox) takes first
/// and holds to commit: seq order is then commit order, so a reader following
/// `seq > cursor` never skips a late commit, and graph changes cannot race each other.
pub const USER_EVENTS_LOCK: i64 = 0x7265_6665_7272_616c;

async fn lock_user_events(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", USER_EVENTS_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// This process's graph writes take turns here before they take a connection. They run
/// one at a time on `USER_EVENTS_LOCK` anyway, and each waiting there held a pooled
/// connection: one shop sending a few hundred signups at once held every connection, and
/// other callers' statements failed waiting for one (503). Now one connection per process
/// waits on the lock, the rest wait in memory (bounded by the request deadline).
static GRAPH_WRITE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Callers' shares of the graph-write turn: enough that two callers seldom share one.
const CALLER_SHARES: usize = 256;

/// Graph writes (signups, moves, status changes) in turn, each caller holding at most
/// `http.graph_writes_per_caller` places in the queue for the process's one turn. The
/// queue is first come, first served: one shop's few hundred signups at once stood
/// before every other shop's signups and an admin's deactivation of a fraudster, each
/// waiting up to the whole queue; now the others wait for at most a few writes per caller.
pub struct GraphWrites {
    callers: crate::turns::KeyedTurns,
}

/// A graph write's turn: its caller's place and the process's turn; both end when it is
/// dropped (after the commit).
pub struct GraphWriteTurn {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    _place: crate::turns::Turn,
}

impl GraphWrites {
    pub fn new(per_caller: usize) -> Self {
        GraphWrites {
            callers: crate::turns::KeyedTurns::with_places(CALLER_SHARES, per_caller),
        }
    }

    /// A transaction that holds the outbox lock, begun in this process's turn, which
    /// `caller` (`Principal::key`) waited for in one of its places.
    pub async fn begin(
        &self,
        pool: &PgPool,
        caller: &str,
    ) -> sqlx::Result<(GraphWriteTurn, sqlx::Transaction<'static, sqlx::Postgres>)> {
        let turn = self.turn(caller).await;
        Ok((turn, GraphWrites::open(pool).await?))
    }

    /// `caller`'s place, then the process's turn.
    pub async fn turn(&self, caller: &str) -> GraphWriteTurn {
        let waiting =
            crate::metrics::Waiting::start(&crate::metrics::metrics().graph_writes_waiting);
        let place = self.callers.take(caller).await;
        let turn = GRAPH_WRITE_TURN.lock().await;
        drop(waiting);
        GraphWriteTurn {
            _turn: turn,
            _place: place,
        }
    }

    /// The graph write's transaction, holding the outbox lock: open it in a turn.
    pub async fn open(pool: &PgPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = pool.begin().await?;
        lock_user_events(&mut tx).await?;
        Ok(tx)
    }
}
