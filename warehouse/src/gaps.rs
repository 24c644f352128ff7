//! Messages EARNINGS dropped before the sink received them. The stream keeps its newest
//! `nats.stream_max_bytes` (limits retention, discard old), so while ClickHouse is down
//! for longer than that holds, its oldest messages go undelivered, and the consumer
//! moves past them. The sink receives new messages in stream order, so a jump in the
//! stream sequence is what was dropped: it is counted
//! (`referral_messages_lost_total{consumer="warehouse"}`) and logged with what to run.
//! (A jump while the sink itself was stopped shows only from the consumer's ack floor
//! against the stream's first sequence, which operations.md says how to read.)
use async_nats::jetstream::Message;

#[derive(Default)]
pub struct Gaps {
    /// The highest stream sequence received since the sink started.
    highest: Option<u64>,
}

impl Gaps {
    pub fn see(&mut self, batch: &[Message]) {
        for m in batch {
            if let Ok(info) = m.info() {
                self.sequence(info.stream_sequence);
            }
        }
    }

    /// Returns how many messages were dropped just before `seq`.
    fn sequence(&mut self, seq: u64) -> u64 {
        let lost = match self.highest {
            Some(highest) if seq > highest + 1 => seq - highest - 1,
            _ => 0,
        };
        if lost > 0 {
            platform::metrics::metrics()
                .messages_lost
                .with_label_values(&[crate::DURABLE_NAME])
                .inc_by(lost);
            tracing::error!(
                lost,
                first_lost = seq - lost,
                "the EARNINGS stream dropped messages before the warehouse received them \
                 (ClickHouse was away longer than the stream holds); load them from Postgres \
                 with `referral warehouse backfill --from <when the outage began>`"
            );
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::Gaps;

    #[test]
    fn a_jump_in_the_stream_sequence_is_counted_and_a_redelivery_is_not() {
        let mut gaps = Gaps::default();
        assert_eq!(gaps.sequence(40), 0, "where the sink starts");
        assert_eq!(gaps.sequence(41), 0);
        assert_eq!(gaps.sequence(45), 3, "42, 43 and 44 were dropped");
        assert_eq!(gaps.sequence(43), 0, "a redelivery of an older message");
        assert_eq!(gaps.sequence(46), 0);
    }
}
