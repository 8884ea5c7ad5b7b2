"""What the catalog stores, in storage's own words (never the HTTP API's)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeAlias

from transforms.cloudinary import CloudinaryAsset

__all__ = [
    "EDITABLE",
    "ApiKey",
    "CatalogError",
    "Cursor",
    "ImageRecord",
    "Ingest",
    "IngestState",
    "Original",
    "Page",
    "SortKey",
]


class CatalogError(Exception):
    """A catalog write was refused (duplicate id, unknown issuer, bad value)."""


class ImageChangedError(CatalogError):
    """A conditional write found the image changed since the state it was
    decided on (`unchanged_since`, its `updated_at`): nothing was written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Original:
    """A locally stored original, addressed by the SHA-256 of its bytes."""

    sha256: str
    media_type: str
    file_size: int
    width: int
    height: int


class IngestState(StrEnum):
    QUEUED = "queued"
    FINISHED = "finished"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingest:
    """Where an image came from and how far fetching it got (seed 002)."""

    state: IngestState
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
    max_unauthorised: int | None = None  # None: no cap (the API's -1)
    roles: frozenset[str] = frozenset()
    ingest: Ingest = Ingest(state=IngestState.FINISHED)


# The image fields a client may change, by their storage names; values arrive
# already validated by the API layer.
EDITABLE: Final = frozenset(
    {
        "description",
        "is_public",
        "tags",
        "text1",
        "text2",
        "text3",
        "number1",
        "number2",
        "number3",
        "max_unauthorised",
        "roles",
    }
)


class SortKey(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    FILE_SIZE = "file_size"


# A keyset position: the sort value and the id of a row seen.
Cursor: TypeAlias = tuple[object, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    images: tuple[ImageRecord, ...]
    total: int
    has_more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    prefix: str
    issuer_id: str
    created_at: str
    revoked_at: str | None
    roles: frozenset[str] = frozenset()
