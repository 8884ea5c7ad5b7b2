"""Ingest an original: decode it to learn what it is, store it, then record it.

Uploads do it in the request; origin URLs in the background (`Ingestor`),
bounded in number, each outcome recorded on its image.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp

from gateway.catalog import CatalogError, CatalogStore, ImageRecord, Original
from gateway.config import Settings
from gateway.errors import ApiError, CatalogUnavailableError
from gateway.originals.origin_fetch import (
    FetchError,
    OriginPolicy,
    check_origin,
    fetch_origin,
)
from gateway.originals.store import OriginalStore
from transforms import Limits, TransformError
from transforms.cloudinary import CloudinaryAsset
from transforms.render.pillow import probe

if TYPE_CHECKING:  # the stand-in uploader stores originals with this module
    from gateway.cloudinary import Uploader

__all__ = ["Ingestor", "add_original", "discard", "kept", "prepare_original"]

log = logging.getLogger("gateway.ingest")


async def prepare_original(
    store: OriginalStore, limits: Limits, data: bytes, executor: Executor | None
) -> Original:
    """Probe (in the pool: CPU-bound), then store.

    Raises `SourceImageError`/`LimitExceededError`. The media type, width and
    height come from the decoded image, never a file name or declared type.
    """
    loop = asyncio.get_running_loop()
    info = await loop.run_in_executor(executor, probe, data, limits)
    return Original(
        sha256=await store.put(data),
        media_type=info.media_type,
        file_size=len(data),
        width=info.width,
        height=info.height,
    )


async def discard(
    catalog: CatalogStore, store: OriginalStore, original: Original
) -> None:
    """Remove a stored original no image refers to (after a failed registration)."""
    if await catalog.originals_in_use(original.sha256) == 0:
        await store.remove(original.sha256)


async def kept(store: OriginalStore, data: bytes) -> None:
    """Put the original again once the image naming it is committed.

    Originals are shared by content. A delete of another image with the same
    bytes counts the images using them and, finding none (ours not yet
    committed), removes them: our earlier `put` found them present and wrote
    nothing. Once our image is committed no delete counts zero; putting again
    (a no-op when present) restores what one removed meanwhile. Left open: a
    delete whose count comes before our commit and whose removal comes after
    this call, a window of one store request.

    Not raised: the image is recorded, and its original was stored moments
    ago; a store failing now is logged.
    """
    try:
        await store.put(data)
    except ApiError as exc:
        log.warning("could not confirm a stored original: %s", exc.detail)


async def add_original(
    catalog: CatalogStore,
    store: OriginalStore,
    limits: Limits,
    *,
    issuer_id: str,
    data: bytes,
    filename: str | None = None,
    image_id: str | None = None,
    cloudinary: CloudinaryAsset | None = None,
    executor: Executor | None = None,
) -> ImageRecord:
    """Probe, store and record in one go; nothing is left behind on failure."""
    original = await prepare_original(store, limits, data, executor)
    try:
        record = await catalog.add_image(
            issuer_id=issuer_id,
            image_id=image_id,
            cloudinary=cloudinary,
            original=original,
            original_filename=filename,
        )
    except CatalogError:
        await discard(catalog, store, original)
        raise
    await kept(store, data)
    return record


class Ingestor:
    """Fetches origins in the background, at most `concurrency` at a time.

    Each ingest is owned through a lease in the catalog, renewed while this
    process lives (`keep`). An ingest whose owner died (a kill, a crash) has
    a lease that runs out and is resumed by the next process that looks, this
    one included; one this process stops (a shutdown) is handed back at once,
    still queued, with the reason recorded.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        session: aiohttp.ClientSession,
        policy: OriginPolicy,
        catalog: CatalogStore,
        store: OriginalStore,
        executor: Executor,
        uploader: Uploader | None,
    ) -> None:
        self.policy = policy
        self._settings = settings
        self._session = session
        self._catalog = catalog
        self._store = store
        self._executor = executor
        self._uploader = uploader
        self._slots = asyncio.Semaphore(settings.ingest.concurrency)
        self.tasks: set[asyncio.Task[None]] = set()
        self._active: set[str] = set()
        self.owner = uuid.uuid4().hex
        # Longer than one ingest can take (fetch, then upload), renewed at a
        # third of it: a live owner's lease never runs out.
        self.lease = 2 * (settings.ingest.timeout + settings.upstream.timeout) + 60

    def start(self, image_id: str, origin: str) -> None:
        if image_id in self._active:
            return  # already running here (the API's start, and a resumption)
        self._active.add(image_id)
        task = asyncio.get_running_loop().create_task(self._run(image_id, origin))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self._active.discard(image_id))

    async def drain(self) -> None:
        """Wait for the fetches under way (tests, and a graceful shutdown)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def keep(self) -> None:
        """Renew this process's leases and resume abandoned ingests, until cancelled."""
        while True:
            try:
                await self.resume_abandoned()
                await asyncio.sleep(self.lease / 3)
                await self._catalog.renew_ingests(owner=self.owner, until=self._until())
            except CatalogUnavailableError:
                # The database is back soon (its leases outlive a short outage).
                await asyncio.sleep(1.0)

    async def resume_abandoned(self) -> None:
        """Claim queued ingests whose owner died, and run them here."""
        limit = 4 * self._settings.ingest.concurrency
        for image_id, origin in await self._catalog.claim_abandoned_ingests(
            owner=self.owner, until=self._until(), limit=limit
        ):
            self.start(image_id, origin)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _until(self) -> str:
        until = datetime.now(UTC) + timedelta(seconds=self.lease)
        return until.isoformat(timespec="microseconds")

    async def _run(self, image_id: str, origin: str) -> None:
        catalog = self._catalog
        if not await catalog.claim_ingest(
            image_id, owner=self.owner, until=self._until()
        ):
            return  # another live process runs it
        try:
            async with self._slots:
                await self._ingest(image_id, origin)
        except asyncio.CancelledError:
            when = datetime.now(UTC).isoformat(timespec="seconds")
            await catalog.release_ingest(
                image_id,
                owner=self.owner,
                note=f"interrupted by a shutdown at {when}; resumed at the next start",
            )
            raise

    async def _ingest(self, image_id: str, origin: str) -> None:
        try:
            check_origin(origin, self.policy)  # again: a resumed one may be old
            data, original, name = await self._fetch(origin)
        except FetchError as exc:
            await self._failed(image_id, str(exc))
            return
        except (TransformError, ApiError) as exc:  # ApiError: the store failed
            await self._failed(image_id, exc.detail)
            return
        except Exception:
            log.exception("ingest of %s failed", image_id)
            await self._failed(image_id, "an unexpected error occurred")
            return
        try:
            await self._record(image_id, data, original, name)
        finally:
            # Deleted while it was fetched, or never recorded: not kept.
            await discard(self._catalog, self._store, original)

    async def _fetch(self, origin: str) -> tuple[bytes, Original, str | None]:
        settings = self._settings
        data, name = await fetch_origin(
            self._session,
            origin,
            self.policy,
            max_bytes=settings.ingest.max_upload_bytes,
            seconds=settings.ingest.timeout,
        )
        original = await prepare_original(
            self._store, settings.limits, data, self._executor
        )
        return data, original, name

    async def _record(
        self, image_id: str, data: bytes, original: Original, name: str | None
    ) -> None:
        try:
            asset = None
            if self._uploader is not None:
                uploaded = await self._uploader.upload(
                    data,
                    public_id=image_id,
                    delivery_type=self._settings.upstream.delivery_type,
                )
                asset, original = uploaded.asset, uploaded.onto(original)
            await self._catalog.finish_ingest(
                image_id, original=original, cloudinary=asset, filename=name
            )
        except ApiError as exc:  # Cloudinary refused or failed
            await self._failed(image_id, exc.detail)
            return
        except Exception:
            log.exception("ingest of %s failed", image_id)
            await self._failed(image_id, "an unexpected error occurred")
            return
        await kept(self._store, data)

    async def _failed(self, image_id: str, error: str) -> None:
        await self._catalog.finish_ingest(image_id, error=error)
