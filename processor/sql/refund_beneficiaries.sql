-- Whose totals a batch's refunds may move: the beneficiaries of the purchases they refund,
-- locked with the batch's purchases' beneficiaries (processor/src/ledger/refunds.rs). One
-- registry lookup and one ledger lookup per refund whatever the statistics: LIMIT 1 and
-- OFFSET 0 keep the subqueries subqueries (as joins, a ledger never analyzed was scanned
-- whole; see platform/sql/entries_of_purchases.sql; tested: tests/tests/e2e/plans.rs).
SELECT DISTINCT e.beneficiary_id AS "beneficiary_id!"
FROM UNNEST($1::uuid[], $2::text[]) AS k(shop_id, order_id)
CROSS JOIN LATERAL (SELECT r.purchase_id FROM purchase_requests r
                    WHERE r.shop_id = k.shop_id AND r.order_id = k.order_id LIMIT 1) r
CROSS JOIN LATERAL (SELECT e.beneficiary_id FROM earnings e
                    WHERE e.purchase_id = r.purchase_id AND e.kind = 'earning' OFFSET 0) e
