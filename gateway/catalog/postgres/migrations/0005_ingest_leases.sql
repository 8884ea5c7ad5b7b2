-- Version 5: ingests owned by a lease, so that replicas sharing a catalog never take
-- over a running ingest, and one whose owner died is resumed by another.
ALTER TABLE images ADD COLUMN ingest_owner TEXT;
ALTER TABLE images ADD COLUMN ingest_lease_until TEXT COLLATE "C";
CREATE INDEX images_queued ON images(ingest_lease_until) WHERE ingest_state = 'queued';
