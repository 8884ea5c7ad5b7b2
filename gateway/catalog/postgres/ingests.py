"""Origin ingests' leases in PostgreSQL: who runs which ingest, and until when.

The SQLite module's twin; here replicas on several machines claim the same
queue, so a claim locks the rows it takes (`FOR UPDATE SKIP LOCKED`): two
replicas asking at once each get different ingests, neither waits.
"""

from __future__ import annotations

from gateway.catalog.postgres.schema import Conn
from gateway.catalog.records import IngestState
from gateway.catalog.rows import now

__all__ = [
    "claim_abandoned_ingests",
    "claim_ingest",
    "ingest_counts",
    "originals",
    "release_ingest",
    "renew_ingests",
]


async def claim_ingest(db: Conn, image_id: str, owner: str, until: str) -> bool:
    status = await db.execute(
        "UPDATE images SET ingest_owner = $1, ingest_lease_until = $2"
        " WHERE id = $3 AND ingest_state = $4 AND (ingest_owner IS NULL"
        " OR ingest_owner = $1 OR ingest_lease_until IS NULL"
        " OR ingest_lease_until < $5)",
        owner,
        until,
        image_id,
        IngestState.QUEUED,
        now(),
    )
    return status == "UPDATE 1"


async def claim_abandoned_ingests(
    db: Conn, owner: str, until: str, limit: int
) -> list[tuple[str, str]]:
    """Queued ingests with no live lease, now this owner's: (image id, origin)."""
    rows = await db.fetch(
        "UPDATE images SET ingest_owner = $1, ingest_lease_until = $2"
        " WHERE id IN (SELECT id FROM images WHERE ingest_state = $3"
        " AND origin IS NOT NULL"
        " AND (ingest_lease_until IS NULL OR ingest_lease_until < $4)"
        " ORDER BY queued_at LIMIT $5 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, origin, queued_at",
        owner,
        until,
        IngestState.QUEUED,
        now(),
        limit,
    )
    rows = sorted(rows, key=lambda row: row["queued_at"] or "")
    return [(row["id"], row["origin"]) for row in rows]


async def renew_ingests(db: Conn, owner: str, until: str) -> None:
    await db.execute(
        "UPDATE images SET ingest_lease_until = $1"
        " WHERE ingest_owner = $2 AND ingest_state = $3",
        until,
        owner,
        IngestState.QUEUED,
    )


async def release_ingest(db: Conn, image_id: str, owner: str, note: str) -> None:
    """Give an unfinished ingest back (queued, to be resumed), saying why.

    The note is part of the image's state as shown (`ingest.error`), so this
    is a change: `updated_at` moves, and a write decided before it fails.
    """
    await db.execute(
        "UPDATE images SET ingest_owner = NULL, ingest_lease_until = NULL,"
        " ingest_error = $1, updated_at = $2"
        " WHERE id = $3 AND ingest_owner = $4 AND ingest_state = $5",
        note,
        now(),
        image_id,
        owner,
        IngestState.QUEUED,
    )


async def originals(db: Conn) -> set[str]:
    """The SHA-256 of every original some image refers to."""
    rows = await db.fetch("SELECT DISTINCT sha256 FROM images WHERE sha256 IS NOT NULL")
    return {row[0] for row in rows}


async def ingest_counts(db: Conn) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT ingest_state, count(*) FROM images GROUP BY ingest_state"
    )
    return {str(state): int(count) for state, count in rows}
