-- Each entry's position in its beneficiary's own ledger (1, 2, 3, …): the live feed's
-- event id. Per-user and gapless, because entries of one beneficiary are written under
-- the lock on their account_totals row, so "entry n is committed" implies 1..n are.
-- A client resumes with the last position it saw and the API reads the rest from here.
ALTER TABLE earnings ADD COLUMN user_seq bigint;
UPDATE earnings e SET user_seq = n.rn
FROM (SELECT id, row_number() OVER (PARTITION BY beneficiary_id ORDER BY seq) AS rn FROM earnings) n
WHERE e.id = n.id;
ALTER TABLE earnings ALTER COLUMN user_seq SET NOT NULL;
ALTER TABLE earnings ADD CONSTRAINT earnings_user_seq_key UNIQUE (beneficiary_id, user_seq);
