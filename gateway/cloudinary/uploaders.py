"""The uploader a command (or start-up, before the app) uses: Cloudinary's, the stand-in's, or none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp

from gateway.cloudinary.admin import CloudinaryUploader, Uploader
from gateway.cloudinary.standin import LocalCloud
from gateway.config import Settings
from gateway.originals.store import OriginalStore

__all__ = ["uploader"]


@contextlib.asynccontextmanager
async def uploader(
    settings: Settings, originals: OriginalStore
) -> AsyncIterator[Uploader | None]:
    """Where originals go in this configuration, as the app's API sends them."""
    upstream = settings.upstream
    if upstream.cloudinary is not None:
        async with aiohttp.ClientSession() as session:
            yield CloudinaryUploader(
                session, upstream.cloudinary, timeout=upstream.timeout
            )
    elif upstream.cdn == "local":
        yield await asyncio.to_thread(
            LocalCloud.open, settings.cdn, originals, settings.limits
        )
    else:
        yield None
