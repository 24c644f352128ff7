//! One snapshot for every read of a run: three read-only REPEATABLE READ transactions (the
//! graph history's stream, the purchases' stream, and the per-chunk and summary reads), the
//! last two importing the first's exported snapshot. Read as separate statements on a
//! ledger being written, a refund applied between a purchase's read and its refunds' read,
//! or an entry between the entries' sums and the totals', showed as differences that were
//! not there; now `verify` sees one committed state, whatever runs beside it. (A run holds
//! that snapshot, and so holds back vacuum, for as long as it takes.)
use sqlx::{PgPool, Postgres, Transaction};

pub(super) struct Snapshot {
    pub events: Transaction<'static, Postgres>,
    pub purchases: Transaction<'static, Postgres>,
    pub checks: Transaction<'static, Postgres>,
}

const READ_ONLY: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl Snapshot {
    pub async fn open(pool: &PgPool) -> anyhow::Result<Snapshot> {
        let mut checks = pool.begin().await?;
        sqlx::query(READ_ONLY).execute(&mut *checks).await?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut *checks)
            .await?;
        // Postgres made it; checked anyway, as it is spliced into the statement below.
        anyhow::ensure!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
            "unexpected snapshot id {id:?}"
        );
        let import = format!("SET TRANSACTION SNAPSHOT '{id}'");
        let events = joined(pool, &import).await?;
        let purchases = joined(pool, &import).await?;
        Ok(Snapshot {
            events,
            purchases,
            checks,
        })
    }

    /// Ends the three transactions (they wrote nothing).
    pub async fn close(self) -> anyhow::Result<()> {
        self.events.rollback().await?;
        self.purchases.rollback().await?;
        self.checks.rollback().await?;
        Ok(())
    }
}

/// A read-only transaction importing the snapshot `import` names.
async fn joined(pool: &PgPool, import: &str) -> anyhow::Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query(READ_ONLY).execute(&mut *tx).await?;
    sqlx::query(import).execute(&mut *tx).await?;
    Ok(tx)
}
