//! Applies the ClickHouse DDL in `schemas/clickhouse/` (embedded at build time), in
//! name order, with `{db}` replaced. Every statement creates only what is missing, drops
//! only what exists, or changes a column to the type it then keeps: applying twice is a
//! no-op, so the sink runs it at every start.
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
        tracing::debug!(file, "applying ClickHouse DDL");
        ch.execute(&sql.replace("{db}", ch.database())).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "migrate_test.rs"]
mod tests;
