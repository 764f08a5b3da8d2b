-- 0008: each tenant's status events are numbered by the tenant's own sequence (`seq`: 1,
-- 2, 3…), the cursor the API hands out, so that a tenant's cursors say nothing about how
-- many events other tenants have (the `bigserial` cursor, shared by every tenant, did).
-- Events written before keep their old cursor as their number, so a cursor a consumer
-- already holds stays valid: the tenant's next event is numbered after its highest. The
-- number is drawn under the tenant's advisory lock (see the store's EventLog).
ALTER TABLE status_events ADD COLUMN seq bigint;
UPDATE status_events SET seq = cursor;
ALTER TABLE status_events ALTER COLUMN seq SET NOT NULL;
DROP INDEX status_events_by_tenant;
CREATE UNIQUE INDEX status_events_by_tenant_seq ON status_events (tenant, seq);
