-- Tokens revoked before they expire: every token of `subject` ("admin", or "user:<uuid>")
-- issued at or before `not_before` is refused. Each process reads the rows of the last
-- `[auth] max_token_lifetime_secs` (an older row names only tokens that have expired) every
-- `[auth] revocations_refresh_ms`, so a revocation takes effect within that bound.
CREATE TABLE token_revocations (
    subject    text PRIMARY KEY,
    not_before timestamptz NOT NULL
);
CREATE INDEX token_revocations_not_before_idx ON token_revocations (not_before);
