"""Per-request cost of the 302 path without sockets: the gateway against a floor.

`bench_redirect.py` is the end-to-end measure, but loopback, the kernel and wrk
add noise of several percent on a shared machine. This script feeds raw HTTP
requests to aiohttp's own protocol object (the one a server socket would feed)
with an in-memory transport, one request at a time, and times how long each
takes until its response is written. The gateway runs as `serve` runs it
(its JSON access log on, to /dev/null; behind the connection guard); the
floor is a minimal aiohttp app answering the gateway's own 302, captured in
the same run, without a log. Each round loads both back to back; the ratio
is the median of the per-round ratios.

  warm   the same token again and again
  cold   a new token per request for the same tiling (distinct per round)

Tokens are seed-shaped, as in `bench_redirect.py`.

`--layers` also loads, in the same warm rounds, the gateway without its access
log, without its middleware (`Frame`: request ids, timing, counts, JSON:API
errors), with a pass-through middleware in its place (what aiohttp's running
of any middleware costs), and without both: what each layer costs a cached redirect, and the
best ratio the rest of the path (router, guard, handler) leaves room for.

`--bound` asks what any gateway could reach on this stack while it keeps what
the rules require: an aiohttp middleware (request ids, JSON:API errors; the
rules have aiohttp used as designed, its middlewares) and an access log on
aiohttp's `AbstractAccessLogger`, on by default. In the same warm rounds it
loads the floor's own handler with an empty middleware, and with the least
such a middleware and log could do (the middleware sets an id; the log
writes a JSON line of every field, unescaped and unredacted, so less than any
real one, and counts the request with aiohttp's own timing; no `X-Runtime`,
no `Server`); for comparison, the same least frame as a handler wrapper
instead of a middleware; then the gateway with an empty middleware and no log
(its router, guard and handler). The floor's handler is the cheapest a 302
can be, so the middleware line bounds every gateway that has one; the
estimate adds the least middleware and log to the gateway's own path. The
answers differ only by the frame's headers (the floor replays the gateway's,
with aiohttp's `Server`).

Usage: python scripts/bench_inprocess.py [--requests 5000] [--rounds 5] [--layers] [--bound]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from time import time as _clock
from typing import ClassVar, Final, TextIO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware

# Run as `python scripts/NAME.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import Settings, create_app
from gateway.cli.serve import app_runner, guarded
from scripts.bench_redirect import (
    CLOUDINARY_URL,
    GENERATED,
    floor_app,
    path,
    seed,
    seed_token,
)
from scripts.seed004 import tiling


class _MemoryTransport(asyncio.Transport):
    """Accepts what aiohttp writes and remembers the last response."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.last = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        self.last = bytes(data)

    def writelines(
        self, list_of_data: Iterable[bytes | bytearray | memoryview]
    ) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Connection:
    """One keep-alive connection into an app, driven request by request."""

    def __init__(self, factory: Callable[[], asyncio.Protocol]) -> None:
        self._protocol = factory()
        self._transport = _MemoryTransport()
        self._protocol.connection_made(self._transport)

    async def send(self, requests: Sequence[bytes]) -> float:
        """CPU seconds per request, each sent once the previous answer was written.

        The thread's CPU time, not the clock's: on a shared machine another
        process's work would otherwise count against whichever side it hit.
        """
        started = time.thread_time()
        for raw in requests:
            before = self._transport.writes
            self._protocol.data_received(raw)
            # Polling, not an Event: it adds the least to every request measured.
            while self._transport.writes == before:  # noqa: ASYNC110
                await asyncio.sleep(0)
        return (time.thread_time() - started) / len(requests)

    @property
    def last(self) -> bytes:
        return self._transport.last


def _raw(request_path: str) -> bytes:
    return f"GET {request_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _floor(response: bytes) -> web.Application:
    """The floor app answering `response`, a 302 captured from the gateway."""
    head, _, body = response.partition(b"\r\n\r\n")
    headers = [
        (name, value)
        for line in head.decode().split("\r\n")[1:]
        for name, _, value in [line.partition(": ")]
        if name.lower() not in GENERATED
    ]
    return floor_app(headers, body)


async def _floor_started(app: web.Application) -> tuple[web.AppRunner, _Connection]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    return runner, _Connection(runner.server)


async def _gateway_started(
    settings: Settings, log: TextIO, *, middleware: str = "frame"
) -> tuple[web.AppRunner, _Connection]:
    """As `serve` runs it: the JSON access log on (to `log`), behind the guard."""
    app = create_app(settings)
    # Replaced before setup freezes them: a measurement only.
    if middleware == "none":
        app.middlewares.clear()
    elif middleware == "pass-through":
        app.middlewares[:] = [_pass_through]
    runner = app_runner(app, settings, log_stream=log)
    await runner.setup()
    return runner, _Connection(guarded(runner, settings))


