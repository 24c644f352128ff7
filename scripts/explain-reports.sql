-- EXPLAIN (ANALYZE) of every report query for the user with the most entries, as the API
-- runs them: psql -h 127.0.0.1 -U postgres -d <database> -f scripts/explain-reports.sql
\set QUIET on
SELECT user_id AS heavy FROM account_totals ORDER BY entries DESC LIMIT 1 \gset
SELECT user_seq AS mid FROM earnings WHERE beneficiary_id = :'heavy' ORDER BY user_seq DESC OFFSET 1000 LIMIT 1 \gset
\echo '-- totals'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT level, total, entries FROM balances WHERE user_id = :'heavy' ORDER BY level;
\echo '-- history page (cursor 1000 entries down)'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT id, user_seq, purchase_id, source_user_id, leg_user_id, level, kind, amount, created_at
 FROM earnings WHERE (beneficiary_id, user_seq) < (:'heavy'::uuid, :mid) AND (beneficiary_id, user_seq) >= (:'heavy'::uuid, 1)
   AND (NULL::timestamptz IS NULL OR created_at >= NULL) AND (NULL::timestamptz IS NULL OR created_at < NULL) AND (NULL::smallint IS NULL OR level = NULL)
 ORDER BY beneficiary_id DESC, user_seq DESC LIMIT 51;
SELECT created_at AS first_at FROM earnings WHERE beneficiary_id = :'heavy' AND user_seq = 1 \gset
\echo '-- history with a time range (the ledger\'s first week): the window of positions, then the page'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT
   (SELECT min(first_seq) FROM earnings_daily WHERE beneficiary_id = :'heavy' AND day >= (:'first_at'::timestamptz AT TIME ZONE 'UTC')::date),
   (SELECT max(last_seq) FROM earnings_daily WHERE beneficiary_id = :'heavy' AND day <= ((:'first_at'::timestamptz + interval '7 days') AT TIME ZONE 'UTC')::date);
SELECT (SELECT min(first_seq) FROM earnings_daily WHERE beneficiary_id = :'heavy' AND day >= (:'first_at'::timestamptz AT TIME ZONE 'UTC')::date) AS lo,
       (SELECT max(last_seq) FROM earnings_daily WHERE beneficiary_id = :'heavy' AND day <= ((:'first_at'::timestamptz + interval '7 days') AT TIME ZONE 'UTC')::date) + 1 AS hi \gset
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT id, user_seq, purchase_id, source_user_id, leg_user_id, level, kind, amount, created_at
 FROM earnings WHERE (beneficiary_id, user_seq) < (:'heavy'::uuid, :hi) AND (beneficiary_id, user_seq) >= (:'heavy'::uuid, :lo)
   AND created_at >= :'first_at'::timestamptz AND created_at < :'first_at'::timestamptz + interval '7 days' AND (NULL::smallint IS NULL OR level = NULL)
 ORDER BY beneficiary_id DESC, user_seq DESC LIMIT 51;
\echo '-- by-referral'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT source_user_id, level, sum(total), sum(entries)::bigint FROM earnings_by_source
 WHERE beneficiary_id = :'heavy' GROUP BY source_user_id, level ORDER BY 3 DESC, 1, 2 LIMIT 500;
\echo '-- by-leg'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT leg, sum(total), sum(entries)::bigint FROM (
   SELECT leg_user_id AS leg, total, entries FROM earnings_by_source WHERE beneficiary_id = :'heavy'
   UNION ALL SELECT id, 0, 0 FROM users WHERE referrer_id = :'heavy') legs GROUP BY leg ORDER BY 2 DESC, 1 LIMIT 500;
\echo '-- daily (366 days)'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT day, total, entries FROM earnings_daily
 WHERE beneficiary_id = :'heavy' AND day BETWEEN (current_date - 365) AND current_date ORDER BY day;
\echo '-- tree: one level (children of the level above, by id, under the cap)'
SELECT array_agg(id) AS kids FROM users WHERE referrer_id = :'heavy' \gset
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT u.id, u.referrer_id, u.status, u.display_name
 FROM UNNEST(:'kids'::uuid[]) AS k(id)
 CROSS JOIN LATERAL (SELECT id, referrer_id, status, display_name FROM users u WHERE u.referrer_id = k.id OFFSET 0) u
 ORDER BY u.id LIMIT 5000;
\echo '-- tree: the root and its contributions (api/sql/tree_root.sql)'
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT u.id, u.referrer_id, u.status, u.display_name, c.sources, c.totals
 FROM users u
 CROSS JOIN LATERAL (SELECT coalesce(array_agg(s.source_user_id), '{}') AS sources, coalesce(array_agg(s.total), '{}') AS totals
   FROM (SELECT source_user_id, sum(total) AS total FROM earnings_by_source
         WHERE beneficiary_id = u.id GROUP BY source_user_id) s) c
 WHERE u.id = :'heavy';
