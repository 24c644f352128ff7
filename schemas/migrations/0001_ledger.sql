-- The record of truth. Money is NUMERIC(18,2): rupees with paise, never floats.

CREATE TABLE shops (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash    bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Every plan version ever used; a purchase names the version it was paid under.
CREATE TABLE plans (
    version     integer PRIMARY KEY CHECK (version > 0),
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    referrer_id       uuid REFERENCES users (id),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    direct_referrals  integer NOT NULL DEFAULT 0 CHECK (direct_referrals >= 0),
    -- A keyed hash of (caller, the shop's own customer reference): enough to make a
    -- retried signup idempotent, without keeping the reference (it may be personal data).
    external_ref_hash bytea UNIQUE,
    -- A pseudonym the user chose to show their upline (optional; never a real name by design).
    display_name      text CHECK (length(display_name) BETWEEN 1 AND 40),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (referrer_id IS NULL OR referrer_id <> id)
);
CREATE INDEX users_referrer_idx ON users (referrer_id);

-- Outbox of every change to the referral graph, in commit order per writer; the
-- processor follows it by seq to keep its in-memory graph equal to this table.
CREATE TABLE user_events (
    seq          bigserial PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id),
    kind         text NOT NULL CHECK (kind IN ('created', 'deactivated', 'reactivated', 'moved')),
    referrer_id  uuid,
    status       text NOT NULL CHECK (status IN ('active', 'inactive')),
    at           timestamptz NOT NULL DEFAULT now()
);

-- Idempotency keys at the edge: one row per (shop, order) holding the exact message
-- that was published, so a retry republishes the same bytes and a changed body is a 409.
CREATE TABLE purchase_requests (
    shop_id      uuid NOT NULL REFERENCES shops (id),
    order_id     text NOT NULL,
    purchase_id  uuid NOT NULL UNIQUE,
    body_hash    bytea NOT NULL,
    message      jsonb NOT NULL,
    amount       numeric(18, 2) NOT NULL,
    refunded     numeric(18, 2) NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, order_id),
    CHECK (refunded >= 0 AND refunded <= amount)
);

CREATE TABLE refund_requests (
    shop_id      uuid NOT NULL REFERENCES shops (id),
    refund_id    text NOT NULL,
    order_id     text NOT NULL,
    body_hash    bytea NOT NULL,
    message      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, refund_id)
);

CREATE TABLE purchases (
    id              uuid PRIMARY KEY,
    shop_id         uuid NOT NULL,
    order_id        text NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (id),
    amount          numeric(18, 2) NOT NULL CHECK (amount > 0),
    profit          numeric(18, 2) NOT NULL CHECK (profit >= 0 AND profit <= amount),
    currency        text NOT NULL DEFAULT 'INR',
    occurred_at     timestamptz NOT NULL,
    plan_version    integer NOT NULL REFERENCES plans (version),
    status          text NOT NULL CHECK (status IN ('paid', 'below_threshold', 'rejected_inactive_buyer')),
    body_hash       text NOT NULL,
    -- The ancestors considered (id and whether active), nearest first, and the graph
    -- position they were read at: enough for `referral verify` to recompute the payout.
    ancestors       jsonb NOT NULL,
    graph_seq       bigint NOT NULL,
    refunded        numeric(18, 2) NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    processed_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop_id, order_id)
);
CREATE INDEX purchases_user_idx ON purchases (user_id);

CREATE TABLE refunds (
    shop_id       uuid NOT NULL,
    refund_id     text NOT NULL,
    order_id      text NOT NULL,
    amount        numeric(18, 2) NOT NULL CHECK (amount > 0),
    status        text NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    purchase_id   uuid REFERENCES purchases (id),
    -- How much of the purchase was refunded before this one applied (pro-rata base).
    refunded_before numeric(18, 2),
    received_at   timestamptz NOT NULL DEFAULT now(),
    applied_at    timestamptz,
    PRIMARY KEY (shop_id, refund_id)
);
CREATE INDEX refunds_pending_idx ON refunds (shop_id, order_id) WHERE status = 'pending';

CREATE TABLE earnings (
    id              uuid PRIMARY KEY,
    seq             bigserial NOT NULL UNIQUE,
    purchase_id     uuid NOT NULL REFERENCES purchases (id),
    beneficiary_id  uuid NOT NULL REFERENCES users (id),
    level           smallint NOT NULL CHECK (level BETWEEN 1 AND 16),
    leg_user_id     uuid NOT NULL,
    source_user_id  uuid NOT NULL,
    base            numeric(18, 2) NOT NULL,
    rate            numeric(9, 6) NOT NULL,
    amount          numeric(18, 2) NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('earning', 'reversal')),
    refund_id       text NOT NULL DEFAULT '',
    plan_version    integer NOT NULL,
    -- The beneficiary's total right after this entry, as notified live.
    balance_after   numeric(18, 2) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (purchase_id, beneficiary_id, level, kind, refund_id),
    CHECK ((kind = 'earning' AND amount >= 0 AND refund_id = '') OR (kind = 'reversal' AND amount <= 0 AND refund_id <> ''))
);
CREATE INDEX earnings_beneficiary_idx ON earnings (beneficiary_id, seq);
CREATE INDEX earnings_purchase_idx ON earnings (purchase_id);

-- Running totals, written in the same transaction as the entries they sum.
CREATE TABLE balances (
    user_id  uuid NOT NULL REFERENCES users (id),
    level    smallint NOT NULL,
    total    numeric(18, 2) NOT NULL DEFAULT 0,
    entries  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, level)
);

CREATE TABLE account_totals (
    user_id  uuid PRIMARY KEY REFERENCES users (id),
    total    numeric(18, 2) NOT NULL DEFAULT 0,
    entries  bigint NOT NULL DEFAULT 0
);

CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    subject    text NOT NULL,
    reason     text NOT NULL,
    detail     text NOT NULL,
    payload    bytea NOT NULL,
    stream_seq bigint NOT NULL,
    -- Position within the message: a stored message may carry a group of purchases.
    item_index integer NOT NULL DEFAULT 0,
    at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subject, stream_seq, item_index)
);
