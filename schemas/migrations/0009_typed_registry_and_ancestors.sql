-- Two `jsonb` columns written for every purchase and read almost never (issue 10). Measured
-- by hand (psql, 3,300 rows a statement, the application's statements, 200,000 rows already
-- in the table):
--
-- * The edge's reservation stored the whole purchase message as `jsonb` (~300 bytes parsed
--   per row), only to republish it when the shop retries an order not yet stored in the
--   stream. A retry passes the body-hash check, so its body equals the first one's: the
--   message is that body plus what the edge added, the purchase id (already a column) and
--   the time it took for the purchase when the shop gave none. So the registry keeps
--   `occurred_at` and no message: 37-40 ms → 16 ms a statement, a third of the table's size.
ALTER TABLE purchase_requests ADD COLUMN occurred_at timestamptz;
UPDATE purchase_requests r SET occurred_at = (r.message ->> 'occurred_at')::timestamptz
WHERE r.message IS NOT NULL;
-- Rows the processor registered (orders published straight to the stream) kept no message;
-- each has its settled purchase.
UPDATE purchase_requests r SET occurred_at = p.occurred_at
FROM purchases p WHERE r.occurred_at IS NULL AND p.id = r.purchase_id;
ALTER TABLE purchase_requests ALTER COLUMN occurred_at SET NOT NULL,
                              DROP COLUMN message;

-- * `purchases.ancestors` (who the payout considered, nearest first, and whether each was
--   active) as `jsonb`: 31 ms a statement of 3,300 purchases against 17.5 ms for the same
--   facts as `bytea`, 17 bytes an ancestor (the user's uuid, then 1 if active, 0 if not).
--   Only `referral verify` reads it, in Rust (processor/src/ancestors.rs).
CREATE FUNCTION pg_temp.ancestors_bytes(a jsonb) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(string_agg(decode(replace(e ->> 'user_id', '-', ''), 'hex')
                               || CASE WHEN (e ->> 'active')::boolean THEN '\x01'::bytea
                                       ELSE '\x00'::bytea END,
                               ''::bytea ORDER BY n), ''::bytea)
    FROM jsonb_array_elements(a) WITH ORDINALITY AS t(e, n)
$$;
ALTER TABLE purchases ALTER COLUMN ancestors TYPE bytea USING pg_temp.ancestors_bytes(ancestors);
