-- Installs from before 0016: the ids already stored, copied before 0018 creates the view
-- that keeps the table filled (nothing inserts while the sink applies this DDL). Applied
-- only while that view does not exist (warehouse/src/migrate.rs: it reads both tables
-- whole, ~4 s at 8M rows), so a copy cut short is finished at the next start.
INSERT INTO {db}.earning_event_keys
SELECT created_at, event_id
FROM {db}.earning_events
WHERE event_id NOT IN (SELECT event_id FROM {db}.earning_event_keys)
