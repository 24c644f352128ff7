-- The ids purchase_events holds, ordered by processing time (as 0016 for earnings):
-- a purchase's processed_at is the processor's commit time, stored in Postgres and
-- republished unchanged, so a redelivered row is found within its batch's time range.
CREATE TABLE IF NOT EXISTS {db}.purchase_event_keys
(
    processed_at DateTime,
    purchase_id  UUID
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(processed_at)
ORDER BY (processed_at, purchase_id)
