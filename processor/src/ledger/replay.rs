//! A redelivered message writes nothing; it republishes what its first delivery wrote,
//! in case that delivery committed but died before publishing.
use super::Outcome;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Every entry of the purchases, reversals included: the first delivery may also have
/// applied refunds that were waiting for the purchase, and no other message replays those.
pub(super) async fn purchases(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    outcome
        .entries
        .extend(platform::entries::of_purchases(&mut **tx, ids).await?);
    outcome
        .purchases
        .extend(platform::entries::facts_of_purchases(&mut **tx, ids).await?);
    Ok(())
}

pub(super) async fn refund(
    tx: &mut Transaction<'_, Postgres>,
    shop: Uuid,
    refund_id: &str,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    outcome
        .entries
        .extend(platform::entries::of_refund(&mut **tx, shop, refund_id).await?);
    Ok(())
}
