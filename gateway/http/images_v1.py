"""The image catalog API under /v1. Every call is scoped to one issuer (tenant).

An issuer authenticates with one of its API keys (`Authorization: Bearer sk_…`)
and can never see, change or learn of another issuer's images: those answer
exactly like missing ones.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Mapping
from typing import Final

from aiohttp import hdrs, web
from yarl import URL

from gateway.catalog import CatalogError, ImageChangedError, ImageRecord
from gateway.delivery.links import root
from gateway.errors import (
    ApiKeyMissingError,
    FieldInvalidError,
    FieldReadOnlyError,
    FieldUnknownError,
    ImageNotFoundError,
    InvalidParameterError,
    OriginalsUnavailableError,
    OriginNotAllowedError,
    PreconditionFailedError,
    ResourceConflictError,
    UnsupportedMediaTypeError,
    UpstreamError,
)
from gateway.http import jsonapi, uploads
from gateway.http.auth import Principal, authenticate
from gateway.http.limits import within_body_timeout
from gateway.keys import CATALOG, INGESTOR, SETTINGS, STORE, UPLOAD_GATE, UPLOADER
from gateway.originals.ingest import discard
from gateway.originals.origin_fetch import FetchError, check_origin
from signing import WRITE, parse_roles
from transforms import json_int, normalise_image_id

__all__ = [
    "create_image",
    "delete_image",
    "get_image",
    "list_images",
    "patch_image",
]

log = logging.getLogger("gateway")

_READ_ONLY: Final = frozenset(
    {
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
    }
)
# The fields a PATCH may change: API name -> the catalog's name.
_EDITABLE: Final[Mapping[str, str]] = {
    "description": "description",
    "isPublic": "is_public",
    "tags": "tags",
    "text1": "text1",
    "text2": "text2",
    "text3": "text3",
    "number1": "number1",
    "number2": "number2",
    "number3": "number3",
    "maxUnauthorised": "max_unauthorised",
    "roles": "roles",
}
_MAX_TAG: Final = 64
_TAG: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9 _.:-]{{0,{_MAX_TAG - 1}}}")
_MAX_TAGS: Final = 32
_MAX_IDS: Final = 100  # in one filter[id]
# PostgreSQL's text holds no NUL (SQLite's would): refused from every text a
# client stores or searches by, so that both catalogs answer alike.
_NUL: Final = "\x00"
# An entry of a comma-separated list, without the whitespace around it.
_LISTED: Final = re.compile(r"[^,\s](?:[^,]*[^,\s])?")
_SORT_PARAMS: Final = frozenset({*jsonapi.SORTS, *(f"-{s}" for s in jsonapi.SORTS)})
_LIST_PARAMS: Final = frozenset(
    {
        "sort",
        "page[size]",
        "page[after]",
        "page[before]",
        "filter[search]",
        "filter[tag]",
        "filter[id]",
    }
)


def _shown(text: str, most: int = 40) -> str:
    """A client's text quoted in an error detail, cut to `most` characters."""
    return repr(text if len(text) <= most else f"{text[:most]}…")


async def _own_image(request: web.Request, principal: Principal) -> ImageRecord:
    image_id = normalise_image_id(request.match_info["image_id"])
    store = request.app[CATALOG].store
    record = await store.image(image_id) if image_id else None
    if record is None or record.issuer_id != principal.issuer_id:
        raise ImageNotFoundError("no such image", parameter="image_id")
    return record


