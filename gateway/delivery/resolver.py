"""From a token and an image id to what is delivered: verification, ownership, compilation.

The decisions are synchronous over the catalog's in-memory view
(`CachedCatalog`): verify the token, parse its claim, find every image it
names within its issuer, compile. When an image record is not in memory yet,
the decision stops (`_Uncached`), the records are loaded from the store, and
it runs again; nothing half-decided is remembered.

Bounded caches keep the hot path cheap without weakening any check:

- per (token, image id), the finished answer, until the token's `exp` plus
  leeway and for at most `_NO_EXP_TTL`: a page of tiles reloaded costs a
  dictionary lookup;
- per (issuer, image id, transformation), the compiled 302, since it does not
  depend on which token asked: a fresh token for a known tiling costs one
  verification and a parse. An entry exists only after that issuer passed the
  ownership checks for every image it names, so a hit skips them.

All are dropped whenever the catalog changes, so a revoked key or a deleted
image takes effect at once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from gateway.catalog import MISSING, CachedCatalog, ImageRecord
from gateway.config import Settings
from gateway.delivery.redirects import Cdn, Redirect, compile_redirect
from gateway.errors import ImageNotFoundError, OverloadedError
from signing import TokenVerifier, VerifiedToken
from transforms import (
    Transformation,
    normalise_image_id,
    parse_base_chain,
    parse_transformations,
)

__all__ = ["Resolved", "Resolver"]

_T = TypeVar("_T")

# A token without `exp` is re-verified at least this often; key revocation
# clears the cache at once anyway.
_NO_EXP_TTL: Final = 300.0
# Loads before giving up on a catalog that keeps changing under a request.
_LOADS: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """A verified request: the token, its parsed transformation and every image it names."""

    token: VerifiedToken
    transformation: Transformation
    image: ImageRecord
    overlays: Mapping[str, ImageRecord]


@dataclass(frozen=True, slots=True)
class _Seen(Generic[_T]):
    """A remembered answer for one token, good until `valid_until` (epoch seconds)."""

    valid_until: float
    value: _T


_Verified = tuple[str, VerifiedToken, Transformation]


class _Uncached(Exception):  # noqa: N818 - control flow, never seen by a client
    """These image records must be loaded before the decision can be made."""

    def __init__(self, image_ids: list[str]) -> None:
        super().__init__()
        self.image_ids = image_ids
        self.verified: _Verified | None = None


_Compute = Callable[[str | None, str, int], _Seen[_T]]


class Resolver:
    def __init__(
        self, settings: Settings, catalog: CachedCatalog, cdn: Cdn | None = None
    ) -> None:
        """`cdn`: where redirects point; by default Cloudinary, when configured."""
        self.settings = settings
        self.catalog = catalog
        upstream = settings.upstream
        if cdn is None and upstream.cloudinary is not None:
            cdn = Cdn(
                account=upstream.cloudinary,
                token_key=upstream.cdn_token_key,
                url_max_age=upstream.cdn_url_max_age,
            )
        self._cdn = cdn
        # How long an answer is remembered for a token without `exp`. With
        # URLs that expire (a CDN token key), the URL of such a token lasts
        # `url_max_age` from when it was signed, rounded down to the minute:
        # remembered for at most (age - 60) / 2, every 302 handed out has more
        # than that left, where five minutes handed out expired ones.
        self._window = _NO_EXP_TTL
        if cdn is not None and cdn.token_key is not None:
            self._window = min(_NO_EXP_TTL, (cdn.url_max_age - 60) / 2)
        tokens = settings.tokens
        self._verifier = TokenVerifier(
            catalog,
            leeway=tokens.leeway,
            audience=tokens.audience,
            max_bytes=tokens.max_bytes,
        )
        self._base_chain = parse_base_chain(settings.upstream.base_chain)
        # functools' LRU is implemented in C: a hit costs a dictionary lookup.
        # Exceptions (refusals, `_Uncached`) are never remembered.
        self._redirects = functools.lru_cache(maxsize=tokens.cache_size)(
            self._seen_redirect
        )
        self._resolutions = functools.lru_cache(maxsize=tokens.cache_size)(
            self._seen_resolution
        )
        self._compiled = functools.lru_cache(maxsize=tokens.url_cache_size)(
            self._compile
        )
        # Tokens verified by a request that is loading image records, for its
        # retry; one entry per request in flight at most, dropped on any change.
        self._verified: dict[tuple[str | None, str], _Verified] = {}
        self._loaded_records: Mapping[str, ImageRecord | None] = {}
        self._forgotten_lookups: dict[str, float] = {}
        # False while a decision on records a change may have outdated runs:
        # nothing it compiles is remembered either.
        self._remembering = True
        catalog.subscribe(self._forget)

    @property
    def cdn(self) -> Cdn | None:
        """Where redirects point (None in render mode without Cloudinary)."""
        return self._cdn

    def redirect(self, token: str | None, image_id: str) -> Awaitable[Redirect]:
        """The 302 for a token and image, from cache when this exact pair was seen."""
        return self._answer(self._redirects, self._seen_redirect, token, image_id)

    def resolve(self, token: str | None, image_id: str) -> Awaitable[Resolved]:
        """Verify, then find every image the token names, within its issuer only."""
        return self._answer(self._resolutions, self._seen_resolution, token, image_id)

    async def _answer(
        self,
        cached: _Compute[_T],
        compute: _Compute[_T],
        token: str | None,
        image_id: str,
    ) -> _T:
        catalog = self.catalog
        if catalog.due():
            await catalog.refresh()
        try:
            return self._remembered(cached, compute, token, image_id)
        except _Uncached as uncached:
            missing = uncached
        return await self._loaded(missing, cached, compute, token, image_id)

    async def _loaded(
        self,
        missing: _Uncached,
        cached: _Compute[_T],
        compute: _Compute[_T],
        token: str | None,
        image_id: str,
    ) -> _T:
        """Load the image records a decision stopped for, and decide again.

        The retry takes up the token as already verified, and the records as
        loaded, unless the catalog changed meanwhile: then the keys are read
        again and the token verified again, so a key revoked during the load
        is never accepted. The records decide even so: read after this
        request began, they hold every write acknowledged before it (with
        replicas taking uploads, a write elsewhere lands during many loads).
        Only a decision on an unchanged catalog is remembered: a change
        meanwhile may have made the records stale for later requests.
        """
        catalog = self.catalog
        try:
            for _ in range(_LOADS):
                generation = catalog.generation
                if missing.verified is not None:
                    self._verified[(token, image_id)] = missing.verified
                records = await catalog.load(missing.image_ids)
                if catalog.due():
                    await catalog.refresh()
                # Used by this synchronous retry only: no other request runs
                # before it ends.
                self._loaded_records = records
                self._remembering = catalog.generation == generation
                try:
                    return self._remembered(
                        cached if self._remembering else compute,
                        compute,
                        token,
                        image_id,
                    )
                except _Uncached as uncached:
                    missing = uncached
                finally:
                    self._loaded_records = {}
                    self._remembering = True
        finally:
            self._verified.pop((token, image_id), None)
        raise OverloadedError(
            "the catalog changed while this request was resolved; retry",
            headers={"Retry-After": "1"},
        )

    def _remembered(
        self,
        cached: _Compute[_T],
        compute: _Compute[_T],
        token: str | None,
        image_id: str,
    ) -> _T:
        """The answer for this exact token and image until the token expires.

        The time window is part of the key, so a token without `exp` is verified
        again at least every `_window` seconds; a catalog change (a revoked
        key, a deleted image) forgets everything at once (`_forget`).
        """
        now = time.time()
        window = int(now // self._window)
        answer = cached(token, image_id, window)
        if now > answer.valid_until:
            # Expired since it was remembered: verify afresh, which refuses it.
            answer = compute(token, image_id, window)
        return answer.value

    def cache_lookups(self) -> dict[str, float]:
        """Hits and misses of each cache, for the metrics (functools counts
        them, since the last change; the counts before are kept here)."""
        lookups = dict(self._forgotten_lookups)
        for name, cache in (
            ("redirects", self._redirects),
            ("resolutions", self._resolutions),
            ("compiled", self._compiled),
        ):
            info = cache.cache_info()
            lookups[f"{name}:hit"] = lookups.get(f"{name}:hit", 0) + info.hits
            lookups[f"{name}:miss"] = lookups.get(f"{name}:miss", 0) + info.misses
        return lookups

    def _forget(self) -> None:
        # `cache_clear` zeroes functools' counts too: a metric's counter must
        # not go down at every change.
        self._forgotten_lookups = self.cache_lookups()
        self._redirects.cache_clear()
        self._resolutions.cache_clear()
        self._compiled.cache_clear()
        self._verified.clear()
        # Revoked keys must not stay in memory; the others are checked again
        # once each, at their next token.
        self._verifier.retain(())

    def _seen_redirect(
        self, token: str | None, image_id: str, window: int
    ) -> _Seen[Redirect]:
        known = canonical, verified, transformation = self._verify(token, image_id)
        expiration = None
        if self._cdn is not None:
            expiration = self._cdn.expiration(verified.expires_at, time.time())
        compiled = self._compiled if self._remembering else self._compile
        with _resumable(known):
            redirect = compiled(verified.issuer, canonical, transformation, expiration)
        return _Seen(self._valid_until(verified), redirect)

    def _seen_resolution(
        self, token: str | None, image_id: str, window: int
    ) -> _Seen[Resolved]:
        known = canonical, verified, transformation = self._verify(token, image_id)
        with _resumable(known):
            image, overlays = self._images(verified.issuer, canonical, transformation)
        resolved = Resolved(
            token=verified,
            transformation=transformation,
            image=image,
            overlays=overlays,
        )
        return _Seen(self._valid_until(verified), resolved)

    def _valid_until(self, verified: VerifiedToken) -> float:
        expires = verified.expires_at
        return math.inf if expires is None else expires + self.settings.tokens.leeway

    def _verify(self, token: str | None, image_id: str) -> _Verified:
        if (known := self._verified.pop((token, image_id), None)) is not None:
            return known
        canonical = normalise_image_id(image_id)
        if canonical is None:
            raise ImageNotFoundError("no such image", parameter="image_id")
        verified = self._verifier.verify(token)
        verified.ensure_subject(canonical)
        transformation = parse_transformations(
            verified.transformations, self.settings.limits
        )
        return canonical, verified, transformation

    def _images(
        self, issuer_id: str, canonical: str, transformation: Transformation
    ) -> tuple[ImageRecord, dict[str, ImageRecord]]:
        """The image and every overlay, each of this issuer, or a 404 naming which."""
        wanted = [canonical, *transformation.overlay_steps]
        loaded = self._loaded_records
        found = {
            i: loaded[i] if i in loaded else self.catalog.cached_image(i)
            for i in wanted
        }
        if uncached := [i for i, record in found.items() if record is MISSING]:
            raise _Uncached(uncached)
        image = _own(found[canonical], issuer_id)
        if image is None:
            raise ImageNotFoundError("no such image", parameter="image_id")
        overlays: dict[str, ImageRecord] = {}
        for layer_id, index in transformation.overlay_steps.items():
            layer = _own(found[layer_id], issuer_id)
            if layer is None:
                raise ImageNotFoundError(
                    "the overlay names no image of this issuer",
                    pointer=f"/transformations/{index}/overlay",
                )
            overlays[layer_id] = layer
        return image, overlays

    def _compile(
        self,
        issuer_id: str,
        canonical: str,
        transformation: Transformation,
        expiration: int | None,
    ) -> Redirect:
        """The 302 for a tiling, remembered: it does not depend on which token asked
        (only, with a CDN token key, on the minute its URL expires).

        It is remembered only once the issuer passed the ownership checks for
        every image it names, so a hit skips them.
        """
        if self._cdn is None:
            raise RuntimeError("redirect delivery needs a Cloudinary account")
        image, overlays = self._images(issuer_id, canonical, transformation)
        return compile_redirect(
            issuer_id,
            transformation,
            image,
            overlays,
            cdn=self._cdn,
            base_chain=self._base_chain,
            expiration=expiration,
        )


@contextlib.contextmanager
def _resumable(verified: _Verified) -> Iterator[None]:
    """Attach what was verified to an `_Uncached` leaving the block."""
    try:
        yield
    except _Uncached as uncached:
        uncached.verified = verified
        raise


def _own(record: object, issuer_id: str) -> ImageRecord | None:
    # Another issuer's image is answered exactly like a missing one.
    if isinstance(record, ImageRecord) and record.issuer_id == issuer_id:
        return record
    return None
