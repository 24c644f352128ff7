-- The view that fed purchases_daily_by_shop on installs from before its sums were Decimal(38,2)
-- (0010–0012): it CASTs each block's sum to Decimal(18,2), which the widened column
-- refuses; purchases_daily_by_shop_wide_mv (created earlier in this run) replaces it. Nothing inserts
-- while the sink applies this DDL at its start (stop sinks before `referral migrate`).
DROP TABLE IF EXISTS {db}.purchases_daily_by_shop_mv
