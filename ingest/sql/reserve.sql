-- The edge's group reservation (ingest/src/reserver.rs). Each buyer is found through
-- a LATERAL subquery with LIMIT 1, which the planner cannot turn into a join: it is one
-- primary-key probe per row whatever the table statistics say. As a plain join, a users
-- table never analyzed (a fresh install, autovacuum off or behind) was hashed whole by a
-- sequential scan for every group (tested: tests/tests/e2e/plans.rs).
INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, occurred_at, amount)
SELECT r.shop_id, r.order_id, r.purchase_id, r.body_hash, r.occurred_at, r.amount
FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bytea[], $5::timestamptz[], $6::numeric[],
            $7::uuid[])
     WITH ORDINALITY AS r(shop_id, order_id, purchase_id, body_hash, occurred_at, amount, user_id, n)
CROSS JOIN LATERAL (SELECT 1 FROM users u
                    WHERE u.id = r.user_id AND u.status = $8
                      AND (u.shop_id IS NULL OR u.shop_id = r.shop_id)
                    LIMIT 1) buyer
ORDER BY r.shop_id, r.order_id, r.n
ON CONFLICT (shop_id, order_id) DO NOTHING
RETURNING purchase_id
