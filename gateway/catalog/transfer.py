"""Copy a SQLite catalog into PostgreSQL: moving up from one machine to many.

Row for row, every column as stored (ids, times, secrets, key hashes), table
by table in the order their references need. Each batch is an upsert in a
transaction of its own, so the copy is

- idempotent: a row already there and equal is left alone, one that differs
  (a key revoked since) is brought up to date;
- resumable: an interrupted copy keeps the batches it committed, and running
  it again finishes it;
- verified: afterwards each table's rows are counted and hashed on both
  sides, in key order, from their values (so SQLite's 0/1 and PostgreSQL's
  booleans, or JSON text and jsonb, compare as the values they are).

The source is read in one snapshot. Rows the target has and the source does
not are never deleted: the verification names the table instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from gateway.catalog.postgres import upgrade as postgres_upgrade
from gateway.catalog.postgres.catalog import reaching, redacted
from gateway.catalog.postgres.schema import CHANNEL
from gateway.catalog.records import CatalogError
from gateway.catalog.sqlite import SqliteCatalog

__all__ = ["TableCopy", "copy_catalog"]

# In the order references need; each with its primary key.
_TABLES: Final = (
    ("issuers", ("id",)),
    ("issuer_keys", ("issuer_id", "kid")),
    ("api_keys", ("prefix",)),
    ("images", ("id",)),
)
_BATCH: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class TableCopy:
    table: str
    rows: int  # in the source (and, verified, in the target)
    written: int  # inserted or brought up to date by this run
    sha256: str  # of the rows, as both sides hash them


async def copy_catalog(
    source: Path,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - the driver's own timeouts
) -> list[TableCopy]:
    """Copy the SQLite catalog at `source` into the PostgreSQL database at `url`.

    Both schemas are brought up to date first (as every start does).
    `CatalogError` when the copy cannot be verified.
    """
    if not await asyncio.to_thread(source.exists):
        raise CatalogError(f"no catalog at {source} to copy")
    store = await SqliteCatalog.open(source)  # checked and migrated
    await store.close()
    await postgres_upgrade(url, timeout=timeout)
    tables = await asyncio.to_thread(_read_sqlite, source)
    with reaching(url):
        conn = await asyncpg.connect(url, timeout=timeout, command_timeout=timeout)
    try:
        copies = await _copy(conn, tables)
        await _announce(conn)
    except asyncpg.PostgresError as exc:
        raise CatalogError(f"copying into {redacted(url)}: {exc}") from None
    finally:
        await conn.close()
    return copies


async def _copy(
    conn: asyncpg.Connection[asyncpg.Record],
    tables: list[tuple[list[str], list[tuple[object, ...]]]],
) -> list[TableCopy]:
    copies = []
    for (table, key), (columns, rows) in zip(_TABLES, tables, strict=True):
        kinds = await _column_kinds(conn, table)
        missing = [c for c in columns if c not in kinds]
        if missing:
            raise CatalogError(
                f"{table}: the PostgreSQL schema lacks {', '.join(missing)}"
            )
        written = 0
        for batch in _batches(rows):
            written += await _upsert(conn, table, key, columns, kinds, batch)
        source_hash = _digest(columns, rows, kinds)
        target_rows = await conn.fetch(
            f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 - our own names
            f" ORDER BY {', '.join(key)}"
        )
        target_hash = _digest(columns, [tuple(r) for r in target_rows], kinds)
        if len(target_rows) != len(rows) or target_hash != source_hash:
            raise CatalogError(
                f"{table}: {len(rows)} rows in the source, {len(target_rows)} "
                "in the target, which differ: the target holds rows the source "
                "has not (another catalog's?); copy into an empty database"
            )
        copies.append(
            TableCopy(table=table, rows=len(rows), written=written, sha256=source_hash)
        )
    return copies


def _read_sqlite(path: Path) -> list[tuple[list[str], list[tuple[object, ...]]]]:
    """Every table's columns and rows, in key order, from one read snapshot.

    `issuer_keys` gains `seq` (its rowid): PostgreSQL's insertion order.
    """
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        db.execute("BEGIN")
        found = []
        for table, key in _TABLES:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            if table == "issuer_keys":
                columns.append("seq")
            selected = ", ".join("rowid" if c == "seq" else c for c in columns)
            rows = db.execute(
                f"SELECT {selected} FROM {table} ORDER BY {', '.join(key)}"  # noqa: S608 - our own names
            ).fetchall()
            found.append((columns, rows))
        db.execute("COMMIT")
    finally:
        db.close()
    return found


async def _column_kinds(
    conn: asyncpg.Connection[asyncpg.Record], table: str
) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    return {row["column_name"]: row["data_type"] for row in rows}


def _batches(
    rows: Sequence[tuple[object, ...]],
) -> Iterator[Sequence[tuple[object, ...]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


def _value(value: object, kind: str) -> object:
    """A SQLite value as PostgreSQL's column wants it."""
    if value is None:
        return None
    if kind == "boolean":
        return bool(value)
    if kind == "jsonb" and not isinstance(value, str):
        return json.dumps(value)
    return value


async def _upsert(
    conn: asyncpg.Connection[asyncpg.Record],
    table: str,
    key: Sequence[str],
    columns: Sequence[str],
    kinds: dict[str, str],
    rows: Sequence[tuple[object, ...]],
) -> int:
    """Insert or bring up to date one batch, in one transaction; rows written."""
    # `seq`, an identity column, keeps the order the target first saw.
    others = [c for c in columns if c not in key and c != "seq"]
    names = ", ".join(columns)
    params = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    # `seq` is an identity column: its values are SQLite's rowids.
    overriding = " OVERRIDING SYSTEM VALUE" if "seq" in columns else ""
    statement = (
        f"INSERT INTO {table} ({names}){overriding} VALUES ({params})"  # noqa: S608 - our own names
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
        + f" WHERE ({', '.join(f'{table}.{c}' for c in others)})"
        f" IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in others)})"
        " RETURNING 1"
    )
    written = 0
    async with conn.transaction():
        for row in rows:
            values = [_value(v, kinds[c]) for c, v in zip(columns, row, strict=True)]
            if await conn.fetchval(statement, *values) is not None:
                written += 1
        if "seq" in columns:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'),"  # noqa: S608 - our own names
                f" GREATEST((SELECT max(seq) FROM {table}), 1))"
            )
    return written


def _digest(
    columns: Sequence[str], rows: Sequence[tuple[object, ...]], kinds: dict[str, str]
) -> str:
    """SHA-256 over the rows' values, normalised to what they mean."""
    digest = hashlib.sha256()
    for row in rows:
        values = []
        for column, value in zip(columns, row, strict=True):
            kind = kinds[column]
            if value is not None and kind == "boolean":
                value = bool(value)
            elif isinstance(value, str) and kind == "jsonb":
                value = json.loads(value)
            values.append(value)
        digest.update(json.dumps(values, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def _announce(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Tell replicas already running on the target that everything changed."""
    async with conn.transaction():
        version = await conn.fetchval(
            "UPDATE gateway_catalog SET data_version = data_version + 1"
            " RETURNING data_version"
        )
        await conn.execute(
            "SELECT pg_notify($1, $2)", CHANNEL, f"{version} everything migrate"
        )
