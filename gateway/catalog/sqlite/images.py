"""Image records in SQLite: insert, look up, page through, edit, ingest, remove."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

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
    original_columns,
    stored_value,
)
from gateway.catalog.sqlite import schema
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
_JSON_COLUMNS: Final = frozenset({"tags", "roles"})


def add_image(
    db: sqlite3.Connection,
    issuer_id: str,
    image_id: str | None,
    asset: CloudinaryAsset | None,
    orig: Original | None,
    original_filename: str | None,
    origin: str | None,
) -> ImageRecord:
    if asset is None and orig is None and origin is None:
        raise CatalogError("an image needs a Cloudinary asset or a local original")
    image_id = schema.parse_uuid(image_id)
    now = schema.now()
    queued = asset is None and orig is None
    try:
        with schema.transaction(db):
            db.execute(
                "INSERT INTO images (id, issuer_id, public_id, version, format,"
                " delivery_type, sha256, media_type, file_size, width, height,"
                " original_filename, created_at, updated_at, origin,"
                " ingest_state, queued_at, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    image_id,
                    issuer_id,
                    *asset_columns(asset),
                    *original_columns(orig),
                    original_filename,
                    now,
                    now,
                    origin,
                    IngestState.QUEUED if queued else IngestState.FINISHED,
                    now if origin else None,
                    None if queued else now,
                ),
            )
    except sqlite3.IntegrityError as exc:
        raise CatalogError(
            f"image {image_id} exists already or issuer {issuer_id} is unknown"
        ) from exc
    record = image(db, image_id)
    assert record is not None  # noqa: S101 - just written
    return record


def image(db: sqlite3.Connection, image_id: str) -> ImageRecord | None:
    row = db.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
    return None if row is None else image_record(row)


def images(db: sqlite3.Connection, issuer_id: str) -> list[ImageRecord]:
    rows = db.execute(
        "SELECT * FROM images WHERE issuer_id = ? ORDER BY created_at, id",
        (issuer_id,),
    ).fetchall()
    return [image_record(r) for r in rows]


def page(
    db: sqlite3.Connection,
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
    key = _SORT_COLUMNS[sort]
    where: list[str] = ["issuer_id = ?"]
    args: list[object] = [issuer_id]
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        where.append(
            "(original_filename LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')"
        )
        args += [pattern, pattern]
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(images.tags) WHERE value = ?)")
        args.append(tag)
    if ids is not None:
        where.append(f"id IN ({', '.join('?' * len(ids))})")
        args += list(ids)
    conditions = " AND ".join(where)  # fixed fragments; values are parameters
    (total,) = db.execute(
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
    rows = db.execute(
        f"SELECT * FROM images WHERE {' AND '.join(where)}"  # noqa: S608 - fixed fragments
        f" ORDER BY {key} {order}, id {order} LIMIT ?",
        [*args, size + 1],
    ).fetchall()
    found = [image_record(r) for r in rows[:size]]
    if backwards:
        found.reverse()
    return Page(images=tuple(found), total=total, has_more=len(rows) > size)


def update_image(
    db: sqlite3.Connection,
    image_id: str,
    changes: Mapping[str, object],
    unchanged_since: str | None = None,
) -> ImageRecord:
    columns = [_EDITABLE_COLUMNS[name] for name in changes]
    values = [stored_value(name, v) for name, v in changes.items()]
    with schema.transaction(db):
        _check_unchanged(db, image_id, unchanged_since)
        assignments = ", ".join(f"{c} = ?" for c in [*columns, "updated_at"])
        db.execute(
            f"UPDATE images SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
            [*values, schema.now(), image_id],
        )
    record = image(db, image_id)
    if record is None:
        raise CatalogError(f"no image {image_id}")
    return record


def _check_unchanged(
    db: sqlite3.Connection, image_id: str, unchanged_since: str | None
) -> None:
    """In the write's transaction: no other write comes between."""
    if unchanged_since is None:
        return
    row = db.execute(
        "SELECT updated_at FROM images WHERE id = ?", (image_id,)
    ).fetchone()
    if row is not None and row["updated_at"] != unchanged_since:
        raise ImageChangedError(f"image {image_id} changed since {unchanged_since}")


def finish_ingest(
    db: sqlite3.Connection,
    image_id: str,
    original: Original | None,
    asset: CloudinaryAsset | None,
    filename: str | None,
    error: str | None,
) -> None:
    now = schema.now()
    with schema.transaction(db):
        if error is not None:
            db.execute(
                "UPDATE images SET ingest_state = ?, ingest_error = ?,"
                " ingest_owner = NULL, ingest_lease_until = NULL,"
                " finished_at = ?, updated_at = ? WHERE id = ?",
                (IngestState.ERROR, error, now, now, image_id),
            )
            return
        if original is None:
            raise CatalogError("a finished ingest needs its original")
        db.execute(
            "UPDATE images SET ingest_state = ?, ingest_error = NULL,"
            " ingest_owner = NULL, ingest_lease_until = NULL, public_id = ?, version = ?, format = ?, delivery_type = ?,"
            " sha256 = ?, media_type = ?, file_size = ?, width = ?, height = ?,"
            " original_filename = ?, finished_at = ?, updated_at = ? WHERE id = ?",
            (
                IngestState.FINISHED,
                *asset_columns(asset),
                *original_columns(original),
                filename,
                now,
                now,
                image_id,
            ),
        )


def remove_image(
    db: sqlite3.Connection, image_id: str, unchanged_since: str | None = None
) -> ImageRecord | None:
    with schema.transaction(db):
        _check_unchanged(db, image_id, unchanged_since)
        record = image(db, image_id)
        if record is not None:
            db.execute("DELETE FROM images WHERE id = ?", (image_id,))
    return record


def originals_in_use(db: sqlite3.Connection, sha256: str) -> int:
    (count,) = db.execute(
        "SELECT count(*) FROM images WHERE sha256 = ?", (sha256,)
    ).fetchone()
    assert isinstance(count, int)  # noqa: S101 - SQLite's count
    return count
