-- History with a time range reads from where the range can start, not from the newest entry.
--
-- Each (beneficiary, UTC day) row of `earnings_daily` now also keeps the lowest and highest
-- ledger position (`earnings.user_seq`) of that day's entries. History with `to` starts its
-- walk at the highest position of the days up to `to`'s day, and with `from` stops at the
-- lowest position of the days from `from`'s day on: both are bounds that hold whatever the
-- order of positions and times (a max over a superset of the range's days), so they only
-- narrow the index scan of `(beneficiary_id, user_seq)`; the time filter still decides.
-- No new index on `earnings`: the write path pays two columns in an upsert it already does.
ALTER TABLE earnings_daily ADD COLUMN first_seq bigint, ADD COLUMN last_seq bigint;

UPDATE earnings_daily d
SET first_seq = s.first_seq, last_seq = s.last_seq
FROM (
    SELECT beneficiary_id, (created_at AT TIME ZONE 'UTC')::date AS day,
           min(user_seq) AS first_seq, max(user_seq) AS last_seq
    FROM earnings
    GROUP BY 1, 2
) s
WHERE d.beneficiary_id = s.beneficiary_id AND d.day = s.day;

ALTER TABLE earnings_daily
    ALTER COLUMN first_seq SET NOT NULL,
    ALTER COLUMN last_seq SET NOT NULL,
    ADD CONSTRAINT earnings_daily_seq_order CHECK (1 <= first_seq AND first_seq <= last_seq);
