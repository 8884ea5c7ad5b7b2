-- Version 1: issuers, their signing keys, and images (Cloudinary assets or local originals).
-- Ids and times are text in the "C" collation, as in SQLite: ISO 8601 UTC times with
-- microseconds sort as time does, and both catalogs give byte-identical answers and cursors.
CREATE TABLE issuers (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    require_exp BOOLEAN NOT NULL DEFAULT FALSE,
    max_lifetime INTEGER,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE issuer_keys (
    issuer_id TEXT COLLATE "C" NOT NULL REFERENCES issuers(id) ON DELETE CASCADE,
    kid TEXT COLLATE "C" NOT NULL,
    secret TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C",
    -- SQLite's rowid: the order of insertion, for keys made within one microsecond.
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (issuer_id, kid)
);
CREATE TABLE images (
    id TEXT COLLATE "C" PRIMARY KEY,
    issuer_id TEXT COLLATE "C" NOT NULL REFERENCES issuers(id),
    public_id TEXT,
    version BIGINT,
    format TEXT,
    delivery_type TEXT,
    sha256 TEXT COLLATE "C",
    media_type TEXT,
    file_size BIGINT,
    width INTEGER,
    height INTEGER,
    original_filename TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX images_by_issuer ON images(issuer_id, created_at, id);
