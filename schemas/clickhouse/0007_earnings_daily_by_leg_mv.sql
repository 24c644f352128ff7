-- Feeds earnings_daily_by_leg from every insert into earning_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.earnings_daily_by_leg_wide_mv
TO {db}.earnings_daily_by_leg
AS SELECT
    toDate(created_at) AS day,
    beneficiary_id,
    leg_user_id,
    CAST(sum(amount) AS Decimal(38, 2)) AS amount,
    count() AS entries
FROM {db}.earning_events
GROUP BY day, beneficiary_id, leg_user_id
