-- 0011: each status event also keeps what it changed (finding, item, previous and new
-- status) in columns, so that an append can skip a repeat: an event equal in those to the
-- last event of its finding in the tenant's log, which only a sync stopped between
-- appending the event and recording it in the ledger can produce (a real change after
-- A → B starts from B). Events written before are filled in from their JSON, so a repeat
-- of one of them is still recognised. The index finds a finding's last event.
-- The same change as PostgreSQL's migration 10.
ALTER TABLE status_events ADD COLUMN finding_id TEXT;
ALTER TABLE status_events ADD COLUMN item_id TEXT;
ALTER TABLE status_events ADD COLUMN previous TEXT;
ALTER TABLE status_events ADD COLUMN status TEXT;
UPDATE status_events
   SET finding_id = json_extract(event_json, '$.finding_id'),
       item_id = json_extract(event_json, '$.item_id'),
       previous = json_extract(event_json, '$.previous'),
       status = json_extract(event_json, '$.tracker_status')
 WHERE json_valid(event_json);
CREATE INDEX status_events_by_finding ON status_events (tenant, finding_id, seq);
