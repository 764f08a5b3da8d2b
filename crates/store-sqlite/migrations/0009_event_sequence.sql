-- 0009: each tenant's status events are numbered by the tenant's own sequence (`seq`: 1,
-- 2, 3…), the cursor the API hands out, so that a tenant's cursors say nothing about how
-- many events other tenants have (the row id `cursor`, shared by every tenant, did).
-- Events written before keep their old cursor as their number, so a cursor a consumer
-- already holds stays valid: the tenant's next event is numbered after its highest.
-- The same change as PostgreSQL's migration 8.
ALTER TABLE status_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE status_events SET seq = cursor;
DROP INDEX status_events_by_tenant;
CREATE UNIQUE INDEX status_events_by_tenant_seq ON status_events (tenant, seq);
