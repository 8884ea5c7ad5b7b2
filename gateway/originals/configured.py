"""The originals store the settings name: S3 when `GATEWAY_ORIGINALS_URL` is
set, else the local directory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from gateway.config import Settings
from gateway.originals.local import LocalOriginalStore
from gateway.originals.store import OriginalStore

__all__ = ["open_store"]


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[OriginalStore]:
    if settings.store.url is None:
        local = LocalOriginalStore(settings.originals)
        try:
            yield local
        finally:
            await local.close()
        return
    # Imported only here: the SDK takes a third of a second to import, which
    # a local install (every CLI command, every worker) need not pay.
    from gateway.originals.s3 import open_s3_store

    async with open_s3_store(
        settings.store, read_timeout=settings.upstream.timeout
    ) as s3:
        yield s3
