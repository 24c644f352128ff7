use crate::Application;
use clap::{Parser, Subcommand};
use platform::auth::{Authenticator, Principal};
use platform::Config;
use schemas::{ShopId, UserId};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "referral",
    about = "Multi-level referral earnings: ingest, processor, api"
)]
pub struct Cli {
    /// A TOML config file (also REFERRAL_CONFIG); environment variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Every role in one process (migrates first).
    All,
    /// The HTTP edge for shops and signups.
    Ingest,
    /// The stream processor that pays the referral chain.
    Processor,
    /// Reports, live streams and the dashboard.
    Api,
    /// The ClickHouse warehouse sink (or, with `backfill`, a load from Postgres).
    Warehouse {
        #[command(subcommand)]
        action: Option<WarehouseAction>,
    },
    /// Apply Postgres migrations (and ClickHouse DDL when enabled).
    Migrate,
    /// Print a signed JWT (or, with --revoke, refuse every such token issued until now).
    Token {
        #[arg(long, conflicts_with = "user")]
        admin: bool,
        #[arg(long)]
        user: Option<UserId>,
        /// Revoke every token of the admins (--admin) or of the user (--user) issued until
        /// now, within `[auth] revocations_refresh_ms` on every instance; prints nothing secret.
        #[arg(long)]
        revoke: bool,
    },
    /// Manage shops and their API keys.
    Shop {
        #[command(subcommand)]
        action: ShopAction,
    },
    /// Create a demo tree and stream purchases at a running instance.
    Demo(crate::demo::DemoArgs),
    /// Measure end-to-end throughput against a same-process baseline (scratch database).
    Bench {
        #[command(subcommand)]
        bench: crate::bench::Bench,
    },
    /// Recompute every earning from purchases, refunds and plans; exit 1 on any difference.
    Verify {
        /// Only the purchases that paid this user, and this user's totals and rollups.
        #[arg(long)]
        user: Option<UserId>,
        /// Only purchases processed at or after this instant (RFC 3339); entries only.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only purchases processed before this instant (RFC 3339); entries only.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand)]
pub enum WarehouseAction {
    /// Write the settled purchases of a time range, with their entries, from Postgres to
    /// ClickHouse: what the EARNINGS stream dropped during an outage, or a new warehouse's
    /// past. Rows ClickHouse holds are left out, and writes take turns with the sink's:
    /// safe to repeat and beside a running sink.
    Backfill {
        /// Purchases settled at or after this instant (RFC 3339).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Purchases settled before this instant (RFC 3339).
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand)]
pub enum ShopAction {
    /// Create a shop; prints its id and API key (shown once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// Revoke a shop's API key.
    Revoke {
        #[arg(long)]
        id: ShopId,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    platform::telemetry::init(&config.log);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    // The roles stop gracefully on the token, and benches watch it to remove their scratch
    // state; every other command is one piece of work that the signal handler (which
    // replaced the default that would have ended it) must still be able to stop.
    let own_stop = matches!(
        cli.command,
        Command::All
            | Command::Ingest
            | Command::Processor
            | Command::Api
            | Command::Warehouse { action: None }
            | Command::Bench { .. }
    );
    let work = dispatch(cli.command, config, shutdown.clone());
    if own_stop {
        return work.await;
    }
    tokio::select! {
        done = work => done,
        () = shutdown.cancelled() => anyhow::bail!("interrupted"),
    }
}

async fn dispatch(
    command: Command,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match command {
        Command::All => Application::build(config, shutdown).await?.wait().await,
        Command::Ingest => ingest::run(config, shutdown).await,
        Command::Processor => processor::run(config, shutdown).await,
        Command::Api => api::run(config, shutdown).await,
        Command::Warehouse { action: None } => warehouse::run(config, shutdown).await,
        Command::Warehouse {
            action: Some(WarehouseAction::Backfill { from, to }),
        } => backfill(&config, warehouse::Range { from, to }).await,
        Command::Migrate => {
            platform::db::create_and_migrate(&config.database).await?;
            if config.clickhouse.enabled {
                warehouse::migrate(&config.clickhouse).await?;
            }
            println!("migrations applied");
            Ok(())
        }
        Command::Token {
            admin,
            user,
            revoke,
        } => token(&config, admin, user, revoke).await,
        Command::Shop { action } => {
            let pool = platform::db::connect(&config.database).await?;
            match action {
                ShopAction::Create { name } => {
                    let (id, key) = crate::shops::create(&pool, &name).await?;
                    println!("{}", serde_json::json!({ "shop_id": id, "api_key": key }));
                }
                ShopAction::Revoke { id } => {
                    anyhow::ensure!(
                        crate::shops::revoke(&pool, id).await?,
                        "no active shop {id}"
                    );
                    println!("revoked {id}");
                }
            }
            Ok(())
        }
        Command::Demo(args) => crate::demo::run(&config, args).await,
        Command::Bench { bench } => crate::bench::run(config, bench, shutdown).await,
        Command::Verify { user, from, to } => {
            let pool = platform::db::connect(&config.database).await?;
            let scope = processor::verify::Scope { user, from, to };
            let report = processor::verify::verify_scope(&pool, scope).await?;
            println!("{}", report.summary());
            for d in &report.differences {
                println!("DIFF {d}");
            }
            if report.differences.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} differences", report.differences.len())
            }
        }
    }
}

/// Prints a token for the admins or the user, or revokes every such token issued so far.
async fn token(
    config: &Config,
    admin: bool,
    user: Option<UserId>,
    revoke: bool,
) -> anyhow::Result<()> {
    let who = match (admin, user) {
        (true, _) => Principal::Admin,
        (false, Some(u)) => Principal::User(u),
        (false, None) => anyhow::bail!("pass --admin or --user <uuid>"),
    };
    if revoke {
        let pool = platform::db::connect(&config.database).await?;
        let at = platform::auth::revocations::revoke(&pool, &who.key()).await?;
        println!(
            "{}",
            serde_json::json!({ "revoked": who.kind(), "not_before": at })
        );
        return Ok(());
    }
    config.auth.check_secrets(&[])?;
    let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy(&config.database.url)?;
    let auth = Authenticator::new(&config.auth, pool);
    println!("{}", auth.issue(who)?);
    Ok(())
}

async fn backfill(config: &Config, range: warehouse::Range) -> anyhow::Result<()> {
    let limits = &config.clickhouse;
    warehouse::migrate(limits).await?;
    let ch = platform::clickhouse::Clickhouse::new(limits)?;
    let pool = platform::db::connect(&config.database).await?;
    let writer = warehouse::Writer {
        ch: &ch,
        pool: &pool,
        months: limits.partitions_per_insert,
    };
    let done = warehouse::backfill(&writer, range, limits.batch_max_rows).await?;
    println!(
        "{}",
        serde_json::json!({
            "purchases": done.purchases,
            "inserted": done.written.inserted,
            "already_stored": done.written.already_stored,
        })
    );
    Ok(())
}

/// How an error reaches a person: one line, its causes joined, saying what to do. The
/// backtrace follows only when one was captured, i.e. `RUST_BACKTRACE` (or
/// `RUST_LIB_BACKTRACE`) asked for it.
pub fn error_line(error: &anyhow::Error) -> String {
    let line = format!("error: {error:#}").replace('\n', " ");
    let backtrace = error.backtrace();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        format!("{line}\n\nbacktrace (RUST_BACKTRACE is set):\n{backtrace}")
    } else {
        line
    }
}

async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}
