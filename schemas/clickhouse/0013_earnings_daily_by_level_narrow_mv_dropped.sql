-- The view that fed earnings_daily_by_level on installs from before its sums were Decimal(38,2)
-- (0010–0012): it CASTs each block's sum to Decimal(18,2), which the widened column
-- refuses; earnings_daily_by_level_wide_mv (created earlier in this run) replaces it. Nothing inserts
-- while the sink applies this DDL at its start (stop sinks before `referral migrate`).
DROP TABLE IF EXISTS {db}.earnings_daily_by_level_mv
