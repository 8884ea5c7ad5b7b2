"""What aiohttp's parser refuses is answered as the app answers, through the
protocol `serve` listens with (`app_runner` and `guarded`), not a test server."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from gateway import Settings
from gateway.app import create_app
from gateway.catalog import CatalogStore
from gateway.cli.serve import app_runner, guarded
from gateway.http.middlewares import ParserErrorsInOneLine
from gateway.http.protocol import MAX_PATH_SEGMENTS
from gateway.ops.access_log import JsonAccessLogger
from gateway.ops.logs import JsonFormatter
from tests.conftest import SEED_IMAGE
from tests.helpers import exchange, parsed

IMAGE = f"/images/{SEED_IMAGE}"
# aiohttp's C parser calls a malformed header a bad message, its Python one
# (AIOHTTP_NO_EXTENSIONS) an invalid header.
_HEADER_FAULT = ("the request is not valid HTTP/1.1", "a request header is malformed")
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJzZWVkIn0.c2VjcmV0LXNpZ25hdHVyZQ"


class Served:
    def __init__(self, port: int, log: io.StringIO) -> None:
        self.port = port
        self.log = log

    async def access_log(self) -> list[str]:
        """The access log's lines, once it has some (it is written after the
        answer, in batches)."""
        for _ in range(100):
            JsonAccessLogger.flush()
            if lines := self.log.getvalue().splitlines():
                return lines
            await asyncio.sleep(0.02)
        return []

    async def raw(self, head: bytes) -> tuple[str, dict[str, str], bytes]:
        """Status line, headers and body of the answer to `head` (sent as is)."""
        return await exchange("127.0.0.1", self.port, head + b"\r\n")


@pytest.fixture
async def served(settings: Settings, catalog: CatalogStore) -> AsyncIterator[Served]:
    log = io.StringIO()
    # As `serve` runs by default: the access log on.
    settings = replace(settings, server=replace(settings.server, access_log=True))
    runner = app_runner(create_app(settings), settings, log_stream=log)
    await runner.setup()
    server = await asyncio.get_running_loop().create_server(
        guarded(runner, settings), "127.0.0.1", 0
    )
    logger = logging.getLogger("aiohttp.server")
    quiet = ParserErrorsInOneLine()
    logger.addFilter(quiet)
    try:
        yield Served(server.sockets[0].getsockname()[1], log)
    finally:
        logger.removeFilter(quiet)
        server.close()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("head", "detail"),
    [
        (
            f"GET {IMAGE}?token={TOKEN}\x01 HTTP/1.1\r\nHost: x\r\n".encode(),
            "the request target is not a valid URL",
        ),
        (
            f"GET {IMAGE}?token={TOKEN} HTTP/1.1\r\nHost: x\r\nX-A: {TOKEN}\r\n"
            f"X-{TOKEN}\x01: 1\r\n".encode(),
            _HEADER_FAULT,
        ),
        (
            f"GET {IMAGE}?token={TOKEN} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {TOKEN}\r\n".encode(),
            _HEADER_FAULT,
        ),
        (
            f"GET {IMAGE}?token={TOKEN} HTTP/1.1\r\nHost: x\r\n"
            f"X-Long: {TOKEN * 200}\r\n".encode(),
            "the request line or a header is longer than this server accepts",
        ),
        (
            f"G\x00T {IMAGE}?token={TOKEN} HTTP/1.1\r\nHost: x\r\n".encode(),
            "the request method is not a valid HTTP method",
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n",
            None,
        ),
    ],
    ids=[
        "control-byte-in-target",
        "bad-header-name",
        "bad-length",
        "long-header",
        "bad-method",
        "tls-hello",
    ],
)
async def test_a_request_the_parser_refuses_gets_a_json_api_400_with_an_id(
    served: Served, head: bytes, detail: str | tuple[str, ...] | None
) -> None:
    status, headers, body = await served.raw(head)
    assert status.endswith(" 400 Bad Request"), status
    assert headers["content-type"] == "application/vnd.api+json"
    assert headers["server"] == "image-gateway"
    assert headers["cache-control"] == "no-store"
    (error,) = json.loads(body)["errors"]
    assert error["id"] == headers["x-request-id"]
    assert error["code"] == "bad_request"
    if isinstance(detail, str):
        assert error["detail"] == detail
    elif detail is not None:
        assert error["detail"] in detail
    # Nothing of the input comes back, nor goes to the access log.
    assert TOKEN.encode() not in body
    assert b"c2VjcmV0" not in body
    (line,) = await served.access_log()
    logged = json.loads(line)
    assert logged["request_id"] == headers["x-request-id"]
    assert logged["status"] == 400
    assert "c2VjcmV0" not in line


async def test_its_log_line_is_a_warning_naming_the_answers_id(
    served: Served,
) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("aiohttp.server")
    logger.addHandler(handler)
    try:
        _, headers, _ = await served.raw(f"GET /\x01{TOKEN} HTTP/1.1\r\n".encode())
    finally:
        logger.removeHandler(handler)
    (line,) = lines.getvalue().splitlines()
    assert json.loads(line) == {
        "time": json.loads(line)["time"],
        "level": "WARNING",
        "logger": "aiohttp.server",
        "message": "refused a request aiohttp could not parse: InvalidURLError (400)",
        "request_id": headers["x-request-id"],
    }


@pytest.mark.parametrize(
    "token", ["A" * 12_000, "%F0%90%80%80"], ids=["long", "encoded"]
)
async def test_the_apps_protocol_options_hold_for_serves_protocol(
    served: Served, settings: Settings, token: str
) -> None:
    """A token past aiohttp's default 8190-byte line, even one whose every
    character is percent-encoded from four bytes, reaches our own check."""
    if token.startswith("%"):
        token *= settings.tokens.max_bytes + 1
    status, headers, body = await served.raw(
        f"GET {IMAGE}?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
    )
    assert status.endswith(" 400 Bad Request"), status
    assert json.loads(body)["errors"][0]["code"] == "token_too_large"
    assert headers["x-request-id"]


async def test_a_request_it_parses_is_answered_by_the_app(served: Served) -> None:
    status, headers, _ = await served.raw(
        b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    )
    assert status.endswith(" 200 OK"), status
    assert headers["x-request-id"]


async def test_serves_protocol_has_the_options_the_runner_would_give_it(
    settings: Settings, catalog: CatalogStore
) -> None:
    """`guarded` makes aiohttp's protocol itself: with every option the app's
    runner would have passed (`Server._kwargs`, aiohttp's own record of them)."""
    runner = app_runner(create_app(settings), settings, log_stream=io.StringIO())
    await runner.setup()
    try:
        factory = guarded(runner, settings)._factory
        assert isinstance(factory, functools.partial)
        assert runner.server is not None
        assert factory.keywords == {"loop": asyncio.get_running_loop()} | dict(
            runner.server._kwargs
        )
    finally:
        await runner.cleanup()


async def test_what_aiohttp_logs_below_warning_is_not_raised_to_one(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A TLS hello on a plain port, as a connection's first request: aiohttp
    logs it at DEBUG (scanners send them all day); the filter keeps it there."""
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    status, _, _ = await served.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert status.endswith(" 400 Bad Request"), status
    (record,) = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelno == logging.DEBUG
    assert record.exc_info is None


async def _answered_in(
    served: Served, path: str
) -> tuple[float, str, dict[str, str], bytes]:
    """The quickest of three answers to GET `path`: its time, status, headers
    and body."""
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
    started = time.perf_counter()
    status, headers, body = await served.raw(head)
    best = time.perf_counter() - started
    for _ in range(2):
        started = time.perf_counter()
        await served.raw(head)
        best = min(best, time.perf_counter() - started)
    return best, status, headers, body


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/images" + "/" * 45_000, id="slashes"),
        pytest.param("/images" + "/./a" * 11_000, id="dot-segments"),
        pytest.param("/images" + "/a" * 22_000 + "?token=x/y", id="segments"),
    ],
)
async def test_a_path_deeper_than_any_route_is_refused_before_routing(
    served: Served, path: str
) -> None:
    """aiohttp's router tries every prefix of a path, copying it each time:
    45,000 slashes took 300 ms of the event loop."""
    took, status, headers, body = await _answered_in(served, path)
    assert status.endswith(" 404 Not Found"), status
    assert json.loads(body)["errors"][0]["code"] == "route_not_found"
    assert "x-runtime" not in headers  # the app (its middleware) never saw it
    assert took < 0.05, f"{took * 1000:.0f} ms"


async def test_a_path_as_deep_as_the_deepest_accepted_is_routed(
    served: Served,
) -> None:
    deepest = "/" * MAX_PATH_SEGMENTS
    _, status, headers, _ = await _answered_in(served, deepest)
    assert status.endswith(" 404 Not Found"), status
    assert "x-runtime" in headers  # answered by the app
    _, _, headers, _ = await _answered_in(served, deepest + "/")
    assert "x-runtime" not in headers  # one more: refused before routing
    # A slash in the query is no segment: /status?… is answered as /status.
    query = "?next=" + "/" * (2 * MAX_PATH_SEGMENTS)
    _, status, _, _ = await _answered_in(served, "/status" + query)
    assert status.endswith(" 200 OK"), status


@pytest.mark.parametrize(
    ("path", "expect", "version", "status"),
    [
        pytest.param("/status", "foo", "1.1", 417, id="unknown"),
        pytest.param("/nowhere", "foo", "1.1", 417, id="unknown-on-no-route"),
        pytest.param("/status", "100-continue, foo", "1.1", 417, id="list"),
        pytest.param("/status", "100-Continue", "1.1", 200, id="continue"),
        pytest.param("/status", "foo", "1.0", 200, id="http-1.0-has-no-expect"),
        pytest.param("/status", "", "1.1", 200, id="empty-is-none"),
    ],
)
async def test_an_expectation_is_met_or_refused_as_json_api(
    served: Served, path: str, expect: str, version: str, status: int
) -> None:
    """aiohttp answers an unknown `Expect` before any middleware, in plain
    text that echoes it, without a request id."""
    head = f"GET {path} HTTP/{version}\r\nHost: x\r\nExpect: {expect}\r\n"
    line, headers, body = await served.raw(f"{head}Connection: close\r\n".encode())
    if line.endswith(" 100 Continue"):  # the interim answer, then the answer
        line, headers, body = parsed(body)
    assert f" {status} " in line, line
    assert "x-request-id" in headers
    if status == 417:
        assert headers["content-type"] == "application/vnd.api+json"
        (error,) = json.loads(body)["errors"]
        assert error["code"] == "expectation_failed"
        assert error["id"] == headers["x-request-id"]
        assert expect not in body.decode()
