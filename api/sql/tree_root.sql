-- The tree's root and what each source user's purchases have earned it (api/src/tree.rs),
-- in one round trip: the contributions are the root's `earnings_by_source` rows (its
-- downline within the plan's levels), read by the primary key's prefix.
SELECT u.id AS "id!", u.referrer_id AS "referrer_id?", u.status AS "status!",
       u.display_name AS "display_name?", c.sources AS "sources!", c.totals AS "totals!"
FROM users u
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(s.source_user_id), '{}') AS sources,
           coalesce(array_agg(s.total), '{}') AS totals
    FROM (SELECT source_user_id, sum(total) AS total FROM earnings_by_source
          WHERE beneficiary_id = u.id GROUP BY source_user_id) s
) c
WHERE u.id = $1
