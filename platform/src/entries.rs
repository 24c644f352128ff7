//! Ledger entries read back as the `EarningEvent`s they were announced as: one shape for
//! the processor's replays and the live feed's resume and gap fill.
use rust_decimal::Decimal;
use schemas::messages::ProcessedPurchase;
use schemas::{EarningEvent, EntryKind, Money, ShopId, UserId};
use sqlx::PgExecutor;
use uuid::Uuid;

/// An `earnings` row joined to its purchase's shop.
pub struct EntryRow {
    pub id: Uuid,
    pub user_seq: i64,
    pub purchase_id: Uuid,
    pub shop_id: Uuid,
    pub beneficiary_id: Uuid,
    pub source_user_id: Uuid,
    pub leg_user_id: Uuid,
    pub level: i16,
    pub kind: String,
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub plan_version: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<EntryRow> for EarningEvent {
    type Error = anyhow::Error;

    fn try_from(r: EntryRow) -> anyhow::Result<EarningEvent> {
        let level = u8::try_from(r.level)?;
        Ok(EarningEvent {
            earning_id: r.id,
            seq: u64::try_from(r.user_seq)?,
            purchase_id: r.purchase_id,
            shop_id: ShopId(r.shop_id),
            beneficiary_id: UserId(r.beneficiary_id),
            source_user_id: UserId(r.source_user_id),
            leg_user_id: UserId(r.leg_user_id),
            level,
            direct: level == 1,
            kind: r.kind.parse::<EntryKind>()?,
            amount: Money::from_decimal(r.amount)?,
            total: Money::from_decimal(r.balance_after)?,
            plan_version: u32::try_from(r.plan_version)?,
            created_at: r.created_at,
        })
    }
}

fn events(rows: Vec<EntryRow>) -> anyhow::Result<Vec<EarningEvent>> {
    rows.into_iter().map(EarningEvent::try_from).collect()
}

/// The user's entries at positions `after < seq <= upto`, in order, at most `limit`.
pub async fn of_user(
    db: impl PgExecutor<'_>,
    user: UserId,
    after: u64,
    upto: u64,
    limit: usize,
) -> anyhow::Result<Vec<EarningEvent>> {
    let rows = sqlx::query_as!(
        EntryRow,
        "SELECT e.id, e.user_seq, e.purchase_id, p.shop_id, e.beneficiary_id, e.source_user_id, e.leg_user_id,
                e.level, e.kind, e.amount, e.balance_after, e.plan_version, e.created_at
         FROM earnings e JOIN purchases p ON p.id = e.purchase_id
         WHERE e.beneficiary_id = $1 AND e.user_seq > $2 AND e.user_seq <= $3
         ORDER BY e.user_seq LIMIT $4",
        user.as_uuid(),
        i64::try_from(after)?,
        i64::try_from(upto).unwrap_or(i64::MAX),
        i64::try_from(limit)?
    )
    .fetch_all(db)
    .await?;
    events(rows)
}

/// How many entries the user has: the position of their newest one (0 for none).
pub async fn position(db: impl PgExecutor<'_>, user: UserId) -> anyhow::Result<u64> {
    let n = sqlx::query_scalar!(
        "SELECT entries FROM account_totals WHERE user_id = $1",
        user.as_uuid()
    )
    .fetch_optional(db)
    .await?;
    Ok(u64::try_from(n.unwrap_or(0))?)
}

/// Every entry of the purchases, reversals included. One index lookup per purchase
/// (`sql/entries_of_purchases.sql`; as `= ANY` with a join, 3,300 replayed purchases took
/// 2.2 s under load).
pub async fn of_purchases(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> anyhow::Result<Vec<EarningEvent>> {
    let rows = sqlx::query_file_as!(EntryRow, "sql/entries_of_purchases.sql", ids)
        .fetch_all(db)
        .await?;
    events(rows)
}

/// The purchases as the processor announced them when it settled them (`ledger.purchases`):
/// for a replay, and for loading the warehouse from Postgres.
pub async fn facts_of_purchases(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> anyhow::Result<Vec<ProcessedPurchase>> {
    let facts = sqlx::query!(
        r#"SELECT p.id, p.shop_id, p.user_id, p.amount, p.profit, p.status, p.plan_version, p.occurred_at,
                  p.processed_at, p.amount >= (pl.body->>'qualifying_threshold')::numeric AS "qualifying!"
           FROM purchases p JOIN plans pl ON pl.version = p.plan_version WHERE p.id = ANY($1)"#,
        ids
    )
    .fetch_all(db)
    .await?;
    facts
        .into_iter()
        .map(|f| {
            Ok(ProcessedPurchase {
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
            })
        })
        .collect()
}

/// The reversals one refund wrote, found from the refund's row (`sql/entries_of_refund.sql`).
pub async fn of_refund(
    db: impl PgExecutor<'_>,
    shop: Uuid,
    refund_id: &str,
) -> anyhow::Result<Vec<EarningEvent>> {
    let rows = sqlx::query_file_as!(EntryRow, "sql/entries_of_refund.sql", shop, refund_id)
        .fetch_all(db)
        .await?;
    events(rows)
}

/// The statement `of_purchases` runs, for tests that read its plan.
pub const OF_PURCHASES_SQL: &str = include_str!("../sql/entries_of_purchases.sql");
/// The statement `of_refund` runs, for tests that read its plan.
pub const OF_REFUND_SQL: &str = include_str!("../sql/entries_of_refund.sql");
