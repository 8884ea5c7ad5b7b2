"""Property-based hostile input: whatever a client sends, the API never answers 5xx.

Every request goes over a raw socket, so nothing a client library would refuse
or normalise (bytes in headers, bad percent-escapes, NaN literals, lone
surrogates as JSON escapes) is kept from the server. Every answer must:

- be below 500;
- carry an `X-Request-Id` of the gateway's own shape (a hostile one is replaced);
- for a 4xx, be a JSON:API error document whose errors each carry the
  response's status, the first one's id the response's request id;
- never show a traceback.

The app is built once per test (pytest-aiohttp's function-scoped fixtures) and
every example of that test is sent to it: pytest-asyncio runs each example of
an async `@given` test on the test's loop.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import jwt
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gateway import Settings
from gateway.catalog import ImageRecord, SqliteCatalog
from gateway.keys import INGESTOR
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import OTHER_IMAGE, SEED_ISSUER, SEED_KEY, Client
from tests.gateway.http.support import Keys
from tests.helpers import exchange
from tests.images import RED, solid

PROPERTY: Final = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# aiohttp refuses request lines and header fields past 8190 bytes itself.
_MAX_LINE: Final = 8000
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_PNG: Final = solid((8, 8), RED, "PNG")
_EDITABLE: Final = (
    "description",
    "isPublic",
    "tags",
    "text1",
    "text2",
    "text3",
    "number1",
    "number2",
    "number3",
    "maxUnauthorised",
)
_READ_ONLY: Final = (
    "id",
    "type",
    "originalFilename",
    "mediaType",
    "fileSize",
    "width",
    "height",
    "createdAt",
    "updatedAt",
    "ingest",
    "cloudinary",
    "data",
    "attributes",
)
_STEP_KEYS: Final = (
    "crop",
    "width",
    "height",
    "gravity",
    "x",
    "y",
    "background",
    "opacity",
    "angle",
    "effect",
    "overlay",
    "format",
    "quality",
)


# The wire: one request per connection, the answer read to its end.


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


async def send(
    client: Client,
    method: str,
    target: str | bytes,
    headers: Sequence[tuple[str | bytes, str | bytes]] = (),
    body: bytes | None = None,
) -> Answer:
    """`method target` with exactly these header bytes and body; the parsed answer."""

    def raw(value: str | bytes) -> bytes:
        return value.encode("latin-1") if isinstance(value, str) else value

    head = raw(method) + b" " + raw(target) + b" HTTP/1.1\r\n"
    head += b"Host: gateway\r\nConnection: close\r\n"
    for name, value in headers:
        head += raw(name) + b": " + raw(value) + b"\r\n"
    if body is not None:
        head += b"Content-Length: %d\r\n" % len(body)
    assert client.host is not None
    assert client.port is not None
    status_line, fields, payload = await exchange(
        client.host, client.port, head + b"\r\n" + (body or b"")
    )
    if "chunked" in fields.get("transfer-encoding", ""):
        payload = _dechunk(payload)
    return Answer(int(status_line.split(" ")[1]), fields, payload)


def check(answer: Answer) -> None:
    """The contract every answer keeps, whatever was sent."""
    assert answer.status < 500, answer
    request_id = answer.headers.get("x-request-id", "")
    assert _REQUEST_ID.fullmatch(request_id), answer
    assert b"Traceback" not in answer.body, answer
    if answer.status < 400:
        return
    media_type = answer.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == "application/vnd.api+json", answer
    doc = json.loads(answer.body)
    assert isinstance(doc, dict), answer
    errors = doc["errors"]
    assert isinstance(errors, list), answer
    assert errors, answer
    for error in errors:
        assert isinstance(error, dict), answer
        assert error["status"] == str(answer.status), answer
        assert isinstance(error.get("code"), str), answer
    assert errors[0]["id"] == request_id, answer


def bearer(key: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {key}")


# Strategies: hostile text, and raw JSON text (NaN literals, huge numbers,
# surrogate escapes, deep nesting) that json.dumps alone cannot write.

LONE_SURROGATES: Final = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
ODD_CHARS: Final = st.sampled_from(
    ["\x00", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "\u202e", "\U0001f600"]
)
CHARS: Final = (
    st.characters() | LONE_SURROGATES | ODD_CHARS | st.characters(max_codepoint=0x1F)
)
LONG_TEXT: Final = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["a", "é", "\x00", "\U0001f600", "\ud800", " ", "9"]),
    st.integers(0, 4100),
)
TEXT: Final = st.text(CHARS, max_size=40) | LONG_TEXT
# Text for URLs, headers and query strings: short, as request lines are bounded.
SHORT_TEXT: Final = st.text(CHARS, max_size=30) | st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["a", "é", "\x00", "\ud800", "%", "["]),
    st.integers(0, 300),
)

HUGE_INT: Final = st.builds(
    lambda sign, first, rest: f"{sign}{first}{'9' * rest}",
    st.sampled_from(["", "-"]),
    st.integers(1, 9),
    st.integers(18, 5000),
)
NUMBER_LITERAL: Final = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "-0.0",
        "-0",
        "0",
        "1e400",
        "-1e400",
        "1e-400",
        "1E+2",
        "100000",
        "100001",
        "-1",
        "1.7976931348623157e308",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
    ]
)
RAW_SCALAR: Final = st.one_of(
    st.just("null"),
    st.sampled_from(["true", "false"]),
    st.integers().map(str),
    HUGE_INT,
    NUMBER_LITERAL,
    st.floats().map(json.dumps),
    TEXT.map(json.dumps),
)


def raw_object(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


def raw_array(items: Sequence[str]) -> str:
    return "[" + ",".join(items) + "]"


DEEP: Final = st.builds(
    lambda depth, kind: (
        "[" * depth + "]" * depth if kind else '{"a":' * depth + "1" + "}" * depth
    ),
    st.integers(1, 3000),
    st.booleans(),
)
RAW_JSON: Final = (
    st.recursive(
        RAW_SCALAR,
        lambda inner: (
            st.lists(inner, max_size=4).map(raw_array)
            | st.lists(st.tuples(SHORT_TEXT, inner), max_size=4).map(raw_object)
        ),
        max_leaves=10,
    )
    | DEEP
)


def _near_valid() -> st.SearchStrategy[str]:
    """Values at and just past each field's bounds."""
    return st.one_of(
        st.builds(lambda n: json.dumps("d" * n), st.integers(995, 2005)),
        st.lists(SHORT_TEXT, max_size=40).map(json.dumps),
        st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.:-]{0,66}", fullmatch=True),
            max_size=34,
        ).map(json.dumps),
        st.floats(allow_nan=False).map(json.dumps),
        st.integers(-2, 100_002).map(str),
        st.booleans().map(json.dumps),
    )


