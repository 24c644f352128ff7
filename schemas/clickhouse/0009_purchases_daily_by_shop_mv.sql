-- Feeds purchases_daily_by_shop from every insert into purchase_events. Every
-- inserted row counts: the sink inserts each purchase_id once.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.purchases_daily_by_shop_wide_mv
TO {db}.purchases_daily_by_shop
AS SELECT
    toDate(occurred_at) AS day,
    shop_id,
    count() AS purchases,
    toUInt64(sum(qualifying)) AS qualifying,
    CAST(sum(amount) AS Decimal(38, 2)) AS amount
FROM {db}.purchase_events
GROUP BY day, shop_id
