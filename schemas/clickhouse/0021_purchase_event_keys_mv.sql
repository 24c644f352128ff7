-- Every insert into purchase_events adds its ids to purchase_event_keys (0019).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.purchase_event_keys_mv
TO {db}.purchase_event_keys
AS SELECT processed_at, purchase_id
FROM {db}.purchase_events
