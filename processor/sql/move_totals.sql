-- A batch's running totals as they stand after it (processor/src/ledger/entries.rs). The
-- rows exist and are locked by this transaction, so every row takes the conflict path:
-- each is found through the primary key, whatever the statistics say. As UPDATE … FROM
-- UNNEST, a never-analyzed account_totals was scanned whole and hashed for every batch
-- (tested: tests/tests/e2e/plans.rs).
INSERT INTO account_totals (user_id, total, entries)
SELECT * FROM UNNEST($1::uuid[], $2::numeric[], $3::bigint[])
ON CONFLICT (user_id) DO UPDATE SET total = EXCLUDED.total, entries = EXCLUDED.entries
