//! A redelivered message writes nothing; it republishes what its first delivery wrote,
//! in case that delivery committed but died before publishing.
use super::Outcome;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemas::messages::ProcessedPurchase;
use schemas::{EarningEvent, EntryKind, Money, ShopId, UserId};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

struct Row {
    id: Uuid,
    purchase_id: Uuid,
    shop_id: Uuid,
    beneficiary_id: Uuid,
    source_user_id: Uuid,
    leg_user_id: Uuid,
    level: i16,
    kind: String,
    amount: Decimal,
    balance_after: Decimal,
    plan_version: i32,
    created_at: DateTime<Utc>,
}

fn event(r: Row) -> anyhow::Result<EarningEvent> {
    let level = u8::try_from(r.level)?;
    Ok(EarningEvent {
        earning_id: r.id,
        purchase_id: r.purchase_id,
        shop_id: ShopId(r.shop_id),
        beneficiary_id: UserId(r.beneficiary_id),
        source_user_id: UserId(r.source_user_id),
        leg_user_id: UserId(r.leg_user_id),
        level,
        direct: level == 1,
        kind: EntryKind::parse(&r.kind).ok_or_else(|| anyhow::anyhow!("unknown entry kind"))?,
        amount: Money::from_decimal(r.amount)?,
        total: Money::from_decimal(r.balance_after)?,
        plan_version: u32::try_from(r.plan_version)?,
        created_at: r.created_at,
    })
}

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
    let rows = sqlx::query_as!(
        Row,
        "SELECT e.id, e.purchase_id, p.shop_id, e.beneficiary_id, e.source_user_id, e.leg_user_id, e.level,
                e.kind, e.amount, e.balance_after, e.plan_version, e.created_at
         FROM earnings e JOIN purchases p ON p.id = e.purchase_id
         WHERE e.purchase_id = ANY($1) ORDER BY e.seq",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        outcome.entries.push(event(r)?);
    }
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
            status: f.status,
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
    let rows = sqlx::query_as!(
        Row,
        "SELECT e.id, e.purchase_id, p.shop_id, e.beneficiary_id, e.source_user_id, e.leg_user_id, e.level,
                e.kind, e.amount, e.balance_after, e.plan_version, e.created_at
         FROM earnings e JOIN purchases p ON p.id = e.purchase_id
         WHERE p.shop_id = $1 AND e.refund_id = $2 AND e.kind = 'reversal' ORDER BY e.seq",
        shop,
        refund_id
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        outcome.entries.push(event(r)?);
    }
    Ok(())
}
