"""The image catalog API under /v1. Every call is scoped to one issuer (tenant).

An issuer authenticates with one of its API keys (`Authorization: Bearer sk_…`)
and can never see, change or learn of another issuer's images: those answer
exactly like missing ones.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import os
import re
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.catalog import MUTABLE, SORTS, CatalogError, ImageRecord
from gateway.errors import (
    JSONAPI,
    ApiKeyInvalidError,
    ApiKeyMissingError,
    BadRequestError,
    FieldInvalidError,
    FieldReadOnlyError,
    FieldUnknownError,
    FileTooLargeError,
    ImageNotFoundError,
    InvalidParameterError,
    MediaTypeNotAllowedError,
    OriginNotAllowedError,
    PublicError,
    UnsupportedMediaTypeError,
    UploadFieldError,
    ValidationFailedError,
)
from gateway.fetch import FetchError, check_origin
from gateway.keys import (
    CATALOG,
    INGESTOR,
    RENDERER,
    SETTINGS,
    STORE,
    UPLOADER,
    UPLOADS,
    WRITABLE_CATALOG,
)
from gateway.originals import discard, prepare_original
from signing import mint
from transforms import (
    LimitExceededError,
    SourceImageError,
    normalise_image_id,
)
from transforms.errors import UnsupportedFormatError

__all__ = [
    "create_image",
    "delete_image",
    "get_image",
    "list_images",
    "patch_image",
]

log = logging.getLogger("gateway.api")

_CHUNK: Final = 64 * 1024
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
_TAG: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}")
_MAX_TAGS: Final = 32
_LINK_TTL: Final = 3600
_THUMBNAIL: Final = [{"crop": "fill", "width": 200, "height": 200}]
_ALLOWED_TYPES: Final = "image/jpeg, image/png, image/webp, image/gif"


@dataclass(frozen=True, slots=True)
class _Principal:
    issuer_id: str
    guest: bool


def _principal(request: web.Request, *, guest_allowed: bool = False) -> _Principal:
    settings = request.app[SETTINGS]
    header = request.headers.get("Authorization")
    if header is None:
        if guest_allowed and settings.guest_uploads and settings.guest_issuer:
            return _Principal(settings.guest_issuer, guest=True)
        raise ApiKeyMissingError("send an API key: Authorization: Bearer sk_…")
    scheme, _, key = header.partition(" ")
    issuer_id = None
    if scheme.lower() == "bearer" and len(key) < 200:
        issuer_id = request.app[WRITABLE_CATALOG].api_key_issuer(key.strip())
    if issuer_id is None:
        raise ApiKeyInvalidError("the API key is unknown or revoked")
    return _Principal(issuer_id, guest=False)


def _own_image(request: web.Request, principal: _Principal) -> ImageRecord:
    image_id = normalise_image_id(request.match_info["image_id"])
    record = request.app[WRITABLE_CATALOG].image(image_id) if image_id else None
    if record is None or record.issuer_id != principal.issuer_id:
        raise ImageNotFoundError("no such image", parameter="image_id")
    return record


def _json(
    status: int, doc: object, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc).encode(),
        content_type=JSONAPI,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# Documents


def _resource(request: web.Request, record: ImageRecord) -> dict[str, object]:
    settings = request.app[SETTINGS]
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
        "number1": record.numbers[0],
        "number2": record.numbers[1],
        "number3": record.numbers[2],
        "maxUnauthorised": record.max_unauthorised,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "ingest": {
            "state": ingest.state,
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
    links = {"self": str(settings.base_url / "v1" / "images" / record.id)}
    issuer = request.app[CATALOG].issuer(record.issuer_id)
    deliverable = original is not None or (
        asset is not None and settings.delivery == "redirect"
    )
    if issuer is not None and issuer.keys and deliverable:
        # Ready-signed URLs (an hour long) to the image as is and as a thumbnail.
        for name, steps in (("delivery", []), ("thumbnail", _THUMBNAIL)):
            token = mint(
                issuer.keys[0],
                issuer_id=issuer.id,
                transformations=steps,
                ttl=_LINK_TTL,
                audience=settings.token_audience,
            )
            url = settings.base_url / "images" / record.id
            links[name] = str(url.with_query(token=token))
    return {"type": "images", "id": record.id, "attributes": attributes, "links": links}


# Create: multipart upload or origin ingest


async def create_image(request: web.Request) -> web.Response:
    """`POST`/`PUT /v1/images`: a multipart upload (field `image`) or `{"origin": url}`."""
    content_type = request.content_type
    if content_type == "multipart/form-data":
        return await _upload(request)
    if content_type == "application/json":
        return await _ingest(request)
    raise UnsupportedMediaTypeError(
        "send multipart/form-data with a file in 'image', or JSON with an 'origin'",
        header="Content-Type",
    )


@dataclass(frozen=True, slots=True)
class _Received:
    path: Path
    size: int
    filename: str | None


async def _upload(request: web.Request) -> web.Response:
    principal = _principal(request, guest_allowed=True)
    settings = request.app[SETTINGS]
    limit = (
        settings.guest_max_upload_bytes
        if principal.guest
        else settings.max_upload_bytes
    )
    received = await _receive(request, limit, request.app[UPLOADS])
    try:
        data = await asyncio.get_running_loop().run_in_executor(
            None, received.path.read_bytes
        )
    finally:
        _remove(received.path)
    return await _register(request, principal, data, received.filename)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _receive(request: web.Request, limit: int, directory: Path) -> _Received:
    """Stream the one file of field `image` to a temporary file, bounded by `limit`."""
    violations: list[PublicError] = []
    received: _Received | None = None
    try:
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    violations.append(UploadFieldError("nested multipart bodies are not accepted", pointer="/image"))  # fmt: skip
                    await part.release()
                elif part.name != "image" or part.filename is None:
                    if part.filename is not None:
                        violations.append(UploadFieldError(f"a file came in the field {part.name!r}; send it in 'image'", pointer="/image"))  # fmt: skip
                    elif part.name == "image":
                        violations.append(UploadFieldError("'image' must be a file", pointer="/image"))  # fmt: skip
                    await part.release()
                elif received is not None:
                    violations.append(UploadFieldError("send exactly one file in 'image'", pointer="/image"))  # fmt: skip
                    await part.release()
                else:
                    received, too_large = await _spool(part, limit, directory)
                    if too_large is not None:
                        violations.append(too_large)
            if received is None and not violations:
                violations.append(UploadFieldError("no file in the field 'image'", pointer="/image"))  # fmt: skip
            elif received is not None and received.size == 0:
                violations.append(
                    UploadFieldError("the file is empty", pointer="/image")
                )
            if violations:
                raise _violations(violations)
        except (
            aiohttp.ClientPayloadError,
            ConnectionError,
            asyncio.IncompleteReadError,
        ):
            raise BadRequestError("the upload was interrupted") from None
        except (ValueError, HttpProcessingError) as exc:  # a malformed multipart body
            raise BadRequestError(
                f"the multipart body is malformed: {exc}", header="Content-Type"
            ) from None
    except BaseException:
        if received is not None:  # whatever went wrong, the spool goes
            _remove(received.path)
        raise
    assert received is not None  # noqa: S101 - else a violation was raised
    return received


async def _spool(
    part: BodyPartReader, limit: int, directory: Path
) -> tuple[_Received, FileTooLargeError | None]:
    # Chunks land in the page cache: writing 64 KiB on the loop costs microseconds.
    fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await part.read_chunk(_CHUNK):
                size += len(chunk)
                if size <= limit:
                    out.write(chunk)
                elif size > 2 * limit + _CHUNK:
                    break  # enough counted to say it is too large; stop reading
    except BaseException:
        _remove(path)
        raise
    received = _Received(path, size, part.filename)
    if size <= limit:
        return received, None
    at_least = "at least " if size > 2 * limit else ""
    return received, FileTooLargeError(
        f"The file is too large ({at_least}{_size(size)}). "
        f"Allowed maximum size is {_size(limit)}.",
        pointer="/image",
    )


def _size(n: int) -> str:
    return f"{n} bytes, {n / 1024 / 1024:.2f} MiB"


def _violations(violations: list[PublicError]) -> PublicError:
    return violations[0] if len(violations) == 1 else ValidationFailedError(violations)


async def _register(
    request: web.Request, principal: _Principal, data: bytes, filename: str | None
) -> web.Response:
    app = request.app
    settings, store, catalog = app[SETTINGS], app[STORE], app[WRITABLE_CATALOG]
    loop = asyncio.get_running_loop()
    try:
        original = await loop.run_in_executor(
            app[RENDERER].executor, prepare_original, store, settings.limits, data
        )
    except UnsupportedFormatError as exc:
        raise MediaTypeNotAllowedError(
            f"The file's type is not allowed (decided from its bytes). "
            f"Allowed types are {_ALLOWED_TYPES}.",
            pointer="/image",
        ) from exc
    except (SourceImageError, LimitExceededError) as exc:
        exc.pointer = "/image"
        raise
    asset = None
    image_id = str(uuid.uuid4())
    try:
        if UPLOADER in app:
            uploaded = await app[UPLOADER].upload(
                data, public_id=image_id, delivery_type=settings.delivery_type
            )
            asset, original = uploaded.asset, uploaded.onto(original)
        record = catalog.add_image(
            issuer_id=principal.issuer_id,
            image_id=image_id,
            cloudinary=asset,
            original=original,
            original_filename=_clean_filename(filename),
        )
    except BaseException:
        discard(catalog, store, original)
        raise
    return _json(
        201,
        {"data": _resource(request, record)},
        {"Location": str(settings.base_url / "v1" / "images" / record.id)},
    )


def _clean_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:255] or None


async def _ingest(request: web.Request) -> web.Response:
    principal = _principal(request)  # guests may upload, never ingest
    body = await _json_body(request)
    unknown = [k for k in body if k != "origin"]
    violations: list[PublicError] = [
        FieldUnknownError(f"unknown field {k!r}", pointer=f"/{k}") for k in unknown
    ]
    origin = body.get("origin")
    if not isinstance(origin, str):
        violations.append(FieldInvalidError("'origin' must be a URL string", pointer="/origin"))  # fmt: skip
    else:
        try:
            check_origin(origin, request.app[INGESTOR].policy)
        except FetchError as exc:
            violations.append(OriginNotAllowedError(str(exc), pointer="/origin"))
    if violations:
        raise _violations(violations)
    assert isinstance(origin, str)  # noqa: S101 - checked above
    record = request.app[WRITABLE_CATALOG].add_image(
        issuer_id=principal.issuer_id, origin=origin
    )
    request.app[INGESTOR].start(record.id, origin)
    settings = request.app[SETTINGS]
    return _json(
        202,
        {"data": _resource(request, record)},
        {"Location": str(settings.base_url / "v1" / "images" / record.id)},
    )


async def _json_body(request: web.Request) -> dict[str, object]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequestError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise FieldInvalidError("the body must be a JSON object", pointer="")
    return body


# Read, list, update, delete


async def get_image(request: web.Request) -> web.Response:
    """`GET /v1/images/{id}`."""
    record = _own_image(request, _principal(request))
    return _json(200, {"data": _resource(request, record)})


_SORT_PARAMS: Final = frozenset({*SORTS, *(f"-{s}" for s in SORTS)})


async def list_images(request: web.Request) -> web.Response:
    """`GET /v1/images`: keyset-paginated, sortable, filterable; `meta.total`."""
    principal = _principal(request)
    query = request.query
    size = _page_size(query.get("page[size]"))
    sort_param = query.get("sort", "-createdAt")
    if sort_param not in _SORT_PARAMS:
        raise InvalidParameterError(
            f"sort is one of {', '.join(sorted(_SORT_PARAMS))}", parameter="sort"
        )
    sort = sort_param.lstrip("-")
    after = _cursor(query.get("page[after]"), "page[after]")
    before = _cursor(query.get("page[before]"), "page[before]")
    if after and before:
        raise InvalidParameterError("give page[after] or page[before], not both", parameter="page[before]")  # fmt: skip
    search = query.get("filter[search]")
    if search is not None and len(search) > 200:
        raise InvalidParameterError(
            "at most 200 characters", parameter="filter[search]"
        )
    ids = None
    if (raw_ids := query.get("filter[id]")) is not None:
        ids = [normalise_image_id(i.strip()) for i in raw_ids.split(",") if i.strip()]
        if not ids or len(ids) > 100 or None in ids:
            raise InvalidParameterError("1 to 100 comma-separated image ids", parameter="filter[id]")  # fmt: skip
    page = request.app[WRITABLE_CATALOG].page(
        principal.issuer_id,
        sort=sort,
        descending=sort_param.startswith("-"),
        size=size,
        after=after,
        before=before,
        search=search,
        tag=query.get("filter[tag]"),
        ids=[i for i in ids if i] if ids is not None else None,
    )
    links: dict[str, str] = {"self": str(request.url.relative())}
    if page.images:
        last, first = page.images[-1], page.images[0]
        # Forward, more follow when this page was cut short; backward, the page
        # we came from follows. Mirrored for what precedes.
        if (page.has_more and not before) or before:
            links["next"] = _link(request, "page[after]", _encode(last, sort))
        if after or (before and page.has_more):
            links["prev"] = _link(request, "page[before]", _encode(first, sort))
    return _json(
        200,
        {
            "data": [_resource(request, r) for r in page.images],
            "meta": {"total": page.total},
            "links": links,
        },
    )


def _link(request: web.Request, name: str, cursor: str) -> str:
    query = {
        k: v
        for k, v in request.query.items()
        if k not in ("page[after]", "page[before]")
    }
    query[name] = cursor
    return str(request.rel_url.with_query(query))


def _page_size(raw: str | None) -> int:
    if raw is None:
        return 10
    # isdecimal() alone admits other scripts' digits; int() of them is not ours.
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= 100:
        raise InvalidParameterError(
            "a whole number from 1 to 100", parameter="page[size]"
        )
    return int(raw)


def _sort_value(record: ImageRecord, sort: str) -> object:
    if sort == "createdAt":
        return record.created_at
    if sort == "updatedAt":
        return record.updated_at
    return record.original.file_size if record.original else 0


def _encode(record: ImageRecord, sort: str) -> str:
    raw = json.dumps([_sort_value(record, sort), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(raw: str | None, parameter: str) -> tuple[object, str] | None:
    if raw is None:
        return None
    try:
        value, image_id = json.loads(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
        if not isinstance(value, str | int) or not isinstance(image_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise InvalidParameterError(
            "not a cursor this API made", parameter=parameter
        ) from None
    return value, image_id


async def patch_image(request: web.Request) -> web.Response:
    """`PATCH /v1/images/{id}`: a JSON merge of the mutable fields (null resets)."""
    principal = _principal(request)
    record = _own_image(request, principal)
    body = await _json_body(request)
    prefix = ""
    attributes: object = body
    if "data" in body:
        data = body["data"]
        attributes = data.get("attributes", {}) if isinstance(data, dict) else None
        prefix = "/data/attributes"
    if not isinstance(attributes, dict):
        raise FieldInvalidError("attributes must be an object", pointer=prefix or "/")
    violations: list[PublicError] = []
    changes: dict[str, object] = {}
    for name, value in attributes.items():
        pointer = f"{prefix}/{name}"
        if name in _READ_ONLY:
            violations.append(
                FieldReadOnlyError(f"{name} is read-only", pointer=pointer)
            )
        elif name not in MUTABLE:
            violations.append(
                FieldUnknownError(f"unknown field {name!r}", pointer=pointer)
            )
        else:
            try:
                changes[name] = _field(name, value, pointer)
            except FieldInvalidError as exc:
                violations.append(exc)
    if violations:
        raise _violations(violations)
    if changes:
        try:
            record = request.app[WRITABLE_CATALOG].update_image(record.id, changes)
        except CatalogError:  # deleted meanwhile
            raise ImageNotFoundError("no such image", parameter="image_id") from None
    return _json(200, {"data": _resource(request, record)})


def _field(name: str, value: object, pointer: str) -> object:
    """A mutable field's value, checked and normalised; None resets it."""
    if name == "description":
        if value is None:
            return ""
        if isinstance(value, str) and len(value) <= 2000:
            return value
        raise FieldInvalidError("a string of at most 2000 characters", pointer=pointer)
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
        if value is None or (isinstance(value, str) and len(value) <= 1000):
            return value
        raise FieldInvalidError(
            "a string of at most 1000 characters, or null", pointer=pointer
        )
    if name.startswith("number"):
        if value is None:
            return None
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ):
            return float(value)
        raise FieldInvalidError("a finite number, or null", pointer=pointer)
    # maxUnauthorised: the largest size served without authorisation (seed 002)
    if value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000
    ):
        return value
    raise FieldInvalidError(
        "a whole number of pixels from 0 to 100000, or null", pointer=pointer
    )


async def delete_image(request: web.Request) -> web.Response:
    """`DELETE /v1/images/{id}[?preserveOnDisk=true]`: 204; delivery 404s at once."""
    principal = _principal(request)
    preserve = request.query.get("preserveOnDisk", "false")
    if preserve not in ("true", "false"):
        raise InvalidParameterError("true or false", parameter="preserveOnDisk")
    record = _own_image(request, principal)
    app = request.app
    if UPLOADER in app and record.cloudinary is not None:
        await app[UPLOADER].destroy(
            record.cloudinary
        )  # fails first: nothing half-deleted
    catalog = app[WRITABLE_CATALOG]
    catalog.remove_image(record.id)
    if record.original is not None and preserve == "false":
        discard(catalog, app[STORE], record.original)
    return web.Response(status=204, headers={"Cache-Control": "no-store"})