FIELD_VALUE: Final = RAW_JSON | _near_valid()
FIELD_NAME: Final = st.sampled_from(_EDITABLE + _READ_ONLY) | SHORT_TEXT
ATTRIBUTES: Final = st.lists(st.tuples(FIELD_NAME, FIELD_VALUE), max_size=6).map(
    raw_object
)


def _wrapped(attributes: str, how: int, extra: str) -> str:
    match how:
        case 0:
            return raw_object([("data", raw_object([("attributes", attributes)]))])
        case 1:
            return raw_object(
                [
                    ("data", raw_object([("type", extra), ("attributes", attributes)])),
                ]
            )
        case 2:
            return raw_object([("data", extra)])
        case 3:
            return raw_object([("data", raw_object([("attributes", extra)]))])
        case 4:
            return extra  # any JSON at the top
        case _:
            return attributes


PATCH_TEXT: Final = st.builds(_wrapped, ATTRIBUTES, st.integers(0, 9), RAW_JSON)
PATCH_BODY: Final = st.one_of(
    PATCH_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    ATTRIBUTES.map(lambda t: t.encode("utf-8", "surrogatepass")),
    PATCH_TEXT.map(lambda t: t.encode("utf-16")),
    PATCH_TEXT.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
)


def _header_text(alphabet_max: int = 0xFF) -> st.SearchStrategy[str]:
    """Header-field text aiohttp's parser takes (RFC 9110 field-value bytes)."""
    return st.text(
        st.characters(min_codepoint=0x20, max_codepoint=alphabet_max).filter(
            lambda c: c != "\x7f"
        ),
        max_size=60,
    )


