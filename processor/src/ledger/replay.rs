//! A redelivered message writes nothing; it republishes what its first delivery wrote,
//! in case that delivery committed but died before publishing.
use super::Outcome;
use schemas::messages::ProcessedPurchase;
use schemas::{Money, ShopId, UserId};
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
    let facts = sqlx::query!(
        r#"SELECT p.id, p.shop_id, p.user_id, p.amount, p.profit, p.status, p.plan_version, p.occurred_at,
                  p.processed_at, p.amount >= (pl.body->>'qualifying_threshold')::numeric AS "qualifying!"
           FROM purchases p JOIN plans pl ON pl.version = p.plan_version WHERE p.id = ANY($1)"#,
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    for f in facts {
        outcome.purchases.push(ProcessedPurchase {
            purchase_id: f.id,
            shop_id: ShopId(f.shop_id),
            user_id: UserId(f.user_id),
            amount: Money::from_decimal(f.amount)?,
            profit: Money::from_decimal(f.profit)?,
            // As the first delivery said: the threshold of the plan it was paid under.
            qualifying: f.qualifying,
            plan_version: u32::try_from(f.plan_version)?,
            status: f.status.parse()?,
            occurred_at: f.occurred_at,
            processed_at: f.processed_at,
        });
    }
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
