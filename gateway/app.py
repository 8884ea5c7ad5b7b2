"""The application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import aiohttp
from aiohttp import web

from gateway.catalog import CachedCatalog, open_catalog
from gateway.cloudinary import CloudinaryUploader, LocalCloud, Uploader
from gateway.config import Settings
from gateway.delivery.proxy import Proxy
from gateway.delivery.redirects import Cdn
from gateway.delivery.renderer import Renderer
from gateway.delivery.resolver import Resolver
from gateway.demo import seed_demo
from gateway.http.cdn import PREFIX
from gateway.http.credentials import Authenticator
from gateway.http.delivery import Delivery
from gateway.http.limits import MAX_BODY_BYTES, UploadGate
from gateway.http.middlewares import Frame
from gateway.http.routes import setup_routes
from gateway.keys import (
    AUTHENTICATOR,
    CATALOG,
    CDN,
    DEMO,
    EXECUTOR,
    EXPOSITION,
    INGESTOR,
    LIFECYCLE,
    METRICS,
    PROXY,
    RENDERER,
    RESOLVER,
    SETTINGS,
    STORE,
    UPLOAD_GATE,
    UPLOADER,
    Lifecycle,
)
from gateway.ops.metrics import Exposition, Metrics
from gateway.originals.configured import open_store
from gateway.originals.ingest import Ingestor
from gateway.originals.origin_fetch import OriginPolicy, guarded_session
from gateway.originals.store import STRAY_AGE, OriginalStore, remove_older
from signing import forget_minting_secrets
from transforms.render.pillow import load_codecs

__all__ = ["create_app"]

log = logging.getLogger("gateway")
# An original stored but not yet registered is this young at most (a probe,
# then a Cloudinary upload of up to GATEWAY_UPSTREAM_TIMEOUT): older, and no
# image refers to it, it was left by a crash.
_ORIGINALS_GRACE: Final = 3600.0


def protocol_options(settings: Settings) -> dict[str, Any]:
    """Options of aiohttp's per-connection protocol (`web.RequestHandler`),
    for `create_app` and for `serve`, which makes that protocol itself."""
    return {
        # Never inflate a request body: a small gzip can inflate to gigabytes,
        # on the event loop, before any handler (or login) has looked at it.
        # No route accepts a compressed body (`jsonapi.refuse_encoded`).
        "auto_decompress": False,
        # Room for a token one character longer than we take, every
        # character percent-encoded from four UTF-8 bytes, so that our own
        # checks answer it (400 token_too_large, 401 not ASCII), not the
        # parser's generic 400.
        "max_line_size": max(8190, 12 * (settings.tokens.max_bytes + 1) + 1024),
        # aiohttp's default keeps an idle connection for an hour.
        "keepalive_timeout": settings.server.idle_timeout,
    }


def create_app(settings: Settings) -> web.Application:
    """Build the app; all I/O happens in its cleanup contexts, on startup."""
    metrics, lifecycle = Metrics(), Lifecycle()
    app = web.Application(
        middlewares=[Frame(metrics, lifecycle)],
        client_max_size=MAX_BODY_BYTES,
        handler_args=protocol_options(settings),
    )
    app[SETTINGS] = settings
    app[LIFECYCLE] = lifecycle
    app[METRICS] = metrics
    app[EXPOSITION] = Exposition()
    app[UPLOAD_GATE] = UploadGate(settings.ingest)
    app.cleanup_ctx.append(_executor)
    app.cleanup_ctx.append(_originals)
    app.cleanup_ctx.append(_catalog)
    delivery = Delivery()
    app.cleanup_ctx.append(delivery.bound)
    app.cleanup_ctx.append(_clients)
    app.cleanup_ctx.append(_proxy)
    setup_routes(app, delivery)
    return app


async def _executor(app: web.Application) -> AsyncIterator[None]:
    """Threads for Pillow's work (most of it releases the GIL): renders, upload probes."""
    load_codecs()  # not inside the first render: it would hold the GIL
    with ThreadPoolExecutor(
        max_workers=app[SETTINGS].render.workers, thread_name_prefix="render"
    ) as executor:
        app[EXECUTOR] = executor
        yield


