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
from gateway.env import ConfigError
from gateway.http.middlewares import ParserErrorsInOneLine
from gateway.keys import DEMO, LIFECYCLE, SETTINGS
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
    app.cleanup_ctx.append(_frozen_heap)
    asyncio.run(_run(app, settings, host, port))


async def _run(app: web.Application, settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, behind the connection guard, then drain.

    Not `web.run_app`: its sites hand connections to aiohttp's protocol
    directly, and the guard (`gateway.ops.ConnectionGuard`) must stand between.
    On a signal, `/readyz` answers 503 at once, the listener stays open for
    `GATEWAY_DRAIN_DELAY` (a load balancer's time to notice), then closes;
    requests in flight (renders and uploads too) get `GATEWAY_SHUTDOWN_TIMEOUT`
    to finish.
    """
    server_settings = settings.server
    JsonAccessLogger.configure(
        trusted_proxies=server_settings.trusted_proxies, stream=sys.stdout
    )
    runner = web.AppRunner(
        app,
        access_log_class=JsonAccessLogger,
        access_log=logging.getLogger("aiohttp.access")
        if server_settings.access_log
        else None,
        shutdown_timeout=server_settings.shutdown_timeout,
    )
    try:
        await runner.setup()  # start-up: the catalog opens, the demo is seeded
    except OSError as exc:  # the data directory: missing rights, not a folder
        raise ConfigError(
            f"GATEWAY_DATA_DIR {settings.data_dir}: {exc.strerror or exc}"
        ) from None
    try:
        assert runner.server is not None  # noqa: S101 - set up above
        loop = asyncio.get_running_loop()
        guard = ConnectionGuard(
            runner.server,
            max_connections=server_settings.max_connections,
            header_timeout=server_settings.header_timeout,
        )
        try:
            server = await loop.create_server(guard, host, port, reuse_address=True)
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # Only now, bound: nothing is announced as if up before it is.
        _announce(app, server.sockets[0].getsockname()[1], host)
        await stop.wait()
        app[LIFECYCLE].draining = True
        await asyncio.sleep(server_settings.drain_delay)
        server.close()  # no new connections; the runner finishes the open ones
    finally:
        await runner.cleanup()
        JsonAccessLogger.flush()


def _announce(app: web.Application, port: int, host: str) -> None:
    """What a newcomer should open first: a page (downloads are for <img> tags)."""
    print(
        f"image-gateway listening on {URL.build(scheme='http', host=host, port=port)}"
    )
    if DEMO in app:
        settings, demo = app[SETTINGS], app[DEMO]
        _, image, steps = demo.examples()[0]
        print(f"demo page:         {settings.base_url / 'demo'}")
        print(f"signed tiling URL: {demo.url(settings, image, steps)}")
    sys.stdout.flush()


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