async def _compare(
    floor_app: web.Application,
    settings: Settings,
    log: TextIO,
    batches: Sequence[Sequence[bytes]],
) -> tuple[float, float, float]:
    """Best seconds per request for each, and the median of per-round ratios.

    Each round loads both back to back (alternating which goes first), so a
    drift of the machine's speed hits both alike.
    """
    floor_runner, floor = await _floor_started(floor_app)
    gateway_runner, gateway = await _gateway_started(settings, log)
    try:
        for connection in (floor, gateway):
            await connection.send(batches[0][:200])
            if b" 302 " not in connection.last[:16]:
                raise RuntimeError(f"expected a 302, got {connection.last[:200]!r}")
        floors, gateways = [], []
        for r, batch in enumerate(batches[1:]):
            first, second = (floor, gateway) if r % 2 == 0 else (gateway, floor)
            timed = {id(first): await first.send(batch)}
            timed[id(second)] = await second.send(batch)
            floors.append(timed[id(floor)])
            gateways.append(timed[id(gateway)])
    finally:
        await gateway_runner.cleanup()
        await floor_runner.cleanup()
    ratios = [f / g for f, g in zip(floors, gateways, strict=True)]
    return min(floors), min(gateways), statistics.median(ratios)


async def _interleaved(
    connections: Sequence[_Connection], batches: Sequence[Sequence[bytes]]
) -> list[list[float]]:
    """Each batch sent on every connection in turn, the order reversed every
    other round; seconds per request, a list per connection."""
    timed: list[list[float]] = [[] for _ in connections]
    for r, batch in enumerate(batches):
        order = list(enumerate(connections))
        for index, connection in order if r % 2 == 0 else order[::-1]:
            timed[index].append(await connection.send(batch))
    return timed


@web.middleware
async def _pass_through(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)


# Variants for `--layers`: what is left out of the gateway.
_LAYERS: Final = (
    ("gateway", True, "frame"),
    ("no log", False, "frame"),
    ("no middleware", True, "none"),
    ("pass-through", True, "pass-through"),
    ("neither", False, "none"),
)


async def _layers(
    floor_app: web.Application,
    settings: Settings,
    log: TextIO,
    batches: Sequence[Sequence[bytes]],
) -> None:
    """Each variant of `_LAYERS` against the floor, all in the same rounds."""
    started = [await _floor_started(floor_app)]
    for _, access_log, middleware in _LAYERS:
        server = dataclasses.replace(settings.server, access_log=access_log)
        varied = dataclasses.replace(settings, server=server)
        started.append(await _gateway_started(varied, log, middleware=middleware))
    connections = [connection for _, connection in started]
    try:
        for connection in connections:
            await connection.send(batches[0][:200])
        for (name, _, middleware), connection in zip(
            _LAYERS, connections[1:], strict=True
        ):
            # Each variant still answers the 302, with or without its frame.
            head = connection.last.partition(b"\r\n\r\n")[0]
            framed = middleware == "frame"
            if b" 302 " not in head[:16] or (b"X-Request-Id" in head) != framed:
                raise RuntimeError(f"{name}: unexpected answer {head[:300]!r}")
        timed = await _interleaved(connections, batches[1:])
    finally:
        for runner, _ in reversed(started):
            await runner.cleanup()
    floors, variants = timed[0], timed[1:]
    print(f"\nwarm, by layer: {'µs':>8} {'ratio':>6}")
    print(f"{'floor':<15} {min(floors) * 1e6:>8.2f}")
    best = {}
    for (name, _, _), seconds in zip(_LAYERS, variants, strict=True):
        ratio = statistics.median(f / g for f, g in zip(floors, seconds, strict=True))
        best[name] = min(seconds)
        print(f"{name:<15} {best[name] * 1e6:>8.2f} {ratio:>5.2f}x")
    whole = best["gateway"]
    print(
        f"the access log costs {(whole - best['no log']) * 1e6:.1f} µs, the "
        f"middleware {(whole - best['no middleware']) * 1e6:.1f} µs (aiohttp's "
        f"running of one {(best['pass-through'] - best['no middleware']) * 1e6:.1f}"
        f" µs); at 0.80x the "
        f"gateway has {(min(floors) / 0.8 - min(floors)) * 1e6:.1f} µs over the floor"
    )


