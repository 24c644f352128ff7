-- The entries of some purchases, to republish them (platform/src/entries.rs). One index
-- lookup per purchase whatever the statistics say: `OFFSET 0` keeps each LATERAL subquery
-- a subquery (a purchase has several entries, so it cannot carry `LIMIT 1`); without it the
-- planner flattens it into a join, and on a ledger never analyzed that join was a
-- parallel sequential scan of every entry (tested: tests/tests/e2e/plans.rs).
SELECT e.id, e.user_seq, e.purchase_id, p.shop_id, e.beneficiary_id, e.source_user_id, e.leg_user_id,
       e.level, e.kind, e.amount, e.balance_after, e.plan_version, e.created_at
FROM UNNEST($1::uuid[]) AS k(id)
CROSS JOIN LATERAL (SELECT * FROM earnings e WHERE e.purchase_id = k.id OFFSET 0) e
CROSS JOIN LATERAL (SELECT p.shop_id FROM purchases p WHERE p.id = k.id LIMIT 1) p
ORDER BY e.beneficiary_id, e.user_seq
