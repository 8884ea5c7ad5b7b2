"""Every answer, a route's or one aiohttp would give by itself, passes the middlewares."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from gateway import Settings
from gateway.http.middlewares import ParserErrorsInOneLine
from tests.conftest import SEED_IMAGE, Client
from tests.helpers import assert_error

IMAGE = f"/images/{SEED_IMAGE}"
API_IMAGE = f"/v1/images/{SEED_IMAGE}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/index.html"),
        ("GET", "/nope"),
        ("GET", "/images"),
        ("GET", "/images/"),
        ("GET", f"{IMAGE}/more"),
        ("POST", "/nope"),
        ("GET", "/v1"),
        ("DELETE", f"{API_IMAGE}/more"),
        ("GET", "/status/"),
    ],
)
async def test_unknown_path_is_json_404(client: Client, method: str, path: str) -> None:
    response = await client.request(method, path)
    await assert_error(response, 404, "route_not_found")
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", IMAGE, "GET, HEAD"),
        ("DELETE", IMAGE, "GET, HEAD"),
        ("OPTIONS", IMAGE, "GET, HEAD"),
        ("PUT", "/status", "GET, HEAD"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("DELETE", "/v1/images", "GET, HEAD, POST, PUT"),
        ("POST", API_IMAGE, "DELETE, GET, HEAD, PATCH"),
        ("PUT", API_IMAGE, "DELETE, GET, HEAD, PATCH"),
    ],
)
async def test_wrong_method_is_json_405(
    client: Client, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    error = await assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allow
    assert allow in str(error["detail"])


async def test_head_of_an_unknown_path_is_a_bodiless_404(client: Client) -> None:
    response = await client.head("/nope")
    assert response.status == 404
    assert response.headers["X-Request-Id"]
    assert await response.read() == b""


async def _raw(client: Client, request_line: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"{request_line}\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition("\r\n\r\n")
    return head, body


async def test_options_asterisk_is_json_404(client: Client) -> None:
    """`*` matches no `/…` route; the catch-all answers it all the same."""
    head, body = await _raw(client, "OPTIONS * HTTP/1.1")
    assert head.startswith("HTTP/1.1 404 "), head
    assert "\r\nX-Request-Id: " in head
    assert "application/vnd.api+json" in head
    assert json.loads(body)["errors"][0]["code"] == "route_not_found"


async def test_connect_is_json_404(client: Client) -> None:
    """A CONNECT target has no path; aiohttp's own middlewares still run for it."""
    head, body = await _raw(client, "CONNECT example.org:443 HTTP/1.1")
    assert head.startswith("HTTP/1.1 404 "), head
    assert "\r\nX-Request-Id: " in head
    assert json.loads(body)["errors"][0]["code"] == "route_not_found"


async def test_answers_name_no_server_versions(client: Client) -> None:
    for path in ("/status", "/nope", f"{IMAGE}?token=x"):
        response = await client.get(path, allow_redirects=False)
        assert response.headers["Server"] == "image-gateway", path


async def test_a_token_longer_than_aiohttps_default_line_gets_our_400(
    client: Client,
) -> None:
    """Past 8190 bytes aiohttp's parser would answer, quoting the line."""
    head, body = await _raw(client, f"GET {IMAGE}?token={'A' * 12_000} HTTP/1.1")
    assert head.startswith("HTTP/1.1 400 "), head
    assert "\r\nX-Request-Id: " in head
    assert json.loads(body)["errors"][0]["code"] == "token_too_large"


async def test_a_percent_encoded_token_one_character_too_long_gets_our_400(
    client: Client, settings: Settings
) -> None:
    """Twelve bytes a character: `%F0%90%80%80` is one (astral) character."""
    token = "%F0%90%80%80" * (settings.tokens.max_bytes + 1)
    head, body = await _raw(client, f"GET {IMAGE}?token={token} HTTP/1.1")
    assert head.startswith("HTTP/1.1 400 "), head
    assert "\r\nX-Request-Id: " in head
    assert json.loads(body)["errors"][0]["code"] == "token_too_large"


async def test_a_request_aiohttp_refuses_is_logged_in_one_line_without_input(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("aiohttp.server")
    quiet = ParserErrorsInOneLine()
    logger.addFilter(quiet)
    try:
        head, _ = await _raw(client, f"GET /{'<script>' * 10_000} HTTP/1.1")
    finally:
        logger.removeFilter(quiet)
    assert " 400 " in head.split("\r\n")[0]
    (record,) = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.exc_info is None
    assert "<script>" not in record.getMessage()
    assert "\n" not in record.getMessage()
