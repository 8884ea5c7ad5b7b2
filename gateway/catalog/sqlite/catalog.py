"""The catalog in one SQLite file: the embedded default.

Two connections, each on a thread of its own: a writer, whose transactions
may wait up to `busy_timeout` for another process's lock (the CLI, another
worker), and a reader, which WAL mode never makes wait for a writer. Neither
runs on the event loop, so a request is never stalled by a write; and the
writer being a single thread, this process's writes are serialised without a
lock of ours.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.catalog.records import (
    ApiKey,
    CatalogError,
    Cursor,
    ImageRecord,
    Original,
    Page,
    SortKey,
)
from gateway.catalog.sqlite import images, ingests, issuers, schema
from gateway.catalog.sqlite.changes import ChangeSignal
from gateway.catalog.store import Change, Listener
from signing import Issuer, IssuerKey, IssuerPolicy
from transforms.cloudinary import CloudinaryAsset

__all__ = ["SqliteCatalog"]

_T = TypeVar("_T")


class SqliteCatalog:
    """`CatalogStore` and `ChangeFeed` over one SQLite file."""

    def __init__(self, path: Path) -> None:
        new = not path.exists()
        if new:
            schema.create(path)
        try:
            if not new:
                schema.check(path)
            self._writer_db = schema.connect(path)
            try:
                schema.migrate(self._writer_db)
            except BaseException:
                self._writer_db.close()
                raise
        except sqlite3.DatabaseError as exc:
            # Not a database at all, or one SQLite cannot read.
            raise CatalogError(f"{path} is not a readable catalog: {exc}") from exc
        self._reader_db = schema.connect(path)
        self._signal = ChangeSignal(path.parent / f"{path.name}.changes")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="catalog-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="catalog-read")
        self._listeners: list[Listener] = []
        self._data_version = schema.data_version(self._reader_db)
        # The writer connection's `data_version` moves with other connections'
        # commits only (never its own): how a write of ours learns that
        # another process wrote since our last write (`_write`).
        self._others = schema.data_version(self._writer_db)

    @classmethod
    async def open(cls, path: Path) -> SqliteCatalog:
        """Open (creating and migrating) off the event loop."""
        return await asyncio.to_thread(cls, path)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._writer_db.close)
        await loop.run_in_executor(self._reader, self._reader_db.close)
        self._signal.close()
        self._reader.shutdown()
        self._writer.shutdown()

    async def _read(self, op: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, op, self._reader_db, *args)

    async def _write(
        self, change: Change | None, op: Callable[..., _T], *args: object
    ) -> _T:
        """Run a write on the writer thread, then tell the listeners at once.

        They are told before the caller resumes, so whatever the caller does
        next (answering the client) happens after every cache has forgotten.
        A caller cancelled meanwhile cannot stop the thread: its cancellation
        waits for the write to end, so that its clean-up (removing a stored
        original, say) sees the write committed, and so do the caches.
        """
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._writer, self._commit, op, args)
        cancelled = False
        while not work.done():
            try:
                await asyncio.wait([work])
            except asyncio.CancelledError:
                cancelled = True
        told = change
        try:
            result, self._data_version, others = work.result()
            if others != self._others:
                # Another process wrote since our last write: the version
                # just noted covers its change too, which `check` will now
                # never see. Everything is reloaded (a revoked key, say).
                self._others = others
                told = Change.EVERYTHING
            return result
        finally:
            if change is not None:  # None: bookkeeping no reader sees
                self._signal.stamp()  # the other processes: ours to see
            if told is not None:
                self._changed(told)
            if cancelled:
                raise asyncio.CancelledError

    def _commit(
        self, op: Callable[..., _T], args: tuple[object, ...]
    ) -> tuple[_T, int, int]:
        """On the writer thread: the write, the reader's view of its version,
        then the writer's view of other connections' commits.

        Our own commit moves the reader connection's `data_version` too; noting
        it here keeps `check` from taking it for another writer's change. It
        also covers any other process's commit before it, so the writer's
        view is read after it: a commit counted in the first is in the second.
        """
        result = op(self._writer_db, *args)
        version = self._reader.submit(schema.data_version, self._reader_db).result()
        return result, version, schema.data_version(self._writer_db)

    # ChangeFeed

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def hinted(self) -> bool:
        return self._signal.moved()

    @property
    def revision(self) -> int:
        """SQLite's `data_version` as this store last saw it."""
        return self._data_version

    async def check(self) -> bool:
        version = await self._read(schema.data_version)
        if version == self._data_version:
            return False
        self._data_version = version
        self._changed(Change.EVERYTHING)
        return True

    def _changed(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    # Issuers and keys

    async def add_issuer(
        self,
        *,
        issuer_id: str | None = None,
        name: str = "",
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
        policy: IssuerPolicy = IssuerPolicy(),
    ) -> tuple[Issuer, IssuerKey]:
        return await self._write(
            Change.EVERYTHING,
            issuers.add_issuer,
            issuer_id,
            name,
            secret,
            kid,
            algorithm,
            policy,
        )

    async def add_key(
        self,
        issuer_id: str,
        *,
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
    ) -> IssuerKey:
        return await self._write(
            Change.EVERYTHING, issuers.add_key, issuer_id, secret, kid, algorithm
        )

    async def revoke_key(self, issuer_id: str, kid: str) -> None:
        await self._write(Change.EVERYTHING, issuers.revoke_key, issuer_id, kid)

    async def issuer(self, issuer_id: str) -> Issuer | None:
        return await self._read(issuers.issuer, issuer_id)

    async def issuers(self) -> list[Issuer]:
        return await self._read(issuers.issuers)

    # API keys

    async def add_api_key(
        self, issuer_id: str, *, roles: frozenset[str] = frozenset()
    ) -> str:
        return await self._write(
            Change.EVERYTHING, issuers.add_api_key, issuer_id, roles
        )

    async def api_key(self, key: str) -> ApiKey | None:
        return await self._read(issuers.api_key, key)

    async def api_keys(self, issuer_id: str) -> list[ApiKey]:
        return await self._read(issuers.api_keys, issuer_id)

    async def revoke_api_key(self, issuer_id: str, prefix: str) -> None:
        await self._write(Change.EVERYTHING, issuers.revoke_api_key, issuer_id, prefix)

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
        return await self._write(
            Change.IMAGES,
            images.add_image,
            issuer_id,
            image_id,
            cloudinary,
            original,
            original_filename,
            origin,
        )

    async def image(self, image_id: str) -> ImageRecord | None:
        return await self._read(images.image, image_id)

    async def images(self, issuer_id: str) -> list[ImageRecord]:
        return await self._read(images.images, issuer_id)

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
        return await self._read(
            images.page,
            issuer_id,
            sort,
            descending,
            size,
            after,
            before,
            search,
            tag,
            ids,
        )

    async def update_image(
        self,
        image_id: str,
        changes: Mapping[str, object],
        *,
        unchanged_since: str | None = None,
    ) -> ImageRecord:
        return await self._write(
            Change.IMAGES, images.update_image, image_id, changes, unchanged_since
        )

    async def finish_ingest(
        self,
        image_id: str,
        *,
        original: Original | None = None,
        cloudinary: CloudinaryAsset | None = None,
        filename: str | None = None,
        error: str | None = None,
    ) -> None:
        await self._write(
            Change.IMAGES,
            images.finish_ingest,
            image_id,
            original,
            cloudinary,
            filename,
            error,
        )

    async def remove_image(
        self, image_id: str, *, unchanged_since: str | None = None
    ) -> ImageRecord | None:
        return await self._write(
            Change.IMAGES, images.remove_image, image_id, unchanged_since
        )

    async def originals_in_use(self, sha256: str) -> int:
        return await self._read(images.originals_in_use, sha256)

    # Ingest leases

    async def claim_ingest(self, image_id: str, *, owner: str, until: str) -> bool:
        return await self._write(None, ingests.claim_ingest, image_id, owner, until)

    async def claim_abandoned_ingests(
        self, *, owner: str, until: str, limit: int
    ) -> list[tuple[str, str]]:
        return await self._write(
            None, ingests.claim_abandoned_ingests, owner, until, limit
        )

    async def renew_ingests(self, *, owner: str, until: str) -> None:
        await self._write(None, ingests.renew_ingests, owner, until)

    async def release_ingest(self, image_id: str, *, owner: str, note: str) -> None:
        await self._write(Change.IMAGES, ingests.release_ingest, image_id, owner, note)

    async def originals(self) -> set[str]:
        return await self._read(ingests.originals)

    async def ingest_counts(self) -> dict[str, int]:
        return await self._read(ingests.ingest_counts)
