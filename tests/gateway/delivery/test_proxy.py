"""The proxy of a signed Cloudinary URL, with Cloudinary stood in by a loopback server.

A test route of the real app streams `{upstream}/{case}` through the app's
`Proxy`; the stand-in's routes play each way Cloudinary can answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from pytest_aiohttp import AiohttpClient, AiohttpServer

from gateway import Settings, create_app
from gateway.delivery.proxy import IMAGE_TYPES, sniff
from gateway.keys import METRICS, PROXY, REQUEST_ID
from tests.conftest import Client, make_settings
from tests.helpers import assert_error, eventually

# Stands for Cloudinary's `s--…--` signature: never in an error or a log line.
SIGNATURE: Final = "s--Zm9vYmFyYmF6--"
CAP: Final = 256 * 1024
# Also bounds the answers that should arrive: wide enough for a loaded machine.
READ_TIMEOUT: Final = 1.0
CHUNK: Final = 16 * 1024


def encoded(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A noisy picture (so that JPEG cannot squeeze it to nothing), encoded."""
    noise = hashlib.shake_256(fmt.encode()).digest(size[0] * size[1] * 3)
    image = Image.frombytes("RGB", size, noise)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


JPEG_BYTES: Final = encoded("JPEG", (200, 150))


@dataclass
class Upstream:
    """What the stand-in saw: connections, and whether an endless body stopped."""

    base: str = ""
    peers: list[object] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def stand_in(state: Upstream) -> web.Application:
    """Cloudinary's delivery host, playing one way of answering per path."""

    async def hang() -> None:
        # Past any timeout under test, released when the test ends.
        await asyncio.wait_for(state.release.wait(), 5)

    async def answer(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        state.peers.append(request.transport.get_extra_info("peername"))
        assert request.query.get("sig") == SIGNATURE
        match request.match_info["case"]:
            case "image.jpg":
                return web.Response(body=JPEG_BYTES, content_type="image/jpeg")
            case "image.png":
                return web.Response(body=encoded("PNG"), content_type="image/png")
            case "chunked.jpg":
                response = web.StreamResponse()
                response.content_type = "image/jpeg"
                await response.prepare(request)
                for start in range(0, len(JPEG_BYTES), CHUNK):
                    await response.write(JPEG_BYTES[start : start + CHUNK])
                await response.write_eof()
                return response
            case "missing":
                return web.Response(status=404, text="Resource not found")
            case "broken":
                return web.Response(status=500, text="Internal error")
            case "redirect":
                raise web.HTTPFound("/image.jpg")
            case "html":
                return web.Response(
                    text="<html>a login page</html>", content_type="text/html"
                )
            case "fake.jpg":
                return web.Response(
                    body=b"<html>not a JPEG</html>", content_type="image/jpeg"
                )
            case "empty.jpg":
                return web.Response(body=b"", content_type="image/jpeg")
            case "gzip.jpg":
                return web.Response(
                    body=JPEG_BYTES,
                    content_type="image/jpeg",
                    headers={"Content-Encoding": "gzip"},
                )
            case "declared-huge.jpg":
                body = JPEG_BYTES[:3] + bytes(CAP)
                return web.Response(body=body, content_type="image/jpeg")
            case "slow-answer.jpg":
                await hang()
                return web.Response(body=JPEG_BYTES, content_type="image/jpeg")
            case "slow-body.jpg":
                response = web.StreamResponse()
                response.content_type = "image/jpeg"
                response.content_length = len(JPEG_BYTES)
                await response.prepare(request)
                await response.write(JPEG_BYTES[:2])  # too few to know it
                await hang()
                return response
            case "stalls.jpg":
                return await stream(request, sent=JPEG_BYTES[:CHUNK], then_hang=True)
            case "short.jpg":
                response = web.StreamResponse()
                response.content_type = "image/jpeg"
                response.content_length = len(JPEG_BYTES)
                await response.prepare(request)
                await response.write(JPEG_BYTES[: len(JPEG_BYTES) // 2])
                await asyncio.sleep(0.05)
                request.transport.abort()
                return response
            case "endless.jpg":
                return await stream(request, sent=JPEG_BYTES[:CHUNK], pause=0.0)
            case "trickle.jpg":
                return await stream(request, sent=JPEG_BYTES[:1024], pause=0.01)
            case _:
                raise web.HTTPNotFound

    async def stream(
        request: web.Request,
        *,
        sent: bytes,
        pause: float = 0.0,
        then_hang: bool = False,
    ) -> web.StreamResponse:
        """A chunked image body without end: until the reader goes away."""
        response = web.StreamResponse()
        response.content_type = "image/jpeg"
        await response.prepare(request)
        try:
            # Without end, but not past any test: a kept connection fails one.
            async with asyncio.timeout(5):
                await response.write(sent)
                await asyncio.sleep(0.05)  # the head has gone out on its own
                if then_hang:
                    await hang()
                while True:
                    await response.write(sent)
                    await asyncio.sleep(pause)
        finally:
            state.stopped.set()

    app = web.Application()
    app.router.add_get("/{case}", answer)
    return app


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> AsyncIterator[Upstream]:
    state = Upstream()
    # Its access log would show the signed URLs the gateway asks for.
    server: TestServer = await aiohttp_server(stand_in(state), access_log=None)
    state.base = str(server.make_url("/"))
    yield state
    state.release.set()


def proxy_settings(tmp_path: Path, *, connections: int = 100) -> Settings:
    settings = make_settings(tmp_path)
    return dataclasses.replace(
        settings,
        upstream=dataclasses.replace(
            settings.upstream,
            proxy_max_bytes=CAP,
            proxy_connect_timeout=1.0,
            proxy_read_timeout=READ_TIMEOUT,
            proxy_connections=connections,
        ),
    )


def proxy_app(settings: Settings, upstream: Upstream) -> web.Application:
    """The gateway with one more route: `/proxied/{case}` streams that case."""

    async def proxied(request: web.Request) -> web.StreamResponse:
        expected = (
            IMAGE_TYPES
            if request.query.get("any") == "1"
            else frozenset({"image/jpeg"})
        )
        url = f"{upstream.base}{request.match_info['case']}?sig={SIGNATURE}"
        return await request.app[PROXY].stream(
            request,
            url,
            headers={
                "X-Request-Id": request[REQUEST_ID],
                "Cache-Control": "private, max-age=60",
            },
            expected=expected,
        )

    app = create_app(settings)
    app.router.add_get("/proxied/{case}", proxied)
    return app


async def gateway(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: Upstream
) -> Client:
    app = proxy_app(settings, upstream)
    # A connection kept open where it should be cut fails the test, not hangs it.
    return await aiohttp_client(app, timeout=aiohttp.ClientTimeout(total=5))


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, tmp_path: Path, upstream: Upstream
) -> Client:
    return await gateway(aiohttp_client, proxy_settings(tmp_path), upstream)


@pytest.mark.parametrize("case", ["image.jpg", "chunked.jpg"])
async def test_image_streams_through_whole(client: Client, case: str) -> None:
    response = await client.get(f"/proxied/{case}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers["X-Request-Id"]
    assert await response.read() == JPEG_BYTES


async def test_declared_length_is_passed_on(client: Client) -> None:
    response = await client.get("/proxied/image.jpg")
    assert response.headers["Content-Length"] == str(len(JPEG_BYTES))
    assert await response.read() == JPEG_BYTES


async def test_undeclared_length_streams_chunked(client: Client) -> None:
    response = await client.get("/proxied/chunked.jpg")
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert await response.read() == JPEG_BYTES


@pytest.mark.parametrize("case", ["image.jpg", "chunked.jpg"])
async def test_head_answers_the_headers_alone(client: Client, case: str) -> None:
    """No body after a HEAD: the next answer on the connection is read whole."""
    response = await client.head(f"/proxied/{case}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert await response.read() == b""
    after = await client.get("/proxied/image.jpg")
    assert after.status == 200
    assert await after.read() == JPEG_BYTES


async def test_a_type_the_caller_expects_passes_with_that_type(client: Client) -> None:
    response = await client.get("/proxied/image.png", params={"any": "1"})
    assert response.status == 200
    assert response.content_type == "image/png"
    assert await response.read() == encoded("PNG")


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        pytest.param("missing", 502, "upstream_error", id="404-is-502"),
        pytest.param("broken", 502, "upstream_error", id="500-is-502"),
        pytest.param("redirect", 502, "upstream_error", id="redirect-not-followed"),
        pytest.param("html", 502, "upstream_error", id="html-is-502"),
        pytest.param("image.png", 502, "upstream_error", id="unexpected-type"),
        pytest.param("fake.jpg", 502, "upstream_error", id="not-the-magic"),
        pytest.param("empty.jpg", 502, "upstream_error", id="empty-body"),
        pytest.param("gzip.jpg", 502, "upstream_error", id="content-encoded"),
        pytest.param("declared-huge.jpg", 502, "upstream_error", id="over-the-cap"),
        pytest.param("slow-answer.jpg", 504, "upstream_timeout", id="no-answer"),
        pytest.param("slow-body.jpg", 504, "upstream_timeout", id="no-first-bytes"),
    ],
)
async def test_a_failure_before_the_image_is_a_json_api_error(
    client: Client, case: str, status: int, code: str
) -> None:
    response = await client.get(f"/proxied/{case}")
    error = await assert_error(response, status, code)
    assert SIGNATURE not in str(error)


@pytest.mark.parametrize("case", ["slow-answer.jpg", "slow-body.jpg"])
async def test_a_timeout_takes_the_read_timeout_not_longer(
    client: Client, case: str
) -> None:
    started = time.monotonic()
    response = await client.get(f"/proxied/{case}")
    elapsed = time.monotonic() - started
    assert response.status == 504
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 1.0


async def test_no_upstream_is_502_after_the_connect_attempt(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: refused
        port = unused.getsockname()[1]

        async def proxied(request: web.Request) -> web.StreamResponse:
            url = f"http://127.0.0.1:{port}/x.jpg?sig={SIGNATURE}"
            return await request.app[PROXY].stream(
                request, url, headers={"X-Request-Id": request[REQUEST_ID]}
            )

        app = create_app(proxy_settings(tmp_path))
        app.router.add_get("/proxied", proxied)
        client = await aiohttp_client(app)
        response = await client.get("/proxied")
        error = await assert_error(response, 502, "upstream_error")
    assert SIGNATURE not in str(error)
    assert app[METRICS].upstream_errors["unreachable"] == 1


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("endless.jpg", id="past-the-cap"),
        pytest.param("stalls.jpg", id="stalls-past-the-read-timeout"),
        pytest.param("short.jpg", id="shorter-than-declared"),
    ],
)
async def test_a_body_failing_once_streaming_aborts_the_connection(
    client: Client, upstream: Upstream, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Our 200 is out: the client must see a broken body, never a short whole one."""
    response = await client.get(f"/proxied/{case}")
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    if case == "endless.jpg":
        await asyncio.wait_for(upstream.stopped.wait(), 5)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_body_past_the_cap_is_counted_and_cut_near_it(client: Client) -> None:
    response = await client.get("/proxied/endless.jpg")
    received: list[int] = []

    async def read() -> None:
        async for chunk in response.content.iter_any():
            received.append(len(chunk))

    with pytest.raises(aiohttp.ClientPayloadError):
        await read()
    assert sum(received) <= CAP
    metrics = client.app[METRICS]
    await eventually(lambda: metrics.upstream_errors["too_large"] == 1)


@contextlib.asynccontextmanager
async def served(
    app: web.Application, *, handler_cancellation: bool
) -> AsyncIterator[str]:
    """`app` on a loopback port, its handlers cancelled with their client or not."""
    runner = web.AppRunner(
        app, handler_cancellation=handler_cancellation, access_log=None
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "handler_cancellation",
    [
        pytest.param(False, id="as-serve-runs-it"),  # aiohttp's default
        pytest.param(True, id="handler-cancelled"),  # aiohttp's test server
    ],
)
async def test_a_client_gone_stops_the_upstream_fetch(
    tmp_path: Path,
    upstream: Upstream,
    handler_cancellation: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = proxy_app(proxy_settings(tmp_path), upstream)
    async with (
        served(app, handler_cancellation=handler_cancellation) as base,
        aiohttp.ClientSession() as session,
    ):
        response = await session.get(f"{base}/proxied/trickle.jpg")
        assert response.status == 200
        assert (await response.content.readexactly(3)) == b"\xff\xd8\xff"
        response.close()  # drops the connection mid-body
        await asyncio.wait_for(upstream.stopped.wait(), 2)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_pool_keeps_one_connection_for_sequential_fetches(
    client: Client, upstream: Upstream
) -> None:
    for _ in range(3):
        response = await client.get("/proxied/image.jpg")
        assert await response.read() == JPEG_BYTES
    assert len(upstream.peers) == 3
    assert len(set(upstream.peers)) == 1


async def test_every_way_of_failing_gives_its_connection_back(
    aiohttp_client: AiohttpClient, tmp_path: Path, upstream: Upstream
) -> None:
    """With a pool of one, a connection kept by a failure would starve the next fetch."""
    settings = proxy_settings(tmp_path, connections=1)
    client = await gateway(aiohttp_client, settings, upstream)
    for case in ("missing", "fake.jpg", "declared-huge.jpg", "slow-answer.jpg"):
        assert (await client.get(f"/proxied/{case}")).status in (502, 504)
    for case in ("endless.jpg", "stalls.jpg"):
        with pytest.raises(aiohttp.ClientPayloadError):
            await (await client.get(f"/proxied/{case}")).read()
    upstream.stopped.clear()
    gone = await client.get("/proxied/trickle.jpg")
    await gone.content.readexactly(3)
    gone.close()
    await asyncio.wait_for(upstream.stopped.wait(), 5)
    response = await client.get("/proxied/image.jpg")
    assert response.status == 200
    assert await response.read() == JPEG_BYTES


async def test_no_cookie_is_kept(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    cookies: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.Response(body=JPEG_BYTES, content_type="image/jpeg")
        response.set_cookie("tracker", "1")
        return response

    cloudinary = web.Application()
    cloudinary.router.add_get("/x.jpg", answer)
    server = await aiohttp_server(cloudinary)

    async def proxied(request: web.Request) -> web.StreamResponse:
        return await request.app[PROXY].stream(
            request, str(server.make_url("/x.jpg")), headers={}
        )

    app = create_app(proxy_settings(tmp_path))
    app.router.add_get("/proxied", proxied)
    client = await aiohttp_client(app)
    for _ in range(2):
        response = await client.get("/proxied")
        assert "Set-Cookie" not in response.headers
        assert await response.read() == JPEG_BYTES
    assert cookies == [None, None]


async def test_failures_are_counted_by_kind(client: Client) -> None:
    for case in ("missing", "html", "declared-huge.jpg", "slow-answer.jpg"):
        await client.get(f"/proxied/{case}")
    await client.get("/proxied/image.jpg")
    metrics = client.app[METRICS]
    assert metrics.upstream_errors == {
        "refused": 1,
        "not_image": 1,
        "too_large": 1,
        "timeout": 1,
    }
    assert sum(metrics.upstream["proxy"].counts) == 5
    text = await (await client.get("/metrics")).text()
    assert 'gateway_upstream_errors_total{kind="refused"} 1.0' in text
    assert 'gateway_upstream_duration_seconds_count{action="proxy"} 5.0' in text


async def test_the_signed_url_is_in_no_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for case in ("missing", "html", "slow-answer.jpg", "endless.jpg", "image.jpg"):
        response = await client.get(f"/proxied/{case}")
        with contextlib.suppress(aiohttp.ClientPayloadError):
            await response.read()
    assert caplog.records
    assert SIGNATURE not in caplog.text


FORMATS: Final = [
    pytest.param(encoded(fmt), media_type, id=fmt)
    for media_type, fmt in [
        ("image/jpeg", "JPEG"),
        ("image/png", "PNG"),
        ("image/gif", "GIF"),
        ("image/webp", "WEBP"),
        ("image/avif", "AVIF"),
    ]
]


@pytest.mark.parametrize(("head", "media_type"), FORMATS)
def test_sniff_knows_each_format_pillow_writes(head: bytes, media_type: str) -> None:
    assert sniff(head[:12]) == media_type


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xd8", id="jpeg-cut-short"),
        pytest.param(b"<!DOCTYPE html>", id="html"),
        pytest.param(b'{"error": 1}', id="json"),
        pytest.param(b"RIFF\0\0\0\0WAVE", id="riff-not-webp"),
        pytest.param(b"\0\0\0\x18ftypmp42", id="mp4-not-avif"),
    ],
)
def test_sniff_refuses_what_is_no_image(head: bytes) -> None:
    assert sniff(head) is None
