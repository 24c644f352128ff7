//! Brings the in-memory graph up to the `user_events` outbox (see
//! `platform::db::USER_EVENTS_LOCK` for why reading `seq > cursor` misses nothing).
use crate::graph::{ReferralGraph, UserChange};
use anyhow::Context;
use schemas::{UnknownValue, UserEventKind, UserId, UserStatus};
use sqlx::PgPool;

pub async fn catch_up(
    pool: &PgPool,
    graph: &mut ReferralGraph,
    page: i64,
) -> anyhow::Result<usize> {
    let mut applied = 0;
    loop {
        let rows = sqlx::query!(
            "SELECT seq, user_id, kind, referrer_id, status FROM user_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            graph.seq,
            page
        )
        .fetch_all(pool)
        .await
        .context("reading user events")?;
        let n = rows.len();
        for r in rows {
            let change = change(r.user_id, &r.kind, r.referrer_id, &r.status)?;
            // Postgres already refused anything invalid; a refusal here means the graph
            // and the table disagree, which must stop the processor loudly.
            graph
                .apply(&change)
                .with_context(|| format!("user event {} does not apply to the graph", r.seq))?;
            graph.seq = r.seq;
        }
        applied += n;
        if (n as i64) < page {
            return Ok(applied);
        }
    }
}

/// Applies user events up to and including `until` (verify replays history this way).
pub async fn replay_until(
    pool: &PgPool,
    graph: &mut ReferralGraph,
    until: i64,
) -> anyhow::Result<()> {
    let rows = sqlx::query!(
        "SELECT seq, user_id, kind, referrer_id, status FROM user_events WHERE seq > $1 AND seq <= $2 ORDER BY seq",
        graph.seq,
        until
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        graph.apply(&change(r.user_id, &r.kind, r.referrer_id, &r.status)?)?;
        graph.seq = r.seq;
    }
    Ok(())
}

/// A `user_events` row as a graph change; a kind or status outside the known words is an
/// error (the table and the code disagree), never a guess.
pub(crate) fn change(
    user_id: uuid::Uuid,
    kind: &str,
    referrer_id: Option<uuid::Uuid>,
    status: &str,
) -> Result<UserChange, UnknownValue> {
    let user = UserId(user_id);
    let referrer = referrer_id.map(UserId);
    Ok(match kind.parse::<UserEventKind>()? {
        UserEventKind::Created => UserChange::Created { user, referrer },
        UserEventKind::Moved => UserChange::Moved { user, referrer },
        UserEventKind::Deactivated | UserEventKind::Reactivated => UserChange::Status {
            user,
            active: status.parse::<UserStatus>()?.is_active(),
        },
    })
}
