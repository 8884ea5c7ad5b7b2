"""The SQLite catalog's plumbing: connections, versioned migrations, transactions."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Final

from gateway.catalog.records import CatalogError
from gateway.catalog.rows import now, parse_uuid

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "check",
    "connect",
    "create",
    "data_version",
    "migrate",
    "now",
    "parse_uuid",
    "snapshot",
    "transaction",
    "version",
]

_BUSY_TIMEOUT_MS: Final = 5000


def migrations() -> list[tuple[int, str]]:
    """The versioned schema scripts shipped in `migrations/`, in order."""
    folder = resources.files("gateway.catalog") / "migrations"
    scripts = sorted(
        (int(entry.name.split("_", 1)[0]), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    if [number for number, _ in scripts] != list(range(1, len(scripts) + 1)):
        raise RuntimeError("catalog migrations must be numbered 1, 2, 3, … with no gap")
    return scripts


MIGRATIONS: Final = migrations()


# "IGWC": set by migration 4, so that a file of another program is told apart.
APPLICATION_ID: Final = 0x49475743


def create(path: Path) -> None:
    """A new, empty catalog file, private to the gateway's user (it holds secrets).

    Only where no file exists: an existing file, even an empty one, is never
    taken for a new catalog, which would silently lose every issuer and image.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS:d}")
    return db


def check(path: Path) -> None:
    """Refuse, naming the file, what is not an intact catalog of ours.

    Read-only, before any connection of ours touches the file (switching to
    WAL rewrites its header): what is refused is left exactly as found.
    """
    if path.stat().st_size == 0:
        raise CatalogError(
            f"{path} is empty, not a catalog: restore it from a backup, or remove "
            "it to start a new, empty catalog"
        )
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (result,) = db.execute("PRAGMA quick_check").fetchone()
        if result != "ok":
            raise CatalogError(f"{path} is damaged (SQLite's quick_check: {result})")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        (application,) = db.execute("PRAGMA application_id").fetchone()
        (tables,) = db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        db.close()
    # Versions 1-3 predate the application id.
    ours = application == APPLICATION_ID or (application == 0 and 0 < version < 4)
    if (version == 0 and tables) or (version and not ours):
        raise CatalogError(f"{path} is a database of another program, not a catalog")


def version(path: Path) -> int:
    """The schema version of the catalog file at `path` (0: none yet)."""
    if not path.exists():
        return 0
    check(path)
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (value,) = db.execute("PRAGMA user_version").fetchone()
    finally:
        db.close()
    assert isinstance(value, int)  # noqa: S101 - SQLite's documented type
    return value


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to date, one version per transaction."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise CatalogError(
            f"the catalog's schema version {version} is newer than this "
            f"release knows ({len(MIGRATIONS)}); upgrade the gateway"
        )
    for number, script in MIGRATIONS[version:]:
        with transaction(db):
            # Read again under the write lock: another process (a worker, the
            # CLI) opening the same file at once may have applied it already.
            (current,) = db.execute("PRAGMA user_version").fetchone()
            if current >= number:
                continue
            for statement in _statements(script):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number:d}")


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.startswith("--")]
    return [s for s in "\n".join(lines).split(";") if s.strip()]


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front: no deadlock between two writers
    # that both started by reading.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: its statements all see one state of the file (WAL)."""
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")


def data_version(db: sqlite3.Connection) -> int:
    """Changes whenever another connection (any process) committed a change."""
    (value,) = db.execute("PRAGMA data_version").fetchone()
    assert isinstance(value, int)  # noqa: S101 - SQLite's documented type
    return value
