-- Report rollups: what the by-referral, by-leg, tree and daily reports read, so their cost
-- depends on the size of a user's downline (or the days asked for), never on how many
-- entries the user has. Written by the processor in the same transaction as the entries
-- they sum (processor/src/ledger/rollups.rs), under the beneficiary's account_totals lock,
-- so they are exact, never lag, and `referral verify` checks them against the entries.
-- Derived data: the foreign keys live on `earnings`.

-- Entries are not written while this migration backfills (held until it commits), so
-- the sums below are exactly the entries present when the new code starts writing.
LOCK TABLE earnings IN SHARE MODE;

-- Per (beneficiary, source user, level): the by-referral report and the tree's
-- contributions. At most the beneficiary's downline within the plan's levels.
CREATE TABLE earnings_by_source (
    beneficiary_id  uuid NOT NULL,
    source_user_id  uuid NOT NULL,
    level           smallint NOT NULL,
    total           numeric(18, 2) NOT NULL,
    entries         bigint NOT NULL,
    PRIMARY KEY (beneficiary_id, source_user_id, level)
);

-- Per (beneficiary, leg): the by-leg report. At most the direct referrals the
-- beneficiary has ever had.
CREATE TABLE earnings_by_leg (
    beneficiary_id  uuid NOT NULL,
    leg_user_id     uuid NOT NULL,
    total           numeric(18, 2) NOT NULL,
    entries         bigint NOT NULL,
    PRIMARY KEY (beneficiary_id, leg_user_id)
);

-- Per (beneficiary, UTC day of the entry): the daily series. One row per day with entries.
CREATE TABLE earnings_daily (
    beneficiary_id  uuid NOT NULL,
    day             date NOT NULL,
    total           numeric(18, 2) NOT NULL,
    entries         bigint NOT NULL,
    PRIMARY KEY (beneficiary_id, day)
);

INSERT INTO earnings_by_source (beneficiary_id, source_user_id, level, total, entries)
SELECT beneficiary_id, source_user_id, level, sum(amount), count(*)
FROM earnings GROUP BY 1, 2, 3;

INSERT INTO earnings_by_leg (beneficiary_id, leg_user_id, total, entries)
SELECT beneficiary_id, leg_user_id, sum(amount), count(*)
FROM earnings GROUP BY 1, 2;

INSERT INTO earnings_daily (beneficiary_id, day, total, entries)
SELECT beneficiary_id, (created_at AT TIME ZONE 'UTC')::date, sum(amount), count(*)
FROM earnings GROUP BY 1, 2;

-- `referral verify` reads a chunk of purchases' applied refunds by purchase.
CREATE INDEX refunds_purchase_idx ON refunds (purchase_id) WHERE status = 'applied';
