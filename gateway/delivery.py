"""From a token and an image id to what is delivered: verification, resolution, compilation.

Three bounded caches keep the hot path cheap without weakening any check:
verified tokens (the exact token string, until its `exp` plus leeway), compiled
URLs (per image and normalised transformation) and finished redirects (per
token and image). All three are dropped whenever the catalog changes, so a
revoked key or a deleted image takes effect at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cachetools import LRUCache, TLRUCache

from gateway.catalog import CachedCatalog, ImageRecord
from gateway.config import Settings
from gateway.errors import ImageNotFoundError
from gateway.headers import NO_CACHE_HEADERS, SECURITY_HEADERS, redirect_body
from signing import VerifiedToken, verify
from transforms import (
    CloudinaryAsset,
    Transformation,
    normalise_image_id,
    parse_base_chain,
    to_cloudinary_url,
)

__all__ = ["Deliverer", "Redirect", "Resolved"]

# A token without `exp` is re-verified at least this often; key revocation
# clears the cache at once anyway.
_NO_EXP_TTL: Final = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """A verified request: the token, its parsed transformation and every image it names."""

    token: VerifiedToken
    transformation: Transformation
    image: ImageRecord
    overlays: Mapping[str, ImageRecord]


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    location: str
    headers: Mapping[str, str]
    body: bytes


class Deliverer:
    def __init__(self, settings: Settings, catalog: CachedCatalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._base_chain = parse_base_chain(settings.base_chain)
        self._revision = catalog.revision()
        leeway = settings.token_leeway

        def until_expiry(token: VerifiedToken, now: float) -> float:
            expires = token.expires_at
            return now + _NO_EXP_TTL if expires is None else expires + leeway

        self._tokens: TLRUCache[str, VerifiedToken] = TLRUCache(
            maxsize=settings.token_cache_size,
            ttu=lambda _, token, now: until_expiry(token, now),
            timer=time.time,
        )
        self._redirects: TLRUCache[tuple[str, str], _Redirecting] = TLRUCache(
            maxsize=settings.token_cache_size,
            ttu=lambda _, value, now: until_expiry(value.token, now),
            timer=time.time,
        )
        self._urls: LRUCache[tuple[str, Transformation], str] = LRUCache(
            maxsize=settings.url_cache_size
        )

    def _fresh(self) -> None:
        revision = self.catalog.revision()
        if revision != self._revision:
            self._revision = revision
            self._tokens.clear()
            self._redirects.clear()
            self._urls.clear()

    def verify(self, token: str | None) -> VerifiedToken:
        if token is not None and (cached := self._tokens.get(token)) is not None:
            return cached
        verified = verify(
            token,
            self.catalog,
            leeway=self.settings.token_leeway,
            audience=self.settings.token_audience,
            max_bytes=self.settings.token_max_bytes,
        )
        assert token is not None  # noqa: S101 - verify refuses a missing token
        self._tokens[token] = verified
        return verified

    def resolve(self, token: str | None, image_id: str) -> Resolved:
        """Verify, then find every image the token names, within its issuer only."""
        self._fresh()
        canonical = normalise_image_id(image_id)
        if canonical is None:
            raise ImageNotFoundError("no such image", parameter="image_id")
        verified = self.verify(token)
        verified.ensure_subject(canonical)
        transformation = Transformation.from_json(
            verified.transformations, self.settings.limits
        )
        image = self._image(canonical, verified.issuer)
        if image is None:
            raise ImageNotFoundError("no such image", parameter="image_id")
        overlays: dict[str, ImageRecord] = {}
        for layer_id, index in transformation.overlay_steps.items():
            layer = self._image(layer_id, verified.issuer)
            if layer is None:
                raise ImageNotFoundError(
                    "the overlay names no image of this issuer",
                    pointer=f"/transformations/{index}/overlay",
                )
            overlays[layer_id] = layer
        return Resolved(
            token=verified,
            transformation=transformation,
            image=image,
            overlays=overlays,
        )

    def _image(self, image_id: str, issuer_id: str) -> ImageRecord | None:
        # Another issuer's image is answered exactly like a missing one.
        image = self.catalog.image(image_id)
        return image if image is not None and image.issuer_id == issuer_id else None

    def redirect(self, token: str | None, image_id: str) -> Redirect:
        """The 302 for a token and image, from cache when this exact pair was seen."""
        if token is not None:
            self._fresh()
            cached = self._redirects.get((token, image_id))
            if cached is not None:
                return cached.redirect
        resolved = self.resolve(token, image_id)
        location = self._url(resolved)
        redirect = Redirect(
            location=location,
            headers={
                **NO_CACHE_HEADERS,
                "Location": location,
                "Content-Type": "text/html; charset=utf-8",
                **SECURITY_HEADERS,
            },
            body=redirect_body(location),
        )
        assert token is not None  # noqa: S101 - resolve refuses a missing token
        self._redirects[(token, image_id)] = _Redirecting(resolved.token, redirect)
        return redirect

    def _url(self, resolved: Resolved) -> str:
        key = (resolved.image.id, resolved.transformation)
        if (url := self._urls.get(key)) is not None:
            return url
        account = self.settings.cloudinary
        assert account is not None  # noqa: S101 - redirect mode requires it
        url = self._urls[key] = to_cloudinary_url(
            resolved.transformation,
            asset=_asset(resolved.image, None),
            overlays={
                layer_id: _asset(
                    resolved.overlays[layer_id], f"/transformations/{index}/overlay"
                )
                for layer_id, index in resolved.transformation.overlay_steps.items()
            },
            account=account,
            base_chain=self._base_chain,
        )
        return url


@dataclass(frozen=True, slots=True)
class _Redirecting:
    token: VerifiedToken
    redirect: Redirect


def _asset(record: ImageRecord, pointer: str | None) -> CloudinaryAsset:
    if record.cloudinary is None:
        raise ImageNotFoundError(
            "the image is not on Cloudinary",
            pointer=pointer,
            parameter=None if pointer else "image_id",
        )
    return record.cloudinary
