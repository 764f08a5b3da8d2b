-- 0010: each status event also keeps what it changed (finding, item, previous and new
-- status) in columns, so that an append can skip a repeat: an event equal in those to the
-- last event of its finding in the tenant's log, which only a sync stopped between
-- appending the event and recording it in the ledger can produce (a real change after
-- A → B starts from B). The check runs under the tenant's advisory lock, with the append.
-- Events written before are filled in from their JSON, so a repeat of one of them is
-- still recognised. The index finds a finding's last event.
-- The same change as SQLite's migration 11.
ALTER TABLE status_events ADD COLUMN finding_id text;
ALTER TABLE status_events ADD COLUMN item_id text;
ALTER TABLE status_events ADD COLUMN previous text;
ALTER TABLE status_events ADD COLUMN status text;
UPDATE status_events
   SET finding_id = event_json::jsonb ->> 'finding_id',
       item_id = event_json::jsonb ->> 'item_id',
       previous = event_json::jsonb ->> 'previous',
       status = event_json::jsonb ->> 'tracker_status'
 WHERE event_json::jsonb ? 'finding_id';
CREATE INDEX status_events_by_finding ON status_events (tenant, finding_id, seq);
