"""`image-gateway serve`: the HTTP server, and what only a server process does."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import gc
import importlib
import logging
import os
import shutil
import signal
import socket
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from aiohttp import BadContentDispositionHeader, BadContentDispositionParam, web
from yarl import URL

from gateway.app import create_app, protocol_options
from gateway.catalog import CatalogError, CatalogStore, open_catalog
from gateway.catalog.postgres import PoolOutagesInOneLine
from gateway.cloudinary.uploaders import uploader
from gateway.config import MAX_WORKERS, Settings, data_dir_faults
from gateway.demo import Demo, seed_demo
from gateway.env import ConfigError
from gateway.errors import ApiError, OriginalsUnavailableError
from gateway.http.middlewares import ParserErrorsInOneLine
from gateway.http.protocol import JsonApiRequestHandler, routed_within_bounds
from gateway.keys import LIFECYCLE, METRICS
from gateway.ops.access_log import JsonAccessLogger
from gateway.ops.connections import ConnectionGuard
from gateway.ops.logs import JsonFormatter, Output, Sink
from gateway.ops.metrics import alive
from gateway.ops.workers import hold_signals, lifeline, stop_requested, supervise
from gateway.originals.configured import open_store

__all__ = ["app_runner", "guarded", "quiet_chatty_loggers", "serve"]

log = logging.getLogger("gateway.workers")

# Connections the kernel queues for the workers to accept (capped by its
# `net.core.somaxconn`): a burst of new connections at a busy moment waits
# in it rather than being refused.
_BACKLOG: Final = 1024
# How stale a scrape's view of the sibling workers may be.
_PUBLISH_SECONDS: Final = 1.0
# What aiohttp's shutdown is given once GATEWAY_SHUTDOWN_TIMEOUT is spent:
# it reads a timeout of 0 as none, and would wait for a request still under
# way (an upload whose client stalls) for as long as its client keeps it open.
_LAST_MOMENT: Final = 0.001
# Seconds past its shutdown's bounds after which the parent kills a worker
# (its loop blocked, the process stopped): the flush of its last figures
# and logs, and a loaded machine's delays, fit well within.
_WEDGED: Final = 5.0


def serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.demo:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, demo=True)
        )
    output = Output(sys.stdout)
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=settings.server.log_level, handlers=[handler])
    quiet_chatty_loggers()
    logging.getLogger("aiohttp.server").addFilter(ParserErrorsInOneLine())
    logging.getLogger("asyncpg.pool").addFilter(PoolOutagesInOneLine())
    # aiohttp warns of a client's malformed multipart part header: printed raw
    # to stderr (no JSON, the client's bytes) and kept for good in the
    # warnings registry, once per distinct header. The upload's 422 says it.
    for malformed in (BadContentDispositionHeader, BadContentDispositionParam):
        warnings.filterwarnings("ignore", category=malformed)
    # Pillow warns in the same way of an upload's malformed metadata (corrupt
    # EXIF, an invalid APNG) as it reads it, then goes on: the file is refused
    # or decoded all the same, and the warning says nothing an operator acts on.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    host = args.host or settings.server.host
    if host.startswith("[") and host.endswith("]"):
        # An IPv6 address as URLs write it (`[::1]`): the address itself.
        host = host[1:-1]
    port = settings.server.port if args.port is None else args.port
    workers = settings.server.workers if args.workers is None else args.workers
    if not 1 <= workers <= MAX_WORKERS:
        # A typo of a few digits would fork until the machine stops.
        raise ConfigError(f"--workers (GATEWAY_WORKERS) is 1 to {MAX_WORKERS}")
    # Before any worker: the catalog opened (created, migrated, checked) and
    # the demo seeded once, so that workers starting together do not race.
    # A stop signal meanwhile (a catalog or a store slow to answer) is
    # remembered, not a KeyboardInterrupt traceback nor a death by SIGTERM:
    # start-up finishes, then nothing is bound or announced, and serve exits 0.
    hold_signals()
    demo = asyncio.run(_prepare(settings))
    if stop_requested():
        return 0
    try:
        sock = _listening(host, port)
    except (OSError, OverflowError) as exc:
        reason = _why_not_bound(exc)
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ConfigError(
            f"cannot listen on {where} (GATEWAY_HOST or --host, GATEWAY_PORT or"
            f" --port): {reason}"
        ) from None
    # Printed and signed URLs (and the local CDN's redirects) follow the
    # address actually bound (--host, --port, and --port 0's pick), unless
    # GATEWAY_PUBLIC_URL names another.
    bound_port: int = sock.getsockname()[1]
    settings = dataclasses.replace(
        settings,
        server=dataclasses.replace(settings.server, host=host, port=bound_port),
    )

    def announce() -> None:
        _announce(settings, demo is not None, output)

    # This serve's workers publish their figures in a directory of its own:
    # another serve on the same data dir (blue/green on one host) neither
    # counts them nor removes them.
    peers = settings.data_dir / "metrics" / str(os.getpid())
    _swept(peers.parent)
    if workers > 1:
        # Where they publish: made now, so that a data directory that cannot
        # hold it (`metrics` a file) stops start-up in one line; else every
        # scrape counted the answering worker alone, and nothing said so.
        with data_dir_faults(settings):
            peers.mkdir(parents=True, exist_ok=True)

    def work(slot: int) -> int:
        app = create_app(settings)
        if workers > 1:
            app[METRICS].peers = peers
            app[METRICS].worker = str(slot)
            app.cleanup_ctx.append(_published_metrics)
        app.cleanup_ctx.append(_frozen_heap)
        try:
            _loop_runner()(_run(app, settings, sock, output))
        except ConfigError as exc:
            print(f"image-gateway: {exc}", file=sys.stderr)
            return 2
        except (CatalogError, OriginalsUnavailableError) as exc:
            if workers == 1:
                raise  # serve's own start-up: one line, exit 2 (`main`)
            # A worker (re)started while the catalog or the originals' store
            # cannot be read: one line, and the parent starts another. It
            # went unsaid: "exited with 1" at every restart, and an
            # unrelated asyncio traceback.
            log.error("worker %d could not start: %s", slot, exc)
            return 1
        return 0

    if workers == 1:
        hold_signals()
        announce()
        with sock:
            return work(0)
    # A worker's own shutdown takes at most GATEWAY_DRAIN_DELAY plus
    # GATEWAY_SHUTDOWN_TIMEOUT; one still running well past that is wedged.
    stop_within = (
        settings.server.drain_delay + settings.server.shutdown_timeout + _WEDGED
    )
    return supervise(workers, sock, work, announce, stop_within=stop_within)


def _why_not_bound(exc: OSError | OverflowError) -> str:
    """The reason, once: `socket.create_server`'s strerror names the address
    again ("… (while attempting to bind on address ('127.0.0.1', 8080))")."""
    if isinstance(exc, OSError) and not isinstance(exc, socket.gaierror) and exc.errno:
        return os.strerror(exc.errno)
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _listening(host: str, port: int) -> socket.socket:
    """The socket every worker accepts on: an IPv6 one for an IPv6 address
    (`::1`, `::`), which `socket.create_server` refuses to bind unless told
    ("Address family for hostname not supported"); IPv4 for the rest, names
    included (`localhost` stays 127.0.0.1 wherever it also names ::1)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=_BACKLOG)


