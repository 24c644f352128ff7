-- One level of a user's downline: the children of the level above (api/src/tree.rs), in
-- id order, at most $2. Each parent's children are read through the referrer index
-- (`OFFSET 0` keeps the LATERAL subquery from being flattened), whatever the statistics
-- say. As `referrer_id = ANY($1) ORDER BY id LIMIT $2`, a users table never analyzed was
-- walked whole in primary-key order, filtering on the referrer: about a second a level at
-- 200,000 users (tested: tests/tests/e2e/plans.rs).
SELECT u.id AS "id!", u.referrer_id AS "referrer_id?", u.status AS "status!", u.display_name AS "display_name?"
FROM UNNEST($1::uuid[]) AS k(id)
CROSS JOIN LATERAL (SELECT id, referrer_id, status, display_name FROM users u
                    WHERE u.referrer_id = k.id OFFSET 0) u
ORDER BY u.id
LIMIT $2
