-- Every insert into earning_events adds its ids to earning_event_keys (0016).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.earning_event_keys_mv
TO {db}.earning_event_keys
AS SELECT created_at, event_id
FROM {db}.earning_events
