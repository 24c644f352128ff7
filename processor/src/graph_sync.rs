//! Brings the in-memory graph up to the `user_events` outbox (see
//! `platform::db::USER_EVENTS_LOCK` for why reading `seq > cursor` misses nothing).
use crate::graph::{ReferralGraph, Snapshot, UserChange, UserRow};
use anyhow::Context;
use futures::TryStreamExt;
use schemas::{UnknownValue, UserEventKind, UserId, UserStatus};
use sqlx::PgPool;

/// Users the graph makes room for before reading them (about 100 bytes each).
const MAX_RESERVED_USERS: usize = 50_000_000;

/// The graph at start: one row per user from `users`, with the outbox position that
/// snapshot reflects, read in one repeatable-read transaction (a change writes its `users`
/// row and its `user_events` row in one transaction, under the outbox lock, so the snapshot
/// holds exactly the events up to the highest `seq` it sees); then the events after it.
/// Replaying every event from the start read more rows, in `seq` order, a page at a time.
/// Returns the graph and how many events after the snapshot it applied.
pub async fn load(pool: &PgPool, page: i64) -> anyhow::Result<(ReferralGraph, usize)> {
    let mut tx = pool.begin().await.context("starting the graph snapshot")?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let seq = sqlx::query_scalar!(r#"SELECT COALESCE(max(seq), 0) AS "seq!" FROM user_events"#)
        .fetch_one(&mut *tx)
        .await
        .context("reading the outbox position")?;
    // The planner's row estimate (free to read; 0 on a table never analyzed), capped so
    // that a wild estimate cannot reserve more than a bounded amount up front.
    let estimate = sqlx::query_scalar!(
        r#"SELECT GREATEST(reltuples, 0)::bigint AS "n!" FROM pg_class WHERE oid = 'users'::regclass"#
    )
    .fetch_one(&mut *tx)
    .await?;
    let room = usize::try_from(estimate)
        .unwrap_or(0)
        .min(MAX_RESERVED_USERS);
    let mut snapshot = Snapshot::new(seq, room);
    // Whether each user is active, as a boolean from Postgres: the status's text would be
    // one allocation a row (10M at 10M users) only to be compared.
    let mut rows = sqlx::query!(
        r#"SELECT id, referrer_id, status = $1 AS "active!" FROM users"#,
        UserStatus::Active.as_str()
    )
    .fetch(&mut *tx);
    while let Some(r) = rows.try_next().await.context("reading users")? {
        let referrer = r.referrer_id.map(UserId);
        snapshot.add(UserRow {
            user: UserId(r.id),
            referrer,
            active: r.active,
        })?;
    }
    drop(rows);
    tx.commit().await?;
    // Postgres refuses unknown referrers and cycles; a refusal here means the table is broken.
    // Linking the waiting edges and walking every referrer chain is CPU work without an
    // await that grows with the users (stop 33's profile put the check then used at about
    // a second of the 10M-user load): off the runtime, so it holds no worker the API or
    // NATS heartbeats share in `referral all`.
    let mut graph = tokio::task::spawn_blocking(move || snapshot.finish())
        .await
        .context("the graph snapshot's check panicked")?
        .context("the users table does not make a graph")?;
    let events = catch_up(pool, &mut graph, page).await?;
    Ok((graph, events))
}

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
