//! What summarizes the entries must equal their sums: `balances` (per level),
//! `account_totals`, and the report rollups (per source, level and leg; per UTC day).
//! Each check is one grouped query; Postgres aggregates and only differences come back.
use sqlx::PgConnection;
use uuid::Uuid;

/// Compares every summary with the entries, for everyone or for one beneficiary.
pub(super) async fn check(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    balances(&mut *db, user, diffs).await?;
    rollups(&mut *db, user, diffs).await
}

async fn balances(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let bad_levels = sqlx::query!(
        r#"SELECT coalesce(b.user_id, e.user_id) AS "user_id!", coalesce(b.level, e.level) AS "level!",
                  b.total AS balance, e.total AS entries, b.entries AS counted, e.entries AS count
           FROM (SELECT * FROM balances WHERE $1::uuid IS NULL OR user_id = $1) b
           FULL JOIN (SELECT beneficiary_id AS user_id, level, sum(amount) AS total, count(*) AS entries
                      FROM earnings WHERE $1::uuid IS NULL OR beneficiary_id = $1 GROUP BY 1, 2) e
             ON e.user_id = b.user_id AND e.level = b.level
           WHERE (b.total IS DISTINCT FROM e.total OR b.entries IS DISTINCT FROM e.entries)
             AND NOT (b.total = 0 AND b.entries = 0 AND e.total IS NULL)"#,
        user
    )
    .fetch_all(&mut *db)
    .await?;
    for r in bad_levels {
        diffs.push(format!(
            "balance of {} level {}: {:?} in {:?} entries but the entries add up to {:?} in {:?}",
            r.user_id, r.level, r.balance, r.counted, r.entries, r.count
        ));
    }
    let bad_totals = sqlx::query!(
        r#"SELECT coalesce(a.user_id, e.beneficiary_id) AS "user_id!", a.total AS "total?", e.total AS "entries?",
                  a.entries AS "counted?", e.entries AS "count?"
           FROM (SELECT * FROM account_totals WHERE $1::uuid IS NULL OR user_id = $1) a
           FULL JOIN (SELECT beneficiary_id, sum(amount) AS total, count(*) AS entries FROM earnings
                      WHERE $1::uuid IS NULL OR beneficiary_id = $1 GROUP BY 1) e
             ON e.beneficiary_id = a.user_id
           WHERE (a.total IS DISTINCT FROM e.total OR a.entries IS DISTINCT FROM e.entries)
             AND NOT (a.total = 0 AND a.entries = 0 AND e.total IS NULL)"#,
        user
    )
    .fetch_all(&mut *db)
    .await?;
    for r in bad_totals {
        diffs.push(format!(
            "total of {}: {:?} in {:?} entries but the entries add up to {:?} in {:?}",
            r.user_id, r.total, r.counted, r.entries, r.count
        ));
    }
    Ok(())
}

/// Each rollup row as (rollup, beneficiary, key, total, entries) beside the same grouping of
/// the entries; a row on one side only, or a different total or count, is a difference.
async fn rollups(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rows = sqlx::query!(
        r#"WITH e AS (SELECT * FROM earnings WHERE $1::uuid IS NULL OR beneficiary_id = $1),
           rolled AS (
               SELECT 'earnings_by_source' AS rollup, beneficiary_id,
                      source_user_id::text || ' level ' || level || ' leg ' || leg_user_id AS key,
                      total, entries FROM earnings_by_source WHERE $1::uuid IS NULL OR beneficiary_id = $1
               UNION ALL
               SELECT 'earnings_daily', beneficiary_id, day::text || ' positions ' || first_seq || '..' || last_seq,
                      total, entries
               FROM earnings_daily WHERE $1::uuid IS NULL OR beneficiary_id = $1
           ),
           summed AS (
               SELECT 'earnings_by_source' AS rollup, beneficiary_id,
                      source_user_id::text || ' level ' || level || ' leg ' || leg_user_id AS key,
                      sum(amount) AS total, count(*) AS entries FROM e GROUP BY 2, 3
               UNION ALL
               SELECT 'earnings_daily', beneficiary_id,
                      ((created_at AT TIME ZONE 'UTC')::date)::text || ' positions ' || min(user_seq) || '..' || max(user_seq),
                      sum(amount), count(*)
               FROM e GROUP BY 2, (created_at AT TIME ZONE 'UTC')::date
           )
           SELECT coalesce(r.rollup, s.rollup) AS "rollup!", coalesce(r.beneficiary_id, s.beneficiary_id) AS "user_id!",
                  coalesce(r.key, s.key) AS "key!", r.total AS "rolled_total?", r.entries AS "rolled_entries?",
                  s.total AS "entries_total?", s.entries AS "entries?"
           FROM rolled r FULL JOIN summed s
             ON s.rollup = r.rollup AND s.beneficiary_id = r.beneficiary_id AND s.key = r.key
           WHERE r.total IS DISTINCT FROM s.total OR r.entries IS DISTINCT FROM s.entries"#,
        user
    )
    .fetch_all(&mut *db)
    .await?;
    for r in rows {
        diffs.push(format!(
            "{} of {} for {}: {:?} in {:?} entries, but the entries add up to {:?} in {:?}",
            r.rollup,
            r.user_id,
            r.key,
            r.rolled_total,
            r.rolled_entries,
            r.entries_total,
            r.entries
        ));
    }
    Ok(())
}