HOSTILE_CONTENT_TYPE: Final = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=UTF-8",
            "application/json; charset=utf8",
            "application/json; charset=utf_8",
            'application/json; charset="utf-8"',
            "application/json; charset=",
            "application/json; charset=latin-1",
            "application/json; charset=x-no-such",
            "application/json;;;charset=utf-8;charset=ascii",
            "application/vnd.api+json",
            "APPLICATION/JSON",
            "text/plain",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "*/*",
            "",
        ]
    ),
    st.builds(lambda c: f"application/json; charset={c}", _header_text(0x7E)),
    _header_text(),
)
# Half the examples send what the API reads, so the bodies reach the handlers.
CONTENT_TYPE: Final = st.one_of(
    st.just("application/json"), st.just("application/json"), HOSTILE_CONTENT_TYPE
)
CONTENT_ENCODING: Final = st.none() | st.sampled_from(
    [
        "",
        "identity",
        "IDENTITY",
        " identity ",
        "gzip",
        "deflate",
        "br",
        "x",
        "identity, gzip",
    ]
)


# Fixtures


@pytest.fixture
async def mine(catalog: SqliteCatalog, settings: Settings) -> ImageRecord:
    return await add_original(
        catalog,
        LocalOriginalStore(settings.originals),
        settings.limits,
        issuer_id=SEED_ISSUER,
        data=solid((8, 8), RED, "PNG"),
    )


# PATCH /v1/images/{id}


@PROPERTY
@given(body=PATCH_BODY, content_type=CONTENT_TYPE, encoding=CONTENT_ENCODING)
@example(body=b'{"number1": NaN}', content_type="application/json", encoding=None)
@example(
    body=b'{"data": {"attributes": {"tags": ["\\ud800"]}}}',
    content_type="application/json",
    encoding=None,
)
async def test_patch_bodies_never_5xx(
    client: Client,
    keys: Keys,
    mine: ImageRecord,
    body: bytes,
    content_type: str,
    encoding: str | None,
) -> None:
    headers = [bearer(keys.mine), ("Content-Type", content_type)]
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    check(await send(client, "PATCH", f"/v1/images/{mine.id}", headers, body))


@PROPERTY
@given(
    name=st.sampled_from(_EDITABLE + _READ_ONLY), value=FIELD_VALUE, wrap=st.booleans()
)
async def test_every_patch_field_takes_any_value_without_5xx(
    client: Client, keys: Keys, mine: ImageRecord, name: str, value: str, wrap: bool
) -> None:
    attributes = raw_object([(name, value)])
    text = _wrapped(attributes, 0 if wrap else 9, "null")
    answer = await send(
        client,
        "PATCH",
        f"/v1/images/{mine.id}",
        [bearer(keys.mine), ("Content-Type", "application/json")],
        text.encode("utf-8", "surrogatepass"),
    )
    check(answer)
    if answer.status == 200:
        # What was accepted reads back.
        check(await send(client, "GET", f"/v1/images/{mine.id}", [bearer(keys.mine)]))


# POST /v1/images: origin ingest and multipart upload

