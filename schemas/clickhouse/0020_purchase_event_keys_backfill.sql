-- Installs from before 0019: the ids already stored, copied while 0021's view does not
-- exist yet (as 0017).
INSERT INTO {db}.purchase_event_keys
SELECT processed_at, purchase_id
FROM {db}.purchase_events
WHERE purchase_id NOT IN (SELECT purchase_id FROM {db}.purchase_event_keys)
