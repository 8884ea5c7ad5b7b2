"""`GET /cdn/{cloud}/image/{type}/…`: the local stand-in for Cloudinary's delivery endpoint.

Mounted with GATEWAY_CDN=local. It answers the URLs the gateway's redirects
point at, checked as Cloudinary's CDN checks them: the `s--…--` signature
(short or long) or, with GATEWAY_CDN_TOKEN_KEY, the `__cld_token__` and its
expiry (401 otherwise); then the chain is read back into the transformation
model (only what the compiler emits; 400 otherwise) and rendered from the
stand-in's originals by the local renderer. Every URL must be signed, as on a
Cloudinary account with strict transformations.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from aiohttp import web

from gateway.catalog import Original
from gateway.cloudinary import LocalCloud
from gateway.config import Settings
from gateway.errors import (
    ImageNotFoundError,
    InvalidParameterError,
    RouteNotFoundError,
    UrlExpiredError,
    UrlSignatureError,
)
from gateway.http.delivery import answer_job
from gateway.keys import CDN, RENDERER, SETTINGS
from transforms import (
    MAX_SIDE,
    Delivery,
    Limits,
    Step,
    parse_base_chain,
    parse_render_base,
)
from transforms.cloudinary import CloudinaryAsset
from transforms.cloudinary.signature import (
    AUTH_TOKEN_NAME,
    TokenCheck,
    check_auth_token,
    check_signature,
)
from transforms.render import RenderChain

if TYPE_CHECKING:
    from transforms.cloudinary.parse import DeliveryPath

__all__ = ["PREFIX", "deliver"]

PREFIX: Final = "/cdn"
# A delivery URL's extension -> the format rendered (Cloudinary converts too).
_FORMATS: Final[Mapping[str, str]] = {
    "jpg": "jpg",
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "avif": "avif",
    "gif": "gif",
}
# Longer than any delivery URL the compiler writes (16 steps and 8 overlays
# named by 255-character public ids come to about 4 KB).
_MAX_PATH: Final = 8192
# The model names an overlay by image id (a UUID); the stand-in knows assets.
_LAYERS: Final = uuid.UUID("6c0c7a44-8a7e-4f44-9d1e-4c2b3c1d0a5e")


def _layer_id(asset: CloudinaryAsset) -> str:
    return str(uuid.uuid5(_LAYERS, f"{asset.delivery_type}/{asset.public_id}"))


async def deliver(request: web.Request) -> web.Response:
    """The picture a signed delivery URL names, rendered here."""
    # Imported here, not with this module: the SDK reads CLOUDINARY_URL when
    # imported, and a gateway without the stand-in need not load it at all.
    from transforms.cloudinary.parse import parse_chain, parse_delivery_path

    cloud = request.app.get(CDN)
    if cloud is None:
        raise RouteNotFoundError("the local CDN stand-in is off (GATEWAY_CDN=local)")
    settings = request.app[SETTINGS]
    # The raw path: what was signed, byte for byte.
    path = request.rel_url.raw_path.removeprefix(PREFIX)
    if len(path) > _MAX_PATH:
        # Checking a token escapes the path in Python, a byte at a time:
        # 49 KB took 26 ms, before any signature was compared.
        raise ImageNotFoundError("no such asset", parameter="path")
    parsed = parse_delivery_path(path)
    if parsed is None or parsed.cloud_name != cloud.account.cloud_name:
        raise ImageNotFoundError("no such asset", parameter="path")
    expires_at = _authorise(request, settings, cloud, parsed, path)
    own_format = _FORMATS.get(parsed.format)
    if own_format is None:
        raise InvalidParameterError(
            f"the extension must be one of {', '.join(_FORMATS)}", parameter="path"
        )
    base_chain, render_base = _base(settings.upstream.base_chain, settings.limits)
    if tuple(parsed.chain.split("/")[: len(base_chain)]) != base_chain:
        # The paths without tokens (/image, IIIF) sign chains without the
        # operator's base chain; the signature says the gateway made them.
        base_chain, render_base = (), ((), Delivery())
    transformation, layers = parse_chain(
        parsed.chain,
        base_chain=base_chain,
        layer_id=_layer_id,
        limits=_signed_limits(settings.limits),
    )
    image = _original(cloud, parsed.delivery_type, parsed.public_id)
    overlays = {
        layer_id: _original(cloud, asset.delivery_type, asset.public_id)
        for layer_id, asset in layers.items()
    }
    renderer = request.app[RENDERER]
    job = renderer.prepare_chain(
        RenderChain.build(render_base, transformation),
        image,
        overlays,
        identity=["cdn", parsed.chain],
        name=parsed.public_id.rsplit("/", 1)[-1],
        own_format=own_format,
        accept=request.headers.get("Accept"),
        expires_at=expires_at,
    )
    return await answer_job(request, renderer, job, renderer.headers(job))


@functools.cache
def _signed_limits(limits: Limits) -> Limits:
    """The limits of a chain the gateway signed (`_authorise` comes first).

    A region (IIIF's `c_crop` with x and y) is cut from the original, which
    may be wider than a step's output may be (GATEWAY_MAX_SIZE) and reach past
    GATEWAY_MAX_OFFSET; as on Cloudinary, the original and the renderer's
    pixel budgets bound that geometry instead.
    """
    return dataclasses.replace(limits, max_size=MAX_SIDE, max_offset=MAX_SIDE)


@functools.cache
def _base(
    chain: str, limits: Limits
) -> tuple[tuple[str, ...], tuple[tuple[Step, ...], Delivery]]:
    """The operator's base chain as URL components, and as steps to render."""
    return parse_base_chain(chain), parse_render_base(chain, limits)


def _authorise(
    request: web.Request,
    settings: Settings,
    cloud: LocalCloud,
    parsed: DeliveryPath,
    path: str,
) -> float | None:
    """Refuse what Cloudinary would refuse; say until when the URL opens."""
    if parsed.signature is not None and not check_signature(
        parsed.signature, parsed.signed, cloud.account.api_secret
    ):
        raise UrlSignatureError("the URL's signature does not match it")
    key = settings.upstream.cdn_token_key
    if key is None:
        if parsed.signature is None:
            raise UrlSignatureError("the URL is not signed")
        return None
    tokens = request.query.getall(AUTH_TOKEN_NAME, ())
    if len(tokens) != 1:
        raise UrlSignatureError(f"the URL needs exactly one {AUTH_TOKEN_NAME}")
    check, expiration = check_auth_token(tokens[0], path, key, now=time.time())
    match check:
        case TokenCheck.VALID:
            return expiration
        case TokenCheck.EXPIRED:
            raise UrlExpiredError("the URL's token has expired")
        case TokenCheck.NOT_YET_VALID:
            raise UrlSignatureError("the URL's token is not valid yet")
        case TokenCheck.INVALID:
            raise UrlSignatureError("the URL's token does not match it")


def _original(cloud: LocalCloud, delivery_type: str, public_id: str) -> Original:
    original = cloud.original(delivery_type, public_id)
    if original is None:
        raise ImageNotFoundError("no such asset", parameter="path")
    return original
