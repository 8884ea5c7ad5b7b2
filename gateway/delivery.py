"""From a token and an image id to what is delivered: verification, resolution, compilation.

Two bounded caches keep the hot path cheap without weakening any check:

- per (token, image id), the finished answer, until the token's `exp` plus
  leeway: a page of tiles reloaded costs a dictionary lookup;
- per (issuer, image id, normalised transformation), the compiled 302, since it
  does not depend on which token asked: a fresh token for a known tiling costs
  one verification and a parse. An entry exists only after that issuer passed
  the ownership checks for every image it names, so a hit skips them.

Both are dropped whenever the catalog changes, so a revoked key or a deleted
image takes effect at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from cachetools import LRUCache
from multidict import CIMultiDict, CIMultiDictProxy

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

_T = TypeVar("_T")

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
    # Built once and copied into each response: copying a multidict is cheaper
    # than building one from a dict on every request.
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Seen(Generic[_T]):
    """A cached answer for one token, good until `valid_until` (epoch seconds)."""

    valid_until: float
    value: _T


class Deliverer:
    def __init__(self, settings: Settings, catalog: CachedCatalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._base_chain = parse_base_chain(settings.base_chain)
        self._revision = catalog.revision()
        # LRU with an explicit expiry check on read: cachetools' TLRUCache keeps a
        # heap that made every insert cost ~20 µs, and a fresh token is one insert.
        self._seen: LRUCache[tuple[str, str], _Seen[Redirect]] = LRUCache(
            maxsize=settings.token_cache_size
        )
        self._seen_resolved: LRUCache[tuple[str, str], _Seen[Resolved]] = LRUCache(
            maxsize=settings.token_cache_size
        )
        self._redirects: LRUCache[tuple[str, str, Transformation], Redirect] = LRUCache(
            maxsize=settings.url_cache_size
        )

    def _verify(
        self, token: str | None, image_id: str
    ) -> tuple[str, VerifiedToken, Transformation]:
        canonical = normalise_image_id(image_id)
        if canonical is None:
            raise ImageNotFoundError("no such image", parameter="image_id")
        verified = verify(
            token,
            self.catalog,
            leeway=self.settings.token_leeway,
            audience=self.settings.token_audience,
            max_bytes=self.settings.token_max_bytes,
        )
        verified.ensure_subject(canonical)
        transformation = Transformation.from_json(
            verified.transformations, self.settings.limits
        )
        return canonical, verified, transformation

    def _remembered(
        self,
        cache: LRUCache[tuple[str, str], _Seen[_T]],
        token: str | None,
        image_id: str,
        compute: Callable[[str | None, str], tuple[_T, VerifiedToken]],
    ) -> _T:
        """The answer for this exact token and image, kept until the token expires."""
        revision = self.catalog.revision()
        if revision != self._revision:
            self._revision = revision
            self._seen.clear()
            self._seen_resolved.clear()
            self._redirects.clear()
        key = (token or "", image_id)
        now = time.time()
        try:
            # Indexing, not .get(): two fewer Python-level calls on the hot path.
            seen = cache[key]
        except KeyError:
            pass
        else:
            if now <= seen.valid_until:
                return seen.value
        value, verified = compute(token, image_id)
        expires = verified.expires_at
        valid_until = (
            now + _NO_EXP_TTL
            if expires is None
            else expires + self.settings.token_leeway
        )
        cache[key] = _Seen(valid_until, value)
        return value

    def resolve(self, token: str | None, image_id: str) -> Resolved:
        """Verify, then find every image the token names, within its issuer only."""
        return self._remembered(self._seen_resolved, token, image_id, self._resolved)

    def _resolved(
        self, token: str | None, image_id: str
    ) -> tuple[Resolved, VerifiedToken]:
        resolved = self._resolve(*self._verify(token, image_id))
        return resolved, resolved.token

    def _resolve(
        self, canonical: str, verified: VerifiedToken, transformation: Transformation
    ) -> Resolved:
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
        return self._remembered(self._seen, token, image_id, self._compiled)

    def _compiled(
        self, token: str | None, image_id: str
    ) -> tuple[Redirect, VerifiedToken]:
        canonical, verified, transformation = self._verify(token, image_id)
        compiled = (verified.issuer, canonical, transformation)
        redirect = self._redirects.get(compiled)
        if redirect is None:
            resolved = self._resolve(canonical, verified, transformation)
            redirect = self._redirects[compiled] = self._redirect(resolved)
        return redirect, verified

    def _redirect(self, resolved: Resolved) -> Redirect:
        account = self.settings.cloudinary
        if account is None:
            raise RuntimeError("redirect delivery needs a Cloudinary account")
        location = to_cloudinary_url(
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
        return Redirect(
            location=location,
            headers=CIMultiDictProxy(
                CIMultiDict(
                    {
                        **NO_CACHE_HEADERS,
                        "Location": location,
                        "Content-Type": "text/html; charset=utf-8",
                        **SECURITY_HEADERS,
                    }
                )
            ),
            body=redirect_body(location),
        )


def _asset(record: ImageRecord, pointer: str | None) -> CloudinaryAsset:
    if record.cloudinary is None:
        raise ImageNotFoundError.unusable("the image is not on Cloudinary", pointer)
    return record.cloudinary
