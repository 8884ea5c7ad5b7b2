"""From a token and an image id to what is delivered: verification, resolution, compilation.

Bounded caches keep the hot path cheap without weakening any check:

- per (token, image id), the finished answer, until the token's `exp` plus
  leeway and for at most `_NO_EXP_TTL`: a page of tiles reloaded costs a
  dictionary lookup;
- per (issuer, image id, normalised transformation), the compiled 302, since it
  does not depend on which token asked: a fresh token for a known tiling costs
  one verification and a parse. An entry exists only after that issuer passed
  the ownership checks for every image it names, so a hit skips them.

All are dropped whenever the catalog changes, so a revoked key or a deleted
image takes effect at once.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

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
    """A remembered answer for one token, good until `valid_until` (epoch seconds)."""

    valid_until: float
    value: _T


class Deliverer:
    def __init__(self, settings: Settings, catalog: CachedCatalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._base_chain = parse_base_chain(settings.base_chain)
        # functools' LRU is implemented in C: a hit costs a dictionary lookup and an
        # insert with eviction no more, where cachetools' pure-Python LRUCache took
        # 2-3 µs of a fresh token's budget. Exceptions are never remembered.
        self._redirects = functools.lru_cache(maxsize=settings.token_cache_size)(
            self._seen_redirect
        )
        self._resolutions = functools.lru_cache(maxsize=settings.token_cache_size)(
            self._seen_resolution
        )
        self._compiled = functools.lru_cache(maxsize=settings.url_cache_size)(
            self._compile
        )
        catalog.subscribe(self._forget)

    def redirect(self, token: str | None, image_id: str) -> Redirect:
        """The 302 for a token and image, from cache when this exact pair was seen."""
        return self._remembered(self._redirects, self._seen_redirect, token, image_id)

    def resolve(self, token: str | None, image_id: str) -> Resolved:
        """Verify, then find every image the token names, within its issuer only."""
        return self._remembered(
            self._resolutions, self._seen_resolution, token, image_id
        )

    def _remembered(
        self,
        cached: Callable[[str | None, str, int], _Seen[_T]],
        compute: Callable[[str | None, str, int], _Seen[_T]],
        token: str | None,
        image_id: str,
    ) -> _T:
        """The answer for this exact token and image until the token expires.

        The time window is part of the key, so a token without `exp` is verified
        again at least every `_NO_EXP_TTL` seconds; a catalog change (a revoked
        key, a deleted image) forgets everything at once (`_forget`).
        """
        self.catalog.poll()
        now = time.time()
        window = int(now // _NO_EXP_TTL)
        answer = cached(token, image_id, window)
        if now > answer.valid_until:
            # Expired since it was remembered: verify afresh, which refuses it.
            answer = compute(token, image_id, window)
        return answer.value

    def _forget(self) -> None:
        self._redirects.cache_clear()
        self._resolutions.cache_clear()
        self._compiled.cache_clear()

    def _seen_redirect(
        self, token: str | None, image_id: str, window: int
    ) -> _Seen[Redirect]:
        canonical, verified, transformation = self._verify(token, image_id)
        redirect = self._compiled(verified.issuer, canonical, transformation)
        return _Seen(self._valid_until(verified), redirect)

    def _seen_resolution(
        self, token: str | None, image_id: str, window: int
    ) -> _Seen[Resolved]:
        canonical, verified, transformation = self._verify(token, image_id)
        resolved = self._resolve(canonical, verified, transformation)
        return _Seen(self._valid_until(verified), resolved)

    def _valid_until(self, verified: VerifiedToken) -> float:
        expires = verified.expires_at
        return math.inf if expires is None else expires + self.settings.token_leeway

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

    def _resolve(
        self, canonical: str, verified: VerifiedToken, transformation: Transformation
    ) -> Resolved:
        image, overlays = self._images(verified.issuer, canonical, transformation)
        return Resolved(
            token=verified,
            transformation=transformation,
            image=image,
            overlays=overlays,
        )

    def _images(
        self, issuer_id: str, canonical: str, transformation: Transformation
    ) -> tuple[ImageRecord, dict[str, ImageRecord]]:
        """The image and every overlay, each of this issuer, or a 404 naming which."""
        image = self._image(canonical, issuer_id)
        if image is None:
            raise ImageNotFoundError("no such image", parameter="image_id")
        overlays: dict[str, ImageRecord] = {}
        for layer_id, index in transformation.overlay_steps.items():
            layer = self._image(layer_id, issuer_id)
            if layer is None:
                raise ImageNotFoundError(
                    "the overlay names no image of this issuer",
                    pointer=f"/transformations/{index}/overlay",
                )
            overlays[layer_id] = layer
        return image, overlays

    def _image(self, image_id: str, issuer_id: str) -> ImageRecord | None:
        # Another issuer's image is answered exactly like a missing one.
        image = self.catalog.image(image_id)
        return image if image is not None and image.issuer_id == issuer_id else None

    def _compile(
        self, issuer_id: str, canonical: str, transformation: Transformation
    ) -> Redirect:
        """The 302 for a tiling, remembered: it does not depend on which token asked.

        It is remembered only once the issuer passed the ownership checks for
        every image it names, so a hit skips them.
        """
        account = self.settings.cloudinary
        if account is None:
            raise RuntimeError("redirect delivery needs a Cloudinary account")
        image, overlays = self._images(issuer_id, canonical, transformation)
        location = to_cloudinary_url(
            transformation,
            asset=_asset(image, None),
            overlays={
                layer_id: _asset(
                    overlays[layer_id], f"/transformations/{index}/overlay"
                )
                for layer_id, index in transformation.overlay_steps.items()
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
