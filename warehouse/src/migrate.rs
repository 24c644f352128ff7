//! Applies the ClickHouse DDL in `schemas/clickhouse/` (embedded at build time), in
//! name order, with `{db}` replaced. Every statement creates only what is missing, drops
//! only what exists, changes a column to the type it then keeps, or copies only what was
//! not copied: applying twice is a no-op, so the sink runs it at every start. A copy
//! reads whole tables, so it runs only until the view that takes over from it exists.
use platform::clickhouse::{Clickhouse, ClickhouseError};
use platform::config::ClickhouseConfig;

macro_rules! ddl {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!("../../schemas/clickhouse/", $file)),
        )
    };
}

/// Every file of `schemas/clickhouse/`, in name order (a unit test keeps this list
/// equal to the directory).
const STATEMENTS: &[(&str, &str)] = &[
    ddl!("0001_earning_events.sql"),
    ddl!("0002_purchase_events.sql"),
    ddl!("0003_user_events.sql"),
    ddl!("0004_earnings_daily_by_level.sql"),
    ddl!("0005_earnings_daily_by_level_mv.sql"),
    ddl!("0006_earnings_daily_by_leg.sql"),
    ddl!("0007_earnings_daily_by_leg_mv.sql"),
    ddl!("0008_purchases_daily_by_shop.sql"),
    ddl!("0009_purchases_daily_by_shop_mv.sql"),
    ddl!("0010_earnings_daily_by_level_wide.sql"),
    ddl!("0011_earnings_daily_by_leg_wide.sql"),
    ddl!("0012_purchases_daily_by_shop_wide.sql"),
    ddl!("0013_earnings_daily_by_level_narrow_mv_dropped.sql"),
    ddl!("0014_earnings_daily_by_leg_narrow_mv_dropped.sql"),
    ddl!("0015_purchases_daily_by_shop_narrow_mv_dropped.sql"),
    ddl!("0016_earning_event_keys.sql"),
    ddl!("0017_earning_event_keys_backfill.sql"),
    ddl!("0018_earning_event_keys_mv.sql"),
    ddl!("0019_purchase_event_keys.sql"),
    ddl!("0020_purchase_event_keys_backfill.sql"),
    ddl!("0021_purchase_event_keys_mv.sql"),
];

/// Copies applied only while the named view does not exist yet: the view keeps the table
/// filled from then on, and the copy's read of both tables (~4 s at 8M rows on 18.16, even
/// when it inserts nothing) would otherwise cost every start.
const COPIES_UNTIL: &[(&str, &str)] = &[
    (
        "0017_earning_event_keys_backfill.sql",
        "earning_event_keys_mv",
    ),
    (
        "0020_purchase_event_keys_backfill.sql",
        "purchase_event_keys_mv",
    ),
];

/// `referral migrate`: creates the database and applies every statement.
pub async fn migrate(config: &ClickhouseConfig) -> anyhow::Result<()> {
    apply(&Clickhouse::new(config)?).await?;
    Ok(())
}

pub async fn apply(ch: &Clickhouse) -> Result<(), ClickhouseError> {
    ch.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", ch.database()))
        .await?;
    for (file, sql) in STATEMENTS {
        if let Some((_, view)) = COPIES_UNTIL.iter().find(|(f, _)| f == file) {
            if exists(ch, view).await? {
                continue;
            }
        }
        tracing::debug!(file, "applying ClickHouse DDL");
        ch.execute(&sql.replace("{db}", ch.database())).await?;
    }
    Ok(())
}

async fn exists(ch: &Clickhouse, table: &str) -> Result<bool, ClickhouseError> {
    let sql = format!(
        "SELECT count() FROM system.tables WHERE database = '{}' AND name = '{table}'",
        ch.database()
    );
    Ok(ch.lines(&sql).await?.first().is_some_and(|n| n != "0"))
}

#[cfg(test)]
#[path = "migrate_test.rs"]
mod tests;
