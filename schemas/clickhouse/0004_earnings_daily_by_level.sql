-- Rollup target: earnings per day x beneficiary x level. SummingMergeTree sums
-- amount and entries when parts merge, which happens lazily: always read it
-- with sum(...) GROUP BY, never row by row.
CREATE TABLE IF NOT EXISTS {db}.earnings_daily_by_level
(
    day            Date,
    beneficiary_id UUID,
    level          UInt8,
    amount         Decimal(38, 2),
    entries        UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (beneficiary_id, day, level)