HOSTS: Final = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com.",
            "127.0.0.1",
            "0x7f.1",
            "2130706433",
            "10.0.0.1",
            "169.254.169.254",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[fe80::1%25eth0]",
            "[2001:db8::1]",
            "[v1.x]",
            "[",
            "]",
            "[::1",
            "bücher.de",
            "xn--bcher-kva.de",
            "xn--",
            "ex%41mple.com",
            "%ff",
            "%ed%a0%80.com",
            "a..b",
            "a" * 64 + ".com",
            "a." * 130 + "com",
            "",
            " ",
            "@",
        ]
    ),
    SHORT_TEXT,
)
ORIGIN_URL: Final = st.builds(
    lambda scheme, user, host, port, path: f"{scheme}{user}{host}{port}{path}",
    st.sampled_from(
        [
            "http://",
            "https://",
            "HTTPS://",
            "ftp://",
            "file:///",
            "//",
            "",
            "javascript:",
            "http:",
        ]
    ),
    st.sampled_from(["", "", "", "user@", "user:pw@", ":@", "%ff@", "a%40b@", "@"])
    | SHORT_TEXT.map(lambda t: t + "@"),
    HOSTS,
    st.sampled_from(
        [
            "",
            "",
            "",
            ":0",
            ":80",
            ":65535",
            ":65536",
            ":-1",
            ":abc",
            ":",
            ":99999999999999999999999",
        ]
    ),
    st.sampled_from(
        ["", "/", "/a.jpg", "/a.jpg", "/%ff", "/%ed%a0%80", "/../..", "?q#f"]
    )
    | SHORT_TEXT,
)
ORIGIN_BODY: Final = st.one_of(
    st.builds(
        lambda url, extra: raw_object([("origin", json.dumps(url)), *extra]),
        ORIGIN_URL,
        st.lists(st.tuples(SHORT_TEXT, RAW_JSON), max_size=2),
    ),
    st.builds(lambda value: raw_object([("origin", value)]), RAW_JSON),
    RAW_JSON,
)


@PROPERTY
@given(
    body=ORIGIN_BODY, content_type=CONTENT_TYPE, method=st.sampled_from(["POST", "PUT"])
)
@example(
    body='{"origin": "http://[fe80::1%25eth0]/a.jpg"}',
    content_type="application/json",
    method="POST",
)
async def test_origin_bodies_never_5xx(
    client: Client,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    content_type: str,
    method: str,
) -> None:
    # An accepted origin is recorded, never fetched: no network in tests.
    monkeypatch.setattr(client.app[INGESTOR], "start", lambda image_id, origin: None)
    answer = await send(
        client,
        method,
        "/v1/images",
        [bearer(keys.mine), ("Content-Type", content_type)],
        body.encode("utf-8", "surrogatepass"),
    )
    check(answer)


@pytest.mark.parametrize("origin", ["http://[]@", "http://[::1]@"])
async def test_an_origin_yarl_cannot_split_is_422(
    client: Client, keys: Keys, origin: str
) -> None:
    check(
        await send(
            client,
            "POST",
            "/v1/images",
            [bearer(keys.mine), ("Content-Type", "application/json")],
            json.dumps({"origin": origin}).encode(),
        )
    )


MULTIPART_TEXT: Final = st.one_of(
    st.sampled_from(
        ["image", "Image", "", "image\x00", 'im"age', "im\\age", "image; x=y", "imáge"]
    ),
    _header_text(),
)
FILENAME: Final = st.one_of(
    st.sampled_from(
        ["photo.png", "", "..", "../../etc/passwd", "a\\b\\c.png", "\x7f", "a" * 500]
    ),
    _header_text(),
)


@dataclass(frozen=True, slots=True)
class Part:
    name: str | None
    filename: str | None
    filename_star: str | None
    content_type: str | None
    content: bytes


PART: Final = st.builds(
    Part,
    st.none() | MULTIPART_TEXT,
    st.none() | FILENAME,
    st.none()
    | st.sampled_from(
        [
            "UTF-8''%ff%fe",
            "UTF-8''%ED%A0%80",
            "utf-8''a%00b",
            "x''y",
            "''",
            "UTF-8'en'%F0%9F%98%80.png",
        ]
    ),
    st.none()
    | st.sampled_from(
        ["image/png", "text/plain", "multipart/mixed; boundary=inner", ""]
    ),
    st.sampled_from([_PNG, b"", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"--B\r\n"])
    | st.binary(max_size=64),
)


GOOD_PART: Final = st.builds(
    Part,
    st.just("image") | MULTIPART_TEXT,
    FILENAME,
    st.none() | st.sampled_from(["UTF-8''%ff%fe", "UTF-8''%F0%9F%98%80.png"]),
    st.just("image/png"),
    st.just(_PNG),
)


