"""What both stores make and read alike: times, ids, fresh keys, and image rows
turned into records (a `sqlite3.Row` and an `asyncpg.Record` read the same)."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.catalog.records import (
    ApiKey,
    CatalogError,
    ImageRecord,
    Ingest,
    IngestState,
    Original,
)
from signing import IssuerKey, generate_secret
from transforms.cloudinary import CloudinaryAsset

__all__ = [
    "Row",
    "api_key_record",
    "asset_columns",
    "image_record",
    "key_hash",
    "new_api_key",
    "new_key",
    "now",
    "original_columns",
    "parse_uuid",
    "stored_value",
]


class Row(Protocol):
    """A stored row, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def now() -> str:
    """ISO 8601 in UTC with microseconds: as text, it sorts as time does."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_uuid(value: str | None) -> str:
    """The canonical form of a given UUID, or a new random one."""
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CatalogError(f"{value!r} is not a UUID") from None


def new_key(kid: str | None, secret: str | None, algorithm: str) -> IssuerKey:
    """A signing key; a random kid and a strong random secret unless given."""
    return IssuerKey(
        kid=kid or uuid.uuid4().hex[:12],
        secret=secret or generate_secret(algorithm),
        algorithm=algorithm,
    )


def new_api_key() -> tuple[str, str]:
    """A new API key and its prefix (what is stored beside its hash)."""
    prefix = secrets.token_hex(6)
    return prefix, f"sk_{prefix}_{secrets.token_urlsafe(32)}"


def api_key_prefix(given: str) -> str:
    """The stored prefix of an API key named by its prefix, with or without
    `sk_`, or by the whole key: never more than the prefix is kept or shown."""
    return given.removeprefix("sk_").split("_")[0]


def api_key_label(prefix: str) -> str:
    """An API key as it is shown everywhere: `sk_` and its prefix, never more."""
    return f"sk_{prefix}"


def key_name(column: str, name: str) -> str:
    """A key as messages name it: a signing key by its kid, an API key by
    its label."""
    return api_key_label(name) if column == "prefix" else name


def key_hash(key: str) -> str:
    # API keys carry 256 random bits: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(key.encode()).hexdigest()


def asset_columns(asset: CloudinaryAsset | None) -> tuple[object, ...]:
    if asset is None:
        return (None, None, None, None)
    return (asset.public_id, asset.version, asset.format, asset.delivery_type)


def original_columns(orig: Original | None) -> tuple[object, ...]:
    if orig is None:
        return (None, None, None, None, None)
    return (orig.sha256, orig.media_type, orig.file_size, orig.width, orig.height)


def image_record(row: Row) -> ImageRecord:
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
        # JSON text in both: SQLite's TEXT, and asyncpg hands jsonb over as text.
        tags=tuple(json.loads(row["tags"])),
        texts=(row["text1"], row["text2"], row["text3"]),
        numbers=(row["number1"], row["number2"], row["number3"]),
        max_unauthorised=row["max_unauthorised"],
        roles=frozenset(json.loads(row["roles"])),
        ingest=Ingest(
            state=IngestState(row["ingest_state"]),
            origin=row["origin"],
            error=row["ingest_error"],
            queued_at=row["queued_at"],
            finished_at=row["finished_at"],
        ),
    )


def api_key_record(row: Row) -> ApiKey:
    return ApiKey(
        prefix=row["prefix"],
        issuer_id=row["issuer_id"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        # JSON text in both, as `tags`.
        roles=frozenset(json.loads(row["roles"])),
    )


def stored_value(name: str, value: object) -> object:
    """An edited field as both stores keep it: lists and sets of names as JSON."""
    if name in ("tags", "roles") and isinstance(value, list | tuple | frozenset | set):
        return json.dumps(sorted(value) if name == "roles" else list(value))
    return value
