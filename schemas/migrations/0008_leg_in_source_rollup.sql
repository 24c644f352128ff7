-- One rollup less per entry (issue 10). A batch moved three rollups for each entry, in the
-- section where it holds its beneficiaries' totals (the part of a batch that concurrent
-- batches wait on). `earnings_by_leg (beneficiary, leg)` is the sum of
-- `earnings_by_source (beneficiary, source, level)` grouped by each source's leg, and an
-- entry's leg is fixed when it is written: so `earnings_by_source` carries the leg in its
-- key, and the by-leg report groups a beneficiary's source rows (at most the downline
-- within the plan's levels, plus sources that have since moved to another leg). Measured
-- with `referral bench pipeline --loads direct --users 4096`: the rollups step went from
-- 70 to 53 ms a batch of 3,260 purchases.

-- Entries are not written while this migration rebuilds (held until it commits): stop the
-- processors first (docs/operations.md).
LOCK TABLE earnings IN SHARE MODE;

ALTER TABLE earnings_by_source ADD COLUMN leg_user_id uuid;
TRUNCATE earnings_by_source;
INSERT INTO earnings_by_source (beneficiary_id, source_user_id, level, leg_user_id, total, entries)
SELECT beneficiary_id, source_user_id, level, leg_user_id, sum(amount), count(*)
FROM earnings GROUP BY 1, 2, 3, 4;
ALTER TABLE earnings_by_source ALTER COLUMN leg_user_id SET NOT NULL,
    DROP CONSTRAINT earnings_by_source_pkey,
    ADD CONSTRAINT earnings_by_source_pkey PRIMARY KEY (beneficiary_id, source_user_id, level, leg_user_id);

DROP TABLE earnings_by_leg;