async def _document(
    request: web.Request,
    status: int,
    record: ImageRecord,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    catalog = await request.app[CATALOG].fresh()
    resource = jsonapi.image_resource(request.app[SETTINGS], catalog, record)
    headers = {**(headers or {}), "ETag": jsonapi.image_etag(record)}
    return jsonapi.json_response(status, {"data": resource}, headers)


def _precondition(request: web.Request, record: ImageRecord) -> str | None:
    """The state a conditional write is decided on (its `updated_at`), None
    for an unconditional one (no `If-Match`, or `*`: any state of an image
    that exists); a 412 when `If-Match` names another state."""
    tags = jsonapi.if_match(request)
    if tags is None or "*" in tags:
        return None
    if jsonapi.image_etag(record) not in tags:
        raise _changed()
    return record.updated_at


def _changed() -> PreconditionFailedError:
    return PreconditionFailedError(
        "the image changed since the ETag given: read it again, then retry",
        header=hdrs.IF_MATCH,
    )


def _location(request: web.Request, record: ImageRecord) -> dict[str, str]:
    url = request.app[SETTINGS].base_url / "v1" / "images" / record.id
    return {"Location": str(url)}


# Create: multipart upload or origin ingest


async def create_image(request: web.Request) -> web.Response:
    """`POST`/`PUT /v1/images`: a multipart upload (field `image`) or `{"origin": url}`.

    The caller first: without a credential (and guest uploads off) no header
    of the body is parsed.
    """
    principal = await authenticate(request, scope=WRITE, guest_allowed=True)
    content_type = jsonapi.media_type(request)
    if content_type == "multipart/form-data":
        return await _upload(request, principal)
    if content_type in jsonapi.JSON_TYPES:
        if principal.guest:
            raise ApiKeyMissingError(
                "guests may upload, not ingest: send a credential, "
                "Authorization: Bearer <API key or access token>"
            )
        return await _ingest(request, principal)
    raise UnsupportedMediaTypeError(
        "send multipart/form-data with a file in 'image', or JSON with an 'origin'",
        header="Content-Type",
    )


async def _upload(request: web.Request, principal: Principal) -> web.Response:
    jsonapi.only_parameters(request)
    settings = request.app[SETTINGS]
    limit = (
        settings.ingest.guest_max_upload_bytes
        if principal.guest
        else settings.ingest.max_upload_bytes
    )
    async with request.app[UPLOAD_GATE].admitted(principal.caller):
        received = await within_body_timeout(
            settings.ingest.body_timeout,
            uploads.receive(request, limit, settings.uploads),
        )
        data = await uploads.read_and_remove(received)
        record = await uploads.register(request, principal, data, received.filename)
    return await _document(request, 201, record, _location(request, record))


async def _ingest(request: web.Request, principal: Principal) -> web.Response:
    jsonapi.only_parameters(request)
    body = await jsonapi.json_body(request)
    found = jsonapi.Violations()
    for k in body:
        if k != "origin":
            found.add(FieldUnknownError, f"unknown field {k!r}", pointer=jsonapi.pointer(k))  # fmt: skip
    origin = body.get("origin")
    if not isinstance(origin, str):
        found.add(FieldInvalidError, "'origin' must be a URL string", pointer="/origin")  # fmt: skip
    else:
        try:
            check_origin(origin, request.app[INGESTOR].policy)
        except FetchError as exc:
            found.add(OriginNotAllowedError, str(exc), pointer="/origin")
    if found or not isinstance(origin, str):
        raise found.error()
    record = await request.app[CATALOG].store.add_image(
        issuer_id=principal.issuer_id, origin=origin
    )
    request.app[INGESTOR].start(record.id, origin)
    return await _document(request, 202, record, _location(request, record))


# Read, list, update, delete


async def get_image(request: web.Request) -> web.Response:
    """`GET /v1/images/{id}`."""
    principal = await authenticate(request)
    jsonapi.only_parameters(request)
    record = await _own_image(request, principal)
    return await _document(request, 200, record)


async def list_images(request: web.Request) -> web.Response:
    """`GET /v1/images`: keyset-paginated, sortable, filterable; `meta.total`."""
    principal = await authenticate(request)
    jsonapi.only_parameters(request, _LIST_PARAMS)
    query = request.query
    size = _page_size(query.get("page[size]"))
    sort_param = query.get("sort", "-createdAt")
    if sort_param not in _SORT_PARAMS:
        raise InvalidParameterError(
            f"sort is one of {', '.join(sorted(_SORT_PARAMS))}", parameter="sort"
        )
    sort = jsonapi.SORTS[sort_param.lstrip("-")]
    after = jsonapi.decode_cursor(query.get("page[after]"), "page[after]", sort_param)
    before = jsonapi.decode_cursor(
        query.get("page[before]"), "page[before]", sort_param
    )
    if after and before:
        raise InvalidParameterError("give page[after] or page[before], not both", parameter="page[before]")  # fmt: skip
    search = query.get("filter[search]")
    if search is not None and (len(search) > 200 or _NUL in search):
        raise InvalidParameterError(
            "at most 200 characters, no NUL", parameter="filter[search]"
        )
    tag = query.get("filter[tag]")
    if tag is not None and (len(tag) > _MAX_TAG or _NUL in tag):
        raise InvalidParameterError(
            f"a tag is at most {_MAX_TAG} characters, no NUL", parameter="filter[tag]"
        )
    ids = None
    if (raw_ids := query.get("filter[id]")) is not None:
        # Past the 101st entry nothing is read: each is normalised, and a
        # 48 KB list took 5 ms to read whole before it was refused. Empty
        # entries are skipped by the regex engine, not one by one.
        listed = [e[0] for e in itertools.islice(_LISTED.finditer(raw_ids), _MAX_IDS + 1)]  # fmt: skip
        ids = []
        for entry in listed:
            if (image_id := normalise_image_id(entry)) is None:
                # Named, so that one typo in a list of a hundred is found.
                raise InvalidParameterError(f"{_shown(entry)} is not an image id (a UUID)", parameter="filter[id]")  # fmt: skip
            ids.append(image_id)
        if not ids or len(ids) > _MAX_IDS:
            raise InvalidParameterError(f"1 to {_MAX_IDS} comma-separated image ids", parameter="filter[id]")  # fmt: skip
    catalog = await request.app[CATALOG].fresh()
    page = await catalog.store.page(
        principal.issuer_id,
        sort=sort,
        descending=sort_param.startswith("-"),
        size=size,
        after=after,
        before=before,
        search=search,
        tag=tag,
        ids=ids,
    )
    links: dict[str, str] = {"self": _link(request)}
    if page.images:
        last, first = page.images[-1], page.images[0]
        # Forward, more follow when this page was cut short; backward, the page
        # we came from follows. Mirrored for what precedes.
        if (page.has_more and not before) or before:
            links["next"] = _link(request, "page[after]", jsonapi.encode_cursor(last, sort_param))  # fmt: skip
        if after or (before and page.has_more):
            links["prev"] = _link(request, "page[before]", jsonapi.encode_cursor(first, sort_param))  # fmt: skip
    settings = request.app[SETTINGS]
    return jsonapi.json_response(
        200,
        {
            "data": [jsonapi.image_resource(settings, catalog, r) for r in page.images],
            "meta": {"total": page.total},
            "links": links,
        },
    )


def _link(request: web.Request, name: str | None = None, cursor: str = "") -> str:
    """This listing's URL under the public URL, as every other link of the
    document, at `cursor` when `name` (a page direction) is given; `self`
    encoded as `next` and `prev` are."""
    query = dict(request.query.items())
    if name is not None:
        query.pop("page[after]", None)
        query.pop("page[before]", None)
        query[name] = cursor
    listing = URL("/v1/images").with_query(query)
    return f"{root(request.app[SETTINGS].base_url)}{listing}"


def _page_size(raw: str | None) -> int:
    if raw is None:
        return 10
    # isdecimal() alone admits other scripts' digits; int() of them is not
    # ours. The length first: int() of thousands of digits raises.
    if (
        not (len(raw) <= 3 and raw.isascii() and raw.isdecimal())
        or not 1 <= int(raw) <= 100
    ):
        raise InvalidParameterError(
            "a whole number from 1 to 100", parameter="page[size]"
        )
    return int(raw)


async def patch_image(request: web.Request) -> web.Response:
    """`PATCH /v1/images/{id}`: a JSON merge of the mutable fields (null resets)."""
    principal = await authenticate(request, scope=WRITE)
    jsonapi.only_parameters(request)
    record = await _own_image(request, principal)
    unchanged_since = _precondition(request, record)
    body = await jsonapi.json_body(request, jsonapi.MERGE_PATCH_TYPES)
    found = jsonapi.Violations()
    prefix, attributes = _patched_attributes(body, record.id, found)
    changes: dict[str, object] = {}
    for name, value in attributes.items():
        pointer = prefix + jsonapi.pointer(name)
        if name in _READ_ONLY:
            found.add(FieldReadOnlyError, f"{name} is read-only", pointer=pointer)
        elif name not in _EDITABLE:
            found.add(FieldUnknownError, f"unknown field {name!r}", pointer=pointer)
        else:
            try:
                changes[_EDITABLE[name]] = _field(name, value, pointer)
            except FieldInvalidError as exc:
                found.append(exc)
    if found:
        raise found.error()
    if changes:
        try:
            record = await request.app[CATALOG].store.update_image(
                record.id, changes, unchanged_since=unchanged_since
            )
        except ImageChangedError:  # another write came while the body arrived
            raise _changed() from None
        except CatalogError:  # deleted meanwhile
            raise ImageNotFoundError("no such image", parameter="image_id") from None
    return await _document(request, 200, record)


# What a JSON:API update document may hold, at its top and in its `data`.
_DOCUMENT_MEMBERS: Final = frozenset({"data"})
_RESOURCE_MEMBERS: Final = frozenset({"type", "id", "attributes"})


def _patched_attributes(
    body: dict[str, object], image_id: str, found: jsonapi.Violations
) -> tuple[str, dict[str, object]]:
    """The fields a PATCH body changes, and the pointer they sit under: the
    body itself, or a JSON:API document's `data.attributes`.

    In a document, nothing else is read: a member beside `data` or beside
    `attributes` is refused, not dropped (a client would think it applied),
    and a `type` or `id` that is not this image is a 409, as JSON:API says.
    """
    if "data" not in body:
        return "", body
    for name in [n for n in body if n not in _DOCUMENT_MEMBERS]:
        found.add(
            FieldUnknownError,
            f"a JSON:API document holds only data, not {name!r}",
            pointer=jsonapi.pointer(name),
        )
    data = body["data"]
    if not isinstance(data, dict):
        raise FieldInvalidError("data must be an object", pointer="/data")
    if "type" in data and data["type"] != "images":
        raise ResourceConflictError(
            "this resource's type is 'images'", pointer="/data/type"
        )
    if "id" in data and (
        not isinstance(data["id"], str) or normalise_image_id(data["id"]) != image_id
    ):
        raise ResourceConflictError(
            "the id is not the image this URL names", pointer="/data/id"
        )
    for name in [n for n in data if n not in _RESOURCE_MEMBERS]:
        found.add(
            FieldUnknownError,
            f"a resource here holds only type, id and attributes, not {name!r}",
            pointer="/data" + jsonapi.pointer(name),
        )
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):
        raise FieldInvalidError(
            "attributes must be an object", pointer="/data/attributes"
        )
    return "/data/attributes", attributes


