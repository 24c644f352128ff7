-- Referral-graph changes, one row per (user, sequence number). No names or emails.
-- referrer_id is NULL for a user without a referrer.
CREATE TABLE IF NOT EXISTS {db}.user_events
(
    user_id     UUID,
    referrer_id Nullable(UUID),
    kind        String,
    seq         UInt64,
    at          DateTime
)
ENGINE = ReplacingMergeTree()
ORDER BY (user_id, seq)
