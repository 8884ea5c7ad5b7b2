-- Version 2: seed 001/002 metadata, ingest state and API keys (only their hashes).
ALTER TABLE images ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN is_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE images ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN text1 TEXT;
ALTER TABLE images ADD COLUMN text2 TEXT;
ALTER TABLE images ADD COLUMN text3 TEXT;
ALTER TABLE images ADD COLUMN number1 REAL;
ALTER TABLE images ADD COLUMN number2 REAL;
ALTER TABLE images ADD COLUMN number3 REAL;
ALTER TABLE images ADD COLUMN max_unauthorised INTEGER;
ALTER TABLE images ADD COLUMN origin TEXT;
ALTER TABLE images ADD COLUMN ingest_state TEXT NOT NULL DEFAULT 'finished';
ALTER TABLE images ADD COLUMN ingest_error TEXT;
ALTER TABLE images ADD COLUMN queued_at TEXT;
ALTER TABLE images ADD COLUMN finished_at TEXT;
CREATE INDEX images_by_issuer_updated ON images(issuer_id, updated_at, id);
CREATE INDEX images_by_issuer_size ON images(issuer_id, file_size, id);
CREATE TABLE api_keys (
    prefix TEXT PRIMARY KEY,
    issuer_id TEXT NOT NULL REFERENCES issuers(id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