def _field(name: str, value: object, pointer: str) -> object:
    """A mutable field's value, checked and normalised; None resets it."""
    if name == "description":
        if value is None:
            return ""
        if isinstance(value, str) and len(value) <= 2000 and _NUL not in value:
            return value
        raise FieldInvalidError(
            "a string of at most 2000 characters, no NUL", pointer=pointer
        )
    if name == "isPublic":
        if value is None or isinstance(value, bool):
            return bool(value)
        raise FieldInvalidError("true or false", pointer=pointer)
    if name == "tags":
        if value is None:
            return []
        if (
            isinstance(value, list)
            and len(value) <= _MAX_TAGS
            and all(isinstance(t, str) and _TAG.fullmatch(t) for t in value)
        ):
            return list(dict.fromkeys(value))
        raise FieldInvalidError(
            f"a list of at most {_MAX_TAGS} tags of 1-64 letters, digits, space _ . : -",
            pointer=pointer,
        )
    if name.startswith("text"):
        if value is None or (
            isinstance(value, str) and len(value) <= 1000 and _NUL not in value
        ):
            return value
        raise FieldInvalidError(
            "a string of at most 1000 characters (no NUL), or null", pointer=pointer
        )
    if name.startswith("number"):
        if value is None:
            return None
        real = value if isinstance(value, float) else json_int(value)
        if real is not None:
            try:
                number = float(real)
            except OverflowError:  # an integer of hundreds of digits
                number = math.inf
            if math.isfinite(number):
                return number
        raise FieldInvalidError("a finite number, or null", pointer=pointer)
    if name == "roles":
        try:
            return parse_roles(() if value is None else _list(value))
        except ValueError as exc:
            raise FieldInvalidError(
                f"a list of role names: {exc}", pointer=pointer
            ) from None
    # maxUnauthorised: the longest side served without the image's roles;
    # -1 (or null) no cap, 0 nothing.
    pixels = json_int(value)
    if value is None or pixels == -1:
        return None
    if pixels is not None and 0 <= pixels <= 100_000:
        return pixels
    raise FieldInvalidError(
        "a whole number of pixels from 0 to 100000, or -1 for no cap", pointer=pointer
    )


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


