"""Image records in PostgreSQL: the SQLite module's twin, statement for statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import asyncpg

from gateway.catalog.postgres.schema import Conn
from gateway.catalog.records import (
    EDITABLE,
    CatalogError,
    Cursor,
    ImageChangedError,
    ImageRecord,
    IngestState,
    Original,
    Page,
    SortKey,
)
from gateway.catalog.rows import (
    asset_columns,
    image_record,
    now,
    original_columns,
    parse_uuid,
    stored_value,
)
from transforms.cloudinary import CloudinaryAsset

__all__ = [
    "add_image",
    "finish_ingest",
    "image",
    "images",
    "originals_in_use",
    "page",
    "remove_image",
    "update_image",
]

_SORT_COLUMNS: Final[Mapping[SortKey, str]] = {
    SortKey.CREATED_AT: "created_at",
    SortKey.UPDATED_AT: "updated_at",
    SortKey.FILE_SIZE: "COALESCE(file_size, 0)",
}
_EDITABLE_COLUMNS: Final[Mapping[str, str]] = {name: name for name in EDITABLE}


async def add_image(
    db: Conn,
    issuer_id: str,
    image_id: str | None,
    asset: CloudinaryAsset | None,
    orig: Original | None,
    original_filename: str | None,
    origin: str | None,
) -> ImageRecord:
    if asset is None and orig is None and origin is None:
        raise CatalogError("an image needs a Cloudinary asset or a local original")
    image_id = parse_uuid(image_id)
    stamp = now()
    queued = asset is None and orig is None
    try:
        row = await db.fetchrow(
            "INSERT INTO images (id, issuer_id, public_id, version, format,"
            " delivery_type, sha256, media_type, file_size, width, height,"
            " original_filename, created_at, updated_at, origin,"
            " ingest_state, queued_at, finished_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
            " $15, $16, $17, $18) RETURNING *",
            image_id,
            issuer_id,
            *asset_columns(asset),
            *original_columns(orig),
            original_filename,
            stamp,
            stamp,
            origin,
            IngestState.QUEUED if queued else IngestState.FINISHED,
            stamp if origin else None,
            None if queued else stamp,
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise CatalogError(
            f"image {image_id} exists already or issuer {issuer_id} is unknown"
        ) from exc
    assert row is not None  # noqa: S101 - RETURNING gives the row
    return image_record(row)


async def image(db: Conn, image_id: str) -> ImageRecord | None:
    row = await db.fetchrow("SELECT * FROM images WHERE id = $1", image_id)
    return None if row is None else image_record(row)


async def images(db: Conn, issuer_id: str) -> list[ImageRecord]:
    rows = await db.fetch(
        "SELECT * FROM images WHERE issuer_id = $1 ORDER BY created_at, id", issuer_id
    )
    return [image_record(r) for r in rows]


async def page(
    db: Conn,
    issuer_id: str,
    sort: SortKey,
    descending: bool,
    size: int,
    after: Cursor | None,
    before: Cursor | None,
    search: str | None,
    tag: str | None,
    ids: Sequence[str] | None,
) -> Page:
    """One page, by keyset (the caller gives one snapshot for both queries)."""
    key = _SORT_COLUMNS[sort]
    args: list[object] = [issuer_id]

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = ["issuer_id = $1"]
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = param(f"%{escaped}%")
        # ILIKE: SQLite's LIKE ignores case too.
        where.append(
            f"(original_filename ILIKE {pattern} ESCAPE '\\'"
            f" OR description ILIKE {pattern} ESCAPE '\\')"
        )
    if tag:
        where.append(f"tags ? {param(tag)}")
    if ids is not None:
        where.append(f"id = ANY({param(list(ids))}::text[])")
    conditions = " AND ".join(where)  # fixed fragments; values are parameters
    total = await db.fetchval(
        f"SELECT count(*) FROM images WHERE {conditions}",  # noqa: S608
        *args,
    )
    backwards = before is not None
    forward_desc = descending != backwards
    cursor = before if backwards else after
    if cursor is not None:
        value, last_id = cursor
        below = "<" if forward_desc else ">"
        numeric = sort is SortKey.FILE_SIZE
        if isinstance(value, str) == numeric:
            # A cursor of another sort (a client may send any): SQLite orders
            # every number before every text, so the type alone decides.
            where.append("TRUE" if isinstance(value, str) == forward_desc else "FALSE")
        else:
            typed = f"{param(value)}::bigint" if numeric else f"{param(value)}::text"
            where.append(f"({key}, id) {below} ({typed}, {param(last_id)}::text)")
    order = "DESC" if forward_desc else "ASC"
    rows = await db.fetch(
        f"SELECT * FROM images WHERE {' AND '.join(where)}"  # noqa: S608 - fixed fragments
        f" ORDER BY {key} {order}, id {order} LIMIT {param(size + 1)}",
        *args,
    )
    found = [image_record(r) for r in rows[:size]]
    if backwards:
        found.reverse()
    return Page(images=tuple(found), total=total, has_more=len(rows) > size)


async def update_image(
    db: Conn,
    image_id: str,
    changes: Mapping[str, object],
    unchanged_since: str | None = None,
) -> ImageRecord:
    await _check_unchanged(db, image_id, unchanged_since)
    columns = [_EDITABLE_COLUMNS[name] for name in changes]
    values = [stored_value(name, v) for name, v in changes.items()]
    assignments = ", ".join(
        f"{c} = ${n}" for n, c in enumerate([*columns, "updated_at"], start=2)
    )
    row = await db.fetchrow(
        f"UPDATE images SET {assignments} WHERE id = $1 RETURNING *",  # noqa: S608 - fixed names
        image_id,
        *values,
        now(),
    )
    if row is None:
        raise CatalogError(f"no image {image_id}")
    return image_record(row)


async def finish_ingest(
    db: Conn,
    image_id: str,
    original: Original | None,
    asset: CloudinaryAsset | None,
    filename: str | None,
    error: str | None,
) -> None:
    stamp = now()
    if error is not None:
        await db.execute(
            "UPDATE images SET ingest_state = $1, ingest_error = $2,"
            " ingest_owner = NULL, ingest_lease_until = NULL,"
            " finished_at = $3, updated_at = $3 WHERE id = $4",
            IngestState.ERROR,
            error,
            stamp,
            image_id,
        )
        return
    if original is None:
        raise CatalogError("a finished ingest needs its original")
    await db.execute(
        "UPDATE images SET ingest_state = $1, ingest_error = NULL,"
        " ingest_owner = NULL, ingest_lease_until = NULL, public_id = $2,"
        " version = $3, format = $4, delivery_type = $5, sha256 = $6,"
        " media_type = $7, file_size = $8, width = $9, height = $10,"
        " original_filename = $11, finished_at = $12, updated_at = $12"
        " WHERE id = $13",
        IngestState.FINISHED,
        *asset_columns(asset),
        *original_columns(original),
        filename,
        stamp,
        image_id,
    )


async def remove_image(
    db: Conn, image_id: str, unchanged_since: str | None = None
) -> ImageRecord | None:
    await _check_unchanged(db, image_id, unchanged_since)
    row = await db.fetchrow("DELETE FROM images WHERE id = $1 RETURNING *", image_id)
    return None if row is None else image_record(row)


async def _check_unchanged(
    db: Conn, image_id: str, unchanged_since: str | None
) -> None:
    """In the write's transaction, the row locked: no other write comes
    between the check and the write."""
    if unchanged_since is None:
        return
    updated_at = await db.fetchval(
        "SELECT updated_at FROM images WHERE id = $1 FOR UPDATE", image_id
    )
    if updated_at is not None and updated_at != unchanged_since:
        raise ImageChangedError(f"image {image_id} changed since {unchanged_since}")


async def originals_in_use(db: Conn, sha256: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM images WHERE sha256 = $1", sha256
    )
    return count
