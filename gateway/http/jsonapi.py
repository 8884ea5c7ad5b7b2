"""JSON:API documents of the /v1 API: responses, image resources, keyset cursors.

The API's names (`isPublic`, `createdAt`, …) live here and in the handlers;
the catalog speaks its own (`is_public`, `SortKey.CREATED_AT`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Final

from aiohttp import hdrs, web

from gateway.catalog import CachedCatalog, Cursor, ImageRecord, SortKey
from gateway.config import Settings
from gateway.delivery.headers import entity_tags
from gateway.delivery.links import root, signed_delivery_url
from gateway.errors import (
    JSONAPI,
    AmbiguousParameterError,
    ApiError,
    BadRequestError,
    FieldInvalidError,
    InvalidParameterError,
    PayloadTooLargeError,
    PublicError,
    UnprocessableError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from gateway.http.limits import within_body_timeout
from gateway.keys import SETTINGS

__all__ = [
    "JSON_TYPES",
    "MAX_JSON_BYTES",
    "MERGE_PATCH_TYPES",
    "SORTS",
    "Violations",
    "decode_cursor",
    "encode_cursor",
    "if_match",
    "image_etag",
    "image_resource",
    "json_body",
    "json_response",
    "media_type",
    "only_parameters",
    "pointer",
    "refuse_encoded",
    "violations",
]

# The API's sort names and the catalog's keys.
SORTS: Final[Mapping[str, SortKey]] = {
    "createdAt": SortKey.CREATED_AT,
    "updatedAt": SortKey.UPDATED_AT,
    "fileSize": SortKey.FILE_SIZE,
}
# What a JSON body may be sent as: plain JSON, or JSON:API's own type.
JSON_TYPES: Final = ("application/json", JSONAPI)
# A PATCH is a JSON merge patch (RFC 7396), and may say so.
MERGE_PATCH_TYPES: Final = (*JSON_TYPES, "application/merge-patch+json")
# Ready-signed links in each resource live this long.
_LINK_TTL: Final = 3600
_MAX_ERRORS: Final = 20
# Whole floats up to this are the integers they look like (IEEE 754 doubles).
_EXACT_INTEGERS: Final = 2**53
# The largest JSON body: twice a PATCH of every field at its longest, each
# character a \u-escaped surrogate pair (67 KB); parsing is on the event
# loop, and a megabyte of members took 60 ms.
MAX_JSON_BYTES: Final = 128 * 1024
# A Content-Type is parsed by the email package, at about 0.3 ms a header and
# 50 µs more a parameter: past these bounds (no client of ours comes near
# them: a multipart boundary is at most 70 characters) it is refused unparsed.
_MAX_CONTENT_TYPE: Final = 256
_MAX_CONTENT_TYPE_PARAMETERS: Final = 4
_THUMBNAIL: Final = ({"crop": "fill", "width": 200, "height": 200},)
_PUBLIC_THUMBNAIL: Final = "w=200&h=200&crop=true"


def json_response(
    status: int, doc: object, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc).encode(),
        content_type=JSONAPI,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def only_parameters(request: web.Request, known: Collection[str] = ()) -> None:
    """Refuse a query parameter the endpoint does not take, or one given twice.

    JSON:API (§ query parameters) has a server refuse what it cannot
    process rather than ignore it: `filter[tags]=x` for `filter[tag]` would
    otherwise list every image, and `include` or `fields[images]` would be
    taken as honoured.
    """
    seen: set[str] = set()
    for name, _ in request.query.items():
        if name not in known:
            takes = f"; it takes {', '.join(sorted(known))}" if known else ""
            raise InvalidParameterError(
                f"this endpoint takes no {name!r} parameter{takes}", parameter=name
            )
        if name in seen:
            raise AmbiguousParameterError("give it once", parameter=name)
        seen.add(name)


def media_type(request: web.Request) -> str:
    """The body's media type (aiohttp's `content_type`), from a Content-Type of
    bounded length and parameters; 415 past them."""
    raw = request.headers.get(hdrs.CONTENT_TYPE)
    if raw is not None and (
        len(raw) > _MAX_CONTENT_TYPE or raw.count(";") > _MAX_CONTENT_TYPE_PARAMETERS
    ):
        raise UnsupportedMediaTypeError(
            f"a Content-Type is at most {_MAX_CONTENT_TYPE} characters "
            f"and {_MAX_CONTENT_TYPE_PARAMETERS} parameters",
            header="Content-Type",
        )
    return request.content_type


def refuse_encoded(request: web.Request) -> None:
    """Bodies come as sent, never compressed: inflating one is a bomb's fuse."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaTypeError(
            "send the body without Content-Encoding", header="Content-Encoding"
        )