async def delete_image(request: web.Request) -> web.Response:
    """`DELETE /v1/images/{id}[?preserveOnDisk=true]`: 204; delivery 404s at once."""
    principal = await authenticate(request, scope=WRITE)
    jsonapi.only_parameters(request, ("preserveOnDisk",))
    preserve = request.query.get("preserveOnDisk", "false")
    if preserve not in ("true", "false"):
        raise InvalidParameterError("true or false", parameter="preserveOnDisk")
    record = await _own_image(request, principal)
    unchanged_since = _precondition(request, record)
    app = request.app
    store = app[CATALOG].store
    asset = record.cloudinary if UPLOADER in app else None
    if unchanged_since is None:
        if asset is not None:
            # Fails first: nothing is half-deleted.
            await app[UPLOADER].destroy(asset)
        await store.remove_image(record.id)
    else:
        # Conditional: the catalog decides first (a write may come during the
        # Cloudinary call); a 412 must have destroyed nothing.
        try:
            await store.remove_image(record.id, unchanged_since=unchanged_since)
        except ImageChangedError:
            raise _changed() from None
        if asset is not None:
            try:
                await app[UPLOADER].destroy(asset)
            except UpstreamError as exc:
                # The image is gone for everyone: the asset stays, unused.
                log.warning(
                    "image %s deleted; its Cloudinary asset %s stays: %s",
                    record.id,
                    asset.public_id,
                    exc.detail,
                )
    if record.original is not None and preserve == "false":
        try:
            await discard(store, app[STORE], record.original)
        except OriginalsUnavailableError as exc:
            # The image is gone for everyone already: a 503 would have the
            # client retry into a 404. The file goes at the next start's sweep.
            log.warning(
                "image %s deleted; its original stays until the next start: %s",
                record.id,
                exc.detail,
            )
    return web.Response(status=204, headers={"Cache-Control": "no-store"})