async def _originals(app: web.Application) -> AsyncIterator[None]:
    """The originals' store: the local directory, or S3 through one client."""
    async with open_store(app[SETTINGS]) as store:
        app[STORE] = store
        yield


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await open_catalog(settings)
    try:
        catalog = app[CATALOG] = CachedCatalog(
            store,
            size=settings.catalog.cache_size,
            poll_interval=settings.catalog.poll_interval,
        )
        originals = app[STORE]
        # Minting remembers the secrets it checked; a revoked one must go.
        catalog.subscribe(forget_minting_secrets)
        app[RESOLVER] = Resolver(settings, catalog, await _cdn(app, originals))
        app[AUTHENTICATOR] = Authenticator(settings, catalog)
        in_use = await store.originals()
        swept = await originals.sweep(in_use, older_than=_ORIGINALS_GRACE)
        if swept:
            log.info("removed %d stored originals no image refers to", swept)
        renderer = app[RENDERER] = Renderer(settings, originals, app[EXECUTOR])
        await catalog.refresh()
        _gauges(app)
        try:
            yield
        finally:
            await renderer.close()
    finally:
        await store.close()


async def _cdn(app: web.Application, originals: OriginalStore) -> Cdn | None:
    """Where redirects point: Cloudinary (with CLOUDINARY_URL), or the local
    stand-in (GATEWAY_CDN=local), whose account is made here on first use."""
    settings = app[SETTINGS]
    upstream = settings.upstream
    if upstream.cdn != "local":
        return None  # the resolver's default: CLOUDINARY_URL's account, if any
    cloud = app[CDN] = await asyncio.to_thread(
        LocalCloud.open, settings.cdn, originals, settings.limits
    )
    return Cdn(
        account=cloud.account,
        origin=str(settings.base_url) + PREFIX,
        token_key=upstream.cdn_token_key,
        url_max_age=upstream.cdn_url_max_age,
    )


async def _clients(app: web.Application) -> AsyncIterator[None]:
    """Outbound HTTP: Cloudinary's API (when configured) and guarded origin fetches."""
    settings = app[SETTINGS]
    uploads = settings.uploads
    uploads.mkdir(parents=True, exist_ok=True)
    # Spooled by a process that died mid-upload; a younger spool may be a
    # sibling worker's upload under way.
    remove_older(uploads.iterdir(), max(STRAY_AGE, 2 * settings.ingest.body_timeout))
    policy = OriginPolicy(
        settings.ingest.allowed_hosts, allow_private=settings.ingest.allow_private
    )
    async with aiohttp.ClientSession() as api, guarded_session(policy) as origins:
        uploader: Uploader | None = app.get(CDN)
        if settings.upstream.cloudinary is not None:
            uploader = CloudinaryUploader(
                api,
                settings.upstream.cloudinary,
                timeout=settings.upstream.timeout,
                metrics=app[METRICS],
            )
        if uploader is not None:
            app[UPLOADER] = uploader
        ingestor = app[INGESTOR] = Ingestor(
            settings=settings,
            session=origins,
            policy=policy,
            catalog=app[CATALOG].store,
            store=app[STORE],
            executor=app[EXECUTOR],
            uploader=uploader,
        )
        keeper = asyncio.get_running_loop().create_task(ingestor.keep())
        if settings.server.demo:
            app[DEMO] = await seed_demo(
                app[CATALOG].store, app[STORE], settings, uploader
            )
            await app[CATALOG].refresh()
        yield
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await ingestor.close()


async def _proxy(app: web.Application) -> AsyncIterator[None]:
    """The pooled session proxied images come through; no connection until one is."""
    async with Proxy.open(app[SETTINGS].upstream, metrics=app[METRICS]) as proxy:
        app[PROXY] = proxy
        yield


def _gauges(app: web.Application) -> None:
    """What the metrics read from the components at each scrape."""
    metrics, renderer, catalog = app[METRICS], app[RENDERER], app[CATALOG]
    metrics.gauges["gateway_renders_in_flight"] = (
        "Renders running or waiting for a thread",
        lambda: renderer.in_flight,
    )
    metrics.counters["gateway_renders"] = (
        "Renders run, refused (503) with the pool and its queue full, and "
        "answered 503 past GATEWAY_RENDER_TIMEOUT (the render kept on)",
        lambda: {
            "run": renderer.renders,
            "refused": renderer.rejections,
            "timed_out": renderer.timeouts,
        },
        "outcome",
    )
    metrics.counters["gateway_cache_lookups"] = (
        "Cache lookups, as cache:hit or cache:miss",
        lambda: {
            **app[RESOLVER].cache_lookups(),
            "images:hit": catalog.image_hits,
            "images:miss": catalog.image_misses,
        },
        "lookup",
    )