# They log credentials at DEBUG: botocore each signed request's headers (the
# access key id, SigV4 signatures).
_CHATTY: Final = ("botocore", "aiobotocore")


def quiet_chatty_loggers() -> None:
    """At `GATEWAY_LOG_LEVEL=DEBUG`, the libraries in `_CHATTY` still log
    from INFO up: no credential reaches a log line."""
    level = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(level)


def _swept(root: Path) -> None:
    """Remove what earlier serves left in `root`: the directories of those no
    longer running, and the loose files of releases before them."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdecimal() and alive(int(entry.name)):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop's when it is installed (`pip install image-gateway[uvloop]`), else asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")  # an optional extra
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    return run


async def _prepare(settings: Settings) -> Demo | None:
    with data_dir_faults(settings):
        store = await open_catalog(settings)
    try:
        demo = await _seeded(store, settings)
        guest = settings.ingest.guest_issuer
        if (
            settings.ingest.guest_uploads
            and guest
            and await store.issuer(guest) is None
        ):
            # Else every guest upload would be a 500 (no such issuer to own it).
            raise ConfigError(
                f"GATEWAY_GUEST_ISSUER {guest} is no issuer of this catalog"
            )
        return demo
    finally:
        await store.close()


async def _seeded(store: CatalogStore, settings: Settings) -> Demo | None:
    """The originals' store checked; with `--demo`, the demo seeded."""
    async with open_store(settings) as originals:
        await originals.check()
        if not settings.server.demo:
            return None
        async with uploader(settings, originals) as cdn:
            try:
                return await seed_demo(store, originals, settings, cdn)
            except ApiError as exc:
                raise ConfigError(
                    f"serve --demo: the demo originals could not be uploaded: {exc.detail}"
                ) from None


