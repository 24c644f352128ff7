-- The reversals one refund wrote, to republish them when the refund is delivered again
-- (platform/src/entries.rs). Found from the refund's row (its key, then its purchase): the
-- ledger has no index on `refund_id`, and as a join of `earnings` to `purchases` filtered
-- on the refund id every replayed refund was a parallel sequential scan of every entry,
-- statistics or not (tested: tests/tests/e2e/plans.rs).
SELECT e.id, e.user_seq, e.purchase_id, r.shop_id, e.beneficiary_id, e.source_user_id, e.leg_user_id,
       e.level, e.kind, e.amount, e.balance_after, e.plan_version, e.created_at
FROM refunds r
CROSS JOIN LATERAL (SELECT * FROM earnings e
                    WHERE e.purchase_id = r.purchase_id AND e.kind = 'reversal'
                      AND e.refund_id = r.refund_id
                    OFFSET 0) e
WHERE r.shop_id = $1 AND r.refund_id = $2
ORDER BY e.beneficiary_id, e.user_seq
