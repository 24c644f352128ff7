-- Rollup target: purchases per day (of occurred_at) x shop. Read with sum(...) GROUP BY.
CREATE TABLE IF NOT EXISTS {db}.purchases_daily_by_shop
(
    day        Date,
    shop_id    UUID,
    purchases  UInt64,
    qualifying UInt64,
    amount     Decimal(38, 2)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (shop_id, day)
