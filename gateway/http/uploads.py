"""Multipart uploads: the one file of field `image`, spooled to disk, bounded.

The body is streamed to a temporary file as it arrives, so a large upload
costs disk, not memory, and one over the limit is refused after reading at
most about twice the limit (enough to say how large it was).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.catalog import ImageRecord
from gateway.errors import (
    BadRequestError,
    FileTooLargeError,
    MediaTypeNotAllowedError,
    PublicError,
    UploadFieldError,
)
from gateway.http import jsonapi
from gateway.http.auth import Principal, still_authorised
from gateway.keys import CATALOG, EXECUTOR, SETTINGS, STORE, UPLOADER
from gateway.originals.ingest import discard, kept, prepare_original
from transforms import LimitExceededError, SourceImageError
from transforms.errors import UnsupportedFormatError

__all__ = ["Received", "receive", "register"]

_CHUNK: Final = 64 * 1024
# Room for a multipart body's boundaries and part headers around the file.
_ENVELOPE: Final = 64 * 1024
_MAX_PARTS: Final = 8
# A part's Content-Disposition, read by aiohttp twice (`name`, `filename`):
# 8 KB of `;` took 13 ms each time. A browser's has two parameters and a name
# of at most 255 bytes (765 characters percent-encoded). Every `;` counts,
# quoted or not: aiohttp reads no file name holding more than one anyway.
_MAX_DISPOSITION: Final = 2048
_MAX_DISPOSITION_PARAMETERS: Final = 8
_ALLOWED_TYPES: Final = "image/jpeg, image/png, image/webp, image/gif"


@dataclass(frozen=True, slots=True)
class Received:
    path: Path
    size: int
    filename: str | None


async def receive(request: web.Request, limit: int, directory: Path) -> Received:
    """Stream the one file of field `image` to a temporary file, bounded by `limit`.

    Bounded whatever the body holds: at most `_MAX_PARTS` parts, and no more
    than about twice `limit` read in all (enough to say by how much a file is
    too large); a declared length past that is refused before reading.
    """
    violations: list[PublicError] = []
    received: Received | None = None
    budget = 2 * limit + _ENVELOPE
    declared = request.content_length
    if declared is not None and declared > budget:
        raise FileTooLargeError(
            f"The file is too large (at least {_size(declared - _ENVELOPE)}). "
            f"Allowed maximum size is {_size(limit)}.",
            pointer="/image",
        )
    try:
        try:
            jsonapi.refuse_encoded(request)
            reader = await request.multipart()
            parts = 0
            while (part := await reader.next()) is not None:
                parts += 1
                if parts > _MAX_PARTS:
                    violations.append(UploadFieldError(f"at most {_MAX_PARTS} parts", pointer="/image"))  # fmt: skip
                    break
                if not isinstance(part, BodyPartReader):
                    violations.append(UploadFieldError("nested multipart bodies are not accepted", pointer="/image"))  # fmt: skip
                    break
                disposition = part.headers.get(hdrs.CONTENT_DISPOSITION, "")
                if (
                    len(disposition) > _MAX_DISPOSITION
                    or disposition.count(";") > _MAX_DISPOSITION_PARAMETERS
                ):
                    violations.append(UploadFieldError(f"a part's Content-Disposition is at most {_MAX_DISPOSITION} characters and {_MAX_DISPOSITION_PARAMETERS} parameters", pointer="/image"))  # fmt: skip
                    break
                if part.name != "image" or part.filename is None:
                    if part.filename is not None:
                        violations.append(UploadFieldError(f"a file came in the field {part.name!r}; send it in 'image'", pointer="/image"))  # fmt: skip
                    elif part.name == "image":
                        violations.append(UploadFieldError("'image' must be a file", pointer="/image"))  # fmt: skip
                    budget -= await _skip(part, budget)
                elif received is not None:
                    violations.append(UploadFieldError("send exactly one file in 'image'", pointer="/image"))  # fmt: skip
                    budget -= await _skip(part, budget)
                else:
                    received, too_large = await _spool(part, limit, directory)
                    budget -= received.size
                    if too_large is not None:
                        violations.append(too_large)
                        break
                if budget <= 0:
                    violations.append(FileTooLargeError(f"The body is too large. Allowed maximum size is {_size(limit)}.", pointer="/image"))  # fmt: skip
                    break
            if received is None and not violations:
                violations.append(UploadFieldError("no file in the field 'image'", pointer="/image"))  # fmt: skip
            elif received is not None and received.size == 0:
                violations.append(
                    UploadFieldError("the file is empty", pointer="/image")
                )
            if violations:
                raise jsonapi.violations(violations)
        except (
            aiohttp.ClientPayloadError,
            ConnectionError,
            asyncio.IncompleteReadError,
        ):
            raise BadRequestError("the upload was interrupted") from None
        except HttpProcessingError:
            # Not quoted: aiohttp's message repeats the client's bytes.
            raise BadRequestError(
                "the multipart body is malformed: a part's headers cannot be read"
            ) from None
        except ValueError:  # the boundary: missing, or not as Content-Type says
            raise BadRequestError(
                "the multipart body is malformed: its parts are not delimited by"
                " the boundary Content-Type names",
                header="Content-Type",
            ) from None
    except BaseException:
        if received is not None:  # whatever went wrong, the spool goes
            _remove(received.path)
        raise
    assert received is not None  # noqa: S101 - else a violation was raised
    return received


async def _skip(part: BodyPartReader, budget: int) -> int:
    """Read past a part we do not keep, at most `budget` bytes; say how many."""
    read = 0
    while read <= budget and (chunk := await part.read_chunk(_CHUNK)):
        read += len(chunk)
    return read


async def _spool(
    part: BodyPartReader, limit: int, directory: Path
) -> tuple[Received, FileTooLargeError | None]:
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
    received = Received(path, size, part.filename)
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


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def read_and_remove(received: Received) -> bytes:
    """The spooled bytes (read off the loop); the spool file is gone afterwards."""
    try:
        return await asyncio.to_thread(received.path.read_bytes)
    finally:
        _remove(received.path)


async def register(
    request: web.Request, principal: Principal, data: bytes, filename: str | None
) -> ImageRecord:
    """Probe and store the original, upload it to Cloudinary when configured,
    and record it; nothing is left behind if any step fails."""
    app = request.app
    settings, store, catalog = app[SETTINGS], app[STORE], app[CATALOG].store
    try:
        original = await prepare_original(store, settings.limits, data, app[EXECUTOR])
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
        await still_authorised(request, principal)
        if UPLOADER in app:
            uploaded = await app[UPLOADER].upload(
                data, public_id=image_id, delivery_type=settings.upstream.delivery_type
            )
            asset, original = uploaded.asset, uploaded.onto(original)
        record = await catalog.add_image(
            issuer_id=principal.issuer_id,
            image_id=image_id,
            cloudinary=asset,
            original=original,
            original_filename=_clean_filename(filename),
        )
    except BaseException:
        await discard(catalog, store, original)
        raise
    await kept(store, data)
    return record


def _clean_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:255] or None
