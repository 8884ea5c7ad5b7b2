"""The catalog's contract: what each store (SQLite, PostgreSQL) provides.

Every method is a coroutine. A store does its I/O off the event loop (SQLite
on its own threads, asyncpg natively), so a slow write, or a write waiting for
another process's lock, never stalls the requests being served meanwhile.
The hot path reads through `CachedCatalog`, not the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Protocol

from gateway.catalog.records import (
    ApiKey,
    Cursor,
    ImageRecord,
    Original,
    Page,
    SortKey,
)
from signing import Issuer, IssuerKey, IssuerPolicy
from transforms.cloudinary import CloudinaryAsset

__all__ = ["CatalogStore", "Change", "ChangeFeed", "Listener"]


class Change(Enum):
    """What a change may have touched, as far as the feed can tell."""

    IMAGES = "images"  # image records only (this process's image writes)
    EVERYTHING = "everything"  # issuers, keys, anything (and others' commits)


Listener = Callable[[Change], None]


class ChangeFeed(Protocol):
    """Tells of every change to the catalog, this process's and others'."""

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` after every change: at once for writes made through
        this store, and for other writers' once `check` notices them."""
        ...

    async def check(self) -> bool:
        """Notice other writers' commits (calling the listeners); True if any."""
        ...

    def hinted(self) -> bool:
        """A cheap, synchronous hint that another process may have written
        (checked on every request); `check` then tells for sure."""
        ...

    @property
    def revision(self) -> int:
        """A number that changes whenever the feed has seen a change."""
        ...


class CatalogStore(ChangeFeed, Protocol):
    async def close(self) -> None: ...

    # Issuers and their signing keys

    async def add_issuer(
        self,
        *,
        issuer_id: str | None = None,
        name: str = "",
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
        policy: IssuerPolicy = IssuerPolicy(),
    ) -> tuple[Issuer, IssuerKey]: ...

    async def add_key(
        self,
        issuer_id: str,
        *,
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
    ) -> IssuerKey: ...

    async def revoke_key(self, issuer_id: str, kid: str) -> None: ...

    async def issuer(self, issuer_id: str) -> Issuer | None: ...

    async def issuers(self) -> list[Issuer]:
        """Every issuer with its active keys, newest key first."""
        ...

    # API keys: only a hash is stored; the key is shown once, at creation.

    async def add_api_key(
        self, issuer_id: str, *, roles: frozenset[str] = frozenset()
    ) -> str: ...

    async def api_key(self, key: str) -> ApiKey | None:
        """An active key (its issuer and roles), compared in constant time; else None."""
        ...

    async def api_keys(self, issuer_id: str) -> list[ApiKey]: ...

    async def revoke_api_key(self, issuer_id: str, prefix: str) -> None: ...

    # Images

    async def add_image(
        self,
        *,
        issuer_id: str,
        image_id: str | None = None,
        cloudinary: CloudinaryAsset | None = None,
        original: Original | None = None,
        original_filename: str | None = None,
        origin: str | None = None,
    ) -> ImageRecord:
        """A new image; with `origin` and nothing else it is queued for ingest."""
        ...

    async def image(self, image_id: str) -> ImageRecord | None: ...

    async def images(self, issuer_id: str) -> list[ImageRecord]: ...

    async def page(
        self,
        issuer_id: str,
        *,
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
        size: int = 10,
        after: Cursor | None = None,
        before: Cursor | None = None,
        search: str | None = None,
        tag: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> Page:
        """One page of an issuer's images, by keyset: stable under inserts."""
        ...

    async def update_image(
        self,
        image_id: str,
        changes: Mapping[str, object],
        *,
        unchanged_since: str | None = None,
    ) -> ImageRecord:
        """Set fields named in `records.EDITABLE`; `CatalogError` if the image is
        gone, `ImageChangedError` (and nothing set) if `unchanged_since` is given
        and is no longer its `updated_at`."""
        ...

    async def finish_ingest(
        self,
        image_id: str,
        *,
        original: Original | None = None,
        cloudinary: CloudinaryAsset | None = None,
        filename: str | None = None,
        error: str | None = None,
    ) -> None: ...

    async def remove_image(
        self, image_id: str, *, unchanged_since: str | None = None
    ) -> ImageRecord | None:
        """The image removed, None if there was none; `ImageChangedError` (and
        nothing removed) as `update_image`."""
        ...

    async def originals_in_use(self, sha256: str) -> int: ...

    # Ingest leases: which process runs an origin ingest, until when (ISO 8601,
    # UTC). A lease that ran out belongs to a process that died.

    async def claim_ingest(self, image_id: str, *, owner: str, until: str) -> bool:
        """Own this queued ingest unless another live owner does."""
        ...

    async def claim_abandoned_ingests(
        self, *, owner: str, until: str, limit: int
    ) -> list[tuple[str, str]]:
        """Own queued ingests whose lease ran out: (image id, origin) each."""
        ...

    async def renew_ingests(self, *, owner: str, until: str) -> None: ...

    async def release_ingest(self, image_id: str, *, owner: str, note: str) -> None:
        """Hand an unfinished ingest back, still queued, saying why."""
        ...

    async def originals(self) -> set[str]:
        """The SHA-256 of every original an image refers to."""
        ...

    async def ingest_counts(self) -> dict[str, int]:
        """Images by ingest state (queued, finished, error)."""
        ...