async def _run(
    app: web.Application, settings: Settings, sock: socket.socket, output: Sink
) -> None:
    """Serve until SIGINT or SIGTERM, behind the connection guard, then drain.

    Not `web.run_app`: its sites hand connections to aiohttp's protocol
    directly, and the guard (`gateway.ops.ConnectionGuard`) must stand between.
    On a signal, `/readyz` answers 503 at once, the listener stays open for
    `GATEWAY_DRAIN_DELAY` (a load balancer's time to notice), then closes;
    requests in flight (renders and uploads too, their bodies still read) get
    `GATEWAY_SHUTDOWN_TIMEOUT` to finish, each answered with `Connection:
    close`.
    """
    server_settings = settings.server
    runner = app_runner(app, settings, log_stream=output)
    with data_dir_faults(settings):
        try:
            await runner.setup()  # start-up: the catalog opens, the demo is seeded
        except BaseException:
            # What started before the failure stops (the render threads, the
            # originals' store), rather than be torn down by `asyncio.run`'s
            # end with an unrelated traceback.
            await runner.cleanup()
            raise
    try:
        loop = asyncio.get_running_loop()
        # asyncio listens on the socket again, with a backlog of 100 unless told.
        server = await loop.create_server(
            guarded(runner, settings), sock=sock, backlog=_BACKLOG
        )
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if (parent := lifeline()) is not None:
            loop.add_reader(parent, stop.set)
        if stop_requested():  # a signal came while starting
            stop.set()
        await stop.wait()
        if parent is not None:
            loop.remove_reader(parent)  # it stays readable: read it no more
        lifecycle = app[LIFECYCLE]
        lifecycle.draining = True
        await asyncio.sleep(server_settings.drain_delay)
        server.close()  # no new connections
        # The requests under way finish with their connections still read:
        # aiohttp's shutdown stops reading at once, and an upload whose body
        # was still arriving would wait for it until the timeout cut it.
        deadline = loop.time() + server_settings.shutdown_timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(server_settings.shutdown_timeout):
                await lifecycle.quiet()
        # Then aiohttp's: idle connections closed, answers being written
        # finished, within what is left of the same timeout.
        assert runner.server is not None  # noqa: S101 - set up above
        runner.server.pre_shutdown()
        await runner.server.shutdown(max(_LAST_MOMENT, deadline - loop.time()))
    finally:
        await runner.cleanup()
        JsonAccessLogger.flush()


def app_runner(
    app: web.Application, settings: Settings, *, log_stream: Sink
) -> web.AppRunner:
    """The runner `serve` uses: the JSON access log (unless turned off) to `log_stream`."""
    JsonAccessLogger.configure(
        trusted_proxies=settings.server.trusted_proxies, stream=log_stream
    )
    return web.AppRunner(
        app, shutdown_timeout=settings.server.shutdown_timeout, **_protocol(settings)
    )


def guarded(runner: web.AppRunner, settings: Settings) -> ConnectionGuard:
    """The protocol factory `serve` listens with: the runner's protocol, as
    `JsonApiRequestHandler` (the same options), behind the guard."""
    server = runner.server
    assert server is not None  # noqa: S101 - the runner is set up
    # What each connection's protocol calls with the requests it parses.
    server.request_handler = routed_within_bounds(server.request_handler)
    loop = asyncio.get_running_loop()
    return ConnectionGuard(
        functools.partial(
            JsonApiRequestHandler,
            server,
            loop=loop,
            **protocol_options(settings),
            **_protocol(settings),
            debug=loop.get_debug(),  # as the app sets it (asyncio's debug mode)
        ),
        max_connections=settings.server.max_connections,
        header_timeout=settings.server.header_timeout,
    )


def _protocol(settings: Settings) -> dict[str, Any]:
    """The access log options of aiohttp's per-connection protocol; the rest
    are the app's (`protocol_options`)."""
    return {
        "access_log_class": JsonAccessLogger,
        "access_log": logging.getLogger("aiohttp.access")
        if settings.server.access_log
        else None,
    }


def _announce(settings: Settings, demo: bool, output: Sink) -> None:
    """What a newcomer should open first: a page (a signed URL opened directly
    downloads the picture, by the base chain's `fl_attachment`).

    Only once bound: nothing is announced as if up before it is. Plain text
    for a person at a terminal; anywhere else (a container's log, a pipe)
    stdout is a stream of JSON lines that a log shipper parses whole, so the
    lines are JSON records too, the URL in a field of its own.
    """
    server = settings.server
    bound = URL.build(scheme="http", host=server.host, port=server.port)
    lines = [("image-gateway listening on", bound)]
    if demo:
        lines.append(("open the demo page:", settings.base_url / "demo"))
    else:
        lines.append(("links to everything:", settings.base_url))
    plain = sys.stdout.isatty()
    for text, url in lines:
        if plain:
            print(f"{text} {url}", file=output)
        else:
            # Printed whatever GATEWAY_LOG_LEVEL says, as in plain text: the
            # URL of a `--port 0` is read from here.
            record = logging.makeLogRecord(
                {"name": "gateway", "msg": f"{text} {url}", "url": str(url)}
            )
            record.levelno, record.levelname = logging.INFO, "INFO"
            print(JsonFormatter().format(record), file=output)
    output.flush()


async def _published_metrics(app: web.Application) -> AsyncIterator[None]:
    """Publish this worker's figures every second, for its siblings' scrapes."""
    metrics = app[METRICS]

    async def publish() -> None:
        while True:
            await metrics.published()
            await asyncio.sleep(_PUBLISH_SECONDS)

    task = asyncio.get_running_loop().create_task(publish())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # Its last figures count on.
    await metrics.published()


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