async def json_body(
    request: web.Request, types: Sequence[str] = JSON_TYPES
) -> dict[str, object]:
    """The body as a JSON object: UTF-8 (RFC 8259), no lone surrogates, bounded depth."""
    if media_type(request) not in types:
        raise UnsupportedMediaTypeError(
            f"send JSON: Content-Type {', '.join(types)}", header="Content-Type"
        )
    refuse_encoded(request)
    if (request.content_length or 0) > MAX_JSON_BYTES:
        # Refused before a byte of it is awaited, not when the limit is
        # reached, or when the body timeout ends a client that never sends it.
        raise PayloadTooLargeError(
            f"a JSON body is at most {MAX_JSON_BYTES} bytes", header="Content-Length"
        )
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in (
        "utf-8",
        "utf8",
    ):
        raise UnsupportedMediaTypeError(
            "JSON is UTF-8: send charset=utf-8 or none", header="Content-Type"
        )
    timeout = request.app[SETTINGS].ingest.body_timeout
    raw = await within_body_timeout(timeout, _read_at_most(request, MAX_JSON_BYTES))
    try:
        body = json.loads(raw.decode("utf-8"))
        # A lone surrogate (`"\ud800"`) parses, but is no text: refuse it
        # here, not where storage would fail to encode it.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise BadRequestError("the body is not JSON text (UTF-8)") from None
    if not isinstance(body, dict):
        raise FieldInvalidError("the body must be a JSON object", pointer="")
    return body


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The body, or 413 once it is past `limit` bytes: a chunked body declares
    no length, and aiohttp's own bound (`client_max_size`) is larger."""
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"a JSON body is at most {limit} bytes")
    return bytes(body)


def pointer(*names: str) -> str:
    """A JSON Pointer (RFC 6901) to a member: `~` and `/` in a name escaped."""
    return "".join("/" + n.replace("~", "~0").replace("/", "~1") for n in names)


def violations(found: Sequence[PublicError], unlisted: int = 0) -> PublicError:
    """One error as itself, several as one document of several errors (bounded:
    a body of thousands of bad fields gets `_MAX_ERRORS` objects, not thousands)."""
    total = len(found) + unlisted
    if total == 1:
        return found[0]
    if total > _MAX_ERRORS:
        found = [
            *found[: _MAX_ERRORS - 1],
            UnprocessableError(
                f"and {total - _MAX_ERRORS + 1} more violations, not listed"
            ),
        ]
    return ValidationFailedError(list(found))


class Violations:
    """The errors found in one body, each made only if it will be listed; the
    rest are counted. Making an error object for each of 80,000 unknown
    members took 230 ms of the event loop."""

    def __init__(self) -> None:
        self._found: list[PublicError] = []
        self._unlisted = 0

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, kind: type[ApiError], detail: str, *, pointer: str) -> None:
        if self._listed():
            self._found.append(kind(detail, pointer=pointer))

    def append(self, error: PublicError) -> None:
        if self._listed():
            self._found.append(error)

    def _listed(self) -> bool:
        """Whether the next error will be listed; if not, it is counted."""
        if len(self._found) < _MAX_ERRORS:
            return True
        self._unlisted += 1
        return False

    def error(self) -> PublicError:
        return violations(self._found, self._unlisted)


_THUMBNAIL_SIDE: Final = 400


def _number(value: float | None) -> float | int | None:
    """As it was given: the catalog keeps floats, and `3` came back `3.0`.
    The same JSON number either way; whole ones are written whole."""
    if (
        isinstance(value, float)
        and value.is_integer()
        and abs(value) <= _EXACT_INTEGERS
    ):
        return int(value)
    return value


