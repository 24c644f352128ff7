//! Copies the `user_events` outbox (referral-graph changes) from Postgres to ClickHouse,
//! one page per call, following `seq` (commit order: see `platform::db::USER_EVENTS_LOCK`).
//! No view reads this table and readers take the latest row per user, so a row written
//! twice (a retried insert that had in fact landed) changes no answer.
use crate::rows::{self, USER_EVENTS};
use anyhow::Context;
use platform::clickhouse::Clickhouse;
use platform::metrics::metrics;
use sqlx::PgPool;

pub struct UserEventsCopy {
    pool: PgPool,
    page: i64,
    /// The last `seq` ClickHouse holds; read from ClickHouse when unknown.
    copied_through: Option<i64>,
}

impl UserEventsCopy {
    pub fn new(pool: PgPool, page: usize) -> Self {
        UserEventsCopy {
            pool,
            page: i64::try_from(page).unwrap_or(i64::MAX),
            copied_through: None,
        }
    }

    /// Copies the next page of events; returns how many it copied.
    pub async fn step(&mut self, ch: &Clickhouse) -> anyhow::Result<usize> {
        let after = match self.copied_through {
            Some(seq) => seq,
            None => self.stored_through(ch).await?,
        };
        let events = sqlx::query!(
            "SELECT seq, user_id, kind, referrer_id, at FROM user_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            after,
            self.page
        )
        .fetch_all(&self.pool)
        .await
        .context("reading user events")?;
        let Some(last) = events.last().map(|e| e.seq) else {
            self.copied_through = Some(after);
            return Ok(0);
        };
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                let seq = u64::try_from(e.seq).context("a negative user event seq")?;
                Ok(rows::user_event(
                    seq,
                    e.user_id,
                    e.referrer_id,
                    &e.kind,
                    e.at,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        if let Err(e) = ch.insert(USER_EVENTS, &refs).await {
            // Unknown whether it landed: ask ClickHouse again next time.
            self.copied_through = None;
            return Err(e.into());
        }
        self.copied_through = Some(last);
        metrics()
            .warehouse_rows
            .with_label_values(&[USER_EVENTS])
            .inc_by(lines.len() as u64);
        Ok(lines.len())
    }

    async fn stored_through(&self, ch: &Clickhouse) -> anyhow::Result<i64> {
        let sql = format!("SELECT max(seq) FROM {}", ch.table(USER_EVENTS));
        let lines = ch.lines(&sql).await?;
        let max = lines.first().map(String::as_str).unwrap_or("0");
        max.parse::<i64>()
            .with_context(|| format!("max(seq) of user_events is {max:?}"))
    }
}
