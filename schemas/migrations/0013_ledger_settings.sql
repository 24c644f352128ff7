-- Settings every processor of one ledger must share: the first processor to start records
-- its value and every later one checks its own against it, refusing to start on a
-- difference. `order_lock_buckets`: a batch's advisory locks on its orders are on
-- `hash(shop, order) % buckets`; two processors with different counts lock different keys
-- for one order, so a purchase on one and its early refund on the other no longer
-- serialize, and the refund can stay pending beside its settled purchase (the payout it
-- should reverse kept). To change a setting, stop every processor, update its row, and
-- start them with the new value.
CREATE TABLE ledger_settings (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
