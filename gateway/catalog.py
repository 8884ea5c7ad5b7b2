"""The catalog of issuers, their keys and their images, in SQLite.

Queries run on the calling thread: they are indexed point lookups on a local
file (microseconds), cheaper than a hop to a thread pool, and the hot path
reads through `CachedCatalog` anyway.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar, cast

from cachetools import LRUCache

from signing import Issuer, IssuerKey, IssuerPolicy, generate_secret
from transforms import CloudinaryAsset

__all__ = ["CachedCatalog", "Catalog", "CatalogError", "ImageRecord", "Original"]

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
)


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
class ImageRecord:
    id: str
    issuer_id: str
    cloudinary: CloudinaryAsset | None
    original: Original | None
    original_filename: str | None
    created_at: str
    updated_at: str


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
        self._data_version = self._read_data_version()

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
        key = IssuerKey(
            kid=kid or uuid.uuid4().hex[:12],
            secret=secret or generate_secret(),
            algorithm=algorithm,
        )
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
        key = IssuerKey(
            kid=kid or uuid.uuid4().hex[:12],
            secret=secret or generate_secret(),
            algorithm=algorithm,
        )
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
    ) -> ImageRecord:
        if cloudinary is None and original is None:
            raise CatalogError("an image needs a Cloudinary asset or a local original")
        image_id = _uuid(image_id)
        now = _now()
        asset, orig = cloudinary, original
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO images (id, issuer_id, public_id, version, format,"
                    " delivery_type, sha256, media_type, file_size, width, height,"
                    " original_filename, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


def _uuid(value: str | None) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CatalogError(f"{value!r} is not a UUID") from None


def _image(row: sqlite3.Row) -> ImageRecord:
    asset = None
    if row["public_id"] is not None:
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
    )


_MISSING: Final = object()


class CachedCatalog:
    """Bounded read-through caches over the catalog, dropped on any change.

    Callers call `revision()` once at the start of each request: it notices
    changes (made in this process at once; by other processes, such as the CLI,
    within `poll_interval` seconds) and drops the caches. Misses are cached too,
    so a flood of unknown ids costs one query per id.
    """

    def __init__(self, catalog: Catalog, *, size: int, poll_interval: float) -> None:
        self.catalog = catalog
        self._poll_interval = poll_interval
        self._next_poll = 0.0
        self._revision = catalog.revision
        self._issuers: LRUCache[str, Issuer | None] = LRUCache(maxsize=size)
        self._images: LRUCache[str, ImageRecord | None] = LRUCache(maxsize=size)

    def revision(self) -> tuple[int, int]:
        """The catalog's revision, after polling for outside changes when due."""
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self._poll_interval
            self.catalog.refresh()
        revision = self.catalog.revision
        if revision != self._revision:
            self._revision = revision
            self._issuers.clear()
            self._images.clear()
        return revision

    def issuer(self, issuer_id: str, /) -> Issuer | None:
        return _read_through(self._issuers, issuer_id, self.catalog.issuer)

    def image(self, image_id: str) -> ImageRecord | None:
        return _read_through(self._images, image_id, self.catalog.image)


_V = TypeVar("_V")


def _read_through(
    cache: LRUCache[str, _V | None], key: str, load: Callable[[str], _V | None]
) -> _V | None:
    found = cache.get(key, _MISSING)
    if found is _MISSING:
        found = cache[key] = load(key)
    return cast(_V | None, found)
