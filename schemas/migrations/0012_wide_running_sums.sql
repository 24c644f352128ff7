-- Running sums as NUMERIC(28,2), the bound `schemas::Money` keeps in memory (10^26 rupees).
-- At NUMERIC(18,2) a total stopped at 9999999999999999.99: one shop could send about
-- 200,000 of the largest purchases (10^12 rupees each) for one buyer and every purchase
-- paying that buyer's upline was refused from then on, each failing its whole batch a few
-- times before being set aside, which slowed the processor for every shop. At 10^26 the
-- same takes 2 × 10^15 purchases. Single amounts stay NUMERIC(18,2) (at most 10^12 rupees).
--
-- Raising a numeric's precision at the same scale changes no stored value, so Postgres
-- rewrites no table and rebuilds no index here (only a brief exclusive lock per table).
ALTER TABLE earnings ALTER COLUMN balance_after TYPE numeric(28, 2);
ALTER TABLE balances ALTER COLUMN total TYPE numeric(28, 2);
ALTER TABLE account_totals ALTER COLUMN total TYPE numeric(28, 2);
ALTER TABLE earnings_by_source ALTER COLUMN total TYPE numeric(28, 2);
ALTER TABLE earnings_daily ALTER COLUMN total TYPE numeric(28, 2);
