-- Feeds earnings_daily_by_level from every insert into earning_events.
-- sum() of a Decimal(18,2) is a Decimal(38,2): CAST it back to the column type.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.earnings_daily_by_level_mv
TO {db}.earnings_daily_by_level
AS SELECT
    toDate(created_at) AS day,
    beneficiary_id,
    level,
    CAST(sum(amount) AS Decimal(18, 2)) AS amount,
    count() AS entries
FROM {db}.earning_events
GROUP BY day, beneficiary_id, level
