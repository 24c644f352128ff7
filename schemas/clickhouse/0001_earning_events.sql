-- One row per earning or reversal (event_id = the earning id). No personal data.
-- amount is negative for reversals. The sink inserts an event_id at most once
-- (it checks before inserting), which keeps the rollup views below exact.
CREATE TABLE IF NOT EXISTS {db}.earning_events
(
    event_id       UUID,
    purchase_id    UUID,
    shop_id        UUID,
    beneficiary_id UUID,
    source_user_id UUID,
    leg_user_id    UUID,
    level          UInt8,
    kind           String,
    amount         Decimal(18, 2),
    plan_version   UInt32,
    created_at     DateTime
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(created_at)
ORDER BY event_id
