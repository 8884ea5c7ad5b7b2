"""The application factory."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from gateway.catalog import CachedCatalog, Catalog
from gateway.config import Settings
from gateway.delivery import Deliverer
from gateway.demo import Demo, seed_demo
from gateway.fetch import OriginPolicy, guarded_session
from gateway.handlers import Delivery
from gateway.ingest import Ingestor
from gateway.keys import (
    CATALOG,
    DELIVERER,
    DEMO,
    INGESTOR,
    MIDDLEWARES,
    RENDERER,
    SETTINGS,
    STORE,
    UPLOADER,
    UPLOADS,
    WRITABLE_CATALOG,
)
from gateway.middlewares import errors, request_id
from gateway.render import Renderer
from gateway.routes import check_routes, setup_routes
from gateway.storage import OriginalStore
from gateway.upstream import CloudinaryUploader

__all__ = ["create_app"]


def create_app(settings: Settings) -> web.Application:
    """Build the app; all I/O happens in its cleanup contexts, on startup."""
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    # Not `web.Application(middlewares=...)`: see gateway.routes for why.
    app[MIDDLEWARES] = (request_id, errors)
    app.cleanup_ctx.append(check_routes)
    app.cleanup_ctx.append(_catalog)
    app.cleanup_ctx.append(_renderer)
    delivery = Delivery()
    app.cleanup_ctx.append(delivery.bound)
    app.cleanup_ctx.append(_clients)
    app.cleanup_ctx.append(_frozen_heap)
    setup_routes(app, delivery)
    return app


async def _frozen_heap(app: web.Application) -> AsyncIterator[None]:
    """Keep start-up's objects (aiohttp, the SDK, Pillow) out of every GC pass.

    A full collection walked ~40k of them and paused a loaded server for 24-60 ms
    (measured); frozen, the pauses left are those of our bounded caches.
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    catalog = Catalog(settings.database)
    cached = CachedCatalog(
        catalog,
        size=settings.catalog_cache_size,
        poll_interval=settings.catalog_poll_interval,
    )
    app[CATALOG] = cached
    app[WRITABLE_CATALOG] = catalog
    app[DELIVERER] = Deliverer(settings, cached)
    app[STORE] = store = OriginalStore(settings.originals)
    if settings.demo:
        demo = app[DEMO] = seed_demo(catalog, store, settings)
        _announce(settings, demo)
    yield
    catalog.close()


async def _renderer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    with ThreadPoolExecutor(
        max_workers=settings.render_workers, thread_name_prefix="render"
    ) as executor:
        app[RENDERER] = Renderer(settings, app[STORE], executor)
        yield


async def _clients(app: web.Application) -> AsyncIterator[None]:
    """Outbound HTTP: Cloudinary's API (when configured) and guarded origin fetches."""
    settings = app[SETTINGS]
    uploads = app[UPLOADS] = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    for stray in uploads.iterdir():  # spooled by a process that died mid-upload
        stray.unlink(missing_ok=True)
    policy = OriginPolicy(
        settings.ingest_allowed_hosts, allow_private=settings.ingest_allow_private
    )
    async with aiohttp.ClientSession() as api, guarded_session(policy) as origins:
        uploader = None
        if settings.cloudinary is not None:
            uploader = app[UPLOADER] = CloudinaryUploader(
                api, settings.cloudinary, timeout=settings.upstream_timeout
            )
        ingestor = app[INGESTOR] = Ingestor(
            settings=settings,
            session=origins,
            policy=policy,
            catalog=app[WRITABLE_CATALOG],
            store=app[STORE],
            executor=app[RENDERER].executor,
            uploader=uploader,
        )
        yield
        for task in ingestor.tasks:
            task.cancel()
        await asyncio.gather(*ingestor.tasks, return_exceptions=True)


def _announce(settings: Settings, demo: Demo) -> None:
    """What a newcomer should open first: a page (downloads are for <img> tags)."""
    _, image, steps = demo.examples()[0]
    print(f"demo page:         {settings.base_url / 'demo'}")
    print(f"signed tiling URL: {demo.url(settings, image, steps)}", flush=True)
