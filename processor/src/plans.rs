//! Plan versions: the configured plan is recorded once; a version never changes body.
use anyhow::Context;
use schemas::Plan;
use sqlx::PgPool;
use std::collections::HashMap;

/// Records `plan` under its version, or checks that the recorded body is the same.
pub async fn register(pool: &PgPool, plan: &Plan) -> anyhow::Result<()> {
    let body = serde_json::to_value(plan)?;
    sqlx::query!(
        "INSERT INTO plans (version, body) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
        plan.version() as i32,
        body
    )
    .execute(pool)
    .await?;
    let stored: serde_json::Value = sqlx::query_scalar!(
        "SELECT body FROM plans WHERE version = $1",
        plan.version() as i32
    )
    .fetch_one(pool)
    .await?;
    let stored: Plan = serde_json::from_value(stored).context("stored plan does not parse")?;
    anyhow::ensure!(
        stored == *plan,
        "plan version {} is already recorded with different rules; give the changed plan a new version",
        plan.version()
    );
    Ok(())
}

/// Every recorded plan version.
pub async fn all(db: impl sqlx::PgExecutor<'_>) -> anyhow::Result<HashMap<u32, Plan>> {
    let rows = sqlx::query!("SELECT version, body FROM plans")
        .fetch_all(db)
        .await?;
    rows.into_iter()
        .map(|r| Ok((u32::try_from(r.version)?, serde_json::from_value(r.body)?)))
        .collect()
}
