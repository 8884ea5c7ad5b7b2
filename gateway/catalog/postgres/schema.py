"""The PostgreSQL catalog's plumbing: versioned migrations under an advisory lock,
the change counter, and which driver errors mean "the database is unreachable".

`gateway_catalog`, one row, plays the part of SQLite's pragmas: `schema_version`
(`user_version`) and `data_version`, bumped in the same transaction as every
write any replica makes, so that a replica that missed a notification still
tells, by one cheap query, that something changed.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from gateway.catalog.records import CatalogError

__all__ = [
    "CHANNEL",
    "LOCK",
    "MIGRATIONS",
    "UNAVAILABLE",
    "Conn",
    "migrate",
    "schema_version",
]

Conn: TypeAlias = (
    "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
)

# The advisory lock migrations take ("IGWC", SQLite's application id), so that
# replicas starting at once apply each version exactly once.
LOCK: Final = 0x49475743
# Where every write announces itself (NOTIFY) to the other replicas.
CHANNEL: Final = "gateway_catalog"

# Errors that say the server cannot be reached now (down, restarting, our
# backend terminated, the network, a timeout), as opposed to a refused query.
UNAVAILABLE: Final = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def _migrations() -> list[tuple[int, str]]:
    """The versioned scripts in `migrations/`: one for each of SQLite's, by number."""
    folder = resources.files("gateway.catalog.postgres") / "migrations"
    scripts = sorted(
        (int(entry.name.split("_", 1)[0]), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    if [number for number, _ in scripts] != list(range(1, len(scripts) + 1)):
        raise RuntimeError("catalog migrations must be numbered 1, 2, 3, … with no gap")
    return scripts


MIGRATIONS: Final = _migrations()

_BOOTSTRAP: Final = """
CREATE TABLE gateway_catalog (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    schema_version INTEGER NOT NULL,
    data_version BIGINT NOT NULL
);
INSERT INTO gateway_catalog (schema_version, data_version) VALUES (0, 0);
"""


async def schema_version(conn: Conn) -> int | None:
    """The schema's version, or None where no catalog was ever created."""
    if not await conn.fetchval("SELECT to_regclass('gateway_catalog') IS NOT NULL"):
        return None
    version: int = await conn.fetchval("SELECT schema_version FROM gateway_catalog")
    return version


async def migrate(conn: Conn) -> int:
    """Bring the schema up to date; how many versions were applied.

    All in one transaction (PostgreSQL's DDL is transactional: a failed
    upgrade leaves the previous schema intact), under a transaction-scoped
    advisory lock: a second replica starting at once waits, then reads the
    version again and finds nothing left to do.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK)
        current = await schema_version(conn)
        if current is None:
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            )
            if tables:
                raise CatalogError(
                    "the database holds another program's tables, not a catalog"
                )
            await conn.execute(_BOOTSTRAP)
            current = 0
        if current > len(MIGRATIONS):
            raise CatalogError(
                f"the catalog's schema version {current} is newer than this "
                f"release knows ({len(MIGRATIONS)}); upgrade the gateway"
            )
        for _, script in MIGRATIONS[current:]:
            await conn.execute(script)
        await conn.execute(
            "UPDATE gateway_catalog SET schema_version = $1", len(MIGRATIONS)
        )
    return len(MIGRATIONS) - current