def multipart(parts: Sequence[Part], boundary: str, closed: bool) -> bytes:
    out = b""
    for part in parts:
        disposition = "form-data"
        if part.name is not None:
            disposition += f'; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        if part.filename_star is not None:
            disposition += f"; filename*={part.filename_star}"
        out += b"--" + boundary.encode("latin-1") + b"\r\n"
        out += b"Content-Disposition: " + disposition.encode("latin-1") + b"\r\n"
        if part.content_type is not None:
            out += b"Content-Type: " + part.content_type.encode("latin-1") + b"\r\n"
        out += b"\r\n" + part.content + b"\r\n"
    if closed:
        out += b"--" + boundary.encode("latin-1") + b"--\r\n"
    return out


BOUNDARY: Final = st.sampled_from(
    ["B0undary", "x", "a" * 70, "a" * 71, '"q"', "a b", "-"]
) | st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80
)


# aiohttp warns of a Content-Disposition it cannot read and goes on; pytest
# (filterwarnings = error) would make that warning an exception, a 500 that
# production (warnings shown, not raised) never answers.
@pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionParam")
@pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionHeader")
@PROPERTY
@given(
    parts=st.lists(GOOD_PART | PART, max_size=12),
    boundary=BOUNDARY,
    declared=st.just("") | st.none() | BOUNDARY,
    closed=st.just(True) | st.booleans(),
    encoding=CONTENT_ENCODING,
)
async def test_multipart_uploads_never_5xx(
    client: Client,
    keys: Keys,
    parts: list[Part],
    boundary: str,
    declared: str | None,
    closed: bool,
    encoding: str | None,
) -> None:
    content_type = "multipart/form-data"
    if declared is not None:
        content_type += f"; boundary={declared or boundary}"
    headers = [bearer(keys.mine), ("Content-Type", content_type)]
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    body = multipart(parts, boundary, closed)
    check(await send(client, "POST", "/v1/images", headers, body))


# GET /v1/images: query parameters


