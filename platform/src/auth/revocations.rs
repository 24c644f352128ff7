//! Tokens revoked before they expire. A revocation names a subject ("admin" for every
//! admin token, "user:<uuid>" for one user's) and refuses its tokens issued at or before
//! that moment; a token issued later passes. Every process keeps the revocations of the
//! last `max_token_lifetime_secs` in memory (an older one names only expired tokens) and
//! reads them again every `[auth] revocations_refresh_ms`, so a token is checked without
//! Postgres and a revocation takes effect within that bound. A failed read keeps what was
//! read before: until a process has read them once, it knows of none.
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use tokio::sync::watch;

pub struct Revocations {
    /// Subject → the last second (since the epoch) whose tokens are refused.
    by_subject: RwLock<HashMap<String, u64>>,
    /// Bumped when what is revoked changes: live streams check their token again.
    changed: watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations {
            by_subject: RwLock::new(HashMap::new()),
            changed: watch::Sender::new(0),
        }
    }
}

impl Revocations {
    /// Whether a token of `subject` issued at `iat` (seconds) is revoked.
    pub fn revoked(&self, subject: &str, iat: u64) -> bool {
        let by_subject = self
            .by_subject
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        by_subject.get(subject).is_some_and(|&until| iat <= until)
    }

    /// Told when revocations change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn replace(&self, read: HashMap<String, u64>) {
        let mut by_subject = self
            .by_subject
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if *by_subject != read {
            *by_subject = read;
            self.changed.send_modify(|generation| *generation += 1);
        }
    }

    /// Reads the revocations of the last `window_secs` from Postgres.
    pub async fn refresh(&self, pool: &PgPool, window_secs: u64) -> sqlx::Result<()> {
        let window = i64::try_from(window_secs).unwrap_or(i64::MAX);
        let rows = sqlx::query!(
            r#"SELECT subject, floor(extract(epoch FROM not_before))::bigint AS "until!"
               FROM token_revocations
               WHERE not_before > now() - make_interval(secs => $1::bigint)"#,
            window
        )
        .fetch_all(pool)
        .await?;
        let read = rows
            .into_iter()
            .map(|r| (r.subject, u64::try_from(r.until).unwrap_or(0)))
            .collect();
        self.replace(read);
        Ok(())
    }
}

/// Revokes every token of `subject` issued until now; returns that moment, once its
/// second has passed: tokens carry their issue time in whole seconds, and one issued in
/// the revocation's second is refused, so a token issued after this returns passes.
pub async fn revoke(pool: &PgPool, subject: &str) -> sqlx::Result<chrono::DateTime<chrono::Utc>> {
    let at = sqlx::query_scalar!(
        "INSERT INTO token_revocations (subject, not_before) VALUES ($1, now())
         ON CONFLICT (subject) DO UPDATE SET not_before = greatest(token_revocations.not_before, now())
         RETURNING not_before",
        subject
    )
    .fetch_one(pool)
    .await?;
    let next_second = at.timestamp().saturating_add(1);
    let wait = chrono::DateTime::from_timestamp(next_second, 0)
        .map(|next| next - chrono::Utc::now())
        .and_then(|left| left.to_std().ok());
    if let Some(wait) = wait {
        // At most a second, whatever this host's clock says against Postgres's.
        tokio::time::sleep(wait.min(std::time::Duration::from_secs(1))).await;
    }
    Ok(at)
}
