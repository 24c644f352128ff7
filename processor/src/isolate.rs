//! When a batch keeps failing while the database answers, the fault is in one of its
//! messages, not in the infrastructure: apply the messages one at a time, and record the
//! one that fails on its own as a dead letter (with its payload, for replay after a fix)
//! so the stream moves on. Transient database errors never get here.
use crate::graph::ReferralGraph;
use crate::ledger::{self, Committed, DeadLetter, Delivered};
use schemas::messages::DeadLetterReason;
use sqlx::PgPool;

/// True when `error` comes from the database refusing this work (a constraint, a value
/// out of range), not from a lost connection, a deadlock or a serialization conflict.
pub fn is_deterministic(error: &anyhow::Error) -> bool {
    let Some(db) = error.chain().find_map(|e| e.downcast_ref::<sqlx::Error>()) else {
        return false;
    };
    match db {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // Classes 22 (data exception) and 23 (integrity constraint violation).
            code.starts_with("22") || code.starts_with("23")
        }
        _ => false,
    }
}

/// Applies `delivered` one message per transaction; returns the merged outcome, with
/// the messages that failed alone (and the batch's parse failures) dead-lettered.
pub async fn apply_one_by_one(
    pool: &PgPool,
    graph: &ReferralGraph,
    rules: ledger::Rules<'_>,
    delivered: &[Delivered],
    attempts: u32,
    mut dead: Vec<DeadLetter>,
) -> anyhow::Result<Committed> {
    let mut merged: Option<Committed> = None;
    for d in delivered {
        let mut last_error = None;
        for _ in 0..attempts {
            match ledger::apply(pool, graph, rules, std::slice::from_ref(d), Vec::new()).await {
                Ok(o) => {
                    merged = Some(match merged {
                        Some(m) => m.merge(o),
                        None => o,
                    });
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(e) = last_error {
            if !is_deterministic(&e) {
                return Err(e); // the database itself is failing: retry the batch later
            }
            tracing::error!(error = ?e, subject = %d.subject, stream_seq = d.stream_seq, "message fails on its own; dead-lettered");
            let detail: String = format!("{e:#}").chars().take(2_000).collect();
            dead.push(DeadLetter::of(
                d,
                DeadLetterReason::ProcessingFailed,
                detail,
            ));
        }
    }
    let recorded = ledger::apply(pool, graph, rules, &[], dead).await?;
    Ok(match merged {
        Some(m) => m.merge(recorded),
        None => recorded,
    })
}
