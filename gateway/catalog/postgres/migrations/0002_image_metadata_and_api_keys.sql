-- Version 2: seed 001/002 metadata, ingest state and API keys (only their hashes).
ALTER TABLE images ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN is_public BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE images ADD COLUMN tags JSONB NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN text1 TEXT;
ALTER TABLE images ADD COLUMN text2 TEXT;
ALTER TABLE images ADD COLUMN text3 TEXT;
ALTER TABLE images ADD COLUMN number1 DOUBLE PRECISION;
ALTER TABLE images ADD COLUMN number2 DOUBLE PRECISION;
ALTER TABLE images ADD COLUMN number3 DOUBLE PRECISION;
ALTER TABLE images ADD COLUMN max_unauthorised INTEGER;
ALTER TABLE images ADD COLUMN origin TEXT;
ALTER TABLE images ADD COLUMN ingest_state TEXT NOT NULL DEFAULT 'finished';
ALTER TABLE images ADD COLUMN ingest_error TEXT;
ALTER TABLE images ADD COLUMN queued_at TEXT COLLATE "C";
ALTER TABLE images ADD COLUMN finished_at TEXT COLLATE "C";
CREATE INDEX images_by_issuer_updated ON images(issuer_id, updated_at, id);
CREATE INDEX images_by_issuer_size ON images(issuer_id, COALESCE(file_size, 0), id);
CREATE INDEX images_by_tag ON images USING GIN (tags);
CREATE INDEX images_by_sha256 ON images(sha256) WHERE sha256 IS NOT NULL;
CREATE TABLE api_keys (
    prefix TEXT COLLATE "C" PRIMARY KEY,
    issuer_id TEXT COLLATE "C" NOT NULL REFERENCES issuers(id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C"
);
