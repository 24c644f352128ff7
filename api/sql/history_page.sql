-- One page of a user's history, newest first (api/src/reports/history.rs): positions in
-- [$7, $2) of beneficiary $1, walked backward along `earnings_pkey (beneficiary_id,
-- user_seq)`. The bounds are row comparisons, equal to `beneficiary_id = $1 AND user_seq
-- < $2 AND user_seq >= $7`, because the planner estimates them as a wide range: the walk
-- that stops after $6 rows is then always the cheapest plan. Written as the equality, a
-- ledger never analyzed was estimated at ten rows, read by a bitmap scan of every entry of
-- the user and sorted (tested: tests/tests/e2e/plans.rs).
SELECT id, user_seq, purchase_id, source_user_id, leg_user_id, level, kind, amount, created_at
FROM earnings
WHERE (beneficiary_id, user_seq) < ($1, $2) AND (beneficiary_id, user_seq) >= ($1, $7)
  AND ($3::timestamptz IS NULL OR created_at >= $3)
  AND ($4::timestamptz IS NULL OR created_at < $4)
  AND ($5::smallint IS NULL OR level = $5)
ORDER BY beneficiary_id DESC, user_seq DESC
LIMIT $6
