-- The ids earning_events holds, ordered by time: the sink asks here which ids of a batch
-- are stored, bounded by the batch's time range, so a lookup reads the few granules of
-- those seconds. earning_events is ordered by event_id (random), where the same lookup
-- read the whole id column, a cost that grew with the table. Filled by 0018's view.
CREATE TABLE IF NOT EXISTS {db}.earning_event_keys
(
    created_at DateTime,
    event_id   UUID
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(created_at)
ORDER BY (created_at, event_id)
