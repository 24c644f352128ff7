-- The order registry is `purchase_requests` (issue 10). Every settled purchase has its
-- registry row: the edge reserves it before the purchase is stored in the stream, and
-- the processor registers, in the same transaction as the purchase, an order a shop
-- published straight to the stream. So `purchases (shop_id, order_id)` had a second
-- unique index for a fact the registry's primary key already keeps, paid on every
-- settled purchase (measured: ~40 % of the purchases insert at 2,500 rows a batch).
-- What else each purchase paid for here:
--
-- * `purchases.user_id -> users`: a FOR KEY SHARE on the buyer's row per purchase (a
--   quarter of the insert), for a fact the processor establishes itself: the buyer is
--   looked up in the referral graph (loaded from `users`) and an unknown one is
--   dead-lettered; no user is ever deleted; `referral verify` reports a purchase whose
--   buyer does not exist.
-- * `purchases_user_idx (user_id)`: read only by `referral verify --user`, which now
--   scans `purchases` for that one user's purchases (seconds at millions of rows).

-- Older processors could leave a purchase a shop published directly without its
-- registry row (an edge reservation of the same order, never settled, held it): the
-- settled purchase takes the order's registry row, as the processor now decides, so
-- refunds find every purchase through the registry and the reservation never pays.
INSERT INTO purchase_requests (shop_id, order_id, purchase_id, body_hash, message, amount)
SELECT p.shop_id, p.order_id, p.id,
       CASE WHEN p.body_hash ~ '^[0-9a-f]{64}$' THEN decode(p.body_hash, 'hex')
            ELSE convert_to(p.body_hash, 'UTF8') END,
       jsonb_build_object('purchase_id', p.id, 'shop_id', p.shop_id, 'order_id', p.order_id,
                          'user_id', p.user_id, 'amount', p.amount::text, 'profit', p.profit::text,
                          'currency', p.currency, 'occurred_at', p.occurred_at, 'body_hash', p.body_hash),
       p.amount
FROM purchases p
WHERE NOT EXISTS (SELECT 1 FROM purchase_requests r WHERE r.purchase_id = p.id)
ON CONFLICT (shop_id, order_id) DO UPDATE
SET purchase_id = EXCLUDED.purchase_id, body_hash = EXCLUDED.body_hash,
    message = EXCLUDED.message, amount = EXCLUDED.amount;

ALTER TABLE purchases DROP CONSTRAINT purchases_shop_id_order_id_key;
ALTER TABLE purchases DROP CONSTRAINT purchases_user_id_fkey;
DROP INDEX purchases_user_idx;
