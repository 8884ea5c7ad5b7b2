"""`/v3/images/{id}/{size}` and `/image/{id}.{ext}`: pictures without transformation tokens.

- `/v3` needs a credential (`images:read`) and always answers the JPEG itself:
  rendered here, or in redirect mode fetched from Cloudinary and streamed
  through (`delivery.proxy`), never a redirect.
- `/image` is open to anyone for public images, with sizes snapped to a
  ladder; a credential of the image's issuer opens sizes over the anonymous
  cap. Rendered here, or a 302 to the signed Cloudinary URL.

Who may have which size is `delivery.policy`'s to decide, for both.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Final

from aiohttp import hdrs, web

from gateway.catalog import ImageRecord
from gateway.delivery.pictures import (
    Picture,
    parse_crop,
    parse_dimension,
    parse_extension,
    parse_size,
    public_picture,
    sized_picture,
)
from gateway.delivery.policy import Grant, decide
from gateway.errors import ImageNotFoundError
from gateway.http.auth import authenticate, optional_principal
from gateway.http.delivery import (
    answer_job,
    etag_matches,
    redirect_to,
    signed_location,
)
from gateway.http.middlewares import SERVER
from gateway.keys import CATALOG, PROXY, RENDERER, REQUEST_ID, SETTINGS
from transforms import normalise_image_id

__all__ = ["preflight", "public_image", "sized_image"]

_HEADERS: Final[Mapping[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# What a browser may send cross-origin to these paths, and read back.
_ALLOWED_HEADERS: Final = "Authorization, X-Session-Token, If-None-Match"
_EXPOSED_HEADERS: Final = "ETag, X-Request-Id, Content-Length"
_PREFLIGHT_MAX_AGE: Final = "600"
# Answers that depend on who asked.
_CREDENTIAL_VARY: Final = "Authorization, Cookie, X-Session-Token"


async def sized_image(request: web.Request) -> web.StreamResponse:
    """`GET /v3/images/{image_id}/{size}`: the JPEG fitted in the size, for a credential."""
    started = time.perf_counter()
    settings = request.app[SETTINGS]
    principal = await authenticate(request)
    width, height = parse_size(request.match_info["size"], settings.limits)
    image = await _image(request)
    if image.issuer_id != principal.issuer_id:
        raise ImageNotFoundError("no such image", parameter="image_id")
    picture = sized_picture(image, width, height, settings.limits)
    decide(image, principal, picture.size, anonymous_path=False)
    headers = {
        **_HEADERS,
        **_cors(request, vary=_CREDENTIAL_VARY),
        "Cache-Control": f"private, max-age={settings.render.max_age}",
    }
    if settings.upstream.delivery == "render":
        return await _rendered(request, image, picture, headers)
    headers["ETag"] = _etag(image, picture)
    if etag_matches(request.headers.get(hdrs.IF_NONE_MATCH), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    url, _ = signed_location(request, image, picture.transformation, "jpg")
    # A streamed answer's headers leave before the middlewares see it.
    headers |= {"X-Request-Id": request[REQUEST_ID], "Server": SERVER}
    return await request.app[PROXY].stream(
        request, url, headers=headers, started=started
    )


async def public_image(request: web.Request) -> web.StreamResponse:
    """`GET /image/{id}.{ext}?w=&h=&crop=`: a public image, sized on the ladder."""
    settings = request.app[SETTINGS]
    image_id, dot, raw_extension = request.match_info["name"].rpartition(".")
    extension = parse_extension(raw_extension.lower() if dot else "")
    query = request.query
    width = parse_dimension(query.getall("w", ()), "w", settings.limits)
    height = parse_dimension(query.getall("h", ()), "h", settings.limits)
    crop = parse_crop(query.getall("crop", ()))
    principal = await optional_principal(request)
    image = await _image(request, image_id)
    if not image.is_public:
        # Exactly like an unknown id, whoever asks.
        raise ImageNotFoundError("no such image", parameter="image_id")
    picture = public_picture(
        image,
        width=width,
        height=height,
        crop=crop,
        extension=extension,
        ladder=settings.access.public_sizes,
        limits=settings.limits,
    )
    grant = decide(image, principal, picture.size, anonymous_path=True)
    if grant is Grant.ANYONE:
        # The same for anyone who asks: shared caches (a CDN) may keep it.
        cache_control = f"public, max-age={settings.access.public_max_age}"
        vary = None
    else:
        cache_control = f"private, max-age={settings.render.max_age}"
        vary = _CREDENTIAL_VARY
    headers = {
        **_HEADERS,
        **_cors(request, vary=vary),
        "Cache-Control": cache_control,
    }
    if settings.upstream.delivery == "render":
        return await _rendered(request, image, picture, headers)
    location, expiration = signed_location(
        request, image, picture.transformation, picture.extension
    )
    if expiration is not None:
        # A cached 302 must not outlive the URL it points at.
        max_age = max(0, int(expiration - time.time()))
        kind = "public" if grant is Grant.ANYONE else "private"
        headers["Cache-Control"] = (
            f"{kind}, max-age={min(max_age, settings.access.public_max_age)}"
        )
    return redirect_to(location, headers)


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for the credential headers (`OPTIONS`)."""
    headers = _cors(request)
    if headers:
        headers |= {
            "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
        }
    return web.Response(status=204, headers={**headers, "Allow": "GET, HEAD, OPTIONS"})


async def _image(request: web.Request, raw_id: str | None = None) -> ImageRecord:
    image_id = normalise_image_id(
        request.match_info["image_id"] if raw_id is None else raw_id
    )
    catalog = await request.app[CATALOG].fresh()
    image = await catalog.image(image_id) if image_id is not None else None
    if image is None:
        raise ImageNotFoundError("no such image", parameter="image_id")
    return image


async def _rendered(
    request: web.Request,
    image: ImageRecord,
    picture: Picture,
    headers: dict[str, str],
) -> web.Response:
    renderer = request.app[RENDERER]
    job = renderer.picture(image, picture.transformation, picture.extension)
    headers["ETag"] = job.etag
    return await answer_job(request, renderer, job, headers)


def _etag(image: ImageRecord, picture: Picture) -> str:
    """Strong, from the image, its version and the chain: proxied bytes we never hold."""
    asset = image.cloudinary
    identity = repr(
        (
            image.id,
            asset.public_id if asset else None,
            asset.version if asset else None,
            picture.transformation,
            picture.extension,
        )
    )
    return '"' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'


def _cors(request: web.Request, *, vary: str | None = None) -> dict[str, str]:
    """`Access-Control-*` for an allowed `Origin` (credentials only for a listed one), and `Vary`."""
    origins = request.app[SETTINGS].access.cors_origins
    origin = request.headers.get(hdrs.ORIGIN)
    headers: dict[str, str] = {}
    varies = [vary] if vary else []
    if origins and "*" not in origins:
        varies.append("Origin")  # the answer names the origin it allows
    if origins and origin is not None:
        if origin in origins:
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Expose-Headers": _EXPOSED_HEADERS,
            }
        elif "*" in origins:
            headers = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": _EXPOSED_HEADERS,
            }
    if varies:
        headers["Vary"] = ", ".join(varies)
    return headers
