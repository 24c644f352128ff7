//! Messages EARNINGS dropped before the sink received them. The stream keeps its newest
//! `nats.stream_max_bytes` (limits retention, discard old), so while ClickHouse is down
//! for longer than that holds, its oldest messages go undelivered and the consumer moves
//! past them. The sink receives new messages in stream order, so a jump in the stream
//! sequence is what was dropped: it is counted
//! (`referral_messages_lost_total{consumer="warehouse"}`), and the sink loads the
//! purchases settled between the messages either side of the jump from Postgres
//! (`crate::backfill`) before it writes the batch. The sink is the only writer then, so
//! its check of what ClickHouse holds stays exact. (A jump while the sink itself was
//! stopped is not seen: `referral warehouse backfill` covers that.)
use crate::backfill::Range;
use async_nats::jetstream::Message;
use chrono::{DateTime, Duration, Utc};

pub struct Gaps {
    /// The highest stream sequence received since the sink started, and when it was
    /// published.
    highest: Option<(u64, DateTime<Utc>)>,
    /// How far before the last message received before a jump a purchase in the dropped
    /// messages may have been settled (`clickhouse.gap_backfill_margin_secs`).
    margin: Duration,
}

impl Gaps {
    pub fn new(margin_secs: u64) -> Gaps {
        Gaps {
            highest: None,
            margin: Duration::seconds(i64::try_from(margin_secs).unwrap_or(i64::MAX / 1_000_000)),
        }
    }

    /// The settle times to load from Postgres for what was dropped before `batch`'s
    /// messages, if anything was.
    pub fn see(&mut self, batch: &[Message]) -> Option<Range> {
        let mut window: Option<Range> = None;
        for m in batch {
            let Ok(info) = m.info() else { continue };
            let nanos = i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX);
            let published = DateTime::from_timestamp_nanos(nanos);
            if let Some(gap) = self.sequence(info.stream_sequence, published) {
                window = Some(match window {
                    Some(w) => Range {
                        from: w.from.min(gap.from),
                        to: w.to.max(gap.to),
                    },
                    None => gap,
                });
            }
        }
        window
    }

    /// The window of a jump just before `seq` (published at `at`), counted.
    fn sequence(&mut self, seq: u64, at: DateTime<Utc>) -> Option<Range> {
        let gap = match self.highest {
            Some((highest, last_at)) if seq > highest + 1 => {
                let lost = seq - highest - 1;
                platform::metrics::metrics()
                    .messages_lost
                    .with_label_values(&[crate::DURABLE_NAME])
                    .inc_by(lost);
                tracing::error!(
                    lost,
                    first_lost = highest + 1,
                    "the EARNINGS stream dropped messages before the warehouse received them \
                     (ClickHouse was away longer than the stream holds); loading them from Postgres"
                );
                // Settled before it was announced, and announced after the message before
                // the jump and before this one.
                Some(Range {
                    from: Some(last_at - self.margin),
                    to: Some(at + Duration::seconds(1)),
                })
            }
            _ => None,
        };
        if self.highest.is_none_or(|(h, _)| seq > h) {
            self.highest = Some((seq, at));
        }
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_in_the_stream_sequence_is_a_window_to_load_and_a_redelivery_is_not() {
        let mut gaps = Gaps::new(60);
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        assert!(gaps.sequence(40, t(0)).is_none(), "where the sink starts");
        assert!(gaps.sequence(41, t(1)).is_none());
        let window = gaps
            .sequence(45, t(90))
            .expect("42, 43 and 44 were dropped");
        assert_eq!(window.from, Some(t(1 - 60)));
        assert_eq!(window.to, Some(t(91)));
        assert!(
            gaps.sequence(43, t(2)).is_none(),
            "a redelivery of an older message"
        );
        assert!(gaps.sequence(46, t(91)).is_none());
    }
}