def _escape(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


RAW_ESCAPES: Final = st.sampled_from(
    ["%ff", "%", "%z", "%zz", "%ED%A0%80", "%C0%80", "%00", "%2C", "+", "&", "="]
)
QUERY_VALUE_TEXT: Final = st.one_of(
    SHORT_TEXT.map(_escape),
    st.lists(RAW_ESCAPES | SHORT_TEXT.map(_escape), max_size=5).map("".join),
)


def _cursor(text: str, pad: bool) -> str:
    raw = base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode()
    return raw if pad else raw.rstrip("=")


CURSOR: Final = st.one_of(
    st.builds(_cursor, RAW_JSON.filter(lambda t: len(t) < 5000), st.booleans()),
    st.builds(
        _cursor,
        st.builds(
            lambda s, v, i: raw_array([s, v, i]),
            st.sampled_from(['"-createdAt"', '"fileSize"']) | RAW_SCALAR,
            RAW_SCALAR,
            RAW_SCALAR,
        ),
        st.booleans(),
    ),
    QUERY_VALUE_TEXT,
)
PAGE_SIZE: Final = st.one_of(
    st.integers(-5, 105).map(str),
    HUGE_INT.filter(lambda t: len(t) < 4000),
    st.sampled_from(
        [
            "",
            " 5",
            "5 ",
            "+5",
            "0x10",
            "5.0",
            "1e1",
            "\u0663",
            "\uff15",
            "\u00b2",
            "NaN",
        ]
    ).map(_escape),
    QUERY_VALUE_TEXT,
)
SORT: Final = (
    st.sampled_from(
        [
            "createdAt",
            "-createdAt",
            "updatedAt",
            "-updatedAt",
            "fileSize",
            "-fileSize",
            "--fileSize",
            "-",
            "",
            "id",
        ]
    )
    | QUERY_VALUE_TEXT
)
IDS: Final = st.lists(
    st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.sampled_from([OTHER_IMAGE, "", " ", ","])
    | SHORT_TEXT,
    max_size=110,
).map(lambda ids: ",".join(ids))
PARAMETER: Final = st.one_of(
    st.tuples(st.just("page[size]"), PAGE_SIZE),
    st.tuples(st.sampled_from(["page[after]", "page[before]"]), CURSOR),
    st.tuples(st.just("sort"), SORT),
    st.tuples(st.sampled_from(["filter[search]", "filter[tag]"]), QUERY_VALUE_TEXT),
    st.tuples(st.just("filter[id]"), IDS.map(_escape) | QUERY_VALUE_TEXT),
    st.tuples(
        st.sampled_from(
            ["page", "page[", "filter[]", "include", "fields[images]", "preserveOnDisk"]
        )
        | QUERY_VALUE_TEXT,
        QUERY_VALUE_TEXT,
    ),
)


@PROPERTY
@given(parameters=st.lists(PARAMETER, max_size=4))
@example(parameters=[("filter[tag]", "%ED%A0%80")])
@example(parameters=[("filter[search]", "%ff")])
@example(parameters=[("page[size]", "9" * 5000)])
async def test_list_parameters_never_5xx(
    client: Client, keys: Keys, mine: ImageRecord, parameters: list[tuple[str, str]]
) -> None:
    target = "/v1/images?" + "&".join(f"{k}={v}" for k, v in parameters)
    assume(len(target) < _MAX_LINE)
    check(await send(client, "GET", target, [bearer(keys.mine)]))


# GET /v1/images/{id}, DELETE /v1/images/{id}, GET /images/{id}?token=


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


ODD_JSON: Final = (
    RAW_SCALAR
    | st.sampled_from(["[]", "{}", '["HS256"]', '{"a": 1}', "[[]]"])
    | RAW_JSON
)
HEADER_OBJECT: Final = st.builds(
    lambda alg, kid, more: raw_object(
        [*([("alg", alg)] if alg else []), *([("kid", kid)] if kid else []), *more]
    ),
    st.none()
    | st.sampled_from(
        [
            '"HS256"',
            '"none"',
            '"RS256"',
            '"hs256"',
            "[]",
            '["HS256"]',
            "{}",
            "null",
            "1",
        ]
    )
    | ODD_JSON,
    st.none() | st.just(json.dumps(SEED_KEY.kid)) | ODD_JSON,
    st.lists(
        st.tuples(
            st.sampled_from(["typ", "crit", "jku", "b64"]) | SHORT_TEXT, RAW_JSON
        ),
        max_size=2,
    ),
)
# Registered claims with hostile values: numbers past float, NaN, wrong types.
CLAIM: Final = st.tuples(
    st.sampled_from(["exp", "iat", "nbf", "sub", "aud", "jti", "iss"]) | SHORT_TEXT,
    NUMBER_LITERAL | HUGE_INT.filter(lambda t: len(t) < 600) | ODD_JSON,
)
TRANSFORMATIONS: Final = st.one_of(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(_STEP_KEYS), RAW_SCALAR | _near_valid()),
            max_size=4,
        ).map(raw_object),
        max_size=3,
    ).map(raw_array),
    RAW_JSON,
)
PAYLOAD: Final = st.builds(
    lambda iss, claims, transformations: raw_object(
        [
            *iss,
            *claims,
            *([("transformations", transformations)] if transformations else []),
        ]
    ),
    st.just([("iss", json.dumps(SEED_ISSUER))])
    | st.sampled_from([[], [("iss", "[]")], [("iss", '"\\ud800"')]]),
    st.lists(CLAIM, max_size=3),
    st.none() | TRANSFORMATIONS,
)
# The issuer's own tokens: well signed, with hostile claims.
GOOD_CLAIMS: Final = st.builds(
    lambda transformations: raw_object(
        [("iss", json.dumps(SEED_ISSUER)), ("transformations", transformations)]
    ),
    TRANSFORMATIONS,
)


def _signed(payload: str, kid: bool) -> str:
    return jwt.PyJWS().encode(
        payload.encode("utf-8", "surrogatepass"),
        SEED_KEY.secret,
        algorithm="HS256",
        headers={"kid": SEED_KEY.kid} if kid else None,
    )


def _unsigned(header: str, payload: str, signature: str) -> str:
    return ".".join(
        [
            _b64(header.encode("utf-8", "surrogatepass")),
            _b64(payload.encode("utf-8", "surrogatepass")),
            signature,
        ]
    )


