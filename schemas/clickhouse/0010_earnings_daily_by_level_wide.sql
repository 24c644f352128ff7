-- Rollup sums as Decimal(38,2) on installs created before they were: merging parts summed
-- Decimal(18,2) and silently wrapped past 9.2e16 (one shop's day of the largest purchases
-- can pass it). A no-op once the column has the type, so it runs at every start. The old
-- view, which CASTs to Decimal(18,2) and then no longer fits, is dropped by 0013–0015.
ALTER TABLE {db}.earnings_daily_by_level MODIFY COLUMN amount Decimal(38, 2)
