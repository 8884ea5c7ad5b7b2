"""The catalog of issuers, their keys and their images, in SQLite.

Queries run on the calling thread: they are indexed point lookups on a local
file (microseconds), cheaper than a hop to a thread pool, and the hot path
reads through `CachedCatalog` anyway.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from signing import Issuer, IssuerKey, IssuerPolicy, generate_secret
from transforms import CloudinaryAsset

__all__ = [
    "MUTABLE",
    "SORTS",
    "ApiKey",
    "CachedCatalog",
    "Catalog",
    "CatalogError",
    "ImageRecord",
    "Ingest",
    "Original",
    "Page",
]

_MIGRATIONS: Final = (
    """
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
    """,
    """
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
    """,
    """
    CREATE INDEX issuer_keys_by_kid ON issuer_keys(kid) WHERE revoked_at IS NULL;
    """,
)

# Columns a PATCH may change, by API name.
MUTABLE: Final[Mapping[str, str]] = {
    "description": "description",
    "isPublic": "is_public",
    "tags": "tags",
    "text1": "text1",
    "text2": "text2",
    "text3": "text3",
    "number1": "number1",
    "number2": "number2",
    "number3": "number3",
    "maxUnauthorised": "max_unauthorised",
}
SORTS: Final[Mapping[str, str]] = {
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "fileSize": "COALESCE(file_size, 0)",
}


class CatalogError(Exception):
    """A catalog write was refused (duplicate id, unknown issuer, bad value)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Original:
    """A locally stored original, addressed by the SHA-256 of its bytes."""

    sha256: str
    media_type: str
    file_size: int
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingest:
    """Where an image came from and how far fetching it got (seed 002)."""

    state: str  # queued, finished or error
    origin: str | None = None
    error: str | None = None
    queued_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRecord:
    id: str
    issuer_id: str
    cloudinary: CloudinaryAsset | None
    original: Original | None
    original_filename: str | None
    created_at: str
    updated_at: str
    description: str = ""
    is_public: bool = False
    tags: tuple[str, ...] = ()
    texts: tuple[str | None, str | None, str | None] = (None, None, None)
    numbers: tuple[float | None, float | None, float | None] = (None, None, None)
    max_unauthorised: int | None = None
    ingest: Ingest = Ingest(state="finished")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    images: list[ImageRecord]
    total: int
    has_more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    prefix: str
    issuer_id: str
    created_at: str
    revoked_at: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Catalog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Secrets live here: keep the file private to the gateway's user.
        path.touch(mode=0o600, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._writes = 0
        self._listeners: list[Callable[[], None]] = []
        self._migrate()
        self._data_version = self._read_data_version()

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            with self._transaction():
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number:d}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._writes += 1
        self._changed()

    def _read_data_version(self) -> int:
        (value,) = self._db.execute("PRAGMA data_version").fetchone()
        assert isinstance(value, int)  # noqa: S101 - SQLite's documented type
        return value

    @property
    def revision(self) -> tuple[int, int]:
        """Changes whenever anyone, in this process or another, changed the catalog."""
        return (self._writes, self._data_version)

    def refresh(self) -> None:
        """Notice commits made by other connections (the CLI, another worker)."""
        version = self._read_data_version()
        if version != self._data_version:
            self._data_version = version
            self._changed()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every change: at once for this connection's
        commits, and for other connections' once `refresh` notices them."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # Issuers and keys

    def add_issuer(
        self,
        *,
        issuer_id: str | None = None,
        name: str = "",
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
        policy: IssuerPolicy = IssuerPolicy(),
    ) -> tuple[Issuer, IssuerKey]:
        issuer_id = _uuid(issuer_id)
        key = _new_key(kid, secret, algorithm)
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO issuers (id, name, require_exp, max_lifetime, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        issuer_id,
                        name or issuer_id,
                        policy.require_exp,
                        policy.max_lifetime,
                        _now(),
                    ),
                )
                self._insert_key(db, issuer_id, key)
        except sqlite3.IntegrityError as exc:
            raise CatalogError(f"issuer {issuer_id} already exists") from exc
        issuer = self.issuer(issuer_id)
        assert issuer is not None  # noqa: S101 - just written
        return issuer, key

    def add_key(
        self,
        issuer_id: str,
        *,
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
    ) -> IssuerKey:
        key = _new_key(kid, secret, algorithm)
        if self.issuer(issuer_id) is None:
            raise CatalogError(f"no issuer {issuer_id}")
        try:
            with self._transaction() as db:
                self._insert_key(db, issuer_id, key)
        except sqlite3.IntegrityError as exc:
            raise CatalogError(
                f"issuer {issuer_id} has a key {key.kid} already"
            ) from exc
        return key

    def _insert_key(
        self, db: sqlite3.Connection, issuer_id: str, key: IssuerKey
    ) -> None:
        db.execute(
            "INSERT INTO issuer_keys (issuer_id, kid, secret, algorithm, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (issuer_id, key.kid, key.secret, key.algorithm, _now()),
        )

    def revoke_key(self, issuer_id: str, kid: str) -> None:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE issuer_keys SET revoked_at = ?"
                " WHERE issuer_id = ? AND kid = ? AND revoked_at IS NULL",
                (_now(), issuer_id, kid),
            )
            if cursor.rowcount != 1:
                raise CatalogError(f"issuer {issuer_id} has no active key {kid}")

    def issuer(self, issuer_id: str) -> Issuer | None:
        row = self._db.execute(
            "SELECT * FROM issuers WHERE id = ?", (issuer_id,)
        ).fetchone()
        if row is None:
            return None
        keys = self._db.execute(
            "SELECT kid, secret, algorithm FROM issuer_keys"
            " WHERE issuer_id = ? AND revoked_at IS NULL"
            " ORDER BY created_at DESC, rowid DESC",
            (issuer_id,),
        ).fetchall()
        return Issuer(
            id=row["id"],
            name=row["name"],
            keys=tuple(
                IssuerKey(kid=k["kid"], secret=k["secret"], algorithm=k["algorithm"])
                for k in keys
            ),
            policy=IssuerPolicy(
                require_exp=bool(row["require_exp"]), max_lifetime=row["max_lifetime"]
            ),
        )

    def issuer_for_kid(self, kid: str, /) -> Issuer | None:
        rows = self._db.execute(
            "SELECT DISTINCT issuer_id FROM issuer_keys"
            " WHERE kid = ? AND revoked_at IS NULL LIMIT 2",
            (kid,),
        ).fetchall()
        return self.issuer(rows[0]["issuer_id"]) if len(rows) == 1 else None

    def issuers(self) -> list[Issuer]:
        rows = self._db.execute("SELECT id FROM issuers ORDER BY created_at").fetchall()
        return [i for r in rows if (i := self.issuer(r["id"])) is not None]

    # Images

    def add_image(
        self,
        *,
        issuer_id: str,
        image_id: str | None = None,
        cloudinary: CloudinaryAsset | None = None,
        original: Original | None = None,
        original_filename: str | None = None,
        origin: str | None = None,
    ) -> ImageRecord:
        """A new image; with `origin` and nothing else it is queued for ingest."""
        if cloudinary is None and original is None and origin is None:
            raise CatalogError("an image needs a Cloudinary asset or a local original")
        image_id = _uuid(image_id)
        now = _now()
        asset, orig = cloudinary, original
        queued = asset is None and orig is None
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO images (id, issuer_id, public_id, version, format,"
                    " delivery_type, sha256, media_type, file_size, width, height,"
                    " original_filename, created_at, updated_at, origin,"
                    " ingest_state, queued_at, finished_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id,
                        issuer_id,
                        asset and asset.public_id,
                        asset and asset.version,
                        asset and asset.format,
                        asset and asset.delivery_type,
                        orig and orig.sha256,
                        orig and orig.media_type,
                        orig and orig.file_size,
                        orig and orig.width,
                        orig and orig.height,
                        original_filename,
                        now,
                        now,
                        origin,
                        "queued" if queued else "finished",
                        now if origin else None,
                        None if queued else now,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise CatalogError(
                f"image {image_id} exists already or issuer {issuer_id} is unknown"
            ) from exc
        record = self.image(image_id)
        assert record is not None  # noqa: S101 - just written
        return record

    def image(self, image_id: str) -> ImageRecord | None:
        row = self._db.execute(
            "SELECT * FROM images WHERE id = ?", (image_id,)
        ).fetchone()
        return None if row is None else _image(row)

    def images(self, issuer_id: str) -> list[ImageRecord]:
        rows = self._db.execute(
            "SELECT * FROM images WHERE issuer_id = ? ORDER BY created_at, id",
            (issuer_id,),
        ).fetchall()
        return [_image(r) for r in rows]

    def page(
        self,
        issuer_id: str,
        *,
        sort: str = "createdAt",
        descending: bool = True,
        size: int = 10,
        after: tuple[object, str] | None = None,
        before: tuple[object, str] | None = None,
        search: str | None = None,
        tag: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> Page:
        """One page of an issuer's images, by keyset: stable under inserts.

        `after`/`before` are the (sort value, id) of the last/first row seen.
        """
        key = SORTS[sort]
        where: list[str] = ["issuer_id = ?"]
        args: list[object] = [issuer_id]
        if search:
            pattern = (
                "%"
                + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            where.append(
                "(original_filename LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')"
            )
            args += [pattern, pattern]
        if tag:
            where.append(
                "EXISTS (SELECT 1 FROM json_each(images.tags) WHERE value = ?)"
            )
            args.append(tag)
        if ids is not None:
            where.append(f"id IN ({', '.join('?' * len(ids))})")
            args += list(ids)
        conditions = " AND ".join(where)  # fixed fragments; values are parameters
        (total,) = self._db.execute(
            f"SELECT count(*) FROM images WHERE {conditions}",  # noqa: S608
            args,
        ).fetchone()
        backwards = before is not None
        forward_desc = descending != backwards
        cursor = before if backwards else after
        if cursor is not None:
            where.append(f"({key}, id) {'<' if forward_desc else '>'} (?, ?)")
            args += [cursor[0], cursor[1]]
        order = "DESC" if forward_desc else "ASC"
        rows = self._db.execute(
            f"SELECT * FROM images WHERE {' AND '.join(where)}"  # noqa: S608 - fixed fragments
            f" ORDER BY {key} {order}, id {order} LIMIT ?",
            [*args, size + 1],
        ).fetchall()
        has_more = len(rows) > size
        images = [_image(r) for r in rows[:size]]
        if backwards:
            images.reverse()
        return Page(images=images, total=total, has_more=has_more)

    def update_image(self, image_id: str, changes: Mapping[str, object]) -> ImageRecord:
        """Set columns (API names from `MUTABLE`, values already validated)."""
        columns = [MUTABLE[name] for name in changes]
        values = [
            json.dumps(list(v)) if name == "tags" and isinstance(v, list | tuple) else v
            for name, v in changes.items()
        ]
        with self._transaction() as db:
            assignments = ", ".join(f"{c} = ?" for c in [*columns, "updated_at"])
            db.execute(
                f"UPDATE images SET {assignments} WHERE id = ?",  # noqa: S608 - MUTABLE's names
                [*values, _now(), image_id],
            )
        record = self.image(image_id)
        if record is None:
            raise CatalogError(f"no image {image_id}")
        return record

    def finish_ingest(
        self,
        image_id: str,
        *,
        original: Original | None = None,
        cloudinary: CloudinaryAsset | None = None,
        filename: str | None = None,
        error: str | None = None,
    ) -> None:
        now = _now()
        with self._transaction() as db:
            if error is not None:
                db.execute(
                    "UPDATE images SET ingest_state = 'error', ingest_error = ?,"
                    " finished_at = ?, updated_at = ? WHERE id = ?",
                    (error, now, now, image_id),
                )
                return
            assert original is not None  # noqa: S101 - callers pass one or the other
            asset = cloudinary
            db.execute(
                "UPDATE images SET ingest_state = 'finished', ingest_error = NULL,"
                " sha256 = ?, media_type = ?, file_size = ?, width = ?, height = ?,"
                " original_filename = ?, public_id = ?, version = ?, format = ?,"
                " delivery_type = ?, finished_at = ?, updated_at = ? WHERE id = ?",
                (
                    original.sha256,
                    original.media_type,
                    original.file_size,
                    original.width,
                    original.height,
                    filename,
                    asset and asset.public_id,
                    asset and asset.version,
                    asset and asset.format,
                    asset and asset.delivery_type,
                    now,
                    now,
                    image_id,
                ),
            )

    # API keys: only a hash is stored; the key is shown once, at creation.

    def add_api_key(self, issuer_id: str) -> str:
        if self.issuer(issuer_id) is None:
            raise CatalogError(f"no issuer {issuer_id}")
        prefix = secrets.token_hex(6)
        key = f"sk_{prefix}_{secrets.token_urlsafe(32)}"
        with self._transaction() as db:
            db.execute(
                "INSERT INTO api_keys (prefix, issuer_id, hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (prefix, issuer_id, _key_hash(key), _now()),
            )
        return key

    def api_key_issuer(self, key: str) -> str | None:
        """The issuer of an active key, compared in constant time; else None."""
        parts = key.split("_")
        if len(parts) < 3 or parts[0] != "sk":
            return None
        row = self._db.execute(
            "SELECT issuer_id, hash FROM api_keys WHERE prefix = ? AND revoked_at IS NULL",
            (parts[1],),
        ).fetchone()
        # Hash even when no row matched, so timing tells nothing about prefixes.
        expected = row["hash"] if row is not None else "0" * 64
        if not hmac.compare_digest(_key_hash(key), expected) or row is None:
            return None
        issuer_id = row["issuer_id"]
        assert isinstance(issuer_id, str)  # noqa: S101 - the schema's type
        return issuer_id

    def api_keys(self, issuer_id: str) -> list[ApiKey]:
        rows = self._db.execute(
            "SELECT prefix, issuer_id, created_at, revoked_at FROM api_keys"
            " WHERE issuer_id = ? ORDER BY created_at",
            (issuer_id,),
        ).fetchall()
        return [
            ApiKey(
                prefix=r["prefix"],
                issuer_id=r["issuer_id"],
                created_at=r["created_at"],
                revoked_at=r["revoked_at"],
            )
            for r in rows
        ]

    def revoke_api_key(self, issuer_id: str, prefix: str) -> None:
        prefix = prefix.removeprefix("sk_").split("_")[0]
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE api_keys SET revoked_at = ?"
                " WHERE issuer_id = ? AND prefix = ? AND revoked_at IS NULL",
                (_now(), issuer_id, prefix),
            )
            if cursor.rowcount != 1:
                raise CatalogError(f"issuer {issuer_id} has no active key {prefix}")

    def remove_image(self, image_id: str) -> ImageRecord | None:
        record = self.image(image_id)
        if record is not None:
            with self._transaction() as db:
                db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        return record

    def originals_in_use(self, sha256: str) -> int:
        (count,) = self._db.execute(
            "SELECT count(*) FROM images WHERE sha256 = ?", (sha256,)
        ).fetchone()
        assert isinstance(count, int)  # noqa: S101 - SQLite's count
        return count


def _new_key(kid: str | None, secret: str | None, algorithm: str) -> IssuerKey:
    """A signing key; a random kid and a strong random secret unless given."""
    return IssuerKey(
        kid=kid or uuid.uuid4().hex[:12],
        secret=secret or generate_secret(),
        algorithm=algorithm,
    )


def _uuid(value: str | None) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CatalogError(f"{value!r} is not a UUID") from None


def _image(row: sqlite3.Row) -> ImageRecord:
    asset = None
    if row["public_id"] is not None and row["delivery_type"] is not None:
        asset = CloudinaryAsset(
            public_id=row["public_id"],
            version=row["version"],
            format=row["format"],
            delivery_type=row["delivery_type"],
        )
    original = None
    if row["sha256"] is not None:
        original = Original(
            sha256=row["sha256"],
            media_type=row["media_type"],
            file_size=row["file_size"],
            width=row["width"],
            height=row["height"],
        )
    return ImageRecord(
        id=row["id"],
        issuer_id=row["issuer_id"],
        cloudinary=asset,
        original=original,
        original_filename=row["original_filename"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
        is_public=bool(row["is_public"]),
        tags=tuple(json.loads(row["tags"])),
        texts=(row["text1"], row["text2"], row["text3"]),
        numbers=(row["number1"], row["number2"], row["number3"]),
        max_unauthorised=row["max_unauthorised"],
        ingest=Ingest(
            state=row["ingest_state"],
            origin=row["origin"],
            error=row["ingest_error"],
            queued_at=row["queued_at"],
            finished_at=row["finished_at"],
        ),
    )


def _key_hash(key: str) -> str:
    # API keys carry 256 random bits: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(key.encode()).hexdigest()


class CachedCatalog:
    """Bounded read-through caches over the catalog, dropped on any change.

    The catalog tells it of every change made through it, at once. Changes made
    by other processes (the CLI, another worker) are noticed by `poll`, which
    callers call at the start of each request: it asks SQLite at most every
    `poll_interval` seconds. Misses are cached too, so a flood of unknown ids
    costs one query per id. The caches are functools' LRU, implemented in C:
    these lookups are on every fresh token's path.
    """

    def __init__(self, catalog: Catalog, *, size: int, poll_interval: float) -> None:
        self.catalog = catalog
        self._poll_interval = poll_interval
        self._next_poll = 0.0
        self._issuers = functools.lru_cache(maxsize=size)(catalog.issuer)
        self._kids = functools.lru_cache(maxsize=size)(catalog.issuer_for_kid)
        self._images = functools.lru_cache(maxsize=size)(catalog.image)
        catalog.subscribe(self._forget)

    def poll(self) -> None:
        """Notice other processes' changes, when `poll_interval` has passed."""
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self._poll_interval
            self.catalog.refresh()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every change to the catalog (see `Catalog.subscribe`)."""
        self.catalog.subscribe(listener)

    def revision(self) -> tuple[int, int]:
        """The catalog's revision, after polling for outside changes when due."""
        self.poll()
        return self.catalog.revision

    def _forget(self) -> None:
        self._issuers.cache_clear()
        self._kids.cache_clear()
        self._images.cache_clear()

    def issuer(self, issuer_id: str, /) -> Issuer | None:
        return self._issuers(issuer_id)

    def issuer_for_kid(self, kid: str, /) -> Issuer | None:
        return self._kids(kid)

    def image(self, image_id: str) -> ImageRecord | None:
        return self._images(image_id)