TOKEN: Final = st.one_of(
    st.builds(_signed, GOOD_CLAIMS, st.booleans()),
    st.builds(_signed, PAYLOAD, st.booleans()),
    st.builds(
        _unsigned,
        HEADER_OBJECT,
        PAYLOAD,
        st.sampled_from(["", "x", "====", "..", "a.b"])
        | st.binary(max_size=40).map(_b64),
    ),
    SHORT_TEXT,
)


PATH_ID: Final = st.one_of(
    st.uuids().map(str),
    st.just(OTHER_IMAGE),
    st.just(OTHER_IMAGE.upper()),
    SHORT_TEXT.map(_escape),
    st.lists(RAW_ESCAPES | SHORT_TEXT.map(_escape), min_size=1, max_size=4).map(
        "".join
    ),
)


@PROPERTY
@given(
    image_id=PATH_ID,
    method=st.sampled_from(["GET", "DELETE"]),
    query=st.sampled_from(
        ["", "?preserveOnDisk=true", "?preserveOnDisk=%ff", "?preserveOnDisk"]
    ),
    accept=st.none() | _header_text(),
)
async def test_image_paths_never_5xx(
    client: Client,
    keys: Keys,
    image_id: str,
    method: str,
    query: str,
    accept: str | None,
) -> None:
    target = f"/v1/images/{image_id}{query}"
    assume(len(target) < _MAX_LINE and image_id not in ("", ".", ".."))
    headers = [bearer(keys.mine)] + ([("Accept", accept)] if accept is not None else [])
    check(await send(client, method, target, headers))


@PROPERTY
@given(
    token=TOKEN | st.none(),
    repeated=st.sampled_from([False] * 7 + [True]),
    own_image=st.just(True) | st.booleans(),
    image_id=PATH_ID,
    accept=st.none()
    | st.sampled_from(
        [
            "image/webp",
            "image/avif;q=nan",
            "image/webp;q=inf",
            "*/*;q=-1",
            "image/webp;q=1e999",
        ]
    )
    | _header_text(),
    if_none_match=st.none()
    | st.sampled_from(["*", 'W/"x"', ",,,", '"', "W/"])
    | _header_text(),
)
async def test_delivery_never_5xx(
    client: Client,
    mine: ImageRecord,
    token: str | None,
    repeated: bool,
    own_image: bool,
    image_id: str,
    accept: str | None,
    if_none_match: str | None,
) -> None:
    path = f"/images/{mine.id if own_image else image_id}"
    query = "" if token is None else "?token=" + _escape(token)
    if repeated and token is not None:
        query += "&token=x"
    target = path + query
    assume(len(target) < _MAX_LINE)
    headers: list[tuple[str | bytes, str | bytes]] = []
    if accept is not None:
        headers.append(("Accept", accept))
    if if_none_match is not None:
        headers.append(("If-None-Match", if_none_match))
    answer = await send(client, "GET", target, headers)
    check(answer)


# The 500s this suite found, reduced to their smallest input, each fixed.


@pytest.mark.parametrize("alg", ["[]", "{}"])
async def test_a_token_whose_alg_is_not_a_string_is_401(
    client: Client, mine: ImageRecord, alg: str
) -> None:
    token = _b64(b'{"alg":' + alg.encode() + b"}") + ".e30.x"
    check(await send(client, "GET", f"/images/{mine.id}?token={token}"))


@pytest.mark.parametrize("kid", [True, False], ids=["kid", "no-kid"])
async def test_a_signed_token_with_an_exp_past_float_is_not_5xx(
    client: Client, mine: ImageRecord, kid: bool
) -> None:
    exp = "1" + "0" * 309
    token = _signed(f'{{"iss":"{SEED_ISSUER}","exp":{exp}}}', kid)
    check(await send(client, "GET", f"/images/{mine.id}?token={token}"))


# Headers: Authorization, X-Request-Id


FIELD_BYTES: Final = st.binary(max_size=120).map(
    lambda b: bytes(c for c in b if c == 0x09 or 0x20 <= c <= 0x7E or c >= 0x80)
)