def image_resource(
    settings: Settings, catalog: CachedCatalog, record: ImageRecord
) -> dict[str, object]:
    """An image as a JSON:API resource, with ready-signed delivery links."""
    original = record.original
    asset = record.cloudinary
    ingest = record.ingest
    attributes: dict[str, object] = {
        "originalFilename": record.original_filename,
        "description": record.description,
        "mediaType": original.media_type if original else None,
        "fileSize": original.file_size if original else None,
        "width": original.width if original else None,
        "height": original.height if original else None,
        "isPublic": record.is_public,
        "tags": list(record.tags),
        "text1": record.texts[0],
        "text2": record.texts[1],
        "text3": record.texts[2],
        "number1": _number(record.numbers[0]),
        "number2": _number(record.numbers[1]),
        "number3": _number(record.numbers[2]),
        "maxUnauthorised": -1
        if record.max_unauthorised is None
        else record.max_unauthorised,
        "roles": sorted(record.roles),
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "ingest": {
            "state": str(ingest.state),
            "origin": ingest.origin,
            "error": ingest.error,
            "queuedAt": ingest.queued_at,
            "finishedAt": ingest.finished_at,
        },
        "cloudinary": None
        if asset is None
        else {
            "publicId": asset.public_id,
            "version": asset.version,
            "format": asset.format,
            "deliveryType": asset.delivery_type,
        },
    }
    # Links as text (yarl's joins cost 6 µs each, and a page has hundreds):
    # an image id is a UUID, nothing to quote.
    base_url = settings.base_url
    base = root(base_url)
    links = {"self": f"{base}/v1/images/{record.id}"}
    issuer = catalog.issuer(record.issuer_id)
    deliverable = original is not None or (
        asset is not None and settings.upstream.delivery == "redirect"
    )
    if issuer is not None and deliverable:
        # Ready-signed URLs (an hour long) to the image as is and as a thumbnail.
        for name, steps in (("delivery", ()), ("thumbnail", _THUMBNAIL)):
            url = signed_delivery_url(
                base_url,
                issuer,
                record.id,
                steps,
                ttl=_LINK_TTL,
                audience=settings.tokens.audience,
            )
            if url is not None:
                links[name] = url
    if record.is_public and deliverable:
        # Anyone may open these (seed 001's `url` and `thumbnailUrl`).
        public = f"{base}/image/{record.id}.jpg"
        links["public"] = public
        links["publicThumbnail"] = f"{public}?{_PUBLIC_THUMBNAIL}"
    if original is not None and record.is_public:
        # IIIF (seed 002's `infoJson` and `thumbnail400`): deep-zoom viewers
        # start from info.json; the thumbnail fits 400x400, never enlarged.
        service = f"{base}/iiif/3/{record.id}"
        links["iiif"] = f"{service}/info.json"
        # IIIF sizes never enlarge without `^`: a smaller image is sent whole.
        small = max(original.width, original.height) <= _THUMBNAIL_SIDE
        size = "max" if small else f"!{_THUMBNAIL_SIDE},{_THUMBNAIL_SIDE}"
        links["thumbnail400"] = f"{service}/full/{size}/0/default.jpg"
    return {"type": "images", "id": record.id, "attributes": attributes, "links": links}


def image_etag(record: ImageRecord) -> str:
    """A strong ETag of an image's state, for `If-Match`.

    It names the record (every field the document shows), not the document's
    bytes: those carry ready-signed links made afresh. The same in every
    worker and replica (sets sorted, no per-process hashing).
    """
    state = json.dumps(
        dataclasses.asdict(record), sort_keys=True, default=_canonical
    ).encode()
    return f'"{hashlib.sha256(state).hexdigest()[:32]}"'


def _canonical(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not part of an image's state")


def if_match(request: web.Request) -> list[str] | None:
    """The entity tags of `If-Match` (RFC 9110 §13.1.1), of all its headers,
    None without one; compared strongly: a weak tag (`W/"…"`) never matches."""
    values = request.headers.getall(hdrs.IF_MATCH, ())
    return entity_tags(",".join(values)) if values else None


def _sort_value(record: ImageRecord, sort: SortKey) -> object:
    match sort:
        case SortKey.CREATED_AT:
            return record.created_at
        case SortKey.UPDATED_AT:
            return record.updated_at
        case SortKey.FILE_SIZE:
            return record.original.file_size if record.original else 0


def encode_cursor(record: ImageRecord, sort: str) -> str:
    """The keyset position after (or before) `record` in the order `sort` (the
    `sort` parameter, direction included), opaque to clients."""
    raw = json.dumps([sort, _sort_value(record, SORTS[sort.lstrip("-")]), record.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, parameter: str, sort: str) -> Cursor | None:
    """The position a cursor holds, when it was made for the order `sort`.

    A position is a value of the sort's field: in another order it is no
    position at all (a file size taken for a creation time), and the page
    would be a wrong one, answered 200. So a cursor names its order.
    """
    if raw is None:
        return None
    try:
        made_for, value, image_id = json.loads(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
        if not all(isinstance(t, str) for t in (made_for, image_id)) or not (
            isinstance(value, str | int) and type(value) is not bool
        ):
            raise ValueError
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError  # beyond SQLite's integers
        for text in (made_for, value, image_id):
            if isinstance(text, str):
                text.encode()  # a lone surrogate raises: not a cursor of ours
                if "\x00" in text:  # nor a NUL (PostgreSQL's text holds none)
                    raise ValueError
    except (ValueError, TypeError, binascii.Error, RecursionError, UnicodeError):
        raise InvalidParameterError(
            "not a cursor this API made", parameter=parameter
        ) from None
    if made_for != sort:
        raise InvalidParameterError(
            f"this cursor pages sort={made_for}, not sort={sort}; "
            "follow the links of a listing in the order you ask for",
            parameter=parameter,
        )
    return value, image_id
