"""Origin ingests' leases in SQLite: who runs which ingest, and until when.

A process owns an ingest while its lease runs and renews its leases while it
lives; an ingest whose lease ran out (its owner was killed) is claimed by
the next process that asks, and resumed.
"""

from __future__ import annotations

import sqlite3

from gateway.catalog.records import IngestState
from gateway.catalog.sqlite import schema

__all__ = [
    "claim_abandoned_ingests",
    "claim_ingest",
    "ingest_counts",
    "originals",
    "release_ingest",
    "renew_ingests",
]


def claim_ingest(db: sqlite3.Connection, image_id: str, owner: str, until: str) -> bool:
    with schema.transaction(db):
        cursor = db.execute(
            "UPDATE images SET ingest_owner = ?, ingest_lease_until = ?"
            " WHERE id = ? AND ingest_state = ? AND (ingest_owner IS NULL"
            " OR ingest_owner = ? OR ingest_lease_until IS NULL"
            " OR ingest_lease_until < ?)",
            (owner, until, image_id, IngestState.QUEUED, owner, schema.now()),
        )
        return cursor.rowcount == 1


def claim_abandoned_ingests(
    db: sqlite3.Connection, owner: str, until: str, limit: int
) -> list[tuple[str, str]]:
    """Queued ingests with no live lease, now this owner's: (image id, origin)."""
    with schema.transaction(db):
        rows = db.execute(
            "SELECT id, origin FROM images WHERE ingest_state = ?"
            " AND origin IS NOT NULL"
            " AND (ingest_lease_until IS NULL OR ingest_lease_until < ?)"
            " ORDER BY queued_at LIMIT ?",
            (IngestState.QUEUED, schema.now(), limit),
        ).fetchall()
        db.executemany(
            "UPDATE images SET ingest_owner = ?, ingest_lease_until = ? WHERE id = ?",
            [(owner, until, row["id"]) for row in rows],
        )
    return [(row["id"], row["origin"]) for row in rows]


def renew_ingests(db: sqlite3.Connection, owner: str, until: str) -> None:
    with schema.transaction(db):
        db.execute(
            "UPDATE images SET ingest_lease_until = ?"
            " WHERE ingest_owner = ? AND ingest_state = ?",
            (until, owner, IngestState.QUEUED),
        )


def release_ingest(
    db: sqlite3.Connection, image_id: str, owner: str, note: str
) -> None:
    """Give an unfinished ingest back (queued, to be resumed), saying why.

    The note is part of the image's state as shown (`ingest.error`), so this
    is a change: `updated_at` moves, and a write decided before it fails.
    """
    with schema.transaction(db):
        db.execute(
            "UPDATE images SET ingest_owner = NULL, ingest_lease_until = NULL,"
            " ingest_error = ?, updated_at = ?"
            " WHERE id = ? AND ingest_owner = ? AND ingest_state = ?",
            (note, schema.now(), image_id, owner, IngestState.QUEUED),
        )


def originals(db: sqlite3.Connection) -> set[str]:
    """The SHA-256 of every original some image refers to."""
    rows = db.execute(
        "SELECT DISTINCT sha256 FROM images WHERE sha256 IS NOT NULL"
    ).fetchall()
    return {row[0] for row in rows}


def ingest_counts(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute(
        "SELECT ingest_state, count(*) FROM images GROUP BY ingest_state"
    ).fetchall()
    return {str(state): int(count) for state, count in rows}
