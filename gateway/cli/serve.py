"""`image-gateway serve`: the HTTP server, and what only a server process does."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from yarl import URL

from gateway.app import create_app
from gateway.config import Settings
from gateway.http.middlewares import ParserErrorsInOneLine
from gateway.keys import DEMO, SETTINGS
from gateway.ops.access_log import JsonAccessLogger
from gateway.ops.connections import ConnectionGuard
from gateway.ops.logs import JsonFormatter

__all__ = ["serve"]


def serve(settings: Settings, args: argparse.Namespace) -> None:
    if args.demo:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, demo=True)
        )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=settings.server.log_level, handlers=[handler])
    logging.getLogger("aiohttp.server").addFilter(ParserErrorsInOneLine())
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    app = create_app(settings)
    # After create_app's own contexts: the demo is seeded by then.
    app.cleanup_ctx.append(_announce)
    app.cleanup_ctx.append(_frozen_heap)
    asyncio.run(_run(app, settings, host, port))


async def _run(app: web.Application, settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, behind the connection guard.

    Not `web.run_app`: its sites hand connections to aiohttp's protocol
    directly, and the guard (`gateway.ops.ConnectionGuard`) must stand between.
    """
    JsonAccessLogger.configure(
        trusted_proxies=settings.server.trusted_proxies, stream=sys.stdout
    )
    runner = web.AppRunner(
        app,
        access_log_class=JsonAccessLogger,
        access_log=logging.getLogger("aiohttp.access")
        if settings.server.access_log
        else None,
    )
    await runner.setup()  # start-up: the catalog opens, the demo is seeded
    try:
        assert runner.server is not None  # noqa: S101 - set up above
        loop = asyncio.get_running_loop()
        guard = ConnectionGuard(
            runner.server,
            max_connections=settings.server.max_connections,
            header_timeout=settings.server.header_timeout,
        )
        server = await loop.create_server(guard, host, port, reuse_address=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        bound = server.sockets[0].getsockname()[1]
        url = URL.build(scheme="http", host=host, port=bound)
        print(f"image-gateway listening on {url}", flush=True)
        await stop.wait()
        server.close()  # no new connections; the runner finishes the open ones
    finally:
        await runner.cleanup()
        JsonAccessLogger.flush()


async def _announce(app: web.Application) -> AsyncIterator[None]:
    """What a newcomer should open first: a page (downloads are for <img> tags)."""
    if DEMO in app:
        settings, demo = app[SETTINGS], app[DEMO]
        _, image, steps = demo.examples()[0]
        print(f"demo page:         {settings.base_url / 'demo'}")
        print(f"signed tiling URL: {demo.url(settings, image, steps)}", flush=True)
    yield


async def _frozen_heap(app: web.Application) -> AsyncIterator[None]:
    """Keep start-up's objects (aiohttp, the SDK, Pillow) out of every GC pass.

    A full collection walks every one of them and pauses a loaded server;
    frozen, the pauses left are those of our bounded caches (see the README's
    performance section).
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