@PROPERTY
@given(
    scheme=st.sampled_from(
        [b"Bearer ", b"bearer ", b"BEARER  ", b"Basic ", b"", b"Bearer", b"Bearer\t"]
    )
    | FIELD_BYTES,
    value=st.just(b"") | st.sampled_from([b" ", b"\t", b"\xff", b"x"]) | FIELD_BYTES,
    with_key=st.booleans(),
    route=st.sampled_from(
        [
            ("GET", "/v1/images"),
            ("GET", f"/v1/images/{OTHER_IMAGE}"),
            ("POST", "/v1/images"),
            ("PATCH", f"/v1/images/{OTHER_IMAGE}"),
            ("DELETE", f"/v1/images/{OTHER_IMAGE}"),
        ]
    ),
)
@example(
    scheme=b"Bearer ", value=b"sk_\xff\xfe", with_key=False, route=("GET", "/v1/images")
)
async def test_authorization_bytes_never_5xx(
    client: Client,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    scheme: bytes,
    value: bytes,
    with_key: bool,
    route: tuple[str, str],
) -> None:
    header = scheme + (keys.mine.encode() if with_key else b"") + value
    method, target = route
    body = (
        b'{"origin": "http://example.com/a.jpg"}'
        if method in ("POST", "PATCH")
        else None
    )
    headers: list[tuple[str | bytes, str | bytes]] = [("Authorization", header)]
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    # An accepted origin is recorded, never fetched.
    monkeypatch.setattr(client.app[INGESTOR], "start", lambda image_id, origin: None)
    check(await send(client, method, target, headers, body))


@PROPERTY
@given(
    request_id=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=140
    )
    | _header_text()
    | FIELD_BYTES,
    route=st.sampled_from(
        [
            ("GET", "/status"),
            ("GET", "/v1/images"),
            ("GET", "/nowhere"),
            ("POST", "/status"),
            ("GET", "/images/x"),
        ]
    ),
)
@example(request_id="abcdefgh", route=("GET", "/status"))
@example(request_id="abc\xff\xfedefgh", route=("GET", "/v1/images"))
async def test_request_ids_are_kept_only_when_plainly_ids(
    client: Client, request_id: str | bytes, route: tuple[str, str]
) -> None:
    method, target = route
    answer = await send(client, method, target, [("X-Request-Id", request_id)])
    check(answer)
    sent = request_id.decode("latin-1") if isinstance(request_id, bytes) else request_id
    sent = sent.strip(" \t")  # optional whitespace is no part of a field value
    got = answer.headers["x-request-id"]
    if not _REQUEST_ID.fullmatch(sent):
        assert got != sent
    elif not _may_hold_credential(sent):
        assert got == sent
    # Else plainly an id, perhaps holding a credential: the next test's.


def _may_hold_credential(text: str) -> bool:
    """More than the log's redaction looks for, by a rule of its own."""
    return "sk_" in text or ("." in text and ("ey" in text or "ew" in text))


_B64URL: Final = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
    min_size=2,
    max_size=20,
)
_CREDENTIAL: Final = st.one_of(
    st.builds(
        lambda prefix, secret: f"sk_{prefix}_{secret}",
        st.text(st.sampled_from("0123456789abcdef"), min_size=12, max_size=12),
        _B64URL.filter(lambda t: len(t) >= 20) | st.just("S" * 24),
    ),
    st.builds(
        lambda head, body, signature: f"eyJ{head}.{body}.{signature}",
        _B64URL,
        _B64URL,
        _B64URL,
    ),
)


@PROPERTY
@given(
    before=st.text(st.sampled_from(".:"), max_size=6),
    credential=_CREDENTIAL,
    after=st.text(st.sampled_from(".:-"), max_size=6),
)
async def test_a_request_id_holding_a_credential_is_never_kept(
    client: Client, before: str, credential: str, after: str
) -> None:
    """An API key or token inside an otherwise plain id is neither echoed nor
    logged: the id is replaced."""
    sent = f"{before}{credential}{after}"
    assume(_REQUEST_ID.fullmatch(sent))
    answer = await send(client, "GET", "/status", [("X-Request-Id", sent)])
    assert answer.headers["x-request-id"] != sent
    assert credential not in answer.headers["x-request-id"]
