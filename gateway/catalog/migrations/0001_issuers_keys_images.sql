-- Version 1: issuers, their signing keys, and images (Cloudinary assets or local originals).
CREATE TABLE issuers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    require_exp INTEGER NOT NULL DEFAULT 0,
    max_lifetime INTEGER,
    created_at TEXT NOT NULL
);
CREATE TABLE issuer_keys (
    issuer_id TEXT NOT NULL REFERENCES issuers(id) ON DELETE CASCADE,
    kid TEXT NOT NULL,
    secret TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    PRIMARY KEY (issuer_id, kid)
);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    issuer_id TEXT NOT NULL REFERENCES issuers(id),
    public_id TEXT,
    version INTEGER,
    format TEXT,
    delivery_type TEXT,
    sha256 TEXT,
    media_type TEXT,
    file_size INTEGER,
    width INTEGER,
    height INTEGER,
    original_filename TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX images_by_issuer ON images(issuer_id, created_at, id);

