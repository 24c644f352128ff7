-- One row per purchase as processed. ReplacingMergeTree keyed by purchase_id,
-- the row with the latest processed_at wins on merge (read with FINAL or argMax).
-- occurred_at of a purchase never changes, so partitioning by it keeps all
-- versions of a purchase in one partition, where they can be replaced.
CREATE TABLE IF NOT EXISTS {db}.purchase_events
(
    purchase_id  UUID,
    shop_id      UUID,
    user_id      UUID,
    amount       Decimal(18, 2),
    profit       Decimal(18, 2),
    qualifying   UInt8,
    plan_version UInt32,
    status       String,
    occurred_at  DateTime,
    processed_at DateTime
)
ENGINE = ReplacingMergeTree(processed_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY purchase_id
