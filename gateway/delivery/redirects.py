"""The 302 to Cloudinary: a signed URL with seed 004's exact headers and body."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.catalog import ImageRecord
from gateway.delivery.headers import NO_CACHE_HEADERS, SECURITY_HEADERS, redirect_body
from gateway.errors import ImageNotFoundError
from transforms import Transformation
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

__all__ = ["SHARED_HOST", "Cdn", "Redirect", "compile_redirect", "signed_url"]

# Where the SDK points a URL of an account without a private CDN or CNAME.
SHARED_HOST: Final = "https://res.cloudinary.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cdn:
    """Where redirects point, and how they are signed.

    `origin` (the local stand-in) replaces Cloudinary's shared host in each
    compiled URL: the signature and the token cover the path only, so the
    URL is compiled exactly as for Cloudinary and then moved.
    """

    account: CloudinaryAccount = field(repr=False)
    origin: str | None = None
    token_key: str | None = field(default=None, repr=False)
    url_max_age: int = 3600

    def expiration(self, token_expires_at: float | None, now: float) -> int | None:
        """When a URL for this token stops opening (minutes: few CDN cache keys)."""
        if self.token_key is None:
            return None
        until = now + self.url_max_age if token_expires_at is None else token_expires_at
        return int(until) // 60 * 60


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    issuer: str  # whose images these are (for the access log)
    location: str
    # Built once and copied into each response: copying a multidict is cheaper
    # than building one from a dict on every request.
    headers: CIMultiDictProxy[str]
    body: bytes


def compile_redirect(
    issuer: str,
    transformation: Transformation,
    image: ImageRecord,
    overlays: Mapping[str, ImageRecord],
    *,
    cdn: Cdn,
    base_chain: tuple[str, ...],
    expiration: int | None = None,
) -> Redirect:
    """The 302 for an image and the overlays its transformation names.

    With `cdn.token_key`, the URL carries Cloudinary's `__cld_token__` good
    until `expiration`.
    """
    location = signed_url(
        transformation,
        image,
        overlays,
        cdn=cdn,
        base_chain=base_chain,
        expiration=expiration,
    )
    headers = CIMultiDict(
        {
            **NO_CACHE_HEADERS,
            "Location": location,
            "Content-Type": "text/html; charset=utf-8",
            **SECURITY_HEADERS,
        }
    )
    return Redirect(
        issuer=issuer,
        location=location,
        headers=CIMultiDictProxy(headers),
        body=redirect_body(location),
    )


def signed_url(
    transformation: Transformation,
    image: ImageRecord,
    overlays: Mapping[str, ImageRecord],
    *,
    cdn: Cdn,
    base_chain: tuple[str, ...],
    expiration: int | None = None,
    extension: str | None = None,
) -> str:
    """The signed delivery URL of a chain, on the CDN's origin.

    `extension` overrides the asset's format (the paths that name theirs).
    """
    # Imported here, not with this module: the SDK reads CLOUDINARY_URL when
    # imported, and refuses a malformed one with a traceback; by the time a
    # redirect is compiled, `Settings` has checked it (one line, exit 2).
    from transforms.cloudinary.compile import AuthToken, to_cloudinary_url

    auth_token = None
    if cdn.token_key is not None and expiration is not None:
        auth_token = AuthToken(key=cdn.token_key, expiration=expiration)
    asset = _asset(image, None)
    if extension is not None:
        asset = dataclasses.replace(asset, format=extension)
    location = to_cloudinary_url(
        transformation,
        asset=asset,
        overlays={
            layer_id: _asset(overlays[layer_id], f"/transformations/{index}/overlay")
            for layer_id, index in transformation.overlay_steps.items()
        },
        account=cdn.account,
        base_chain=base_chain,
        auth_token=auth_token,
    )
    if cdn.origin is not None:
        if not location.startswith(SHARED_HOST + "/"):
            raise RuntimeError("the stand-in's account compiles to another host")
        location = cdn.origin + location.removeprefix(SHARED_HOST)
    return location


def _asset(record: ImageRecord, pointer: str | None) -> CloudinaryAsset:
    if record.cloudinary is None:
        raise ImageNotFoundError.unusable(
            "the image has no CDN asset: it was added while neither CLOUDINARY_URL"
            " nor GATEWAY_CDN=local was set",
            pointer,
        )
    return record.cloudinary
