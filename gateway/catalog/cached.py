"""The hot path's view of the catalog: synchronous reads, asynchronous refills.

Token verification is synchronous and pure (`signing`), and so is compiling a
redirect; only finding what is not yet in memory needs the store. So:

- every issuer with its active keys is held in memory (a `signing.KeyStore`),
  reloaded from the store after any change but this process's image writes:
  issuers are the operator's to create, few, and asked for by every fresh
  token, while uploads come by the hundred;
- image records sit in a bounded LRU, misses included, filled on demand with
  `load` (a flood of unknown ids costs one query per id, once).

Any change drops what it may have touched at once: this process's writes as soon as the store
committed them (before the writer answers its client), other processes'
when the feed tells (PostgreSQL's notifications) or when `refresh` next asks
it, at most every `poll_interval`. What is in memory is served for at most
`poll_interval` after the feed last answered: a catalog that cannot be
reached turns into 503s then, not into ever staler answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from cachetools import LRUCache

from gateway.catalog.records import ImageRecord
from gateway.catalog.store import CatalogStore, Change
from gateway.errors import OverloadedError
from signing import Issuer

__all__ = ["MISSING", "CachedCatalog"]


class _Missing:
    """Not in memory (as opposed to None: known not to exist)."""


MISSING: Final = _Missing()
# Reads of the keys before a catalog that keeps changing is refused.
_RELOADS: Final = 5


class CachedCatalog:
    def __init__(self, store: CatalogStore, *, size: int, poll_interval: float) -> None:
        self.store = store
        self._poll_interval = poll_interval
        self._next_poll = 0.0
        self._stale = True
        # Bumped on every change: a load that began before it must not
        # store what it read. The keys have a generation of their own, which
        # image writes (uploads, edits) leave alone.
        self._generation = 0
        self._key_generation = 0
        self._by_id: Mapping[str, Issuer] = {}
        self._by_kid: Mapping[str, Issuer] = {}
        self._images: LRUCache[str, ImageRecord | None] = LRUCache(maxsize=size)
        self._listeners: list[Callable[[], None]] = []
        self.image_hits = self.image_misses = 0  # for the metrics
        self._refreshing = asyncio.Lock()
        store.subscribe(self._changed)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every change to the catalog, as this view forgets."""
        self._listeners.append(listener)

    def _changed(self, change: Change) -> None:
        self._generation += 1
        if change is not Change.IMAGES:
            self._key_generation += 1
            self._stale = True
        self._images.clear()
        for listener in self._listeners:
            listener()

    def due(self) -> bool:
        """Whether `refresh` has work: keys to reload, or other writers to ask after."""
        if self.store.hinted():  # another process wrote: ask at once
            self._next_poll = 0.0
        return self._stale or time.monotonic() >= self._next_poll

    async def refresh(self) -> None:
        """Notice other processes' changes when a poll is due; reload keys if stale.

        Keys read while another change landed are not installed: they are read
        again, a few times, then the request is refused (503) rather than
        verified against keys that may already be revoked.
        """
        async with self._refreshing:
            now = time.monotonic()
            if now >= self._next_poll:
                # Only a check that succeeded moves the next one on: with the
                # database unreachable, answers from memory stop once a poll
                # interval has passed since the last good check (503s then).
                await self.store.check()
                self._next_poll = now + self._poll_interval
            for _ in range(_RELOADS):
                if not self._stale:
                    return
                generation = self._key_generation
                issuers = await self.store.issuers()
                if generation == self._key_generation:
                    self._install(issuers)
                    self._stale = False
                    return
            raise OverloadedError(
                "the catalog is changing faster than it can be read; retry",
                headers={"Retry-After": "1"},
            )

    @property
    def generation(self) -> int:
        """Bumped on every change this view is told of."""
        return self._generation

    async def fresh(self) -> CachedCatalog:
        """This view, once it reflects every change it knows of."""
        if self.due():
            await self.refresh()
        return self

    def _install(self, issuers: Iterable[Issuer]) -> None:
        by_id: dict[str, Issuer] = {}
        owners: dict[str, list[Issuer]] = {}
        for issuer in issuers:
            by_id[issuer.id] = issuer
            for key in issuer.keys:
                owners.setdefault(key.kid, []).append(issuer)
        self._by_id = by_id
        # A kid two issuers share names neither: those tokens take the slow path.
        self._by_kid = {
            kid: found[0] for kid, found in owners.items() if len(found) == 1
        }

    # signing.KeyStore, from memory

    def issuer(self, issuer_id: str, /) -> Issuer | None:
        return self._by_id.get(issuer_id)

    def issuer_for_kid(self, kid: str, /) -> Issuer | None:
        return self._by_kid.get(kid)

    # Images

    def cached_image(self, image_id: str) -> ImageRecord | _Missing | None:
        """The record if in memory, None if known absent, else `MISSING`."""
        return self._images.get(image_id, MISSING)

    async def load(self, image_ids: Iterable[str]) -> dict[str, ImageRecord | None]:
        """These image records (None: no such image), now also in memory."""
        wanted = list(dict.fromkeys(image_ids))
        found = await asyncio.gather(*(self.image(i) for i in wanted))
        return dict(zip(wanted, found, strict=True))

    async def image(self, image_id: str) -> ImageRecord | None:
        record = self.cached_image(image_id)
        if not isinstance(record, _Missing):
            self.image_hits += 1
            return record
        self.image_misses += 1
        generation = self._generation
        record = await self.store.image(image_id)
        if generation == self._generation:
            self._images[image_id] = record
        return record
