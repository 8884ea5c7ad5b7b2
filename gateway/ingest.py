"""Background origin ingest: bounded in number, each outcome recorded on its image."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

import aiohttp

from gateway.catalog import Catalog
from gateway.config import Settings
from gateway.errors import ApiError
from gateway.fetch import FetchError, OriginPolicy, fetch_origin
from gateway.originals import discard, prepare_original
from gateway.storage import OriginalStore
from gateway.upstream import CloudinaryUploader
from transforms import TransformError

__all__ = ["Ingestor"]

log = logging.getLogger("gateway.ingest")


class Ingestor:
    def __init__(
        self,
        *,
        settings: Settings,
        session: aiohttp.ClientSession,
        policy: OriginPolicy,
        catalog: Catalog,
        store: OriginalStore,
        executor: Executor,
        uploader: CloudinaryUploader | None,
    ) -> None:
        self.policy = policy
        self._settings = settings
        self._session = session
        self._catalog = catalog
        self._store = store
        self._executor = executor
        self._uploader = uploader
        self._slots = asyncio.Semaphore(settings.ingest_concurrency)
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, image_id: str, origin: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(image_id, origin))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for the fetches under way (tests, and a graceful shutdown)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _run(self, image_id: str, origin: str) -> None:
        settings, catalog = self._settings, self._catalog
        async with self._slots:
            try:
                data, name = await fetch_origin(
                    self._session,
                    origin,
                    self.policy,
                    max_bytes=settings.max_upload_bytes,
                    seconds=settings.ingest_timeout,
                )
                original = await asyncio.get_running_loop().run_in_executor(
                    self._executor, prepare_original, self._store, settings.limits, data
                )
            except FetchError as exc:
                catalog.finish_ingest(image_id, error=str(exc))
                return
            except TransformError as exc:
                catalog.finish_ingest(image_id, error=exc.detail)
                return
            except Exception:
                log.exception("ingest of %s failed", image_id)
                catalog.finish_ingest(image_id, error="an unexpected error occurred")
                return
            try:
                asset = None
                if self._uploader is not None:
                    uploaded = await self._uploader.upload(
                        data, public_id=image_id, delivery_type=settings.delivery_type
                    )
                    asset, original = uploaded.asset, uploaded.onto(original)
                catalog.finish_ingest(
                    image_id, original=original, cloudinary=asset, filename=name
                )
            except ApiError as exc:  # Cloudinary refused or failed
                catalog.finish_ingest(image_id, error=exc.detail)
            except Exception:
                log.exception("ingest of %s failed", image_id)
                catalog.finish_ingest(image_id, error="an unexpected error occurred")
            if catalog.image(image_id) is None:  # deleted while it was fetched
                discard(catalog, self._store, original)
