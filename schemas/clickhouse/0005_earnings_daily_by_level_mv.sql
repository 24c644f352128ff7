-- Feeds earnings_daily_by_level from every insert into earning_events.
-- sum() of the Decimal(18,2) amounts is a Decimal(38,2), the column type (see 0010).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.earnings_daily_by_level_wide_mv
TO {db}.earnings_daily_by_level
AS SELECT
    toDate(created_at) AS day,
    beneficiary_id,
    level,
    CAST(sum(amount) AS Decimal(38, 2)) AS amount,
    count() AS entries
FROM {db}.earning_events
GROUP BY day, beneficiary_id, level
