"""`image-gateway serve`: the HTTP server, and what only a server process does."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from yarl import URL

from gateway.app import create_app
from gateway.config import Settings
from gateway.http.middlewares import ParserErrorsInOneLine
from gateway.keys import DEMO, SETTINGS

__all__ = ["serve"]


def serve(settings: Settings, args: argparse.Namespace) -> None:
    if args.demo:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, demo=True)
        )
    logging.basicConfig(
        level=settings.server.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiohttp.server").addFilter(ParserErrorsInOneLine())
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    app = create_app(settings)
    # After create_app's own contexts: the demo is seeded by then.
    app.cleanup_ctx.append(_announce)
    app.cleanup_ctx.append(_frozen_heap)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=logging.getLogger("aiohttp.access")
        if settings.server.access_log
        else None,
        print=lambda _: print(
            f"image-gateway listening on {URL.build(scheme='http', host=host, port=port)}"
        ),
    )


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


# Catalog commands: each opens the catalog, does one thing, and closes it.