class _NoLine(AbstractAccessLogger):
    """Least log, and the metrics' count and timing with it (aiohttp hands the
    duration over): every field of the gateway's line, unescaped and
    unredacted, kept in a list that is dropped every 512 lines."""

    lines: ClassVar[list[str]] = []
    counted: ClassVar[list[tuple[str, int, float]]] = []

    def log(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> None:
        lines = self.lines
        lines.append(
            f'{{"time":{_clock():.3f},"request_id":"{response.headers.get("X-Request-Id")}",'
            f'"method":"{request.method}","route":"deliver","path":"{request.raw_path}",'
            f'"status":{response.status},"bytes":{response.body_length},'
            f'"duration_ms":{time * 1000:.3f},"issuer":null,'
            f'"client":"{request.remote}","user_agent":null}}'
        )
        self.counted.append(("deliver", response.status, time))
        if len(lines) >= 512:
            lines.clear()
            self.counted.clear()


_ids = itertools.count()


@web.middleware
async def _least(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Least middleware: a request id on the answer (the log counts and times)."""
    response = await handler(request)
    response.headers["X-Request-Id"] = f"0123456789abcdef01234567{next(_ids):012x}"
    return response


def _with(app: web.Application, middleware: Middleware) -> web.Application:
    app.middlewares.append(middleware)
    return app


async def _bound(
    captured: bytes,
    settings: Settings,
    log: TextIO,
    batches: Sequence[Sequence[bytes]],
) -> None:
    """The floor with an empty and with the least middleware and log (and,
    for comparison, the least frame as a handler wrapper, no middleware), and
    the gateway with an empty middleware and no log, in the same warm rounds."""

    def least_wrapped() -> web.Application:
        # The floor's own handler, framed by a wrapper instead of a middleware.
        (handler,) = [
            route.handler
            for route in _floor(captured).router.routes()
            if route.method == "GET" and route.resource is not None
            and route.resource.canonical == "/images/{image_id}"
        ]  # fmt: skip

        async def framed(request: web.Request) -> web.StreamResponse:
            return await _least(request, handler)

        app = web.Application()
        app.router.add_get("/images/{image_id}", framed)
        return app

    floors = []
    for app, logger in (
        (_floor(captured), None),
        (_with(_floor(captured), _pass_through), None),
        (_with(_floor(captured), _least), _NoLine),
        (least_wrapped(), _NoLine),
    ):
        runner = (
            web.AppRunner(app, access_log=None)
            if logger is None
            else web.AppRunner(
                app, access_log_class=logger, access_log=logging.getLogger("bound")
            )
        )
        await runner.setup()
        assert runner.server is not None
        floors.append((runner, _Connection(runner.server)))
    server = dataclasses.replace(settings.server, access_log=False)
    skeleton = dataclasses.replace(settings, server=server)
    started = [
        *floors,
        await _gateway_started(skeleton, log, middleware="pass-through"),
        await _gateway_started(settings, log),
    ]
    connections = [connection for _, connection in started]
    try:
        for connection in connections:
            await connection.send(batches[0][:200])
            if b" 302 " not in connection.last[:16]:
                raise RuntimeError(f"expected a 302, got {connection.last[:200]!r}")
        timed = await _interleaved(connections, batches[1:])
    finally:
        for runner, _ in reversed(started):
            await runner.cleanup()
    names = (
        "floor",
        "floor, empty middleware",
        "floor, least middleware and log",
        "floor, least wrapper and log",
        "gateway, empty middleware, no log",
        "gateway",
    )
    best = [min(seconds) * 1e6 for seconds in timed]
    print(f"\nwarm, bound: {'µs':>22} {'ratio':>6}")
    for name, seconds, micro in zip(names, timed, best, strict=True):
        ratio = statistics.median(f / g for f, g in zip(timed[0], seconds, strict=True))
        print(f"{name:<33} {micro:>8.2f} {ratio:>5.2f}x")
    least = best[2] - best[1]
    estimate = best[4] + least
    print(
        f"the least middleware and log cost {least:.1f} µs over an empty middleware; "
        f"on the gateway's own path that is {estimate:.2f} µs, "
        f"{best[0] / estimate:.2f}x (0.80x is {best[0] / 0.8:.2f} µs)"
    )


async def _run(args: argparse.Namespace, work: Path, log: TextIO) -> None:
    await seed(work)
    settings = Settings.from_env(
        {"GATEWAY_DATA_DIR": str(work), "CLOUDINARY_URL": CLOUDINARY_URL}
    )
    warm_path = path(seed_token(tiling()))
    warm = [[_raw(warm_path)] * args.requests] * (args.rounds + 1)
    cold = [
        [_raw(path(seed_token(tiling()))) for _ in range(args.requests)]
        for _ in range(args.rounds + 1)
    ]
    runner, probe = await _gateway_started(settings, log)
    try:
        await probe.send([_raw(warm_path)])
        captured = probe.last
    finally:
        await runner.cleanup()

    print(
        f"{args.rounds} rounds of {args.requests} requests; CPU µs per request (best "
        "round) and the median of per-round ratios\n"
    )
    print(f"{'case':<6} {'floor':>8} {'gateway':>8} {'extra':>8} {'ratio':>6}")
    for case, batches in (("warm", warm), ("cold", cold)):
        floor, gateway, ratio = await _compare(_floor(captured), settings, log, batches)
        print(
            f"{case:<6} {floor * 1e6:>8.2f} {gateway * 1e6:>8.2f} "
            f"{(gateway - floor) * 1e6:>8.2f} {ratio:>5.2f}x"
        )
    if args.layers:
        await _layers(_floor(captured), settings, log, warm)
    if args.bound:
        await _bound(captured, settings, log, warm)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--layers", action="store_true", help="what the log and middleware cost"
    )
    parser.add_argument(
        "--bound", action="store_true", help="the best any gateway could reach here"
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-inprocess-") as tmp,
        Path(os.devnull).open("w") as log,
    ):
        asyncio.run(_run(args, Path(tmp), log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
