-- Rollup target: earnings per day x beneficiary x leg (the beneficiary's direct
-- referral under whom the purchase happened). Read with sum(...) GROUP BY.
CREATE TABLE IF NOT EXISTS {db}.earnings_daily_by_leg
(
    day            Date,
    beneficiary_id UUID,
    leg_user_id    UUID,
    amount         Decimal(38, 2),
    entries        UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (beneficiary_id, day, leg_user_id)
