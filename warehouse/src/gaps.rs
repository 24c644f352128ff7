//! Messages EARNINGS dropped before the sink received them. The stream keeps its newest
//! `nats.stream_max_bytes` (limits retention, discard old), so while ClickHouse is down
//! for longer than that holds, its oldest messages go undelivered and the consumer moves
//! past them. The sink receives new messages in stream order, so a jump in the stream
//! sequence is what was dropped: it is counted
//! (`referral_messages_lost_total{consumer="warehouse"}`) and logged with the
//! `referral warehouse backfill` that loads it from Postgres (safe beside the sink,
//! `crate::writer`). (A jump while the sink itself was stopped is not seen; the same
//! command over the stop covers it.)
use async_nats::jetstream::Message;
use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// How far either side of the messages around a jump the suggested backfill reaches: a
/// batch is settled a little before it is announced, and hosts' clocks differ.
const SUGGESTED_MARGIN_HOURS: i64 = 1;

#[derive(Default)]
pub struct Gaps {
    /// The highest stream sequence received since the sink started, and when it was
    /// published.
    highest: Option<(u64, DateTime<Utc>)>,
}

impl Gaps {
    pub fn see(&mut self, batch: &[Message]) {
        for m in batch {
            let Ok(info) = m.info() else { continue };
            let nanos = i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX);
            self.sequence(info.stream_sequence, DateTime::from_timestamp_nanos(nanos));
        }
    }

    /// Counts and reports a jump just before `seq` (published at `at`); returns how many
    /// messages were dropped.
    fn sequence(&mut self, seq: u64, at: DateTime<Utc>) -> u64 {
        let lost = match self.highest {
            Some((highest, last_at)) if seq > highest + 1 => {
                let lost = seq - highest - 1;
                platform::metrics::metrics()
                    .messages_lost
                    .with_label_values(&[crate::DURABLE_NAME])
                    .inc_by(lost);
                let margin = Duration::hours(SUGGESTED_MARGIN_HOURS);
                let when = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
                tracing::error!(
                    lost,
                    first_lost = highest + 1,
                    "the EARNINGS stream dropped messages before the warehouse received them \
                     (ClickHouse was away longer than the stream holds); load them from Postgres \
                     with `referral warehouse backfill --from {} --to {}`",
                    when(last_at - margin),
                    when(at + margin)
                );
                lost
            }
            _ => 0,
        };
        if self.highest.is_none_or(|(h, _)| seq > h) {
            self.highest = Some((seq, at));
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_in_the_stream_sequence_is_counted_and_a_redelivery_is_not() {
        let mut gaps = Gaps::default();
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        assert_eq!(gaps.sequence(40, t(0)), 0, "where the sink starts");
        assert_eq!(gaps.sequence(41, t(1)), 0);
        assert_eq!(gaps.sequence(45, t(90)), 3, "42, 43 and 44 were dropped");
        assert_eq!(
            gaps.sequence(43, t(2)),
            0,
            "a redelivery of an older message"
        );
        assert_eq!(gaps.sequence(46, t(91)), 0);
    }
}
