-- The entries of one chunk of purchases, for `referral verify` (processor/src/verify).
-- One index lookup per purchase whatever the statistics say: `OFFSET 0` keeps the LATERAL
-- subquery a subquery; without it the planner flattened it into a join, and on a ledger
-- never analyzed each chunk of 1,000 purchases was a parallel sequential scan of every
-- entry, so verify grew with the square of the ledger (tested: tests/tests/e2e/plans.rs).
SELECT e.purchase_id, e.beneficiary_id, e.level, e.refund_id, e.amount, e.leg_user_id,
       e.source_user_id, e.base, e.rate, e.plan_version
FROM UNNEST($1::uuid[]) AS k(id)
CROSS JOIN LATERAL (SELECT * FROM earnings e WHERE e.purchase_id = k.id OFFSET 0) e
