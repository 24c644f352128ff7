-- The tree report reads the downline one level at a time: the children of a frontier of
-- users, `referrer_id = ANY(frontier) ORDER BY id`, each with its status and display name.
-- Through `users_referrer_idx` each child was a heap fetch, nearly always on a page of its
-- own (ids are random), so a level of 512 children touched ~400 heap pages. With the
-- columns it reads included in the index, a level is an index-only scan over the few index
-- pages where siblings sit together (measured on 1M users: the depth-8 tree's p50 under
-- 32 readers 480–565 → 370 ms; see docs/performance.md).
--
-- What it costs: the index is wider (an id, a status and a name of at most 40 characters
-- per row), and a change of status is no longer a HOT update (rare: an admin's
-- deactivation). `direct_referrals`, bumped on every signup, is not in any index, so those
-- updates stay HOT. Index-only scans skip the heap only on pages the visibility map marks
-- all-visible, so vacuum `users` sooner than the default 20 % of the table.
CREATE INDEX users_referrer_covering_idx ON users (referrer_id) INCLUDE (id, status, display_name);
DROP INDEX users_referrer_idx;
ALTER TABLE users SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.02
);
