"""Hostile input to the /v1 API: each is a clear 4xx, never a 500, never inflated."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import zlib
from collections.abc import AsyncIterator

import pytest

from gateway import Settings
from gateway.catalog import ImageRecord, SqliteCatalog
from gateway.http.jsonapi import MAX_JSON_BYTES
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import SEED_ISSUER, Client
from tests.gateway.http.support import Keys, bearer
from tests.helpers import assert_error
from tests.images import RED, solid

DEEP = "[" * 30_000 + "]" * 30_000  # within the 128 KiB a JSON body may be


@pytest.fixture
async def mine(catalog: SqliteCatalog, settings: Settings) -> ImageRecord:
    return await add_original(
        catalog,
        LocalOriginalStore(settings.originals),
        settings.limits,
        issuer_id=SEED_ISSUER,
        data=solid((8, 8), RED, "PNG"),
    )


def _gzip_bomb(inflated: int) -> bytes:
    """`inflated` zero bytes, gzip-compressed about a thousandfold."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join(parts) + packer.flush()


async def test_a_compressed_body_is_never_inflated(
    client: Client, keys: Keys, mine: ImageRecord
) -> None:
    """Inflating is a bomb's fuse: a compressed body is refused, not decoded."""
    body = gzip.compress(json.dumps({"description": "zipped"}).encode())
    response = await client.patch(
        f"/v1/images/{mine.id}",
        data=body,
        headers={
            **bearer(keys.mine),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    error = await assert_error(response, 415, "content_type_unsupported")
    assert error["source"] == {"header": "Content-Encoding"}


async def test_a_gzip_bomb_sent_to_status_is_not_inflated(client: Client) -> None:
    bomb = _gzip_bomb(64 << 20)
    response = await client.get(
        "/status", data=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        pytest.param(
            "application/json; charset=x-no-such-charset",
            b"{}",
            415,
            "content_type_unsupported",
            id="unknown-charset",
        ),
        pytest.param(
            "text/plain",
            b'{"description": "x"}',
            415,  # it was read as JSON all the same
            "content_type_unsupported",
            id="not-json",
        ),
        pytest.param(
            "application/octet-stream",
            b'{"description": "x"}',
            415,
            "content_type_unsupported",
            id="octet-stream",
        ),
        pytest.param(
            "application/json; charset=utf-8; " + "a=b; " * 4,
            b"{}",
            415,  # the email package parses it, at 50 µs a parameter
            "content_type_unsupported",
            id="many-parameters",
        ),
        pytest.param(
            "application/json; x=" + "u" * 240,
            b"{}",
            415,
            "content_type_unsupported",
            id="long-content-type",
        ),
        pytest.param(
            "application/json; charset=latin-1",
            b"{}",
            415,
            "content_type_unsupported",
            id="not-utf-8",
        ),
        pytest.param(
            "application/json",
            b'{"description": "\\ud800"}',
            400,
            "bad_request",
            id="lone-surrogate",
        ),
        pytest.param(
            "application/json", DEEP.encode(), 400, "bad_request", id="deep-nesting"
        ),
        pytest.param(
            "application/json", b"\xff\xfe{}", 400, "bad_request", id="not-utf-8-bytes"
        ),
        pytest.param(
            "application/json",
            b'{"number1": ' + b"9" * 5000 + b"}",
            400,  # past Python's 4300-digit limit: not a number we read
            "bad_request",
            id="five-thousand-digits",
        ),
        pytest.param(
            "application/json",
            b'{"number1": ' + b"9" * 400 + b"}",
            422,
            "field_invalid",
            id="four-hundred-digits",
        ),
        pytest.param(
            "application/json",
            b'{"maxUnauthorised": ' + b"9" * 400 + b"}",
            422,
            "field_invalid",
            id="huge-pixels",
        ),
        pytest.param(
            "application/json",
            b'{"number2": NaN}',
            422,
            "field_invalid",
            id="nan",
        ),
    ],
)
async def test_hostile_patch_bodies_are_4xx(
    client: Client,
    keys: Keys,
    mine: ImageRecord,
    content_type: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    response = await client.patch(
        f"/v1/images/{mine.id}",
        data=body,
        headers={**bearer(keys.mine), "Content-Type": content_type},
    )
    await assert_error(response, status, code)


@pytest.mark.parametrize(
    "cursor",
    [
        # As deep as a URL aiohttp reads can hold, far past json's recursion.
        pytest.param("[" * 2500 + "]" * 2500, id="deep-nesting"),
        pytest.param('["-createdAt", "\\ud800", "x"]', id="lone-surrogate"),
        pytest.param('["\\ud800", 1, "x"]', id="lone-surrogate-sort"),
        pytest.param(
            '["-createdAt", ' + "9" * 400 + ', "x"]', id="four-hundred-digits"
        ),
        pytest.param('["-createdAt", 1e999, "x"]', id="float-infinity"),
        pytest.param('["-createdAt", 1]', id="two-members"),
        pytest.param('[["-createdAt"], 1, "x"]', id="sort-not-text"),
        pytest.param('["-createdAt", true, "x"]', id="a-bool-is-no-position"),
    ],
)
async def test_hostile_cursors_are_400(client: Client, keys: Keys, cursor: str) -> None:
    raw = base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")
    response = await client.get(
        f"/v1/images?page[after]={raw}", headers=bearer(keys.mine)
    )
    await assert_error(response, 400, "parameter_invalid", parameter="page[after]")


async def _raw_request(client: Client, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + b"Host: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize("header", ["Authorization", "X-Session-Token"])
async def test_a_credential_header_sent_twice_is_refused(
    client: Client, keys: Keys, header: str
) -> None:
    """Two could be judged by one layer (a proxy, a cache) and used by
    another; the first was taken silently."""
    good = bearer(keys.mine)["Authorization"]
    value = good if header == "Authorization" else good.removeprefix("Bearer ")
    response = await client.get(
        "/v1/images", headers=[(header, value), (header, value)]
    )
    error = await assert_error(response, 400, "parameter_ambiguous")
    assert error["source"] == {"header": header}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        pytest.param("sk_0123456789ab_" + "S" * 32, "no scheme", id="bare-api-key"),
        pytest.param(
            "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln", "no scheme", id="bare-jwt"
        ),
        pytest.param("Basic dXNlcjpwYXNz", "scheme Basic", id="basic"),
        pytest.param("Bearer", "no scheme", id="bearer-alone"),
        pytest.param("X" * 40 + " y", "no scheme", id="no-real-scheme"),
    ],
)
async def test_an_authorization_without_a_bearer_credential_is_never_echoed(
    client: Client, value: str, named: str
) -> None:
    """A key or token sent without `Bearer ` was written back in the 401."""
    response = await client.get("/v1/images", headers={"Authorization": value})
    error = await assert_error(response, 401, "api_key_missing")
    detail = str(error["detail"])
    assert f"({named})" in detail
    assert all(part not in detail for part in value.split() if len(part) > 8)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_non_ascii_bytes_in_authorization_are_401(client: Client) -> None:
    answer = await _raw_request(
        client,
        b"GET /v1/images HTTP/1.1\r\nAuthorization: Bearer sk_\xff\xfe_\xc3\x28x\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), head
    assert json.loads(body)["errors"][0]["code"] == "api_key_invalid"


@pytest.mark.parametrize(
    "content_type", ["application/vnd.api+json", "application/merge-patch+json"]
)
async def test_a_patch_may_name_its_json_by_its_own_type(
    client: Client, keys: Keys, mine: ImageRecord, content_type: str
) -> None:
    response = await client.patch(
        f"/v1/images/{mine.id}",
        data=json.dumps({"data": {"attributes": {"description": "typed"}}}),
        headers={**bearer(keys.mine), "Content-Type": content_type},
    )
    assert response.status == 200, await response.text()
    assert (await response.json(content_type=None))["data"]["attributes"][
        "description"
    ] == "typed"


@pytest.mark.parametrize(
    "target", ["PATCH /v1/images/{id}", "POST /v1/images", "PUT /v1/images"]
)
async def test_a_json_body_declared_too_large_is_413_before_it_is_awaited(
    client: Client, keys: Keys, mine: ImageRecord, target: str
) -> None:
    """Not held until the body timeout (60 s) waiting for bytes never sent."""
    method, _, path = target.partition(" ")
    head = (
        f"{method} {path.format(id=mine.id)} HTTP/1.1\r\n"
        f"Authorization: Bearer {keys.mine}\r\n"
        "Content-Type: application/json\r\nContent-Length: 99999999999\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + b"Host: x\r\n\r\n")
    try:
        # The answer, not the connection's end: aiohttp lingers reading the
        # body it was promised before it closes.
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(answer.lower().partition(b"content-length: ")[2].split(b"\r")[0])
        body = await asyncio.wait_for(reader.readexactly(length), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    error = json.loads(body)["errors"][0]
    assert error["code"] == "payload_too_large"
    assert error["source"] == {"header": "Content-Length"}


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    """`body` sent with no Content-Length (chunked), 8 KiB at a time."""
    for at in range(0, len(body), 8192):
        yield body[at : at + 8192]


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize(
    ("size", "status"), [(MAX_JSON_BYTES, 200), (MAX_JSON_BYTES + 1, 413)]
)
async def test_a_json_body_is_at_most_128_kib(
    client: Client,
    keys: Keys,
    mine: ImageRecord,
    chunked: bool,
    size: int,
    status: int,
) -> None:
    """Parsed on the event loop: a megabyte of members took 60 ms."""
    head = b'{"description": "padded"'
    body = head + b" " * (size - len(head) - 1) + b"}"
    response = await client.patch(
        f"/v1/images/{mine.id}",
        data=_chunked(body) if chunked else body,
        headers={**bearer(keys.mine), "Content-Type": "application/json"},
    )
    if status == 200:
        assert response.status == 200, await response.text()
    else:
        error = await assert_error(response, 413, "payload_too_large")
        assert f"at most {MAX_JSON_BYTES} bytes" in str(error["detail"])


async def test_a_patch_of_every_field_at_its_longest_fits(
    client: Client, keys: Keys, mine: ImageRecord
) -> None:
    """Each character an astral one, sent \\u-escaped as a surrogate pair."""
    body = json.dumps(
        {
            "description": "\U0001f600" * 2000,
            **{f"text{n}": "\U0001f600" * 1000 for n in (1, 2, 3)},
            "tags": [f"{n:02d}" + "t" * 62 for n in range(32)],
            "roles": [f"{n:02d}" + "r" * 62 for n in range(64)],
        }
    ).encode()
    assert len(body) > 64 * 1024
    response = await client.patch(
        f"/v1/images/{mine.id}",
        data=body,
        headers={**bearer(keys.mine), "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("method", "target"),
    [("PATCH", "/v1/images/{id}"), ("POST", "/v1/images")],
)
async def test_thousands_of_unknown_members_make_twenty_errors(
    client: Client, keys: Keys, mine: ImageRecord, method: str, target: str
) -> None:
    """An error object for each of 80,000 members took 230 ms to make."""
    members = {f"m{n}": 1 for n in range(5000)}
    response = await client.request(
        method,
        target.format(id=mine.id),
        json={"origin": "https://example.org/a.png", **members}
        if method == "POST"
        else members,
        headers=bearer(keys.mine),
    )
    assert response.status == 422
    errors = (await response.json(content_type=None))["errors"]
    assert len(errors) == 20
    assert errors[0]["source"] == {"pointer": "/m0"}
    assert errors[-1]["detail"] == "and 4981 more violations, not listed"


async def test_a_member_name_is_escaped_in_its_pointer(
    client: Client, keys: Keys, mine: ImageRecord
) -> None:
    response = await client.post(
        "/v1/images",
        json={"origin": "https://example.org/a.png", "a/b~c": 1},
        headers=bearer(keys.mine),
    )
    await assert_error(response, 422, "field_unknown", pointer="/a~1b~0c")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/images/00000000-0000-4000-8000-000000000000", id="delivery"),
        pytest.param("/v1/images", id="catalog"),
        pytest.param("/nowhere", id="no-route"),
    ],
)
async def test_a_query_of_too_many_parameters_is_refused_before_it_is_parsed(
    client: Client, path: str
) -> None:
    """Parsing a query costs about a microsecond a parameter, on the event loop,
    and a request line may be 50 KB: 65 parameters are refused unread."""
    query = "&".join(f"p{n}=%41" for n in range(65))
    response = await client.get(f"{path}?{query}")
    error = await assert_error(response, 400, "parameters_too_many")
    assert "65 parameters" in str(error["detail"])


async def test_a_query_of_the_most_parameters_accepted_is_answered(
    client: Client,
) -> None:
    query = "&".join(f"p{n}=%41" for n in range(64))
    response = await client.get(f"/status?{query}")
    assert response.status == 200


LONG_MULTIPART = "multipart/form-data; boundary=x" + ";a=b" * 2000


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        # Parsing 8 KB of parameters took 150 ms of the event loop.
        pytest.param(LONG_MULTIPART, 415, "content_type_unsupported", id="long"),
        pytest.param(
            "multipart/form-data; boundary=x; a=b; c=d; e=f; g=h",
            415,
            "content_type_unsupported",
            id="five-parameters",
        ),
        pytest.param(
            "multipart/form-data; charset=utf-8; boundary=" + "x" * 70,
            400,  # read as multipart, but no part was sent
            "bad_request",
            id="longest-boundary",
        ),
    ],
)
async def test_an_upload_content_type_is_bounded(
    client: Client, keys: Keys, content_type: str, status: int, code: str
) -> None:
    response = await client.post(
        "/v1/images",
        data=b"",
        headers={**bearer(keys.mine), "Content-Type": content_type},
    )
    error = await assert_error(response, status, code)
    if status == 415:
        assert error["source"] == {"header": "Content-Type"}


async def test_an_upload_content_type_is_not_read_before_the_caller_is_known(
    client: Client,
) -> None:
    response = await client.post(
        "/v1/images", data=b"", headers={"Content-Type": LONG_MULTIPART}
    )
    await assert_error(response, 401, "api_key_missing")
