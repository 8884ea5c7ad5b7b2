"""`/iiif/3/{id}`: the IIIF Image API 3.0 (level 2) over the catalog's images.

The image's UUID is the IIIF identifier. A request compiles into the
transformation model (`delivery.iiif`) and is rendered here, its tiles cut
from cached pyramid levels, or in redirect mode answered with a 302 to the
signed Cloudinary URL of the same chain. Who may have which scale is
`delivery.policy`'s to decide, as for `/image`: anonymous callers get public
images up to their `maxUnauthorised`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Final

from aiohttp import hdrs, web

from gateway.catalog import ImageRecord
from gateway.delivery import iiif
from gateway.delivery.policy import Caller, Grant, decide
from gateway.errors import (
    CredentialRequiredError,
    ImageNotFoundError,
    RoleRequiredError,
)
from gateway.http.auth import optional_principal
from gateway.http.delivery import answer_job, redirect_to, signed_location
from gateway.keys import CATALOG, ERROR_HEADERS, RENDERER, SETTINGS
from transforms import OutputTooLargeError, Transformation, normalise_image_id

__all__ = ["base", "image", "info", "preflight"]

_LD_JSON: Final = f'application/ld+json;profile="{iiif.CONTEXT}"'
# Any page may show these images (IIIF viewers run on other sites).
_HEADERS: Final[Mapping[str, str]] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Link, ETag, X-Request-Id",
    "X-Content-Type-Options": "nosniff",
}
_CREDENTIAL_VARY: Final = "Authorization, Cookie, X-Session-Token"
# A viewer may send a credential from any site (it may have more than `max`).
_PREFLIGHT: Final[Mapping[str, str]] = {
    **_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Authorization, X-Session-Token, If-None-Match",
    "Access-Control-Max-Age": "600",
}


async def base(request: web.Request) -> web.Response:
    """`GET /iiif/3/{id}`: 303 to its `info.json`, as the specification asks."""
    request[ERROR_HEADERS] = _HEADERS
    image_id = _image_id(request)
    location = _service_id(request, image_id) + "/info.json"
    return web.Response(
        status=303,
        headers={
            **_HEADERS,
            "Location": location,
            "Cache-Control": "public, max-age=86400",
        },
    )


async def preflight(request: web.Request) -> web.Response:
    """`OPTIONS /iiif/3/…`: the CORS preflight the specification asks servers to answer."""
    return web.Response(status=204, headers=_PREFLIGHT)


async def info(request: web.Request) -> web.Response:
    """`GET /iiif/3/{id}/info.json`: sizes and tiles, only those the caller may have."""
    request[ERROR_HEADERS] = _HEADERS
    settings = request.app[SETTINGS]
    caller = await optional_principal(request)
    record, full = await _image(request)
    _, longest_allowed = _rights(record, caller, full)
    doc = iiif.info_document(
        _service_id(request, record.id), full, settings.limits, longest_allowed
    )
    accept = request.headers.get(hdrs.ACCEPT, "")
    content_type = _LD_JSON if "application/ld+json" in accept else "application/json"
    return web.Response(
        body=json.dumps(doc).encode(),
        headers={
            **_HEADERS,
            hdrs.CONTENT_TYPE: content_type,
            "Link": f'<{iiif.PROFILE_URI}>;rel="profile"',
            **_cache(
                settings.access.public_max_age,
                caller is None,
                vary="Accept",
                capped=longest_allowed is not None,
            ),
        },
    )


async def image(request: web.Request) -> web.StreamResponse:
    """`GET /iiif/3/{id}/{region}/{size}/{rotation}/{quality}.{format}`."""
    request[ERROR_HEADERS] = _HEADERS
    settings = request.app[SETTINGS]
    info = request.match_info
    syntax = iiif.parse(
        info["region"],
        info["size"],
        info["rotation"],
        f"{info['quality']}.{info['format']}",
    )
    caller = await optional_principal(request)
    record, full = await _image(request)
    scale_cap, _ = _rights(record, caller, full)
    wanted = iiif.resolve(syntax, full, settings.limits, scale_cap)
    grant = decide(record, caller, iiif.policy_size(wanted.view), anonymous_path=True)
    canonical = f"{_service_id(request, record.id)}/{wanted.canonical}"
    headers = {
        **_HEADERS,
        "Link": f'<{iiif.PROFILE_URI}>;rel="profile", <{canonical}>;rel="canonical"',
        **_cache(
            settings.access.public_max_age, grant is Grant.ANYONE, capped=scale_cap < 1
        ),
    }
    if settings.upstream.delivery == "render":
        renderer = request.app[RENDERER]
        try:
            job = renderer.view(
                record, wanted.view, Transformation(steps=wanted.edits), wanted.format
            )
        except OutputTooLargeError as exc:
            raise iiif.over_budget(wanted, settings.limits) from exc
        headers["ETag"] = job.etag
        return await answer_job(request, renderer, job, headers)
    location, expiration = signed_location(
        request, record, wanted.transformation, wanted.format
    )
    if expiration is not None:
        # A cached 302 must not outlive the URL it points at.
        max_age = min(
            max(0, int(expiration - time.time())), settings.access.public_max_age
        )
        headers |= _cache(max_age, grant is Grant.ANYONE, capped=scale_cap < 1)
    return redirect_to(location, headers)


def _rights(
    record: ImageRecord, caller: Caller | None, full: tuple[int, int]
) -> tuple[float, int | None]:
    """The largest scale of the whole image the caller may have, and its longest side.

    (1.0, None) when the caller may have the image at full size. Raises
    when the caller may have nothing (a private image: 404; a cap of 0: 401).
    """
    longest = max(full)
    try:
        decide(record, caller, longest, anonymous_path=True)
    except (CredentialRequiredError, RoleRequiredError):
        cap = record.max_unauthorised
        if not cap:
            raise
        return cap / longest, cap
    return 1.0, None


def _cache(
    max_age: int, shared: bool, *, vary: str | None = None, capped: bool = False
) -> dict[str, str]:
    """Shared caches may keep what anyone would get; the rest varies by credential.

    So does what a `capped` caller got (the anonymous, of an image with a
    cap): `info.json` and `max` are fitted to the cap, and a credential
    with the image's roles gets more for the same URL.
    """
    if shared:
        headers = {"Cache-Control": f"public, max-age={max_age}"}
        varies = [v for v in (vary, capped and _CREDENTIAL_VARY) if v]
    else:
        headers = {"Cache-Control": f"private, max-age={max_age}"}
        varies = [v for v in (vary, _CREDENTIAL_VARY) if v]
    if varies:
        headers["Vary"] = ", ".join(varies)
    return headers


def _image_id(request: web.Request) -> str:
    image_id = normalise_image_id(request.match_info["image_id"])
    if image_id is None:
        raise ImageNotFoundError("no such image", parameter="image_id")
    return image_id


def _service_id(request: web.Request, image_id: str) -> str:
    return str(request.app[SETTINGS].base_url / "iiif" / "3" / image_id)


async def _image(request: web.Request) -> tuple[ImageRecord, tuple[int, int]]:
    image_id = _image_id(request)
    catalog = await request.app[CATALOG].fresh()
    record = await catalog.image(image_id)
    if record is None:
        raise ImageNotFoundError("no such image", parameter="image_id")
    if record.original is None:
        # Registered by its Cloudinary id alone: no known size to tile.
        raise ImageNotFoundError.unusable("the image's size is not known", None)
    return record, (record.original.width, record.original.height)
