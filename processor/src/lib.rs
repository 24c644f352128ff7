//! Processor: pulls purchases and refunds from JetStream in batches, pays the referral
//! chain in one Postgres transaction per batch, publishes the entries, then acks.
#![forbid(unsafe_code)]

pub mod announce;
pub mod consumer;
/// The pure rules, where the rest of the processor (and its users) name them.
pub use rules::{graph, payout};
pub mod graph_sync;
pub mod intake;
pub mod isolate;
pub mod ledger;
pub mod plans;
pub mod settings;
pub mod verify;

use schemas::EntryKind;

pub use consumer::{run, run_migrated};

/// The totals statement, for tests that read its plan.
pub const MOVE_TOTALS_SQL: &str = include_str!("../sql/move_totals.sql");
/// `referral verify`'s read of a chunk's entries, for tests that read its plan.
pub const VERIFY_CHUNK_ENTRIES_SQL: &str = include_str!("../sql/verify_chunk_entries.sql");
/// The beneficiaries of the purchases a batch's refunds reverse.
pub const REFUND_BENEFICIARIES_SQL: &str = include_str!("../sql/refund_beneficiaries.sql");

fn metrics_entries(kinds: impl Iterator<Item = EntryKind>) {
    let m = platform::metrics::metrics();
    for k in kinds {
        m.earnings_written.with_label_values(&[k.as_str()]).inc();
    }
}
